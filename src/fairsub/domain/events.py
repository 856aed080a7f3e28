"""Domain events: facts, named in the past tense, recorded by the aggregate that caused them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Event:
    subscription_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class AutoRenewTurnedOff(Event):
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class AutoRenewTurnedOn(Event):
    renews_at: datetime


@dataclass(frozen=True, slots=True)
class SubscriptionExpired(Event):
    pass


@dataclass(frozen=True, slots=True)
class SubscriptionRenewed(Event):
    paid_until: datetime


@dataclass(frozen=True, slots=True)
class RenewalFailed(Event):
    pass


@dataclass(frozen=True, slots=True)
class SubscriptionPurchased(Event):
    paid_until: datetime


@dataclass(frozen=True, slots=True)
class PurchaseDeclined(Event):
    pass


@dataclass(frozen=True, slots=True)
class SubscriptionRefunded(Event):
    pass
