"""A charge case: a customer's "I don't recognise this charge", until it is resolved.

Most cases wait for a person. One kind cannot wait: a charge made after a committed
turn-off of auto-renew, which invariant 1 says never happens. `breached_turn_off` decides,
from the records alone, whether a charge is one of those; the service then refunds it in
full at once and raises an operator alert, whatever reason the customer picked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fairsub.domain.cancellations import Cancellation
from fairsub.domain.money import Money


class CaseReason(StrEnum):
    AFTER_CANCEL = "after_cancel"
    UNKNOWN_CHARGE = "unknown_charge"
    WRONG_AMOUNT = "wrong_amount"
    OTHER = "other"


# As the customer says it on the form, and as support reads it back.
REASON_WORDS: dict[CaseReason, str] = {
    CaseReason.AFTER_CANCEL: "I was charged after I turned off auto-renew or cancelled",
    CaseReason.UNKNOWN_CHARGE: "I don't know what this charge is",
    CaseReason.WRONG_AMOUNT: "The amount is wrong",
    CaseReason.OTHER: "Something else",
}


class CaseStatus(StrEnum):
    OPEN = "open"  # waiting for support
    REFUNDED = "refunded"  # the charge was refunded (by support, or automatically)
    REJECTED = "rejected"  # support found the charge correct and said why


@dataclass(frozen=True, slots=True)
class ChargeCase:
    id: int
    reference: str
    account_id: int
    charge_attempt_id: int
    reason: CaseReason
    note: str
    status: CaseStatus
    alert: bool
    opened_at: datetime
    refund_id: int | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status is CaseStatus.OPEN

    @property
    def reason_text(self) -> str:
        return REASON_WORDS[self.reason]


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """A case with the charge it is about and whose it is: what a reader needs to judge it."""

    case: ChargeCase
    customer_email: str
    product: str
    plan: str
    invoice_number: int
    subscription_id: int
    charged_at: datetime
    amount: Money


def breached_turn_off(
    *,
    subscription_id: int,
    period_start: datetime,
    charged_at: datetime,
    turn_offs: Iterable[Cancellation],
) -> Cancellation | None:
    """The committed turn-off this charge broke, or None if the charge was allowed.

    A charge breaks a turn-off when all of these hold:
    - the turn-off was received strictly before the charge attempt was created (it was
      committed first; equal instants cannot be ordered, so they are left to a person);
    - it was still in force when the charge was created: never reversed, or reversed only
      afterwards (turning auto-renew back on later does not make an earlier charge right;
      turning it back on before the charge does);
    - the charge is for a period starting at or after the turn-off's end date, a period
      the customer had declared they would not pay for.

    A turn-off that lost the race with a renewal already in flight is not breached by that
    renewal: its end date was moved to the end of the period being charged (and its
    declaration says so), so that period starts before the end date.
    """
    for turn_off in sorted(turn_offs, key=lambda c: c.received_at):
        if turn_off.subscription_id != subscription_id:
            continue
        committed_first = turn_off.received_at < charged_at
        in_force = turn_off.reversed_at is None or turn_off.reversed_at > charged_at
        if committed_first and in_force and period_start >= turn_off.ends_at:
            return turn_off
    return None
