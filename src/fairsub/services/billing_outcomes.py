"""Recording the gateway's answers for a batch of payment attempts, in one transaction.

The billing run records a whole batch at once: it reads what it needs with one query per
kind of row, decides each attempt's consequences in plain Python (the domain does the
deciding), and writes them back with one statement per kind of change. The janitor and
the tests record single answers through the same function, with a batch of one.

Locks are taken in the order every billing transaction keeps, so none can deadlock
another on PostgreSQL: the subscriptions (in id order), then their attempts, then, by
auditing last, the audit head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from fairsub.domain.accounts import Account
from fairsub.domain.audit import AuditEntry
from fairsub.domain.billing import (
    AttemptStatus,
    DunningPolicy,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
)
from fairsub.domain.periods import Period
from fairsub.domain.subscriptions import Subscription
from fairsub.services.notifications import (
    LAST_RENEWAL_DECLINED,
    PAYMENT_FAILED,
    RENEWAL_CHARGED,
    message,
)
from fairsub.services.ports import (
    AttemptAnswer,
    ChargeResult,
    DueRenewal,
    Dunning,
    OutboxMessage,
    UnitOfWork,
)
from fairsub.services.purchase_outcomes import settle_purchase
from fairsub.services.statements import decline_words

ACTOR = "system:billing"

Outcome = ChargeResult | None  # None: the answer was lost or never came


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
    # Why the gateway refused our credentials, if it did: the charges it refused are left
    # unanswered, as for an unavailable gateway, and this says it is a setting to fix.
    credentials_refused: str | None = None

    def add(self, other: RunSummary) -> None:
        for name in ("charged", "declined", "unknown", "skipped", "settled", "expired", "reminded"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.credentials_refused = self.credentials_refused or other.credentials_refused


@dataclass
class _Changes:
    """Everything a batch will write, gathered before the first write."""

    invoices: list[tuple[int, InvoiceStatus]] = field(default_factory=list)
    subscriptions: list[tuple[Subscription, Dunning]] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    emails: list[OutboxMessage] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)

    def write(self, uow: UnitOfWork, now: datetime) -> None:
        uow.billing.set_invoice_statuses(self.invoices, now)
        uow.billing.save_with_dunning(self.subscriptions)
        uow.billing.release_many(self.released)
        uow.outbox.add_many(self.emails, now)
        uow.audit.append_many(self.audit)


@dataclass(frozen=True, slots=True)
class Claimed:
    """What the billing run's claim read and wrote for a charge. Recording the answer uses
    it instead of reading the rows again, unless the subscription changed in between."""

    renewal: DueRenewal
    invoice: Invoice


@dataclass(frozen=True, slots=True)
class Answer:
    """A payment attempt and the gateway's answer (None: lost), with the claim's snapshot
    when the billing run made the attempt."""

    attempt: PaymentAttempt
    outcome: Outcome
    claimed: Claimed | None = None


@dataclass(frozen=True, slots=True)
class _Answered:
    """One charge's answer with the rows it changes, read for the whole batch at once."""

    attempt: PaymentAttempt
    outcome: ChargeResult
    subscription: Subscription
    account: Account
    invoice: Invoice


def _answer(attempt: PaymentAttempt, outcome: Outcome) -> AttemptAnswer:
    if outcome is None:
        return AttemptAnswer(attempt.id, AttemptStatus.UNKNOWN)
    status = AttemptStatus.SUCCEEDED if outcome.succeeded else AttemptStatus.DECLINED
    return AttemptAnswer(attempt.id, status, outcome.gateway_ref, outcome.decline_reason)


def record_outcomes(
    uow: UnitOfWork,
    answers: Sequence[Answer],
    now: datetime,
    policy: DunningPolicy,
    summary: RunSummary,
) -> None:
    """Record each attempt's answer once, inside the caller's transaction, with all it
    brings: the invoice paid or void, the subscription renewed or in dunning, the email,
    the audit entry. An answer someone else recorded first is left alone."""
    versions = uow.subscriptions.lock_versions(a.attempt.subscription_id for a in answers)
    recorded = uow.billing.settle_attempts([_answer(a.attempt, a.outcome) for a in answers], now)
    fresh = [a for a in answers if a.attempt.id in recorded]
    changes = _Changes()
    for answer in fresh:
        if answer.outcome is None:
            changes.released.append(answer.attempt.subscription_id)
            summary.unknown += 1
    known = _read(uow, [a for a in fresh if a.outcome is not None], versions)
    for answered in known:
        _apply(uow, changes, answered, now, policy, summary)
    changes.write(uow, now)


def _read(uow: UnitOfWork, answers: list[Answer], versions: dict[int, int]) -> list[_Answered]:
    """Each answer with its rows: the claim's snapshot where the subscription's version is
    still the one claimed (nobody changed it since), the database's otherwise."""

    def as_claimed(a: Answer) -> Claimed | None:
        claimed = a.claimed
        if claimed is not None and versions.get(claimed.renewal.subscription_id) == (
            claimed.renewal.version
        ):
            return claimed
        return None

    snapshots = [as_claimed(a) for a in answers]
    stale = [a.attempt for a, claimed in zip(answers, snapshots, strict=True) if claimed is None]
    subscriptions = uow.subscriptions.lock_many(a.subscription_id for a in stale)
    accounts = uow.accounts.get_many(a.account_id for a in stale)
    invoices = uow.billing.get_invoices(a.invoice_id for a in stale)
    read = []
    for answer, claimed in zip(answers, snapshots, strict=True):
        attempt, outcome = answer.attempt, answer.outcome
        assert outcome is not None
        if claimed is not None:
            renewal = claimed.renewal
            read.append(
                _Answered(attempt, outcome, renewal.subscription, renewal.account, claimed.invoice)
            )
            continue
        subscription = subscriptions.get(attempt.subscription_id)
        account = accounts.get(attempt.account_id)
        invoice = invoices.get(attempt.invoice_id)
        if subscription is None or account is None or invoice is None:  # pragma: no cover
            raise LookupError(f"attempt {attempt.id} points at missing rows")
        read.append(_Answered(attempt, outcome, subscription, account, invoice))
    return read


def _apply(
    uow: UnitOfWork,
    changes: _Changes,
    answered: _Answered,
    now: datetime,
    policy: DunningPolicy,
    summary: RunSummary,
) -> None:
    attempt, outcome, subscription = answered.attempt, answered.outcome, answered.subscription
    before = {"status": subscription.status.value, "period_end": str(subscription.period.end)}
    if outcome.succeeded:
        summary.charged += 1
    else:
        summary.declined += 1
    if answered.invoice.kind is InvoiceKind.PURCHASE:
        # A purchase whose answer the portal lost: its invoice is the current period, not
        # the next one, and it starts (or never starts) the subscription.
        action = settle_purchase(
            uow,
            subscription,
            answered.account,
            answered.invoice,
            outcome,
            now,
            customer_waiting=False,
        )
    elif outcome.succeeded:
        action = _renewed(changes, answered, now)
    elif not subscription.auto_renew:
        action = _declined_after_turn_off(uow, changes, answered)
    else:
        action = _declined(changes, answered, now, policy)
    changes.audit.append(
        AuditEntry(
            actor=ACTOR,
            channel="worker",
            action=f"worker:subscription:{action}",
            subject=f"subscription:{subscription.id}",
            account_id=subscription.account_id,
            at=now,
            before=before,
            after={
                "status": subscription.status.value,
                "period_end": str(subscription.period.end),
                "attempt": attempt.idempotency_key,
                "gateway_ref": outcome.gateway_ref,
            },
        )
    )


def _renewed(changes: _Changes, answered: _Answered, now: datetime) -> str:
    attempt, subscription, invoice = answered.attempt, answered.subscription, answered.invoice
    changes.invoices.append((invoice.id, InvoiceStatus.PAID))
    subscription.renew(Period(invoice.period_start, invoice.period_end), now)
    subscription.price = invoice.amount  # a noticed price increase shows from now on
    changes.subscriptions.append((subscription, Dunning(0, None)))
    changes.emails.append(
        message(
            RENEWAL_CHARGED,
            answered.account,
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
    )
    return "renewed"


def _declined_after_turn_off(uow: UnitOfWork, changes: _Changes, answered: _Answered) -> str:
    """Turned off while the charge was out, and the charge failed: nothing more to
    collect. The turn-off's confirmation promised the period being charged; it is not
    the customer's after all, so the cancellation ends when the paid period did, and the
    customer is told, with the same reference."""
    subscription, invoice = answered.subscription, answered.invoice
    changes.invoices.append((invoice.id, InvoiceStatus.VOID))
    changes.released.append(subscription.id)
    cancellation = uow.cancellations.open_for(subscription.id)
    if cancellation is not None and cancellation.ends_at > subscription.period.end:
        uow.cancellations.correct_end(cancellation.reference, subscription.period.end)
        changes.emails.append(
            message(
                LAST_RENEWAL_DECLINED,
                answered.account,
                dedupe_key=f"last-renewal-declined:{cancellation.reference}",
                product=subscription.product_name,
                plan=subscription.plan_name,
                amount=invoice.amount.plain(),
                reference=cancellation.reference,
                ends_at=subscription.period.end.isoformat(),
                confirmation_path=f"/account/cancellations/{cancellation.reference}",
            )
        )
    return "renewal_declined_after_turn_off"


def _declined(changes: _Changes, answered: _Answered, now: datetime, policy: DunningPolicy) -> str:
    attempt, subscription, invoice = answered.attempt, answered.subscription, answered.invoice
    failures = attempt.attempt_no
    retry_at = policy.next_retry(subscription.period.end, failures, now)
    subscription.renewal_failed(now)
    changes.subscriptions.append((subscription, Dunning(failures, retry_at)))
    changes.emails.append(
        message(
            PAYMENT_FAILED,
            answered.account,
            dedupe_key=f"declined:{attempt.idempotency_key}",
            product=subscription.product_name,
            plan=subscription.plan_name,
            amount=invoice.amount.plain(),
            reason=decline_words(answered.outcome.decline_reason),
            retry_at=retry_at.isoformat() if retry_at else None,
            ends_at=(subscription.period.end + policy.grace).isoformat(),
            payment_path="/account/payment-methods",
            subscription_path=f"/account/subscriptions/{subscription.id}",
        )
    )
    return "renewal_declined"
