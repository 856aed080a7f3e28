"""The customer's billing history and receipts: every charge, in plain words (C31).

Read-only. A statement line is one payment attempt (what the gateway was asked, and what
it answered), or an invoice nothing was ever attempted for. Refunds are meant to join as
lines of their own kind (LineKind.REFUND) with their own rows; until they exist, none are
shown. Dates and money stay typed here: the portal formats them for the reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fairsub.domain.billing import (
    AttemptStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
)
from fairsub.domain.errors import NotFound
from fairsub.domain.money import Money
from fairsub.domain.periods import Period
from fairsub.domain.subscriptions import PaymentMethod, Subscription
from fairsub.services.ports import UnitOfWork

NO_SUCH_RECEIPT = "There is no receipt with that number on your account."

# Gateway decline codes, as a customer would say them. Unknown codes are spelled out.
DECLINE_WORDS: dict[str, str] = {
    "card_declined": "card declined",
    "insufficient_funds": "insufficient funds",
    "expired_card": "card expired",
    "incorrect_cvc": "wrong security code",
    "card_not_found": "card not found",
    "do_not_honor": "declined by your bank",
    "lost_card": "card reported lost",
    "stolen_card": "card reported stolen",
}


class LineKind(StrEnum):
    CHARGE = "charge"


class LineStatus(StrEnum):
    PAID = "paid"
    DECLINED = "declined"
    PENDING = "pending"  # sent to the gateway; its answer is not recorded yet
    NOT_CHARGED = "not_charged"  # invoiced, nothing sent yet
    VOID = "void"  # never collected: the subscription ended first


STATUS_WORDS = {
    LineStatus.PAID: "Paid",
    LineStatus.DECLINED: "Declined",
    LineStatus.PENDING: "Pending confirmation",
    LineStatus.NOT_CHARGED: "Not charged yet",
    LineStatus.VOID: "Void",
}


def decline_words(code: str | None) -> str:
    if not code:
        return "declined"
    return DECLINE_WORDS.get(code, code.replace("_", " "))


@dataclass(frozen=True, slots=True)
class Charged:
    """What was bought: the subscription's names, the kind of invoice and its period."""

    product: str
    plan: str
    invoice_kind: InvoiceKind
    period: Period

    @property
    def title(self) -> str:
        """'Larkspur 360 — 360 Annual, renewal'; the reader's dates follow it."""
        return f"{self.product} — {self.plan}, {self.invoice_kind.value}"


@dataclass(frozen=True, slots=True)
class StatementLine:
    kind: LineKind
    at: datetime
    invoice_number: int
    subscription_id: int
    charged: Charged
    amount: Money
    status: LineStatus
    reason: str | None = None  # in plain words, for a decline
    attempt_no: int = 0

    @property
    def status_text(self) -> str:
        words = STATUS_WORDS[self.status]
        return f"{words} ({self.reason})" if self.reason else words


@dataclass(frozen=True, slots=True)
class Receipt:
    number: int
    customer_name: str
    customer_email: str
    issued_at: datetime
    paid_at: datetime | None
    charged: Charged
    amount: Money
    status: LineStatus
    reason: str | None
    card: PaymentMethod | None
    payment_reference: str | None

    @property
    def paid(self) -> bool:
        return self.status is LineStatus.PAID

    @property
    def status_text(self) -> str:
        words = STATUS_WORDS[self.status]
        return f"{words} ({self.reason})" if self.reason else words


def _charged(invoice: Invoice, subscriptions: dict[int, Subscription]) -> Charged:
    subscription = subscriptions.get(invoice.subscription_id)
    product = subscription.product_name if subscription else "Subscription"
    plan = subscription.plan_name if subscription else f"no. {invoice.subscription_id}"
    return Charged(product, plan, invoice.kind, Period(invoice.period_start, invoice.period_end))


def _attempt_status(attempt: PaymentAttempt) -> tuple[LineStatus, str | None]:
    if attempt.status is AttemptStatus.SUCCEEDED:
        return LineStatus.PAID, None
    if attempt.status is AttemptStatus.DECLINED:
        return LineStatus.DECLINED, decline_words(attempt.decline_reason)
    return LineStatus.PENDING, None


def _invoice_status(invoice: Invoice) -> LineStatus:
    return {
        InvoiceStatus.PAID: LineStatus.PAID,
        InvoiceStatus.VOID: LineStatus.VOID,
        InvoiceStatus.OPEN: LineStatus.NOT_CHARGED,
    }[invoice.status]


def _lines(
    invoice: Invoice, attempts: list[PaymentAttempt], subscriptions: dict[int, Subscription]
) -> list[StatementLine]:
    charged = _charged(invoice, subscriptions)
    if not attempts:
        return [
            StatementLine(
                LineKind.CHARGE,
                invoice.paid_at or invoice.created_at,
                invoice.number,
                invoice.subscription_id,
                charged,
                invoice.amount,
                _invoice_status(invoice),
            )
        ]
    lines = []
    for attempt in attempts:
        status, reason = _attempt_status(attempt)
        lines.append(
            StatementLine(
                LineKind.CHARGE,
                attempt.created_at,
                invoice.number,
                invoice.subscription_id,
                charged,
                attempt.amount,
                status,
                reason,
                attempt.attempt_no,
            )
        )
    return lines


def statement(uow: UnitOfWork, account_id: int) -> list[StatementLine]:
    """Every charge on the account, newest first."""
    with uow.read():
        ledger = uow.billing.statement(account_id)
        subscriptions = {s.id: s for s in uow.subscriptions.for_account(account_id)}
    lines = [
        line for invoice, attempts in ledger for line in _lines(invoice, attempts, subscriptions)
    ]
    lines.sort(key=lambda line: (line.at, line.invoice_number, line.attempt_no), reverse=True)
    return lines


def _receipt_status(
    invoice: Invoice, attempts: list[PaymentAttempt]
) -> tuple[LineStatus, str | None, PaymentAttempt | None]:
    """The invoice's standing and the attempt that decided it (the paying one, else the
    latest)."""
    paying = next((a for a in attempts if a.status is AttemptStatus.SUCCEEDED), None)
    if paying is not None:
        return LineStatus.PAID, None, paying
    latest = attempts[-1] if attempts else None
    if invoice.status is not InvoiceStatus.OPEN or latest is None:
        return _invoice_status(invoice), None, latest
    status, reason = _attempt_status(latest)
    return status, reason, latest


def receipt(uow: UnitOfWork, account_id: int, invoice_number: int) -> Receipt:
    """One invoice of this account as a receipt. Someone else's number and a number that
    does not exist are the same NotFound."""
    with uow.read():
        account = uow.accounts.get(account_id)
        found = next(
            (
                (invoice, attempts)
                for invoice, attempts in uow.billing.statement(account_id)
                if invoice.number == invoice_number
            ),
            None,
        )
        if account is None or found is None:
            raise NotFound(NO_SUCH_RECEIPT)
        subscriptions = {s.id: s for s in uow.subscriptions.for_account(account_id)}
        cards = {id_: card for id_, card, _ in uow.payment_methods.for_account(account_id)}
    invoice, attempts = found
    status, reason, deciding = _receipt_status(invoice, attempts)
    card_id = deciding.payment_method_id if deciding else None
    return Receipt(
        number=invoice.number,
        customer_name=account.name,
        customer_email=account.email,
        issued_at=invoice.created_at,
        paid_at=invoice.paid_at if status is LineStatus.PAID else None,
        charged=_charged(invoice, subscriptions),
        amount=invoice.amount,
        status=status,
        reason=reason,
        card=cards.get(card_id) if card_id is not None else None,
        payment_reference=deciding.gateway_ref if status is LineStatus.PAID and deciding else None,
    )
