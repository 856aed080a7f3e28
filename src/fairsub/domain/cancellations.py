"""A cancellation is the customer's proof: what they declared, when we received it,
when the service ends, and the reference number to quote."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Cancellation:
    reference: str
    account_id: int
    subscription_id: int
    received_at: datetime
    ends_at: datetime
    channel: str
    actor: str
    declaration: str
    reversed_at: datetime | None = None
