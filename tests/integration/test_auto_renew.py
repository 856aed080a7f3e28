"""Turning auto-renew off and on, against real SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, update

from fairsub.adapters.db.tables import audit_events, cancellations, outbox
from fairsub.bootstrap import Container
from fairsub.domain.errors import InvalidTransition, NotAllowed, NotFound
from fairsub.domain.references import is_valid_reference, new_reference
from fairsub.domain.subscriptions import Status
from fairsub.services import audit, subscriptions
from tests.builders import seeded, turn_off


def count(container: Container, table) -> int:  # type: ignore[no-untyped-def]
    with container.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_turn_off_commits_subscription_cancellation_audit_and_email_together(
    container: Container,
) -> None:
    data = seeded(container)
    audit_before, outbox_before = count(container, audit_events), count(container, outbox)

    cancellation = turn_off(container, data.alex, data.annual)

    assert is_valid_reference(cancellation.reference)
    assert cancellation.ends_at == data.annual.period.end
    assert cancellation.received_at == container.clock.now()
    sub, in_force = subscriptions.get_subscription(container.uows(), data.alex.id, data.annual.id)
    assert (sub.status, sub.auto_renew) == (Status.CANCELED, False)
    assert sub.is_entitled(container.clock.now())
    assert in_force == cancellation
    assert count(container, audit_events) == audit_before + 1
    assert count(container, outbox) == outbox_before + 1


def test_a_reference_drawn_twice_is_replaced_and_both_turn_offs_are_kept(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The insert itself refuses a reference already in use (no read goes first): the
    second turn-off gets a fresh reference, and the first keeps its own."""
    data = seeded(container)
    first = turn_off(container, data.alex, data.annual)
    fresh = new_reference()
    monkeypatch.setattr(subscriptions, "new_reference", iter([first.reference, fresh]).__next__)

    second = turn_off(container, data.alex, data.monthly)

    assert second.reference == fresh
    with container.engine.connect() as connection:
        kept = dict(
            connection.execute(
                select(cancellations.c.reference, cancellations.c.subscription_id)
            ).all()
        )
    assert kept == {first.reference: data.annual.id, fresh: data.monthly.id}


def test_double_submit_returns_the_same_reference_and_queues_one_email(
    container: Container,
) -> None:
    data = seeded(container)
    first = turn_off(container, data.alex, data.annual)
    container.clock.advance(seconds=3)
    second = turn_off(container, data.alex, data.annual)

    assert second.reference == first.reference
    assert count(container, cancellations) == 1
    with container.engine.connect() as connection:
        kinds = connection.execute(select(outbox.c.kind)).scalars().all()
    assert kinds.count("auto_renew_off") == 1


def test_concurrent_turn_offs_of_one_subscription_agree_on_one_reference(
    container: Container,
) -> None:
    data = seeded(container)
    references: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def click() -> None:
        barrier.wait()
        try:
            references.append(turn_off(container, data.alex, data.monthly).reference)
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(references) == 8 and len(set(references)) == 1
    assert count(container, cancellations) == 1


def test_another_customers_subscription_is_not_found_and_unchanged(container: Container) -> None:
    data = seeded(container)
    with pytest.raises(NotFound):
        turn_off(container, data.alex, data.erikas)
    with pytest.raises(NotFound):
        subscriptions.get_subscription(container.uows(), data.alex.id, data.erikas.id)
    sub, _ = subscriptions.get_subscription(container.uows(), data.erika.id, data.erikas.id)
    assert sub.auto_renew is True
    assert count(container, cancellations) == 0


def test_unknown_subscription_is_not_found(container: Container) -> None:
    data = seeded(container)
    with pytest.raises(NotFound):
        subscriptions.turn_off_auto_renew(
            container.uows(),
            container.clock,
            account=data.alex,
            subscription_id=999_999,
            actor="customer",
            channel="portal",
        )


def test_reseller_subscription_points_to_the_reseller_instead(container: Container) -> None:
    data = seeded(container)
    with pytest.raises(NotAllowed, match="Bluebird Software Store"):
        turn_off(container, data.alex, data.resold)
    assert count(container, cancellations) == 0


def test_c13_once_off_it_stays_off_until_the_customer_turns_it_on(container: Container) -> None:
    data = seeded(container)
    first = turn_off(container, data.alex, data.annual)

    subscriptions.turn_on_auto_renew(
        container.uows(),
        container.clock,
        account_id=data.alex.id,
        subscription_id=data.annual.id,
        actor=f"customer:{data.alex.id}",
        channel="portal",
    )
    sub, in_force = subscriptions.get_subscription(container.uows(), data.alex.id, data.annual.id)
    assert (sub.status, sub.auto_renew, in_force) == (Status.ACTIVE, True, None)

    container.clock.advance(minutes=5)
    second = turn_off(container, data.alex, data.annual)
    assert second.reference != first.reference
    assert (
        subscriptions.get_cancellation(container.uows(), data.alex.id, first.reference).reversed_at
        is not None
    )


def test_turn_on_is_refused_once_the_paid_period_is_over(container: Container) -> None:
    data = seeded(container)
    turn_off(container, data.alex, data.monthly)
    container.clock.set(data.monthly.period.end)
    with pytest.raises(InvalidTransition):
        subscriptions.turn_on_auto_renew(
            container.uows(),
            container.clock,
            account_id=data.alex.id,
            subscription_id=data.monthly.id,
            actor="customer",
            channel="portal",
        )


def test_a_failure_mid_use_case_leaves_nothing_half_written(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = seeded(container)
    audit_before = count(container, audit_events)

    def broken_enqueue(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("crash while queueing the email")

    monkeypatch.setattr(subscriptions, "enqueue", broken_enqueue)
    with pytest.raises(RuntimeError):
        turn_off(container, data.alex, data.annual)

    sub, in_force = subscriptions.get_subscription(container.uows(), data.alex.id, data.annual.id)
    assert (sub.auto_renew, in_force) == (True, None)
    assert count(container, cancellations) == 0
    assert count(container, audit_events) == audit_before


def test_audit_chain_verifies_and_names_the_first_tampered_entry(container: Container) -> None:
    data = seeded(container)
    turn_off(container, data.alex, data.annual)
    turn_off(container, data.alex, data.monthly)
    total, broken = audit.verify(container.uows())
    assert (total, broken) == (count(container, audit_events), None)

    with container.engine.begin() as connection:
        target = (
            connection.execute(
                select(audit_events.c.seq)
                .where(audit_events.c.action == "portal:subscription:auto_renew_off")
                .order_by(audit_events.c.seq)
            )
            .scalars()
            .first()
        )
        connection.execute(
            update(audit_events)
            .where(audit_events.c.seq == target)
            .values(after={"status": "active", "auto_renew": True})
        )
    assert audit.verify(container.uows())[1] == target
