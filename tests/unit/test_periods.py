"""Billing periods on calendar months, always counted from the anchor."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairsub.domain.errors import InvalidInput
from fairsub.domain.periods import Period, Term, add_months, require_utc


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def months_between(earlier: datetime, later: datetime) -> int:
    return (later.year - earlier.year) * 12 + (later.month - earlier.month)


anchors = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001 - bounds of a strategy that adds UTC
    max_value=datetime(2200, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
month_end_anchors = st.builds(
    lambda year, month, hour: at(year, month, days_in(year, month), hour),
    st.integers(1970, 2200),
    st.integers(1, 12),
    st.integers(0, 23),
)
terms = st.sampled_from(Term)


# add_months


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (at(2023, 1, 31), 1, at(2023, 2, 28)),
        (at(2024, 1, 31), 1, at(2024, 2, 29)),
        (at(2000, 1, 31), 1, at(2000, 2, 29)),
        (at(2100, 1, 31), 1, at(2100, 2, 28)),
        (at(2024, 3, 31), 1, at(2024, 4, 30)),
        (at(2024, 1, 31), 2, at(2024, 3, 31)),
        (at(2024, 2, 29), 12, at(2025, 2, 28)),
        (at(2024, 12, 15), 1, at(2025, 1, 15)),
        (at(2024, 11, 30), 14, at(2026, 1, 30)),
        (at(2024, 3, 31), -1, at(2024, 2, 29)),
        (at(2025, 1, 15), -13, at(2023, 12, 15)),
    ],
)
def test_add_months_keeps_the_day_clamped_to_the_last_day_of_the_month(
    start: datetime, months: int, expected: datetime
) -> None:
    assert add_months(start, months) == expected


@given(anchors, st.integers(min_value=-240, max_value=240))
def test_add_months_lands_in_the_right_month_on_the_same_or_last_day(
    moment: datetime, months: int
) -> None:
    moved = add_months(moment, months)

    assert months_between(moment, moved) == months
    assert moved.day == min(moment.day, days_in(moved.year, moved.month))
    assert moved.timetz() == moment.timetz()


@given(anchors, st.integers(-120, 120), st.integers(-120, 120))
def test_add_months_composes_when_no_clamping_happens(
    moment: datetime, first: int, second: int
) -> None:
    moment = moment.replace(day=min(moment.day, 28))
    assert add_months(add_months(moment, first), second) == add_months(moment, first + second)


# Period sequences


@given(anchors, terms, st.integers(min_value=0, max_value=150))
def test_periods_from_an_anchor_are_contiguous(anchor: datetime, term: Term, index: int) -> None:
    assert Period.nth(anchor, term, index).end == Period.nth(anchor, term, index + 1).start


@given(anchors, terms, st.integers(min_value=0, max_value=150))
def test_every_period_is_exactly_one_term_long_in_calendar_months(
    anchor: datetime, term: Term, index: int
) -> None:
    period = Period.nth(anchor, term, index)

    assert months_between(period.start, period.end) == term.months
    assert months_between(anchor, period.start) == term.months * index


@given(month_end_anchors, st.integers(min_value=0, max_value=150))
def test_periods_never_drift_after_a_short_month(anchor: datetime, index: int) -> None:
    start = Period.nth(anchor, Term.MONTH, index).start

    assert start.day == min(anchor.day, days_in(start.year, start.month))
    assert start.time() == anchor.time()


def test_an_anchor_on_the_31st_returns_to_the_31st_after_february() -> None:
    anchor = at(2025, 1, 31, 9, 30)

    starts = [Period.nth(anchor, Term.MONTH, i).start for i in range(4)]

    assert starts == [
        at(2025, 1, 31, 9, 30),
        at(2025, 2, 28, 9, 30),
        at(2025, 3, 31, 9, 30),
        at(2025, 4, 30, 9, 30),
    ]


def test_an_annual_period_started_on_a_leap_day_ends_on_the_28th() -> None:
    period = Period.first(at(2024, 2, 29), Term.YEAR)

    assert period == Period(at(2024, 2, 29), at(2025, 2, 28))
    assert Period.nth(at(2024, 2, 29), Term.YEAR, 4).start == at(2028, 2, 29)


def test_first_is_the_zeroth_period() -> None:
    anchor = at(2025, 5, 17, 8)
    assert Period.first(anchor, Term.MONTH) == Period.nth(anchor, Term.MONTH, 0)
    assert Period.first(anchor, Term.MONTH).start == anchor


def test_term_lengths() -> None:
    assert Term.MONTH.months == 1
    assert Term.YEAR.months == 12


# containing


@given(anchors, terms, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=365 * 60)))
def test_containing_finds_the_period_from_the_anchor_that_holds_the_moment(
    anchor: datetime, term: Term, elapsed: timedelta
) -> None:
    moment = anchor + elapsed

    period = Period.containing(anchor, term, moment)

    assert period.contains(moment)
    index = months_between(anchor, period.start) // term.months
    assert period == Period.nth(anchor, term, index)


def test_containing_the_anchor_is_the_first_period() -> None:
    anchor = at(2025, 1, 31)
    assert Period.containing(anchor, Term.MONTH, anchor) == Period.first(anchor, Term.MONTH)


def test_a_period_is_half_open_so_its_end_belongs_to_the_next() -> None:
    anchor = at(2025, 1, 31)
    first = Period.first(anchor, Term.MONTH)

    assert not first.contains(first.end)
    assert first.contains(first.end - timedelta(microseconds=1))
    assert Period.containing(anchor, Term.MONTH, first.end) == Period.nth(anchor, Term.MONTH, 1)


def test_a_moment_before_the_anchor_is_refused() -> None:
    with pytest.raises(InvalidInput):
        Period.containing(at(2025, 1, 31), Term.MONTH, at(2025, 1, 30))


def test_containing_refuses_a_moment_given_in_another_offset() -> None:
    anchor = at(2025, 1, 31)
    moment = datetime(2025, 3, 31, 1, 0, tzinfo=timezone(timedelta(hours=2)))  # 30 Mar 23:00 UTC

    with pytest.raises(InvalidInput):  # inside fairsub, time is UTC; convert at the edge
        Period.containing(anchor, Term.MONTH, moment)
    utc = moment.astimezone(UTC)
    assert Period.containing(anchor, Term.MONTH, utc) == Period(at(2025, 2, 28), at(2025, 3, 31))


# Only UTC inside


NAIVE = datetime(2025, 1, 31)  # noqa: DTZ001 - the point of the test
BERLIN = timezone(timedelta(hours=1))


def test_naive_or_non_utc_times_are_refused_by_require_utc() -> None:
    with pytest.raises(InvalidInput):
        require_utc(NAIVE)
    with pytest.raises(InvalidInput):
        require_utc(NAIVE.replace(tzinfo=BERLIN))
    assert require_utc(at(2025, 1, 31)) == at(2025, 1, 31)


@pytest.mark.parametrize("tz", [None, BERLIN], ids=["naive", "utc+1"])
def test_a_period_refuses_naive_or_non_utc_bounds(tz: timezone | None) -> None:
    start = NAIVE.replace(tzinfo=tz)
    with pytest.raises(InvalidInput):
        Period(start, start + timedelta(days=30))
    with pytest.raises(InvalidInput):
        Period.first(start, Term.MONTH)
    with pytest.raises(InvalidInput):
        Period(at(2025, 1, 31), (start + timedelta(days=30)))


def test_containing_refuses_a_naive_anchor() -> None:
    with pytest.raises(InvalidInput):
        Period.containing(NAIVE, Term.MONTH, NAIVE + timedelta(days=40))


def test_containing_refuses_a_naive_moment() -> None:
    with pytest.raises(InvalidInput):
        Period.containing(at(2025, 1, 31), Term.MONTH, NAIVE + timedelta(days=40))


@pytest.mark.parametrize("length", [timedelta(0), timedelta(seconds=-1)])
def test_a_period_must_end_after_it_starts(length: timedelta) -> None:
    start = at(2025, 1, 31)
    with pytest.raises(InvalidInput):
        Period(start, start + length)
