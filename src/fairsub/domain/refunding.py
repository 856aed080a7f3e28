"""Refunds as records: money on its way back, and when it should arrive.

A refund is written (status requested) before the gateway is asked, under an
idempotency key derived from the charge it returns, exactly like a charge attempt; a
lost answer is settled by asking again with the same key, so no refund is ever paid
twice. Refunds only ever go back to the payment method that was charged (C32), and
how long they take to arrive depends on its kind (ArrivalWindows, from the refund policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.domain.subscriptions import PaymentMethodKind


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # committed; the gateway has not confirmed it yet
    SENT = "sent"  # the gateway accepted it; the money is on its way
    SETTLED = "settled"  # the arrival window has passed: it should be in the account
    FAILED = "failed"  # the gateway refused it; support must look
    UNKNOWN = "unknown"  # the gateway's answer was lost; the janitor asks again


class RefundKind(StrEnum):
    CANCEL_WITH_REFUND = "cancel_with_refund"
    WITHDRAWAL = "withdrawal"
    CASE = "case"
    CHARGED_AFTER_TURN_OFF = "charged_after_turn_off"


OPEN = frozenset({RefundStatus.REQUESTED, RefundStatus.UNKNOWN})
COUNTS = frozenset(
    {RefundStatus.REQUESTED, RefundStatus.SENT, RefundStatus.SETTLED, RefundStatus.UNKNOWN}
)  # everything but a failed refund has left or may


def refund_key(charge_attempt_id: int, sequence: int) -> str:
    return f"fs-refund-{charge_attempt_id}-{sequence}"


MAX_BUSINESS_DAYS = 260  # about a year: more is a typo, and each day is a step to count


def add_business_days(start: datetime, days: int) -> datetime:
    """`days` weekdays after `start`, at the same time of day. Public holidays are not
    known here: the windows promised are wide enough to cover them."""
    moment = start
    added = 0
    while added < days:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            added += 1
    return moment


@dataclass(frozen=True, slots=True)
class ArrivalWindow:
    """When refunded money should reach the customer: between these many business days
    after the refund is sent (or, before it is, after it was requested)."""

    earliest_business_days: int
    latest_business_days: int

    def __post_init__(self) -> None:
        earliest, latest = self.earliest_business_days, self.latest_business_days
        if not 0 <= earliest <= latest <= MAX_BUSINESS_DAYS:
            raise InvalidInput(
                f"An arrival window is 0 to {MAX_BUSINESS_DAYS} business days, the earliest "
                f"no later than the latest (got {earliest} to {latest})."
            )

    @property
    def words(self) -> str:
        """'5 to 10', as in '5 to 10 business days'."""
        earliest, latest = self.earliest_business_days, self.latest_business_days
        return str(latest) if earliest == latest else f"{earliest} to {latest}"

    def for_refund(self, sent_at: datetime) -> tuple[datetime, datetime]:
        return (
            add_business_days(sent_at, self.earliest_business_days),
            add_business_days(sent_at, self.latest_business_days),
        )


@dataclass(frozen=True, slots=True)
class ArrivalWindows:
    """The arrival window of each kind of payment method a refund can go back to.

    `card` is 5 to 10 business days unless the operator says otherwise; a kind with no
    window of its own (`others`) takes the card's, and so does a charge whose payment
    method is not on record.
    """

    card: ArrivalWindow = ArrivalWindow(5, 10)
    others: Mapping[PaymentMethodKind, ArrivalWindow] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def __post_init__(self) -> None:
        if PaymentMethodKind.CARD in self.others:
            raise InvalidInput("The card's arrival window is `card`, not one of the others.")

    def for_kind(self, kind: PaymentMethodKind | None) -> ArrivalWindow:
        if kind is None:
            return self.card
        return self.others.get(kind, self.card)

    def by_kind(self) -> list[tuple[PaymentMethodKind, ArrivalWindow, bool]]:
        """Every kind with its window, and whether the window is its own (not the card's)."""
        return [
            (kind, self.for_kind(kind), kind is PaymentMethodKind.CARD or kind in self.others)
            for kind in PaymentMethodKind
        ]


@dataclass(frozen=True, slots=True)
class Refund:
    id: int
    account_id: int
    subscription_id: int
    invoice_id: int
    charge_attempt_id: int
    idempotency_key: str
    amount: Money
    kind: RefundKind
    reason: str
    status: RefundStatus
    requested_at: datetime
    reference: str | None = None
    sent_at: datetime | None = None
    settled_at: datetime | None = None
    arrives_from: datetime | None = None
    arrives_by: datetime | None = None
    gateway_ref: str | None = None
    failure_reason: str | None = None
