"""The subscription aggregate and its lifecycle: one transition table, one way to move."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from fairsub.domain.errors import InvalidTransition, NotAllowed
from fairsub.domain.events import (
    AutoRenewTurnedOff,
    AutoRenewTurnedOn,
    Event,
    PurchaseDeclined,
    RenewalFailed,
    SubscriptionExpired,
    SubscriptionPurchased,
    SubscriptionRefunded,
    SubscriptionRenewed,
)
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term

_SECOND = timedelta(seconds=1)


class Status(StrEnum):
    INCOMPLETE = "incomplete"  # bought, first payment not yet through
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"  # auto-renew off; service continues until the period ends
    EXPIRED = "expired"
    REFUNDED = "refunded"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.INCOMPLETE: frozenset({Status.ACTIVE, Status.TRIALING, Status.CANCELED, Status.EXPIRED}),
    Status.TRIALING: frozenset({Status.ACTIVE, Status.PAST_DUE, Status.CANCELED}),
    Status.ACTIVE: frozenset({Status.ACTIVE, Status.PAST_DUE, Status.CANCELED, Status.REFUNDED}),
    Status.PAST_DUE: frozenset({Status.ACTIVE, Status.CANCELED, Status.EXPIRED}),
    Status.CANCELED: frozenset({Status.ACTIVE, Status.TRIALING, Status.EXPIRED, Status.REFUNDED}),
    Status.EXPIRED: frozenset(),
    Status.REFUNDED: frozenset(),
}

# Statuses in which the customer still has the service.
ENTITLED = frozenset({Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.CANCELED})


class Channel(StrEnum):
    DIRECT = "direct"
    RESELLER = "reseller"


@dataclass(frozen=True, slots=True)
class Reseller:
    name: str
    order_number: str
    cancel_url: str


class PaymentMethodKind(StrEnum):
    """How a customer pays. A refund goes back the same way (C32), so the kind also says
    how long the money takes to arrive (the refund policy's `[refunds.arrival]`)."""

    CARD = "card"
    SEPA_DEBIT = "sepa_debit"


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    brand: str
    last4: str
    kind: PaymentMethodKind = PaymentMethodKind.CARD


@dataclass(slots=True)
class Subscription:
    id: int
    account_id: int
    product_name: str
    plan_name: str
    term: Term
    region: str
    price: Money
    status: Status
    auto_renew: bool
    period: Period
    started_at: datetime
    trial_ends_at: datetime | None = None
    payment_method: PaymentMethod | None = None
    reseller: Reseller | None = None
    events: list[Event] = field(default_factory=list)

    @property
    def channel(self) -> Channel:
        return Channel.RESELLER if self.reseller else Channel.DIRECT

    @property
    def ends_at(self) -> datetime:
        """When the service ends if nothing renews it: the end of the paid period."""
        return self.period.end

    @property
    def never_started(self) -> bool:
        """A purchase whose first payment was declined: nothing was bought, and it ended
        where it began (first_payment_failed), before a single day of it was paid for."""
        return (
            self.status is Status.EXPIRED
            and self.period.start == self.started_at
            and self.period.end - self.period.start < timedelta(days=1)
        )

    def is_entitled(self, now: datetime) -> bool:
        """Whether the customer has the service now: within the paid period, or just past
        it while the renewal (or a dunning retry) that would continue it is pending."""
        if self.status not in ENTITLED:
            return False
        renewing = self.auto_renew and self.status is not Status.CANCELED
        return now < self.period.end or renewing

    def can_turn_auto_renew_on(self, now: datetime) -> bool:
        return (
            self.reseller is None
            and not self.auto_renew
            and self.status is Status.CANCELED
            and now < self.period.end
        )

    def _move(self, target: Status) -> None:
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition(
                f"A subscription that is {self.status.value} cannot become {target.value}."
            )
        self.status = target

    def _require_direct(self) -> None:
        if self.reseller is not None:
            raise NotAllowed(
                f"This subscription was bought through {self.reseller.name}; "
                f"auto-renew is managed there (order {self.reseller.order_number})."
            )

    def turn_off_auto_renew(self, now: datetime) -> bool:
        """Stop future charges; the service continues until the period ends.

        Returns False when auto-renew was already off, so a retried request is a no-op.
        """
        self._require_direct()
        if not self.auto_renew:
            return False
        if not self.is_entitled(now):
            raise InvalidTransition("This subscription has already ended.")
        self._move(Status.CANCELED)
        self.auto_renew = False
        self.events.append(AutoRenewTurnedOff(self.id, now, self.period.end))
        return True

    def turn_on_auto_renew(self, now: datetime) -> bool:
        """Undo a turn-off while the paid period lasts. Returns False if already on."""
        self._require_direct()
        if self.auto_renew:
            return False
        if not self.can_turn_auto_renew_on(now):
            raise InvalidTransition("This subscription has ended; buy it again to continue.")
        in_trial = self.trial_ends_at is not None and now < self.trial_ends_at
        self._move(Status.TRIALING if in_trial else Status.ACTIVE)
        self.auto_renew = True
        self.events.append(AutoRenewTurnedOn(self.id, now, self.period.end))
        return True

    def is_due(self, now: datetime) -> bool:
        """Whether the current period is over and auto-renew asks for the next one."""
        return (
            self.auto_renew
            and self.reseller is None
            and self.status in (Status.ACTIVE, Status.TRIALING)
            and now >= self.period.end
        )

    def renew(self, next_period: Period, now: datetime) -> None:
        """The next period was paid for. A turn-off that came after the charge had started
        keeps the subscription canceled: it simply ends a period later."""
        if next_period.start != self.period.end:
            raise InvalidTransition("A renewal continues from the end of the current period.")
        if self.status is not Status.CANCELED:
            self._move(Status.ACTIVE)
        self.period = next_period
        self.events.append(SubscriptionRenewed(self.id, now, next_period.end))

    def first_payment_succeeded(self, now: datetime) -> None:
        """The purchase was paid: the service starts. Bought as one term only (auto-renew
        off), it is canceled from the start: active until the period ends, never renewed."""
        if self.status is not Status.INCOMPLETE:
            raise InvalidTransition("Only a purchase waiting for its first payment can start.")
        self._move(Status.ACTIVE if self.auto_renew else Status.CANCELED)
        self.events.append(SubscriptionPurchased(self.id, now, self.period.end))

    def first_payment_failed(self, now: datetime) -> None:
        """The purchase's payment was declined: it never started, so it ends now."""
        if self.status is not Status.INCOMPLETE:
            raise InvalidTransition("Only a purchase waiting for its first payment can fail.")
        self._move(Status.EXPIRED)
        self.auto_renew = False
        # A period must not be empty; the answer can come in the same second as the order.
        self.period = Period(self.period.start, max(now, self.period.start + timedelta(seconds=1)))
        self.events.append(PurchaseDeclined(self.id, now))

    def renewal_failed(self, now: datetime) -> None:
        if self.status is not Status.PAST_DUE:
            self._move(Status.PAST_DUE)
            self.events.append(RenewalFailed(self.id, now))

    def refund(self, now: datetime) -> None:
        """End the service at once because its money goes back: no renewal, no access."""
        self._move(Status.REFUNDED)
        self.auto_renew = False
        if now < self.period.end:
            self.period = Period(self.period.start, max(now, self.period.start + _SECOND))
        self.events.append(SubscriptionRefunded(self.id, now))

    def expire(self, now: datetime) -> None:
        """End a subscription whose period is over and which will not renew."""
        if now < self.period.end:
            raise InvalidTransition("The paid period has not ended yet.")
        self._move(Status.EXPIRED)
        self.auto_renew = False
        self.events.append(SubscriptionExpired(self.id, now))
