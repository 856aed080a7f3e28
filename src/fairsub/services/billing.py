"""Renewals, dunning, expiry and the janitor: the billing run.

The run is two-phase, and the order is what keeps invariants 1 and 2:
1. claim: in one transaction, lease the due subscriptions and commit an invoice and a
   payment attempt in state 'sending' for each. A turn-off that commits before this
   wins: the subscription is no longer due. One that commits after it loses cleanly:
   it sees the charge in flight and tells the customer.
2. charge each attempt through the gateway with its idempotency key, then record every
   answer in one transaction (services.billing_outcomes). A lost answer is never retried
   under a new key: the janitor asks the gateway about the same key and records what it
   says.

Batches are pipelined: while one batch's charges are out at the gateway, the previous
batch's answers are recorded and the next batch is claimed, so the charges in flight
never wait for the database. (Next to SQLite with one charge at a time, charges are made
on the run's own thread instead: see `billing_stages`.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from fairsub.domain.billing import (
    AttemptStatus,
    DunningPolicy,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
    idempotency_key,
)
from fairsub.domain.periods import following
from fairsub.domain.subscriptions import Status
from fairsub.services import audit
from fairsub.services.billing_outcomes import (
    ACTOR,
    Answer,
    Claimed,
    Outcome,
    RunSummary,
    record_outcomes,
)
from fairsub.services.billing_stages import CredentialsFuse, Work, charging, recording
from fairsub.services.notifications import SUBSCRIPTION_ENDED, enqueue
from fairsub.services.ports import (
    Clock,
    DueRenewal,
    Dunning,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentGateway,
    UnitOfWork,
    UnitOfWorkFactory,
)
from fairsub.services.pricing import renewal_prices

__all__ = ["LEASE", "DunningPolicy", "RunSummary", "Work", "renew_due", "run", "settle_unknown"]

LEASE = timedelta(minutes=10)


def _claim(uows: UnitOfWorkFactory, clock: Clock, batch: int) -> tuple[list[Work], int]:
    """Phase 1. Returns the charges to make, and how many due ones had no card."""
    now = clock.now()
    with uows().write() as uow:
        due = uow.billing.claim_due(now, batch, now + LEASE)
        no_card = [d for d in due if not d.payment_token]
        for renewal in no_card:
            _no_payment_method(uow, renewal.subscription_id, renewal.account_id, now)
        work = _invoice_and_attempt(uow, [d for d in due if d.payment_token], now)
        uow.commit()
    return work, len(no_card)


def _invoice_and_attempt(uow: UnitOfWork, due: list[DueRenewal], now: datetime) -> list[Work]:
    """An invoice for each renewal's next period (kept if a retry finds one) and a new
    payment attempt on it, in state 'sending', under a key no other attempt has."""
    periods = {
        d.subscription_id: following(d.anchor, d.subscription.term, d.subscription.period)
        for d in due
    }
    existing = uow.billing.invoices_for({i: p.start for i, p in periods.items()})
    new = [d for d in due if d.subscription_id not in existing]
    # C23: a new period's price is fixed here, once, on its invoice; a higher price only
    # after the subscriber's notice. Retries keep the invoice and its amount.
    prices = renewal_prices(uow, new, periods)
    first = uow.billing.take_invoice_numbers(len(new)) if new else 0
    drafts = [
        Invoice(
            id=0,
            number=first + n,
            account_id=d.account_id,
            subscription_id=d.subscription_id,
            kind=InvoiceKind.RENEWAL,
            period_start=periods[d.subscription_id].start,
            period_end=periods[d.subscription_id].end,
            amount=prices[d.subscription_id],
            status=InvoiceStatus.OPEN,
            created_at=now,
        )
        for n, d in enumerate(new)
    ]
    invoices = existing | {i.subscription_id: i for i in uow.billing.add_invoices(drafts)}
    made = uow.billing.attempt_counts(i.id for i in existing.values())
    attempts = []
    renewals = {d.subscription_id: d for d in due}
    for renewal in due:
        invoice = invoices[renewal.subscription_id]
        attempt_no = made.get(invoice.id, 0) + 1
        attempts.append(
            PaymentAttempt(
                id=0,
                account_id=invoice.account_id,
                invoice_id=invoice.id,
                subscription_id=invoice.subscription_id,
                attempt_no=attempt_no,
                idempotency_key=idempotency_key(
                    invoice.subscription_id, invoice.period_start, attempt_no
                ),
                amount=invoice.amount,
                payment_token=renewal.payment_token or "",
                status=AttemptStatus.SENDING,
                created_at=now,
                payment_method_id=renewal.payment_method_id,
            )
        )
    return [
        Work(
            attempt,
            f"Renewal, invoice {invoices[attempt.subscription_id].number}",
            Claimed(renewals[attempt.subscription_id], invoices[attempt.subscription_id]),
        )
        for attempt in uow.billing.add_attempts(attempts)
    ]


def _no_payment_method(
    uow: UnitOfWork, subscription_id: int, account_id: int, now: datetime
) -> None:
    subscription = uow.subscriptions.get(account_id, subscription_id, lock=True)
    if subscription is None:  # pragma: no cover - claimed rows exist
        return
    before = subscription.status.value
    subscription.renewal_failed(now)
    uow.billing.save_with_dunning([(subscription, Dunning(0, None))])
    audit.record(
        uow,
        actor=ACTOR,
        channel="worker",
        action="worker:subscription:no_payment_method",
        subject=f"subscription:{subscription_id}",
        account_id=account_id,
        at=now,
        before={"status": before},
        after={"status": subscription.status.value},
    )


def _record(
    uows: UnitOfWorkFactory,
    clock: Clock,
    work: list[Work],
    outcomes: list[Outcome],
    policy: DunningPolicy,
) -> RunSummary:
    """One transaction for a batch's answers."""
    summary = RunSummary()
    with uows().write() as uow:
        answered = [Answer(w.attempt, o, w.claimed) for w, o in zip(work, outcomes, strict=True)]
        record_outcomes(uow, answered, clock.now(), policy, summary)
        uow.commit()
    return summary


def _record_when_answered(
    uows: UnitOfWorkFactory,
    clock: Clock,
    work: list[Work],
    answers: Callable[[], list[Outcome]],
    policy: DunningPolicy,
) -> RunSummary:
    return _record(uows, clock, work, answers(), policy)


def renew_due(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    *,
    batch: int = 200,
    in_flight: int = 1,
    policy: DunningPolicy | None = None,
    progress: Callable[[int], None] | None = None,
    limit: int | None = None,
) -> RunSummary:
    """Charge every due renewal and dunning retry, batch by batch, until none is due.

    Three batches move at once: one is claimed while the one before is charged and the one
    before that recorded. Batches are recorded in order, one at a time. A batch claimed,
    charged or recorded leaves its subscriptions leased with a charge in flight, so no
    other claim, here or in another worker, takes them meanwhile. So the run ends only on
    a claim that finds nothing while nothing is in flight: a subscription renewed for one
    period may be due for the next (the worker was stopped a while, the test clock jumped),
    and it is renewed again in the same run."""
    policy = policy or DunningPolicy()
    summary = RunSummary()
    claimed = 0
    out: tuple[list[Work], Callable[[], list[Outcome]]] | None = None
    recorded: tuple[int, Callable[[], RunSummary]] | None = None

    def collect() -> None:
        nonlocal recorded
        if recorded is not None:
            count, result = recorded
            recorded = None
            summary.add(result())
            if progress:
                progress(count)

    with (
        charging(gateway, in_flight, embedded=uows.embedded) as send,
        recording(embedded=uows.embedded) as record,
    ):
        while True:
            settled = out is None and recorded is None  # nothing charged or recorded now
            size = batch if limit is None else min(batch, limit - claimed)
            work, no_card = _claim(uows, clock, size) if size > 0 else ([], 0)
            claimed += len(work) + no_card
            summary.skipped += no_card
            sent = (work, send(work)) if work else None
            if out is not None:
                done, answers = out
                collect()
                recorded = (
                    len(done),
                    record(partial(_record_when_answered, uows, clock, done, answers, policy)),
                )
            if no_card and progress:
                progress(no_card)
            out = sent
            if out is None and not no_card:
                collect()
                if settled or size == 0:
                    return summary


def settle_unknown(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    *,
    policy: DunningPolicy | None = None,
    batch: int = 200,
) -> RunSummary:
    """The janitor: ask the gateway what happened to every charge we have no answer for.

    A charge the gateway never received is sent again under the same key, which the
    gateway deduplicates, so even a janitor racing a slow worker cannot charge twice."""
    policy = policy or DunningPolicy()
    summary = RunSummary()
    with uows().read() as uow:
        pending = uow.billing.unsettled(clock.now(), batch)
    for attempt in pending:
        try:
            found = gateway.lookup_charge(attempt.idempotency_key)
            if found is None:
                found = gateway.charge(
                    attempt.idempotency_key,
                    attempt.amount,
                    attempt.payment_token,
                    "Renewal (resent)",
                )
        except (GatewayTimeout, GatewayUnavailable):
            continue
        with uows().write() as uow:
            current = uow.billing.get_attempt(attempt.id)
            if current is not None and current.status not in (
                AttemptStatus.SUCCEEDED,
                AttemptStatus.DECLINED,
            ):
                record_outcomes(uow, [Answer(current, found)], clock.now(), policy, summary)
                summary.settled += 1
            uow.commit()
    return summary


def expire_ended(
    uows: UnitOfWorkFactory, clock: Clock, *, policy: DunningPolicy | None = None, batch: int = 500
) -> int:
    """End subscriptions that will not renew: turned off and past their period, or past
    due with every retry spent and grace over."""
    policy = policy or DunningPolicy()
    now = clock.now()
    expired = 0
    while True:
        with uows().write() as uow:
            ids = uow.billing.ending(now, now - policy.grace, batch)
            for subscription_id, account_id in ids:
                _expire_one(uow, subscription_id, account_id, now)
            uow.commit()
        expired += len(ids)
        if len(ids) < batch:
            return expired


def _expire_one(uow: UnitOfWork, subscription_id: int, account_id: int, now: datetime) -> None:
    subscription = uow.subscriptions.get(account_id, subscription_id, lock=True)
    if subscription is None:  # pragma: no cover
        return
    before = subscription.status.value
    subscription.expire(now)
    uow.subscriptions.save(subscription)
    invoice = uow.billing.open_invoice_for(subscription_id)
    if invoice is not None:
        uow.billing.set_invoice_status(invoice.id, InvoiceStatus.VOID)
    account = uow.accounts.get(account_id) if before == Status.PAST_DUE.value else None
    if account is not None:
        # Every retry failed and the grace is over: the customer was told it would end
        # unless the card was updated, and is now told that it has, and that nothing is owed.
        enqueue(
            uow,
            SUBSCRIPTION_ENDED,
            account,
            now,
            dedupe_key=f"ended-unpaid:{subscription_id}",
            product=subscription.product_name,
            plan=subscription.plan_name,
            amount=invoice.amount.plain() if invoice else None,
            ended_at=now.isoformat(),
            plans_path="/plans",
            statement_path="/account/billing",
        )
    audit.record(
        uow,
        actor=ACTOR,
        channel="worker",
        action="worker:subscription:expired",
        subject=f"subscription:{subscription_id}",
        account_id=account_id,
        at=now,
        before={"status": before},
        after={"status": Status.EXPIRED.value},
    )


def run(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    *,
    batch: int = 200,
    in_flight: int = 1,
    policy: DunningPolicy | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunSummary:
    """One full pass: settle lost answers, charge what is due, end what will not renew.

    A gateway that refuses our credentials leaves its charges unanswered, for the janitor
    to resend under the same keys, and the summary says so (credentials_refused)."""
    fuse = CredentialsFuse(gateway)
    summary = settle_unknown(uows, fuse, clock, policy=policy)
    summary.add(
        renew_due(
            uows, fuse, clock, batch=batch, in_flight=in_flight, policy=policy, progress=progress
        )
    )
    summary.expired += expire_ended(uows, clock, policy=policy)
    summary.credentials_refused = str(fuse.refused) if fuse.refused else None
    return summary
