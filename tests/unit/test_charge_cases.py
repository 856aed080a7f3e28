"""The invariant-1 check behind charge cases: which charges broke a committed turn-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fairsub.domain.cancellations import Cancellation
from fairsub.domain.charge_cases import breached_turn_off

RECEIVED = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
ENDS = datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
SUBSCRIPTION = 7


def turn_off(
    *, received: datetime = RECEIVED, ends: datetime = ENDS, reversed_at: datetime | None = None
) -> Cancellation:
    return Cancellation(
        reference="FS-TEST-0000",
        account_id=1,
        subscription_id=SUBSCRIPTION,
        received_at=received,
        ends_at=ends,
        channel="portal",
        actor="customer:1",
        declaration="Turn off auto-renew.",
        reversed_at=reversed_at,
    )


def breached(
    *turn_offs: Cancellation,
    period_start: datetime = ENDS,
    charged_at: datetime = ENDS + timedelta(minutes=1),
    subscription_id: int = SUBSCRIPTION,
) -> Cancellation | None:
    return breached_turn_off(
        subscription_id=subscription_id,
        period_start=period_start,
        charged_at=charged_at,
        turn_offs=turn_offs,
    )


def test_invariant_1_a_charge_for_a_period_after_a_committed_turn_off_breaks_it() -> None:
    off = turn_off()
    assert breached(off) == off


def test_a_turn_off_reversed_after_the_charge_was_still_in_force_when_it_was_made() -> None:
    off = turn_off(reversed_at=ENDS + timedelta(days=2))
    assert breached(off) == off


def test_a_turn_off_reversed_before_the_charge_allowed_it() -> None:
    assert breached(turn_off(reversed_at=ENDS - timedelta(days=1))) is None
    assert breached(turn_off(reversed_at=ENDS + timedelta(minutes=1))) is None  # same instant


def test_a_turn_off_that_lost_the_race_is_not_broken_by_the_charge_it_raced() -> None:
    # Received while the renewal for the period from ENDS was in flight: its end date was
    # moved to the end of that period, so the charged period starts before it.
    raced = turn_off(received=ENDS + timedelta(seconds=5), ends=ENDS + timedelta(days=31))
    assert breached(raced, charged_at=ENDS) is None
    assert breached(raced, charged_at=ENDS + timedelta(seconds=10)) is None


def test_a_charge_made_before_the_turn_off_or_at_the_same_instant_is_left_to_a_person() -> None:
    assert breached(turn_off(), charged_at=RECEIVED - timedelta(seconds=1)) is None
    assert breached(turn_off(), charged_at=RECEIVED) is None


def test_a_charge_for_the_period_the_customer_keeps_is_allowed() -> None:
    assert breached(turn_off(), period_start=ENDS - timedelta(days=31)) is None


def test_another_subscriptions_turn_off_does_not_count() -> None:
    assert breached(turn_off(), subscription_id=SUBSCRIPTION + 1) is None


def test_any_one_of_several_turn_offs_in_force_is_enough() -> None:
    reversed_early = turn_off(reversed_at=RECEIVED + timedelta(days=1))
    later = turn_off(received=RECEIVED + timedelta(days=2))
    assert breached(reversed_early, later) == later
