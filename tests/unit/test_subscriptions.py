"""The subscription lifecycle: one transition table, auto-renew off and back on, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fairsub.domain.errors import InvalidTransition, NotAllowed
from fairsub.domain.events import AutoRenewTurnedOff, AutoRenewTurnedOn, SubscriptionExpired
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term
from fairsub.domain.subscriptions import (
    ENTITLED,
    TRANSITIONS,
    Channel,
    PaymentMethod,
    Reseller,
    Status,
    Subscription,
)

STARTED = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)
PERIOD = Period.first(STARTED, Term.MONTH)  # ends 2025-02-28 09:30 UTC
DURING = STARTED + timedelta(days=10)
LAST_MOMENT = PERIOD.end - timedelta(microseconds=1)
PERIOD_END = PERIOD.end
LONG_AFTER = PERIOD.end + timedelta(days=90)
TERMINAL = (Status.EXPIRED, Status.REFUNDED)


def subscription(**overrides: Any) -> Subscription:
    fields: dict[str, Any] = {
        "id": 7,
        "account_id": 3,
        "product_name": "Larkspur Antivirus",
        "plan_name": "Antivirus Monthly",
        "term": Term.MONTH,
        "region": "US",
        "price": Money(499, "USD"),
        "status": Status.ACTIVE,
        "auto_renew": True,
        "period": PERIOD,
        "started_at": STARTED,
        "payment_method": PaymentMethod("visa", "4242"),
    }
    return Subscription(**(fields | overrides))


def canceled(**overrides: Any) -> Subscription:
    return subscription(**({"status": Status.CANCELED, "auto_renew": False} | overrides))


def through_reseller(**overrides: Any) -> Subscription:
    reseller = Reseller("Softmart", "SM-10042", "https://softmart.example/orders/SM-10042")
    return subscription(**({"reseller": reseller} | overrides))


# The transition table


def test_every_status_has_a_row_in_the_transition_table() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert all(targets <= set(Status) for targets in TRANSITIONS.values())


@pytest.mark.parametrize("status", TERMINAL)
def test_expired_and_refunded_are_terminal(status: Status) -> None:
    assert TRANSITIONS[status] == frozenset()
    assert status not in ENTITLED


@pytest.mark.parametrize("status", TERMINAL)
def test_nothing_moves_a_terminal_subscription(status: Status) -> None:
    sub = subscription(status=status, auto_renew=False)

    with pytest.raises(InvalidTransition):
        sub.expire(LONG_AFTER)
    with pytest.raises(InvalidTransition):
        sub.turn_on_auto_renew(DURING)
    assert sub.status is status
    assert sub.events == []


@pytest.mark.parametrize("status", TERMINAL)
def test_auto_renew_cannot_be_turned_off_on_a_subscription_that_has_ended(status: Status) -> None:
    sub = subscription(status=status, auto_renew=True)

    with pytest.raises(InvalidTransition, match="already ended"):
        sub.turn_off_auto_renew(DURING)
    assert sub.status is status
    assert sub.events == []


# Turning auto-renew off


@pytest.mark.parametrize("status", [Status.TRIALING, Status.ACTIVE, Status.PAST_DUE])
def test_turning_off_auto_renew_cancels_and_records_one_event(status: Status) -> None:
    sub = subscription(status=status)

    assert sub.turn_off_auto_renew(DURING) is True

    assert sub.status is Status.CANCELED
    assert sub.auto_renew is False
    assert sub.events == [AutoRenewTurnedOff(sub.id, DURING, ends_at=PERIOD.end)]


def test_turning_off_auto_renew_twice_changes_nothing_the_second_time() -> None:
    sub = subscription()

    assert sub.turn_off_auto_renew(DURING) is True
    assert sub.turn_off_auto_renew(DURING + timedelta(seconds=1)) is False

    assert sub.status is Status.CANCELED
    assert [type(e) for e in sub.events] == [AutoRenewTurnedOff]


def test_c10_turning_off_records_the_exact_end_of_service() -> None:
    sub = subscription()

    sub.turn_off_auto_renew(DURING)

    assert sub.ends_at == PERIOD.end
    (event,) = sub.events
    assert isinstance(event, AutoRenewTurnedOff)
    assert event.ends_at == datetime(2025, 2, 28, 9, 30, tzinfo=UTC)


def test_service_continues_until_the_paid_period_ends_after_turning_off() -> None:
    sub = subscription()
    sub.turn_off_auto_renew(DURING)

    assert sub.is_entitled(DURING)
    assert sub.is_entitled(LAST_MOMENT)
    assert not sub.is_entitled(PERIOD_END)
    assert sub.period == PERIOD


def test_auto_renew_can_be_turned_off_while_the_renewal_is_still_pending() -> None:
    sub = subscription()

    assert sub.turn_off_auto_renew(PERIOD_END) is True
    assert (sub.status, sub.auto_renew) == (Status.CANCELED, False)
    assert not sub.is_entitled(PERIOD_END)  # the paid period is over: nothing more to give


def test_c13_once_off_auto_renew_stays_off_until_customer_turns_it_on() -> None:
    sub = subscription()
    sub.turn_off_auto_renew(DURING)

    sub.expire(PERIOD_END + timedelta(minutes=1))

    assert sub.status is Status.EXPIRED
    assert sub.auto_renew is False
    assert not sub.is_entitled(LONG_AFTER)
    assert not sub.can_turn_auto_renew_on(LONG_AFTER)
    with pytest.raises(InvalidTransition):
        sub.turn_on_auto_renew(LONG_AFTER)
    assert [type(e) for e in sub.events] == [AutoRenewTurnedOff, SubscriptionExpired]


def test_c13_after_the_period_ends_a_canceled_subscription_cannot_be_turned_back_on() -> None:
    sub = canceled()

    assert not sub.can_turn_auto_renew_on(PERIOD_END)
    with pytest.raises(InvalidTransition, match="buy it again"):
        sub.turn_on_auto_renew(PERIOD_END)
    assert sub.auto_renew is False
    assert sub.status is Status.CANCELED


# Turning auto-renew back on


def test_turning_auto_renew_back_on_while_the_period_lasts_reactivates() -> None:
    sub = canceled()

    assert sub.can_turn_auto_renew_on(LAST_MOMENT)
    assert sub.turn_on_auto_renew(LAST_MOMENT) is True

    assert sub.status is Status.ACTIVE
    assert sub.auto_renew is True
    assert sub.events == [AutoRenewTurnedOn(sub.id, LAST_MOMENT, renews_at=PERIOD.end)]


def test_turning_auto_renew_on_twice_changes_nothing_the_second_time() -> None:
    sub = canceled()

    assert sub.turn_on_auto_renew(DURING) is True
    assert sub.turn_on_auto_renew(DURING) is False

    assert [type(e) for e in sub.events] == [AutoRenewTurnedOn]


def test_turning_on_during_a_trial_returns_to_the_trial() -> None:
    sub = canceled(trial_ends_at=DURING + timedelta(days=1))

    sub.turn_on_auto_renew(DURING)

    assert sub.status is Status.TRIALING


def test_turning_on_after_the_trial_ended_makes_it_active() -> None:
    sub = canceled(trial_ends_at=DURING)

    sub.turn_on_auto_renew(DURING)

    assert sub.status is Status.ACTIVE


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.CANCELED])
def test_auto_renew_is_turned_on_only_for_a_canceled_subscription(status: Status) -> None:
    sub = subscription(status=status, auto_renew=False)

    assert not sub.can_turn_auto_renew_on(DURING)
    with pytest.raises(InvalidTransition):
        sub.turn_on_auto_renew(DURING)
    assert sub.auto_renew is False
    assert sub.status is status


def test_off_then_on_then_off_again_records_each_change_once() -> None:
    sub = subscription(status=Status.TRIALING, trial_ends_at=LONG_AFTER)

    sub.turn_off_auto_renew(DURING)
    sub.turn_on_auto_renew(DURING + timedelta(hours=1))
    sub.turn_off_auto_renew(DURING + timedelta(hours=2))

    assert sub.status is Status.CANCELED
    assert [type(e) for e in sub.events] == [
        AutoRenewTurnedOff,
        AutoRenewTurnedOn,
        AutoRenewTurnedOff,
    ]


# Reseller subscriptions


def test_a_reseller_subscription_reports_its_channel() -> None:
    assert through_reseller().channel is Channel.RESELLER
    assert subscription().channel is Channel.DIRECT


def test_a_reseller_subscription_refuses_turning_auto_renew_off() -> None:
    sub = through_reseller()

    with pytest.raises(NotAllowed, match=r"Softmart.*SM-10042"):
        sub.turn_off_auto_renew(DURING)
    assert sub.auto_renew is True
    assert sub.status is Status.ACTIVE
    assert sub.events == []


def test_a_reseller_subscription_refuses_turning_auto_renew_on() -> None:
    sub = through_reseller(status=Status.CANCELED, auto_renew=False)

    assert not sub.can_turn_auto_renew_on(DURING)
    with pytest.raises(NotAllowed, match="Softmart"):
        sub.turn_on_auto_renew(DURING)
    assert sub.auto_renew is False
    assert sub.events == []


# Expiry


@pytest.mark.parametrize("now", [DURING, LAST_MOMENT], ids=["during", "last-moment"])
def test_a_subscription_does_not_expire_before_its_period_ends(now: datetime) -> None:
    sub = canceled()

    with pytest.raises(InvalidTransition, match="not ended"):
        sub.expire(now)
    assert sub.status is Status.CANCELED
    assert sub.events == []


@pytest.mark.parametrize("status", [Status.CANCELED, Status.PAST_DUE])
def test_a_subscription_expires_once_its_period_is_over(status: Status) -> None:
    sub = subscription(status=status, auto_renew=status is not Status.CANCELED)

    sub.expire(PERIOD_END)

    assert sub.status is Status.EXPIRED
    assert sub.events == [SubscriptionExpired(sub.id, PERIOD_END)]
    assert not sub.is_entitled(PERIOD_END)


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.TRIALING])
def test_an_auto_renewing_subscription_renews_rather_than_expires(status: Status) -> None:
    sub = subscription(status=status)

    with pytest.raises(InvalidTransition):
        sub.expire(LONG_AFTER)
    assert sub.status is status


@pytest.mark.parametrize("status", sorted(ENTITLED))
def test_without_auto_renew_the_service_lasts_only_the_paid_period(status: Status) -> None:
    sub = subscription(status=status, auto_renew=False)

    assert sub.is_entitled(STARTED)
    assert sub.is_entitled(LAST_MOMENT)
    assert not sub.is_entitled(PERIOD_END)


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.TRIALING, Status.PAST_DUE])
def test_service_continues_past_the_period_while_its_renewal_is_pending(status: Status) -> None:
    sub = subscription(status=status, auto_renew=True)

    assert sub.is_entitled(PERIOD_END)
