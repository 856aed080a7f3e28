"""When reminders are due (C19-C21): the schedule as pure date arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term, add_months
from fairsub.domain.reminders import (
    ANNUAL,
    MONTHLY,
    TRIAL,
    ReminderKind,
    due_reminder,
)
from fairsub.domain.subscriptions import Reseller, Status, Subscription

DAY = timedelta(days=1)

starts = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - bounds of a strategy that adds UTC
    max_value=datetime(2100, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def subscription(
    term: Term,
    started_at: datetime,
    period: Period,
    *,
    status: Status = Status.ACTIVE,
    auto_renew: bool = True,
    trial_ends_at: datetime | None = None,
    reseller: Reseller | None = None,
) -> Subscription:
    return Subscription(
        id=7,
        account_id=1,
        product_name="Larkspur Antivirus",
        plan_name="Antivirus",
        term=term,
        region="GB",
        price=Money(449, "GBP"),
        status=status,
        auto_renew=auto_renew,
        period=period,
        started_at=started_at,
        trial_ends_at=trial_ends_at,
        reseller=reseller,
    )


def annual(started_at: datetime, **kw: object) -> Subscription:
    return subscription(Term.YEAR, started_at, Period.first(started_at, Term.YEAR), **kw)  # type: ignore[arg-type]


def days_before(occasion: datetime, sent: datetime) -> float:
    return (occasion - sent) / DAY


SECONDS = 86400


@given(starts, st.integers(0, 60 * SECONDS))
def test_c20_annual_reminder_is_due_only_26_to_30_days_before_renewal(
    start: datetime, ahead: int
) -> None:
    sub = annual(start)
    now = sub.period.end - timedelta(seconds=ahead)

    reminder = due_reminder(sub, now)

    assert (reminder is not None) == (26 * SECONDS <= ahead <= 30 * SECONDS)
    if reminder is not None:
        assert reminder.kind is ReminderKind.RENEWAL
        assert reminder.charge_at == reminder.occasion == sub.period.end
        assert 25 <= days_before(sub.period.end, now) <= 40  # the legal window


def test_every_send_window_lies_inside_its_legal_window() -> None:
    legal = {"annual": (ANNUAL, 25, 40), "monthly": (MONTHLY, 25, 40), "trial": (TRIAL, 3, 21)}
    for window, low, high in legal.values():
        assert timedelta(days=low) < window.latest <= window.earliest <= timedelta(days=high)


def daily_sends(sub: Subscription, first: datetime, days: int, skip_every: int = 0) -> dict:  # type: ignore[type-arg]
    """Run the schedule once a day, as the worker would, keeping the first send per key."""
    sent: dict[str, tuple[datetime, datetime]] = {}
    for n in range(days):
        if skip_every and n % skip_every == skip_every - 1:
            continue  # the worker did not run that day
        now = first + n * DAY
        if now >= sub.period.end:  # the billing run renews it
            sub.period = Period(sub.period.end, add_months(sub.period.end, sub.term.months))
        reminder = due_reminder(sub, now)
        if reminder is not None:
            sent.setdefault(reminder.dedupe_key(sub.id), (now, reminder.occasion))
    return sent


@given(starts, st.integers(0, 23), st.sampled_from([0, 2, 3, 7]))
def test_c21_monthly_plan_gets_a_reminder_every_six_months_one_before_each_anniversary(
    start: datetime, run_hour: int, skip_every: int
) -> None:
    sub = subscription(Term.MONTH, start, Period.first(start, Term.MONTH))
    first = start.replace(hour=run_hour, minute=0, second=0, microsecond=0) + DAY

    sends = sorted(daily_sends(sub, first, 3 * 366, skip_every).values())

    occasions = [add_months(start, 6 * j) for j in range(1, 7)]  # all inside 3 years + 30 days
    assert [occasion for _, occasion in sends] == occasions
    for sent, occasion in sends:
        assert 26 <= days_before(occasion, sent) <= 30
    for year in (1, 2, 3):  # each anniversary: one reminder 25-40 days before it
        anniversary = add_months(start, 12 * year)
        assert sum(25 <= days_before(anniversary, sent) <= 40 for sent, _ in sends) == 1
    gaps = [later - earlier for (earlier, _), (later, _) in pairwise(sends)]
    assert all(timedelta(days=177) <= gap <= timedelta(days=188) for gap in gaps)
    assert sends[0][0] - start <= timedelta(days=184 - 26)


@given(starts, st.integers(32, 400), st.integers(0, 30 * SECONDS))
def test_c19_long_trial_gets_a_reminder_4_to_7_days_before_it_ends(
    start: datetime, trial_days: int, ahead: int
) -> None:
    ends = start + timedelta(days=trial_days)
    sub = subscription(
        Term.MONTH, start, Period(start, ends), status=Status.TRIALING, trial_ends_at=ends
    )
    now = ends - timedelta(seconds=ahead)

    reminder = due_reminder(sub, now)

    assert (reminder is not None) == (4 * SECONDS <= ahead <= 7 * SECONDS)
    if reminder is not None:
        assert reminder.kind is ReminderKind.TRIAL
        assert reminder.occasion == ends
        assert 3 <= days_before(ends, now) <= 21
        assert reminder.dedupe_key(7) == f"trial-reminder:7:{ends:%Y%m%d}"


@given(starts, st.integers(1, 31))
def test_c19_trials_of_31_days_or_less_get_no_reminder(start: datetime, trial_days: int) -> None:
    ends = start + timedelta(days=trial_days)
    sub = subscription(
        Term.YEAR, start, Period(start, ends), status=Status.TRIALING, trial_ends_at=ends
    )
    assert all(due_reminder(sub, start + n * DAY / 4) is None for n in range(trial_days * 4))


def test_no_reminder_when_auto_renew_is_off_sold_by_a_reseller_or_not_renewing() -> None:
    start = datetime(2026, 1, 10, 9, tzinfo=UTC)
    now = Period.first(start, Term.YEAR).end - timedelta(days=28)
    reseller = Reseller("Bluebird Software Store", "BB-1", "https://store.bluebird.example/")

    assert due_reminder(annual(start), now) is not None
    assert due_reminder(annual(start, auto_renew=False, status=Status.CANCELED), now) is None
    assert due_reminder(annual(start, auto_renew=False), now) is None
    assert due_reminder(annual(start, reseller=reseller), now) is None
    assert due_reminder(annual(start, status=Status.PAST_DUE), now) is None


def test_the_same_occasion_always_has_the_same_dedupe_key() -> None:
    start = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    sub = annual(start)
    end = sub.period.end
    keys = {
        r.dedupe_key(sub.id)
        for n in range(0, 5 * 24)
        if (r := due_reminder(sub, end - timedelta(days=30) + n * timedelta(hours=1)))
    }
    assert keys == {f"reminder:7:{end:%Y%m%d}"}
