"""Renewal and trial reminders and price-increase notices, on SQLite and PostgreSQL.

The worker step is run once a simulated day with the FakeClock; the billing run only on
the days a renewal falls due, which keeps two simulated years to a few seconds.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select, update

from fairsub.adapters.db.tables import audit_events, invoices, outbox, subscriptions
from fairsub.bootstrap import Container
from fairsub.domain.errors import InvalidInput, NotFound
from fairsub.domain.money import Money
from fairsub.domain.periods import add_months
from fairsub.domain.reminders import ANNUAL, MONTHLY, TRIAL, due_reminder
from fairsub.domain.subscriptions import Subscription
from fairsub.services import billing, pricing, reminders
from fairsub.services.ports import EmailMessage, NewSubscription
from tests.builders import seeded, turn_off
from tests.fakes import FakeClock, FakeMailer

DAY = timedelta(days=1)
PHONE = re.compile(r"\+?\d[\d\s().-]{7,}\d")
URL = re.compile(r"https?://\S+")


def remind(container: Container) -> int:
    return reminders.send_due_reminders(container.uows, container.clock)


def charge_due(container: Container) -> None:
    billing.run(container.uows, container.gateway, container.clock)


def sent(container: Container, prefix: str) -> list[tuple[str, datetime, dict]]:  # type: ignore[type-arg]
    """(dedupe key, queued at, payload) of the outbox rows whose key starts with prefix."""
    query = (
        select(outbox.c.dedupe_key, outbox.c.created_at, outbox.c.payload)
        .where(outbox.c.dedupe_key.startswith(prefix))
        .order_by(outbox.c.id)
    )
    with container.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


def invoiced(container: Container, subscription: Subscription) -> list[tuple[datetime, int]]:
    query = (
        select(invoices.c.period_start, invoices.c.amount_minor)
        .where(invoices.c.subscription_id == subscription.id)
        .order_by(invoices.c.period_start)
    )
    with container.engine.connect() as connection:
        return [(row.period_start, row.amount_minor) for row in connection.execute(query)]


def only(container: Container, *keep: Subscription) -> None:
    """Leave auto-renew on for these subscriptions only."""
    with container.engine.begin() as connection:
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id.not_in([s.id for s in keep]))
            .values(auto_renew=False, status="canceled")
        )


def trialing(
    container: Container, subscription: Subscription, days: int, now: datetime
) -> datetime:
    """Make the subscription a trial that started 5 days ago and lasts `days`."""
    started = now - 5 * DAY
    ends = started + timedelta(days=days)
    with container.engine.begin() as connection:
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription.id)
            .values(
                status="trialing",
                started_at=started,
                trial_ends_at=ends,
                period_start=started,
                period_end=ends,
            )
        )
    return ends


def days_before(occasion: datetime, moment: datetime) -> float:
    return (occasion - moment) / DAY


def assert_states_the_terms(message: EmailMessage, subscription_id: int, *facts: str) -> None:
    """C22 and C30: the facts, a turn-off link, who sends it, and no phone number."""
    turn_off_link = f"http://127.0.0.1:8000/account/subscriptions/{subscription_id}/turn-off"
    for body in (message.text, message.html):
        for fact in (*facts, turn_off_link, "Larkspur Security"):
            assert fact in body, fact
        assert "sent by fairsub from" in body.lower()
        assert "no-reply@larkspur.example" in body
        assert not PHONE.search(URL.sub("", body)), body


def test_c20_annual_reminder_is_queued_30_days_before_renewal_and_only_once(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    renewal = data.annual.period.end
    key = f"reminder:{data.annual.id}:{renewal:%Y%m%d}"

    clock.set(renewal - 30 * DAY - timedelta(minutes=1))
    remind(container)
    assert sent(container, key) == []

    clock.set(renewal - 30 * DAY)
    assert remind(container) == 1
    assert remind(container) == 0  # a second run, the same day
    clock.advance(days=1)
    assert remind(container) == 0  # and the next day, still inside the window

    ((_, queued_at, payload),) = sent(container, key)
    assert days_before(renewal, queued_at) == 30
    assert payload["amount"] == "GBP 79.99"
    assert payload["frequency"] == "yearly"
    assert payload["renews_on"] == renewal.isoformat()


def test_c20_a_missed_day_is_caught_up_inside_the_window_and_never_after_it(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    erika_renews, alex_renews = data.erikas.period.end, data.annual.period.end
    assert alex_renews - erika_renews == 20 * DAY
    down = (alex_renews - 31 * DAY, alex_renews - 27 * DAY)

    clock.set(erika_renews - 26 * DAY + timedelta(hours=1))  # just after Erika's window
    while clock.now() < alex_renews:
        if not down[0] <= clock.now() < down[1]:
            remind(container)
        clock.advance(days=1)

    ((_, queued_at, _),) = sent(container, f"reminder:{data.annual.id}:")
    assert 26 <= days_before(alex_renews, queued_at) <= 27  # caught up after the outage
    assert sent(container, f"reminder:{data.erikas.id}:") == []  # too late: never sent


def test_c21_monthly_plan_two_years_of_daily_runs_send_a_reminder_every_six_months(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    monthly = data.monthly
    only(container, monthly)
    start, end = monthly.started_at, clock.now() + 2 * 365 * DAY
    next_charge = monthly.period.end
    day = 0
    while clock.now() < end:
        day += 1
        clock.advance(days=1)
        if clock.now() >= next_charge:
            charge_due(container)
            next_charge = add_months(next_charge, 1)
        if day % 7 == 0:
            continue  # one missed run a week: the window still catches it
        remind(container)

    sends = sent(container, f"reminder:{monthly.id}:")
    occasions = [add_months(start, 6 * j) for j in range(1, 5)]
    assert [key for key, _, _ in sends] == [f"reminder:{monthly.id}:{a:%Y%m%d}" for a in occasions]
    for (_, queued_at, payload), occasion in zip(sends, occasions, strict=True):
        assert 26 <= days_before(occasion, queued_at) <= 30
        next_charge_on = datetime.fromisoformat(payload["renews_on"])
        assert queued_at < next_charge_on <= add_months(queued_at, 1)
        assert payload["frequency"] == "monthly"
    for anniversary in (add_months(start, 12), add_months(start, 24)):
        assert sum(25 <= days_before(anniversary, at) <= 40 for _, at, _ in sends) == 1
    gaps = [later - earlier for (_, earlier, _), (_, later, _) in pairwise(sends)]
    assert all(177 * DAY <= gap <= 188 * DAY for gap in gaps)
    assert len(invoiced(container, monthly)) == 24  # it kept renewing all along


def test_c19_long_trial_is_reminded_4_to_7_days_before_it_ends_and_short_trial_never(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    long_ends = trialing(container, data.monthly, 45, clock.now())
    short_ends = trialing(container, data.annual, 31, clock.now())
    while clock.now() < long_ends:
        remind(container)
        clock.advance(days=1)

    ((key, queued_at, payload),) = sent(container, f"trial-reminder:{data.monthly.id}:")
    assert key == f"trial-reminder:{data.monthly.id}:{long_ends:%Y%m%d}"
    assert 4 <= days_before(long_ends, queued_at) <= 7
    assert payload["trial_ends_on"] == long_ends.isoformat()
    assert sent(container, f"trial-reminder:{data.annual.id}:") == []
    assert short_ends < long_ends
    for trial in (data.monthly, data.annual):  # a trial gets no renewal reminder besides
        assert sent(container, f"reminder:{trial.id}:") == []


def test_c22_renewal_and_trial_reminders_state_every_term_and_who_sends_them(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    data = seeded(container)
    trial_ends = trialing(container, data.monthly, 60, clock.now())
    clock.set(trial_ends - 7 * DAY)
    remind(container)
    clock.set(data.annual.period.end - 30 * DAY)
    remind(container)

    container.relay.drain()

    trial, renewal = mailer.sent
    assert trial.subject == "Your Larkspur Antivirus trial ends on 21 January 2027"
    assert_states_the_terms(
        trial, data.monthly.id, "Larkspur Antivirus", "Antivirus Monthly", "£4.49",
        "monthly", "21 January 2027",
    )  # fmt: skip
    assert renewal.subject == "Larkspur 360 renews on 7 November 2027 for £79.99"
    assert_states_the_terms(
        renewal, data.annual.id, "Larkspur 360", "360 Annual", "£79.99", "yearly",
        "7 November 2027",
    )  # fmt: skip


def test_no_reminder_for_a_turned_off_or_reseller_subscription(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    turn_off(container, data.alex, data.annual)

    for subscription in (data.annual, data.resold):
        clock.set(subscription.period.end - 28 * DAY)
        remind(container)
        assert sent(container, f"reminder:{subscription.id}:") == []
    assert sent(container, "reminder:") == []


def test_two_workers_at_once_queue_a_reminder_once(container: Container, clock: FakeClock) -> None:
    data = seeded(container)
    clock.set(data.annual.period.end - 28 * DAY)
    counts: list[int] = []
    workers = [threading.Thread(target=lambda: counts.append(remind(container))) for _ in "ab"]

    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert sorted(counts) == [0, 1]
    assert len(sent(container, f"reminder:{data.annual.id}:")) == 1


def test_c21_the_monthly_scan_finds_every_due_start_even_at_month_ends(
    container: Container, clock: FakeClock
) -> None:
    """The SQL prefilter (day and month of the start) never drops a reminder the domain
    owes, for starts on the 29th to the 31st whose half-anniversaries are clamped."""
    data = seeded(container)
    starts = [
        datetime(2024, 2, 29, 6, tzinfo=UTC),
        datetime(2025, 8, 30, 12, tzinfo=UTC),
        datetime(2025, 8, 31, 0, 15, tzinfo=UTC),
        datetime(2025, 12, 31, 23, 30, tzinfo=UTC),
        datetime(2026, 3, 31, 18, tzinfo=UTC),
        datetime(2026, 5, 31, tzinfo=UTC),
    ]
    with container.uows().write() as uow:
        for start in starts:
            uow.subscriptions.add(
                NewSubscription(
                    account_id=data.alex.id,
                    plan_code="antivirus-monthly",
                    region="GB",
                    status="active",
                    auto_renew=True,
                    price_minor=449,
                    currency="GBP",
                    started_at=start,
                    period_start=start,
                    period_end=datetime(2040, 1, 1, tzinfo=UTC),  # always renewing
                    payment_method_id=None,
                    reseller=None,
                )
            )
        uow.commit()
    with container.uows().read() as uow:
        subs = [s for s in uow.subscriptions.for_account(data.alex.id) if s.started_at in starts]
    owed: dict[int, int] = {s.id: 0 for s in subs}

    for step in range(400):  # daily, at an hour that wanders around the clock
        now = clock.now() + step * DAY + timedelta(hours=step * 7 % 24)
        with container.uows().read() as uow:
            found = uow.reminders.candidates(
                renewals=ANNUAL.occasions(now),
                trial_ends=TRIAL.occasions(now),
                half_anniversaries=MONTHLY.occasions(now),
                after_id=0,
                limit=1000,
            )
        due = {s.id for s in subs if due_reminder(s, now) is not None}
        assert due <= {s.id for s in found}, now
        for sub_id in due:
            owed[sub_id] += 1

    assert all(count >= 2 * 3 for count in owed.values())  # two windows of 4 days each


# --- C23: price increases --------------------------------------------------------------


def test_c23_a_price_change_is_announced_at_least_7_days_ahead_and_audited(
    container: Container, clock: FakeClock
) -> None:
    seeded(container)
    now, gbp = clock.now(), Money(499, "GBP")

    def announce(region: str, price: Money, days: float) -> object:
        return pricing.announce_price_change(
            container.uows, clock, "antivirus-monthly", region, price, now + timedelta(days=days)
        )

    with pytest.raises(InvalidInput):
        announce("GB", gbp, 6.9)
    with pytest.raises(NotFound):
        announce("XX", gbp, 10)
    with pytest.raises(InvalidInput):
        announce("GB", Money(499, "EUR"), 10)
    change = announce("GB", gbp, 7)
    assert announce("GB", gbp, 7) == change  # announcing again changes nothing
    with pytest.raises(InvalidInput):
        announce("GB", Money(549, "GBP"), 7)

    with container.engine.connect() as connection:
        actions = connection.execute(
            select(audit_events.c.action).where(audit_events.c.subject.startswith("price_change:"))
        ).all()
    assert [a for (a,) in actions] == ["cli:price:announced"]


def test_c23_monthly_subscriber_is_told_7_to_30_days_ahead_then_charged_the_new_price(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    renewal = data.monthly.period.end
    pricing.announce_price_change(
        container.uows, clock, "antivirus-monthly", "GB", Money(499, "GBP"), clock.now() + 7 * DAY
    )

    remind(container)
    container.relay.drain()
    clock.set(renewal + timedelta(minutes=1))
    charge_due(container)

    ((_, told_at, payload),) = sent(container, "price-notice:")
    assert 7 <= days_before(renewal, told_at) <= 30
    assert (payload["old_amount"], payload["new_amount"]) == ("GBP 4.49", "GBP 4.99")
    assert invoiced(container, data.monthly)[-1] == (renewal, 499)
    (notice,) = mailer.sent
    assert notice.subject == "Larkspur Antivirus: new price £4.99 from 24 December 2026"
    assert_states_the_terms(
        notice, data.monthly.id, "Antivirus Monthly", "£4.49", "£4.99", "monthly",
        "24 December 2026",
    )  # fmt: skip


def test_c23_a_renewal_too_soon_for_a_notice_is_charged_the_old_price_and_the_next_one_the_new(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    first = data.monthly.period.end
    second = add_months(first, 1)
    pricing.announce_price_change(
        container.uows, clock, "antivirus-monthly", "GB", Money(499, "GBP"), clock.now() + 7 * DAY
    )

    clock.set(first - 5 * DAY)  # the worker was down until too late to tell anyone in time
    remind(container)
    assert sent(container, "price-notice:") == []
    while clock.now() < second + DAY:
        clock.advance(days=1)
        charge_due(container)
        remind(container)

    ((_, told_at, _),) = sent(container, "price-notice:")
    assert 8 <= days_before(second, told_at) <= 30
    assert invoiced(container, data.monthly)[-2:] == [(first, 449), (second, 499)]


def test_c23_annual_subscriber_is_told_30_days_before_renewal_and_the_reminder_agrees(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.erikas)
    renewal = data.erikas.period.end
    pricing.announce_price_change(
        container.uows, clock, "antivirus-annual", "DE", Money(4499, "EUR"), clock.now() + 7 * DAY
    )

    remind(container)
    assert sent(container, "price-notice:") == []  # not eleven months ahead
    clock.set(renewal - 30 * DAY)
    assert remind(container) == 2
    clock.set(renewal + timedelta(minutes=1))
    charge_due(container)

    ((_, told_at, notice),) = sent(container, "price-notice:")
    ((_, _, reminder),) = sent(container, f"reminder:{data.erikas.id}:")
    assert days_before(renewal, told_at) == 30
    assert notice["new_amount"] == reminder["amount"] == "EUR 44.99"
    assert invoiced(container, data.erikas)[-1] == (renewal, 4499)
