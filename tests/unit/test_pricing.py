"""C23: no higher charge without a notice at least 7 days before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.domain.pricing import (
    MAX_PRICE_MINOR,
    NoticedChange,
    PriceChange,
    notice_key,
    notice_raises_price,
    notice_send_window,
    notice_window,
    price_after_changes,
    price_for_renewal,
    require_notice_period,
    require_valid_price,
)

T0 = datetime(2027, 3, 1, 12, tzinfo=UTC)
OLD = Money(449, "GBP")
SECONDS = 86400


def change(
    amount: int, effective_from: datetime, change_id: int = 1, currency: str = "GBP"
) -> PriceChange:
    price = Money(amount, currency)
    return PriceChange(change_id, "antivirus-monthly", "GB", price, effective_from, T0)


moments = st.integers(-60 * SECONDS, 60 * SECONDS).map(lambda s: T0 + timedelta(seconds=s))
maybe_moments = st.none() | moments


@given(st.integers(0, 2000), moments, maybe_moments, moments)
def test_c23_a_renewal_never_costs_more_without_a_notice_7_days_before_it(
    amount: int, effective_from: datetime, notice_sent_at: datetime | None, renewal_at: datetime
) -> None:
    new = change(amount, effective_from)

    price = price_for_renewal(OLD, new, notice_sent_at, renewal_at)

    assert price in (OLD, new.new_price)
    if price > OLD:
        assert renewal_at >= effective_from
        assert notice_sent_at is not None
        assert notice_sent_at <= renewal_at - timedelta(days=7)


@given(moments, moments)
def test_c23_a_noticed_increase_applies_from_its_effective_date(
    effective_from: datetime, renewal_at: datetime
) -> None:
    notice = renewal_at - timedelta(days=10)
    price = price_for_renewal(OLD, change(499, effective_from), notice, renewal_at)
    assert price == (Money(499, "GBP") if renewal_at >= effective_from else OLD)


def test_c23_a_notice_6_days_before_the_renewal_is_too_late_7_days_is_enough() -> None:
    new = change(499, T0)
    renewal = T0 + timedelta(days=20)
    assert price_for_renewal(OLD, new, renewal - timedelta(days=6, hours=23), renewal) == OLD
    assert price_for_renewal(OLD, new, renewal - timedelta(days=7), renewal) == new.new_price
    assert price_for_renewal(OLD, new, None, renewal) == OLD


def test_a_price_cut_needs_no_notice() -> None:
    assert price_for_renewal(OLD, change(399, T0), None, T0) == Money(399, "GBP")


def test_a_change_in_another_currency_does_not_apply() -> None:
    assert price_for_renewal(OLD, change(9, T0, currency="EUR"), T0 - timedelta(days=9), T0) == OLD


def test_no_change_keeps_the_old_price() -> None:
    assert price_for_renewal(OLD, None, None, T0) == OLD


def test_stacked_changes_keep_the_last_price_the_subscriber_was_told_of() -> None:
    renewal = T0 + timedelta(days=60)
    told = NoticedChange(change(499, T0, change_id=1), T0 - timedelta(days=8))
    untold = NoticedChange(change(599, T0 + timedelta(days=30), change_id=2), None)
    cut = NoticedChange(change(479, T0 + timedelta(days=40), change_id=3), None)

    assert price_after_changes(OLD, [untold, told], renewal) == Money(499, "GBP")
    assert price_after_changes(OLD, [cut, untold, told], renewal) == Money(479, "GBP")
    assert price_after_changes(OLD, [told], T0 - timedelta(seconds=1)) == OLD


def test_a_notice_is_owed_only_when_it_would_raise_the_price() -> None:
    renewal = T0 + timedelta(days=20)
    now = renewal - timedelta(days=20)
    rise = change(499, T0)
    assert notice_raises_price(OLD, [], rise, renewal, now) == (OLD, Money(499, "GBP"))
    later_cut = NoticedChange(change(400, T0 + timedelta(days=1), change_id=2), None)
    old, new = notice_raises_price(OLD, [later_cut], rise, renewal, now)
    assert not old < new  # the cut wins anyway: nothing to announce


def test_c23_notice_windows_are_7_to_30_days_and_the_worker_stays_a_day_inside() -> None:
    renewal = T0 + timedelta(days=40)
    assert notice_window(renewal) == (renewal - timedelta(days=30), renewal - timedelta(days=7))
    assert notice_send_window(T0) == (T0 + timedelta(days=8), T0 + timedelta(days=30))


def test_c23_a_price_change_must_be_announced_at_least_7_days_ahead() -> None:
    with pytest.raises(InvalidInput):
        require_notice_period(T0, T0 + timedelta(days=7) - timedelta(seconds=1))
    require_notice_period(T0, T0 + timedelta(days=7))


def test_a_new_price_is_zero_or_more_and_fits_the_ledger() -> None:
    require_valid_price(Money(0, "GBP"))
    require_valid_price(Money(MAX_PRICE_MINOR, "JPY"))
    with pytest.raises(InvalidInput, match="cannot be negative"):
        require_valid_price(Money(-5, "GBP"))
    with pytest.raises(InvalidInput, match="at most"):
        require_valid_price(Money(MAX_PRICE_MINOR + 1, "GBP"))


def test_notice_keys_name_the_change_and_the_subscription() -> None:
    assert notice_key(3, 12) == "price-notice:3:12"
    assert notice_key(31, 2) != notice_key(3, 12)
