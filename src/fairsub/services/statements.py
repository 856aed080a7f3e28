"""The customer's billing history and receipts: every charge, in plain words (C31).

Read-only. A statement line is one payment attempt (what the gateway was asked, and what
it answered), or an invoice nothing was ever attempted for. A refund is a line of its own
kind (LineKind.REFUND): a negative amount against the receipt it returns, with its state
and when it should arrive (for one not sent yet, the arrival window of the payment method
that was charged, from the refund policy, counted from when it was requested); refunds
never exceed the charge (services.refunds.request).
Dates and money stay typed here: the portal formats them for the reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
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
from fairsub.domain.refunding import ArrivalWindow, ArrivalWindows, Refund, RefundStatus
from fairsub.domain.subscriptions import PaymentMethod, PaymentMethodKind, Subscription
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
    REFUND = "refund"  # money going back: a negative amount against a receipt


class LineStatus(StrEnum):
    PAID = "paid"
    DECLINED = "declined"
    PENDING = "pending"  # sent to the gateway; its answer is not recorded yet
    NOT_CHARGED = "not_charged"  # invoiced, nothing sent yet
    VOID = "void"  # never collected: the subscription ended first
    # Refund lines (LineKind.REFUND), from domain.refunding.RefundStatus in the reader's words.
    REFUND_REQUESTED = "refund_requested"  # requested, or the gateway's answer is awaited
    REFUND_SENT = "refund_sent"  # the gateway accepted it; the money is on its way
    REFUND_ARRIVED = "refund_arrived"  # its arrival window has passed
    REFUND_FAILED = "refund_failed"  # the gateway refused it; support looks into it


STATUS_WORDS = {
    LineStatus.PAID: "Paid",
    LineStatus.DECLINED: "Declined",
    LineStatus.PENDING: "Pending confirmation",
    LineStatus.NOT_CHARGED: "Not charged yet",
    LineStatus.VOID: "Void",
    LineStatus.REFUND_REQUESTED: "Requested",
    LineStatus.REFUND_SENT: "On its way",
    LineStatus.REFUND_ARRIVED: "Arrived",
    LineStatus.REFUND_FAILED: "Failed — we are looking into it",
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
    attempt_id: int | None = None  # the charge a customer can question (services.cases)
    # A refund line: when the money should reach the card (for one not yet sent, an
    # estimate from when it was requested), and the cancellation or case it belongs to.
    arrives_from: datetime | None = None
    arrives_by: datetime | None = None
    reference: str | None = None
    refunded_in_full: bool = False  # a paid charge all of which is back (or on its way)

    @property
    def is_refund(self) -> bool:
        return self.kind is LineKind.REFUND

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
    refunds: tuple[StatementLine, ...] = ()  # newest first

    @property
    def paid(self) -> bool:
        return self.status is LineStatus.PAID

    @property
    def status_text(self) -> str:
        return self.status_words()

    def status_words(self, money: Callable[[Money], str] = Money.plain) -> str:
        """In the reader's words, refunds included: a receipt refunded in full no longer
        just says "Paid", and one for nothing (a free trial's start) says so. `money`
        writes an amount refunded in part (pages pass the reader's format)."""
        if self.paid and self.amount.amount_minor == 0:
            return "No charge"
        words = STATUS_WORDS[self.status]
        if self.paid:
            back = sum(
                abs(r.amount.amount_minor)
                for r in self.refunds
                if r.status is not LineStatus.REFUND_FAILED
            )
            if back >= self.amount.amount_minor:
                return "Paid, then refunded in full"
            if back:
                return f"Paid, then {money(Money(back, self.amount.currency))} refunded"
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
                attempt.id,
            )
        )
    return lines


REFUND_STATUS = {
    RefundStatus.REQUESTED: LineStatus.REFUND_REQUESTED,
    RefundStatus.UNKNOWN: LineStatus.REFUND_REQUESTED,  # to the customer: still requested
    RefundStatus.SENT: LineStatus.REFUND_SENT,
    RefundStatus.SETTLED: LineStatus.REFUND_ARRIVED,
    RefundStatus.FAILED: LineStatus.REFUND_FAILED,
}


def _refund_line(
    refund: Refund, invoice: Invoice, charged: Charged, window: ArrivalWindow
) -> StatementLine:
    arrives_from, arrives_by = refund.arrives_from, refund.arrives_by
    if arrives_from is None or arrives_by is None:
        arrives_from, arrives_by = window.for_refund(refund.requested_at)
    return StatementLine(
        LineKind.REFUND,
        refund.requested_at,
        invoice.number,
        refund.subscription_id,
        charged,
        Money(-refund.amount.amount_minor, refund.amount.currency),
        REFUND_STATUS[refund.status],
        arrives_from=arrives_from,
        arrives_by=arrives_by,
        reference=refund.reference,
    )


def _windows(
    ledger: list[tuple[Invoice, list[PaymentAttempt]]],
    kinds: dict[int, PaymentMethodKind],
    arrival: ArrivalWindows,
) -> dict[int, ArrivalWindow]:
    """Each charge's arrival window: that of the payment method it was paid with."""
    return {
        attempt.id: arrival.for_kind(
            kinds.get(attempt.payment_method_id) if attempt.payment_method_id else None
        )
        for _, attempts in ledger
        for attempt in attempts
    }


def _refund_lines(
    refunds: list[Refund],
    invoices: dict[int, Invoice],
    subscriptions: dict[int, Subscription],
    windows: dict[int, ArrivalWindow],
    arrival: ArrivalWindows,
) -> list[StatementLine]:
    return [
        _refund_line(
            r,
            invoices[r.invoice_id],
            _charged(invoices[r.invoice_id], subscriptions),
            windows.get(r.charge_attempt_id, arrival.card),
        )
        for r in refunds
        if r.invoice_id in invoices
    ]


def _refunded(refunds: list[Refund]) -> dict[int, int]:
    """Minor units refunded (or on their way) against each charge attempt."""
    back: dict[int, int] = {}
    for refund in refunds:
        if refund.status is not RefundStatus.FAILED:
            key = refund.charge_attempt_id
            back[key] = back.get(key, 0) + refund.amount.amount_minor
    return back


def _newest_first(line: StatementLine) -> tuple[datetime, int, bool, int]:
    # At the same moment a refund comes after the charge it returns.
    return (line.at, line.invoice_number, line.is_refund, line.attempt_no)


def _kinds(uow: UnitOfWork, account_id: int) -> dict[int, PaymentMethodKind]:
    return {id_: method.kind for id_, method, _ in uow.payment_methods.for_account(account_id)}


def statement(uow: UnitOfWork, account_id: int, *, arrival: ArrivalWindows) -> list[StatementLine]:
    """Every charge and refund on the account, newest first. `arrival`: the refund
    policy's arrival windows, for refunds not sent yet."""
    with uow.read():
        ledger = uow.billing.statement(account_id)
        subscriptions = {s.id: s for s in uow.subscriptions.for_account(account_id)}
        refunds = uow.refunds.for_account(account_id)
        kinds = _kinds(uow, account_id) if refunds else {}
    lines = [
        line for invoice, attempts in ledger for line in _lines(invoice, attempts, subscriptions)
    ]
    back = _refunded(refunds)
    lines = [
        replace(line, refunded_in_full=True)
        if line.attempt_id is not None
        and line.status is LineStatus.PAID
        and 0 < line.amount.amount_minor <= back.get(line.attempt_id, 0)
        else line
        for line in lines
    ]
    invoices = {invoice.id: invoice for invoice, _ in ledger}
    windows = _windows(ledger, kinds, arrival)
    lines += _refund_lines(refunds, invoices, subscriptions, windows, arrival)
    lines.sort(key=_newest_first, reverse=True)
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


def receipt(
    uow: UnitOfWork, account_id: int, invoice_number: int, *, arrival: ArrivalWindows
) -> Receipt:
    """One invoice of this account as a receipt, with its refunds. Someone else's number
    and a number that does not exist are the same NotFound."""
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
        kinds = {id_: card.kind for id_, card in cards.items()}
        refunds = [r for r in uow.refunds.for_account(account_id) if r.invoice_id == found[0].id]
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
        refunds=tuple(
            _refund_lines(
                refunds,
                {invoice.id: invoice},
                subscriptions,
                _windows([found], kinds, arrival),
                arrival,
            )
        ),
    )
