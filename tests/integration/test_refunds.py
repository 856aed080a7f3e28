"""Refund mechanics against real databases: request, send, settle, never twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from fairsub.adapters.db.tables import subscriptions
from fairsub.bootstrap import Container
from fairsub.domain.errors import NotAllowed
from fairsub.domain.money import Money
from fairsub.domain.refunding import Refund, RefundKind, RefundStatus
from fairsub.services import billing, refunds
from tests.builders import seeded
from tests.fakes import FakeClock, FakeGateway


def renewed_charge(container: Container, clock: FakeClock) -> refunds.PaidCharge:
    """Renew Alex's monthly plan once and return that charge."""
    data = seeded(container)
    with container.engine.begin() as connection:
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id != data.monthly.id)
            .values(auto_renew=False, status="canceled")
        )
    clock.set(data.monthly.period.end + timedelta(minutes=1))
    assert billing.renew_due(container.uows, container.gateway, clock).charged == 1
    with container.uows().read() as uow:
        (charge, *_) = refunds.paid_charges(uow, data.alex.id, data.monthly.id)
    return charge


def request(container: Container, charge: refunds.PaidCharge, amount: Money):  # type: ignore[no-untyped-def]
    with container.uows().write() as uow:
        refund = refunds.request(
            uow,
            charge,
            amount,
            kind=RefundKind.CASE,
            reason="test",
            reference=None,
            actor="support:1",
            channel="console",
            now=container.clock.now(),
        )
        uow.commit()
    return refund


def send(container: Container, clock: FakeClock, refund_id: int) -> Refund:
    arrival = container.refund_policy().arrival
    return refunds.send(container.uows, container.gateway, clock, refund_id, arrival=arrival)


def janitor(container: Container, clock: FakeClock) -> int:
    arrival = container.refund_policy().arrival
    return refunds.settle(container.uows, container.gateway, clock, arrival=arrival)


def test_a_refund_goes_back_to_the_charge_once_and_says_when_it_arrives(
    container: Container, clock: FakeClock
) -> None:
    charge = renewed_charge(container, clock)
    refund = request(container, charge, charge.attempt.amount)

    sent = send(container, clock, refund.id)
    again = send(container, clock, refund.id)

    assert sent.status is RefundStatus.SENT
    assert again.status is RefundStatus.SENT
    gateway = container.gateway
    assert isinstance(gateway, FakeGateway)
    assert len(gateway.refunds) == 1
    assert sent.arrives_from is not None and sent.arrives_by is not None
    assert timedelta(days=5) <= sent.arrives_from - clock.now() <= sent.arrives_by - clock.now()
    clock.set(sent.arrives_by)
    janitor(container, clock)
    with container.uows().read() as uow:
        assert uow.refunds.get(refund.id).status is RefundStatus.SETTLED  # type: ignore[union-attr]


def test_a_charge_cannot_be_refunded_beyond_what_was_paid(
    container: Container, clock: FakeClock
) -> None:
    charge = renewed_charge(container, clock)
    half = Money(charge.attempt.amount.amount_minor // 2, charge.attempt.amount.currency)
    request(container, charge, half)
    rest = charge.attempt.amount - half
    with pytest.raises(NotAllowed, match="can still be refunded"):
        request(container, charge, rest + Money(1, rest.currency))
    request(container, charge, rest)
    with pytest.raises(NotAllowed):
        request(container, charge, Money(1, rest.currency))


def test_a_refund_left_by_a_crash_is_sent_by_the_janitor_under_the_same_key(
    container: Container, clock: FakeClock
) -> None:
    charge = renewed_charge(container, clock)
    refund = request(container, charge, charge.attempt.amount)  # ...and the process died

    clock.advance(minutes=3)
    assert janitor(container, clock) == 1

    with container.uows().read() as uow:
        assert uow.refunds.get(refund.id).status is RefundStatus.SENT  # type: ignore[union-attr]
    assert janitor(container, clock) == 0
