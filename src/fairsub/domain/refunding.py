"""Refunds as records: money on its way back, and when it should arrive.

A refund is written (status requested) before the gateway is asked, under an
idempotency key derived from the charge it returns, exactly like a charge attempt; a
lost answer is settled by asking again with the same key, so no refund is ever paid
twice. Refunds only ever go back to the payment method that was charged (C32).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fairsub.domain.money import Money


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


def add_business_days(start: datetime, days: int) -> datetime:
    moment = start
    added = 0
    while added < days:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            added += 1
    return moment


@dataclass(frozen=True, slots=True)
class ArrivalWindow:
    """When refunded money should reach the customer, by payment method."""

    earliest_business_days: int = 5
    latest_business_days: int = 10

    def for_refund(self, sent_at: datetime) -> tuple[datetime, datetime]:
        return (
            add_business_days(sent_at, self.earliest_business_days),
            add_business_days(sent_at, self.latest_business_days),
        )


CARD_ARRIVAL = ArrivalWindow(5, 10)


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
