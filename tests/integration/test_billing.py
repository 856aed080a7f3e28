"""The billing run against real databases: renewals, dunning, the janitor, the race."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from fairsub.adapters.db.tables import invoices, payment_attempts, subscriptions
from fairsub.bootstrap import Container
from fairsub.domain.periods import add_months
from fairsub.domain.subscriptions import Status
from fairsub.services import billing, billing_stages, reconcile
from fairsub.services import subscriptions as subs
from tests.builders import Demo, seeded, turn_off
from tests.fakes import FakeClock, FakeGateway, FakeMailer


def gateway_of(container: Container) -> FakeGateway:
    assert isinstance(container.gateway, FakeGateway)
    return container.gateway


def status(container: Container, data: Demo, which: str):  # type: ignore[no-untyped-def]
    sub, _ = subs.get_subscription(container.uows(), data.alex.id, getattr(data, which).id)
    return sub


def card(container: Container, subscription_id: int, token: str) -> None:
    """Give the subscription's card a behaviour of the fake gateway."""
    with container.engine.begin() as connection:
        method = connection.execute(
            select(subscriptions.c.payment_method_id).where(subscriptions.c.id == subscription_id)
        ).scalar_one()
        from fairsub.adapters.db.tables import payment_methods

        connection.execute(
            update(payment_methods).where(payment_methods.c.id == method).values(token=token)
        )


def only(container: Container, *keep: object) -> None:
    """Leave auto-renew on for these subscriptions only, so counts speak of them alone."""
    ids = [s.id for s in keep]  # type: ignore[attr-defined]
    with container.engine.begin() as connection:
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id.not_in(ids))
            .values(auto_renew=False, status="canceled")
        )


def rows(container: Container, table, **where: object) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with container.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def run(container: Container) -> billing.RunSummary:
    return billing.run(container.uows, container.gateway, container.clock)


def test_a_due_renewal_is_charged_once_and_the_period_moves_on(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    clock.set(data.monthly.period.end + timedelta(minutes=1))

    first = run(container)
    second = run(container)

    assert (first.charged, second.charged) == (1, 0)
    renewed = status(container, data, "monthly")
    assert renewed.status is Status.ACTIVE
    assert renewed.period.start == data.monthly.period.end
    assert rows(container, payment_attempts, subscription_id=data.monthly.id) == 1
    assert rows(container, invoices, status="paid") == first.charged
    assert len(gateway_of(container).charges) == first.charged


def test_one_run_renews_every_period_that_came_due_while_it_was_not_running(
    container: Container, clock: FakeClock
) -> None:
    # The worker was stopped (or the test clock jumped): three monthly renewals are due.
    # One run charges each period once, in order, and leaves the subscription current; it
    # used to stop after the first, leaving the rest to later runs.
    data = seeded(container)
    only(container, data.monthly)
    clock.set(add_months(data.monthly.period.end, 2) + timedelta(minutes=1))

    first = run(container)

    assert (first.charged, run(container).charged) == (3, 0)
    renewed = status(container, data, "monthly")
    assert renewed.period.start == add_months(data.monthly.period.end, 2)
    assert renewed.period.end > clock.now()
    assert rows(container, payment_attempts, subscription_id=data.monthly.id) == 3
    assert rows(container, invoices, subscription_id=data.monthly.id, status="paid") == 3


def test_c13_turned_off_subscription_is_never_charged_and_then_ends(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    turn_off(container, data.alex, data.monthly)
    clock.set(data.monthly.period.end + timedelta(days=40))

    summary = run(container)

    assert gateway_of(container).calls == 0
    assert rows(container, payment_attempts) == 0
    assert summary.expired >= 1
    ended = status(container, data, "monthly")
    assert (ended.status, ended.auto_renew) == (Status.EXPIRED, False)


def test_turn_off_that_loses_the_race_says_which_period_is_charged(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    clock.set(data.monthly.period.end + timedelta(minutes=1))
    work, _ = billing._claim(container.uows, clock, 10)  # the run has committed the charge
    assert len(work) == 1

    cancellation = turn_off(container, data.alex, data.monthly)
    outcomes = billing_stages.charge_all(container.gateway, work, 1)
    billing._record(container.uows, clock, work, outcomes, billing.DunningPolicy())

    assert "had already started" in cancellation.declaration
    after = status(container, data, "monthly")
    assert cancellation.ends_at == after.period.end  # the charged period is theirs
    assert (after.status, after.auto_renew) == (Status.CANCELED, False)
    clock.set(after.period.end + timedelta(minutes=1))
    assert run(container).charged == 0  # and nothing after it
    assert len(gateway_of(container).charges) == 1


def test_turn_off_that_loses_the_race_to_a_declined_charge_corrects_the_end_date(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    """C13: the confirmation promised the period being charged; the charge failed, so the
    service ends when the paid period did, and the customer hears so, same reference."""
    data = seeded(container)
    only(container, data.monthly)
    card(container, data.monthly.id, "tok_decline_1")
    paid_until = data.monthly.period.end
    clock.set(paid_until + timedelta(minutes=1))
    work, _ = billing._claim(container.uows, clock, 10)

    cancellation = turn_off(container, data.alex, data.monthly)
    assert cancellation.ends_at > paid_until  # what the customer was first told
    outcomes = billing_stages.charge_all(container.gateway, work, 1)
    summary = billing._record(container.uows, clock, work, outcomes, billing.DunningPolicy())

    assert summary.declined == 1
    with container.uows().read() as uow:
        corrected = uow.cancellations.by_reference(data.alex.id, cancellation.reference)
    assert corrected is not None and corrected.ends_at == paid_until
    assert rows(container, invoices, status="void") == 1
    assert run(container).expired >= 1  # ended now: the paid period is over
    assert status(container, data, "monthly").status is Status.EXPIRED
    container.relay.drain()
    (email,) = [m for m in mailer.sent if m.subject.startswith("Nothing charged")]
    assert cancellation.reference in email.subject and cancellation.reference in email.text
    assert "you were charged nothing" in email.text


def test_decline_makes_it_past_due_retries_then_expires(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    card(container, data.monthly.id, "tok_decline_1")
    end = data.monthly.period.end
    clock.set(end + timedelta(minutes=1))

    assert run(container).declined == 1
    assert status(container, data, "monthly").status is Status.PAST_DUE
    for days in (1, 3, 7):
        clock.set(end + timedelta(days=days, minutes=1))
        assert run(container).declined == 1
    clock.set(end + timedelta(days=13))
    assert run(container).declined == 0  # no fifth try
    clock.set(end + timedelta(days=14, minutes=1))
    assert run(container).expired == 1
    assert status(container, data, "monthly").status is Status.EXPIRED
    assert rows(container, payment_attempts) == 4
    assert rows(container, invoices, status="void") == 1
    container.relay.drain()
    assert sum("did not go through" in m.subject for m in mailer.sent) == 4
    # And, once it has ended, the customer is told so, and that nothing is owed: once.
    (ended,) = [m for m in mailer.sent if "has ended" in m.subject]
    assert ended.subject == "Larkspur Antivirus has ended: we could not take the payment"
    assert "You owe us nothing" in ended.text and "£4.49" in ended.text
    assert run(container).expired == 0
    container.relay.drain()
    assert sum("has ended" in m.subject for m in mailer.sent) == 1


def test_a_subscription_ended_by_its_own_turn_off_gets_no_ending_email(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    turn_off(container, data.alex, data.monthly)
    clock.set(data.monthly.period.end + timedelta(minutes=1))

    assert run(container).expired >= 1
    assert status(container, data, "monthly").status is Status.EXPIRED
    container.relay.drain()
    assert not [m for m in mailer.sent if "has ended" in m.subject]


def test_a_declined_renewal_email_gives_the_reason_in_plain_words(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    """The customer read 'did not go through: card_declined.', the gateway's code; the
    email says it in the words the statement uses."""
    data = seeded(container)
    only(container, data.monthly)
    card(container, data.monthly.id, "tok_decline_1")
    clock.set(data.monthly.period.end + timedelta(minutes=1))

    assert run(container).declined == 1
    container.relay.drain()

    (email,) = [m for m in mailer.sent if "did not go through" in m.subject]
    assert "card_declined" not in email.text + email.html
    assert ": card declined." in email.text and ": card declined." in email.html


def test_timeout_after_charging_is_settled_by_asking_not_by_charging_again(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    card(container, data.monthly.id, "tok_timeout_1")
    clock.set(data.monthly.period.end + timedelta(minutes=1))

    first = billing.renew_due(container.uows, container.gateway, clock)
    assert first.unknown == 1
    assert status(container, data, "monthly").period == data.monthly.period  # not yet
    again = billing.renew_due(container.uows, container.gateway, clock)
    assert again.charged + again.unknown == 0  # an answer is missing: not claimed again

    settled = billing.settle_unknown(container.uows, container.gateway, clock)

    assert (settled.settled, settled.charged) == (1, 1)
    assert len(gateway_of(container).charges) == 1
    assert status(container, data, "monthly").period.start == data.monthly.period.end
    assert reconcile.reconcile(container.uows, container.gateway)[1] == []


def test_a_refused_api_key_records_no_outcome_and_the_same_key_is_charged_once_fixed(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    gateway = gateway_of(container)
    gateway.credentials_revoked = True
    clock.set(data.monthly.period.end + timedelta(minutes=1))

    first = run(container)

    assert first.credentials_refused == "The fake gateway refused the key; check FAIRSUB_FAKE_KEY."
    assert (first.charged, first.declined, first.unknown) == (0, 0, 1)  # no outcome recorded
    assert gateway.charges == {}
    with container.engine.connect() as connection:
        [(key, state, declined)] = connection.execute(
            select(
                payment_attempts.c.idempotency_key,
                payment_attempts.c.status,
                payment_attempts.c.decline_reason,
            )
        ).all()
    assert (state, declined) == ("unknown", None)
    assert status(container, data, "monthly").period == data.monthly.period

    still = run(container)  # still revoked: the janitor asks, is refused, and moves on
    assert (still.settled, still.charged, still.declined) == (0, 0, 0)
    assert still.credentials_refused is not None
    assert set(gateway.keys_refused) == {key}  # never a new key

    gateway.credentials_revoked = False  # the operator fixed the setting
    fixed = run(container)

    assert (fixed.settled, fixed.charged, fixed.credentials_refused) == (1, 1, None)
    assert list(gateway.charges) == [key]
    assert rows(container, payment_attempts) == 1
    assert status(container, data, "monthly").period.start == data.monthly.period.end


def test_a_worker_that_died_after_claiming_is_finished_by_the_janitor(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    clock.set(data.monthly.period.end + timedelta(minutes=1))
    billing._claim(container.uows, clock, 10)  # ...and then the worker was killed
    assert reconcile.reconcile(container.uows, container.gateway)[1] != []

    clock.advance(minutes=11)  # its lease runs out
    summary = run(container)

    assert summary.settled == 1
    assert summary.charged == 1
    assert len(gateway_of(container).charges) == 1
    assert reconcile.reconcile(container.uows, container.gateway)[1] == []


def test_reconcile_names_a_charge_we_never_recorded(container: Container) -> None:
    seeded(container)
    from fairsub.domain.money import Money

    container.gateway.charge("stray-key", Money(499, "GBP"), "tok_ok_1", "not ours")
    compared, differences = reconcile.reconcile(container.uows, container.gateway)
    assert compared == 1
    assert [d.idempotency_key for d in differences] == ["stray-key"]


@pytest.mark.parametrize("seconds", [0, 1])
def test_annual_plan_renews_on_its_anniversary(
    container: Container, clock: FakeClock, seconds: int
) -> None:
    data = seeded(container)
    only(container, data.annual)
    clock.set(data.annual.period.end - timedelta(seconds=1) + timedelta(seconds=seconds))
    assert run(container).charged == seconds
