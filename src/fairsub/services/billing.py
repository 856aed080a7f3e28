"""Renewals, dunning, expiry and the janitor: the billing run.

The run is two-phase, and the order is what keeps invariants 1 and 2:
1. claim: in one transaction, lease the due subscriptions and commit an invoice and a
   payment attempt in state 'sending' for each. A turn-off that commits before this
   wins: the subscription is no longer due. One that commits after it loses cleanly:
   it sees the charge in flight and tells the customer.
2. charge each attempt through the gateway with its idempotency key, then record every
   answer in one transaction. A lost answer is never retried under a new key: the
   janitor asks the gateway about the same key and records what it says.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fairsub.domain.billing import (
    AttemptStatus,
    DunningPolicy,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
    idempotency_key,
)
from fairsub.domain.periods import Period, following
from fairsub.domain.subscriptions import Status
from fairsub.services import audit, checkout
from fairsub.services.notifications import PAYMENT_FAILED, RENEWAL_CHARGED, enqueue
from fairsub.services.ports import (
    ChargeResult,
    Clock,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentGateway,
    UnitOfWork,
    UnitOfWorkFactory,
)
from fairsub.services.pricing import renewal_prices

LEASE = timedelta(minutes=10)
ACTOR = "system:billing"


@dataclass
class RunSummary:
    charged: int = 0
    declined: int = 0
    unknown: int = 0
    skipped: int = 0
    settled: int = 0
    expired: int = 0
    reminded: int = 0
    details: list[str] = field(default_factory=list)

    def add(self, other: RunSummary) -> None:
        for name in ("charged", "declined", "unknown", "skipped", "settled", "expired", "reminded"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class Work:
    attempt: PaymentAttempt
    period: Period
    description: str


Outcome = ChargeResult | None  # None: the answer was lost or never came


def _claim(uows: UnitOfWorkFactory, clock: Clock, batch: int) -> tuple[list[Work], int]:
    """Phase 1. Returns the charges to make, and how many due ones had no card."""
    now = clock.now()
    work: list[Work] = []
    no_card = 0
    with uows().write() as uow:
        due = uow.billing.claim_due(now, batch, now + LEASE)
        fresh = [d for d in due if d.payment_token]
        periods = {d.subscription_id: following(d.anchor, d.term, d.period) for d in fresh}
        existing = {
            d.subscription_id: uow.billing.invoice_for(
                d.subscription_id, periods[d.subscription_id].start
            )
            for d in fresh
        }
        needed = sum(1 for invoice in existing.values() if invoice is None)
        number = uow.billing.take_invoice_numbers(needed) if needed else 0
        # C23: a new period's price is fixed here, once, on its invoice; a higher price
        # only after the subscriber's notice. Retries keep the invoice and its amount.
        prices = renewal_prices(
            uow, [d for d in fresh if existing[d.subscription_id] is None], periods
        )
        for renewal in due:
            if not renewal.payment_token:
                no_card += 1
                _no_payment_method(uow, renewal.subscription_id, renewal.account_id, now)
                continue
            period = periods[renewal.subscription_id]
            invoice = existing[renewal.subscription_id]
            if invoice is None:
                invoice = uow.billing.add_invoice(
                    number=number,
                    account_id=renewal.account_id,
                    subscription_id=renewal.subscription_id,
                    kind=InvoiceKind.RENEWAL,
                    period=period,
                    amount=prices[renewal.subscription_id],
                    at=now,
                )
                number += 1
            attempt_no = uow.billing.attempts_made(invoice.id) + 1
            attempt = uow.billing.add_attempt(
                invoice=invoice,
                attempt_no=attempt_no,
                key=idempotency_key(renewal.subscription_id, period.start, attempt_no),
                payment_method_id=renewal.payment_method_id,
                payment_token=renewal.payment_token,
                at=now,
            )
            work.append(Work(attempt, period, f"Renewal, invoice {invoice.number}"))
        uow.commit()
    return work, no_card


def _no_payment_method(
    uow: UnitOfWork, subscription_id: int, account_id: int, now: datetime
) -> None:
    subscription = uow.subscriptions.get(account_id, subscription_id, lock=True)
    if subscription is None:  # pragma: no cover - claimed rows exist
        return
    before = subscription.status.value
    subscription.renewal_failed(now)
    uow.subscriptions.save(subscription)
    uow.billing.set_dunning(subscription_id, 0, None)
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


def _charge(gateway: PaymentGateway, item: Work) -> Outcome:
    attempt = item.attempt
    try:
        return gateway.charge(
            attempt.idempotency_key, attempt.amount, attempt.payment_token, item.description
        )
    except (GatewayTimeout, GatewayUnavailable):
        return None


def _charge_all(gateway: PaymentGateway, work: list[Work], in_flight: int) -> list[Outcome]:
    if in_flight <= 1:
        return [_charge(gateway, item) for item in work]
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        return list(pool.map(lambda item: _charge(gateway, item), work))


def apply_outcome(
    uow: UnitOfWork,
    attempt: PaymentAttempt,
    outcome: Outcome,
    now: datetime,
    policy: DunningPolicy,
    summary: RunSummary,
) -> None:
    """Record the gateway's answer for one attempt, inside the caller's transaction.

    Locks in the order every billing transaction keeps, so none can deadlock another on
    PostgreSQL: the subscription, then the attempt, then (by auditing) the audit head."""
    subscription = uow.subscriptions.get(attempt.account_id, attempt.subscription_id, lock=True)
    if outcome is None:
        uow.billing.settle_attempt(attempt.id, AttemptStatus.UNKNOWN, now)
        uow.billing.release(attempt.subscription_id)
        summary.unknown += 1
        return
    status = AttemptStatus.SUCCEEDED if outcome.succeeded else AttemptStatus.DECLINED
    if not uow.billing.settle_attempt(
        attempt.id,
        status,
        now,
        gateway_ref=outcome.gateway_ref,
        decline_reason=outcome.decline_reason,
    ):
        return  # someone else recorded this answer first
    account = uow.accounts.get(attempt.account_id)
    invoice = uow.billing.get_invoice(attempt.invoice_id)
    if subscription is None or account is None or invoice is None:  # pragma: no cover
        raise LookupError(f"attempt {attempt.id} points at missing rows")
    before = {"status": subscription.status.value, "period_end": subscription.period.end}
    if invoice.kind is InvoiceKind.PURCHASE:
        # A purchase whose answer the portal lost: its invoice is the current period, not
        # the next one, and it starts (or never starts) the subscription.
        action = checkout.settle_purchase(
            uow, subscription, account, invoice, outcome, now, customer_waiting=False
        )
        if outcome.succeeded:
            summary.charged += 1
        else:
            summary.declined += 1
    elif outcome.succeeded:
        uow.billing.set_invoice_status(invoice.id, InvoiceStatus.PAID, now)
        subscription.renew(Period(invoice.period_start, invoice.period_end), now)
        subscription.price = invoice.amount  # a noticed price increase shows from now on
        uow.subscriptions.save(subscription)
        uow.billing.set_dunning(subscription.id, 0, None)
        summary.charged += 1
        action = "renewed"
        enqueue(
            uow,
            RENEWAL_CHARGED,
            account,
            now,
            dedupe_key=f"charged:{attempt.idempotency_key}",
            product=subscription.product_name,
            plan=subscription.plan_name,
            amount=invoice.amount.plain(),
            invoice_number=invoice.number,
            period_start=invoice.period_start.isoformat(),
            period_end=invoice.period_end.isoformat(),
            auto_renew=subscription.auto_renew,
            subscription_path=f"/account/subscriptions/{subscription.id}",
            statement_path="/account/billing",
        )
    else:
        summary.declined += 1
        if not subscription.auto_renew:
            # Turned off while the charge was out: nothing more to collect.
            uow.billing.set_invoice_status(invoice.id, InvoiceStatus.VOID)
            uow.billing.release(subscription.id)
            action = "renewal_declined_after_turn_off"
        else:
            failures = attempt.attempt_no
            retry_at = policy.next_retry(subscription.period.end, failures, now)
            subscription.renewal_failed(now)
            uow.subscriptions.save(subscription)
            uow.billing.set_dunning(subscription.id, failures, retry_at)
            action = "renewal_declined"
            enqueue(
                uow,
                PAYMENT_FAILED,
                account,
                now,
                dedupe_key=f"declined:{attempt.idempotency_key}",
                product=subscription.product_name,
                plan=subscription.plan_name,
                amount=invoice.amount.plain(),
                reason=outcome.decline_reason or "declined",
                retry_at=retry_at.isoformat() if retry_at else None,
                ends_at=(subscription.period.end + policy.grace).isoformat(),
                payment_path="/account/payment-methods",
                subscription_path=f"/account/subscriptions/{subscription.id}",
            )
    audit.record(
        uow,
        actor=ACTOR,
        channel="worker",
        action=f"worker:subscription:{action}",
        subject=f"subscription:{subscription.id}",
        account_id=subscription.account_id,
        at=now,
        before={k: str(v) for k, v in before.items()},
        after={
            "status": subscription.status.value,
            "period_end": str(subscription.period.end),
            "attempt": attempt.idempotency_key,
            "gateway_ref": outcome.gateway_ref,
        },
    )


def _record(
    uows: UnitOfWorkFactory,
    clock: Clock,
    work: list[Work],
    outcomes: list[Outcome],
    policy: DunningPolicy,
) -> RunSummary:
    summary = RunSummary()
    now = clock.now()
    with uows().write() as uow:
        # Lock the batch's subscriptions first, in id order, before the first audit entry
        # locks the audit head: a turn-off locks its subscription and then the head, so
        # the other order deadlocks on PostgreSQL (test_billing_concurrency found it).
        for item in sorted(work, key=lambda w: w.attempt.subscription_id):
            uow.subscriptions.get(item.attempt.account_id, item.attempt.subscription_id, lock=True)
        for item, outcome in zip(work, outcomes, strict=True):
            apply_outcome(uow, item.attempt, outcome, now, policy, summary)
        uow.commit()
    return summary


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
    """Charge every due renewal and dunning retry, batch by batch, until none is due."""
    policy = policy or DunningPolicy()
    summary = RunSummary()
    done = 0
    while limit is None or done < limit:
        size = batch if limit is None else min(batch, limit - done)
        work, no_card = _claim(uows, clock, size)
        summary.skipped += no_card
        if not work and not no_card:
            break
        summary.add(_record(uows, clock, work, _charge_all(gateway, work, in_flight), policy))
        done += len(work) + no_card
        if progress:
            progress(len(work) + no_card)
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
                apply_outcome(uow, current, found, clock.now(), policy, summary)
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
    """One full pass: settle lost answers, charge what is due, end what will not renew."""
    summary = settle_unknown(uows, gateway, clock, policy=policy)
    summary.add(
        renew_due(
            uows, gateway, clock, batch=batch, in_flight=in_flight, policy=policy, progress=progress
        )
    )
    summary.expired += expire_ended(uows, clock, policy=policy)
    return summary
