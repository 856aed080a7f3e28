"""When refunded money should arrive, against SQLite and PostgreSQL: the window of the payment
method that was charged, as the operator's policy file configures it, promised before the
gateway answers and recorded when it does, on the statement and in the email."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from fairsub.adapters import display
from fairsub.adapters.db.tables import payment_attempts, payment_methods
from fairsub.bootstrap import Container
from fairsub.domain.refunding import ArrivalWindow, RefundStatus
from fairsub.domain.subscriptions import PaymentMethodKind
from fairsub.services import cancel_refund, cases, refunds, statements
from fairsub.services.statements import LineStatus
from tests.builders import Demo, seeded
from tests.conftest import make_container
from tests.fakes import FakeClock, FakeGateway, FakeMailer

DEMO_CATALOG = Path(__file__).resolve().parents[2] / "src/fairsub/data/demo-catalog.toml"
CARD_LINE = "card = { earliest = 5, latest = 10 }"
SEPA_LINE = "sepa_debit = { earliest = 2, latest = 5 }"
SEPA = ArrivalWindow(1, 3)  # what this operator's file says; the demo's is 2 to 5
CARD = ArrivalWindow(5, 10)


@pytest.fixture
def container(
    db_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> Iterator[Container]:
    """The demo catalog as the operator's policy file, with SEPA debits refunded in 1 to 3
    business days."""
    text = DEMO_CATALOG.read_text("utf-8")
    assert CARD_LINE in text and SEPA_LINE in text
    policy = tmp_path / "policy.toml"
    policy.write_text(text.replace(SEPA_LINE, "sepa_debit = { earliest = 1, latest = 3 }"))
    built = make_container(db_url, tmp_path, clock, mailer, refund_policy_file=policy)
    yield built
    built.close()


@pytest.fixture
def data(container: Container) -> Demo:
    return seeded(container, history=True)


def pays_by_sepa_debit(container: Container, subscription_id: int) -> None:
    """The payment method that paid this subscription's charges becomes a SEPA debit."""
    with container.engine.begin() as connection:
        methods = set(
            connection.execute(
                select(payment_attempts.c.payment_method_id).where(
                    payment_attempts.c.subscription_id == subscription_id
                )
            ).scalars()
        )
        assert len(methods) == 1 and None not in methods
        connection.execute(
            update(payment_methods)
            .where(payment_methods.c.id.in_(methods))
            .values(kind=PaymentMethodKind.SEPA_DEBIT.value)
        )


def london(moment: datetime) -> str:
    return display.local_date(moment, "Europe/London", "en_GB")


def bodies(mailer: FakeMailer, container: Container, reference: str) -> list[str]:
    container.relay.drain()
    (email,) = [m for m in mailer.sent if reference in m.text]
    return [read(email.text), email.html]


def read(text: str) -> str:
    """The plain text as one reads it: its line breaks (at 78 columns) as spaces."""
    return " ".join(text.split())


def test_cards_stored_through_the_gateway_are_cards_and_take_the_cards_window(
    container: Container, data: Demo
) -> None:
    with container.uows().read() as uow:
        methods = uow.payment_methods.for_account(data.alex.id)
    assert methods and {method.kind for _, method, _ in methods} == {PaymentMethodKind.CARD}

    offer = cancel_refund.refund_offer(
        container.uows(), container.refund_policy(), container.clock, data.alex.id, data.annual.id
    )

    assert offer is not None and offer.allowed and offer.window == CARD


def test_c31_c32_a_sepa_debit_refund_shows_its_configured_window_on_statement_and_email(
    container: Container, data: Demo, clock: FakeClock, mailer: FakeMailer
) -> None:
    pays_by_sepa_debit(container, data.annual.id)
    policy = container.refund_policy()
    assert policy.arrival.for_kind(PaymentMethodKind.SEPA_DEBIT) == SEPA
    gateway = container.gateway
    assert isinstance(gateway, FakeGateway)
    gateway.refunds_down = "down"  # so the refund waits, requested, for the janitor
    requested_at = clock.now()
    offer = cancel_refund.refund_offer(
        container.uows(), policy, clock, data.alex.id, data.annual.id
    )
    assert offer is not None and offer.window == SEPA

    done = cancel_refund.cancel_with_refund(
        container.uows,
        gateway,
        clock,
        policy,
        account_id=data.alex.id,
        subscription_id=data.annual.id,
        actor=f"customer:{data.alex.id}",
        channel="portal",
        shown_amount=offer.amount,
    )

    # Before the gateway has answered: promised by the debit's window, not the card's.
    earliest, latest = SEPA.for_refund(requested_at)
    assert (earliest, latest) != CARD.for_refund(requested_at)
    assert done.refund.status is RefundStatus.UNKNOWN and done.arrival == (earliest, latest)
    (line,) = [
        x
        for x in statements.statement(container.uows(), data.alex.id, arrival=policy.arrival)
        if x.is_refund
    ]
    assert line.status is LineStatus.REFUND_REQUESTED
    assert (line.arrives_from, line.arrives_by) == (earliest, latest)
    for body in bodies(mailer, container, done.cancellation.reference):
        assert f"{london(earliest)} and {london(latest)}" in body
        assert "take 1 to 3 business days" in body
        assert "5 to 10" not in body

    # The janitor sends it later: the window is recorded from then, by the same kind.
    gateway.refunds_down = None
    clock.advance(days=1, minutes=3)
    assert refunds.settle(container.uows, gateway, clock, arrival=policy.arrival) == 1
    sent_at = clock.now()
    (line,) = [
        x
        for x in statements.statement(container.uows(), data.alex.id, arrival=policy.arrival)
        if x.is_refund
    ]
    assert line.status is LineStatus.REFUND_SENT
    assert (line.arrives_from, line.arrives_by) == SEPA.for_refund(sent_at)
    receipt = statements.receipt(
        container.uows(), data.alex.id, line.invoice_number, arrival=policy.arrival
    )
    assert [(r.arrives_from, r.arrives_by) for r in receipt.refunds] == [SEPA.for_refund(sent_at)]


def test_c32_support_refunding_a_sepa_debit_emails_and_records_the_debits_window(
    container: Container, data: Demo, clock: FakeClock, mailer: FakeMailer
) -> None:
    pays_by_sepa_debit(container, data.annual.id)
    arrival = container.refund_policy().arrival
    with container.uows().read() as uow:
        (charge, *_) = refunds.paid_charges(uow, data.alex.id, data.annual.id)
    case = cases.open_case(
        container.uows,
        container.gateway,
        clock,
        account_id=data.alex.id,
        charge_attempt_id=charge.attempt.id,
        reason="wrong_amount",
        arrival=arrival,
    )
    clock.advance(hours=2)

    cases.resolve(
        container.uows,
        container.gateway,
        clock,
        case.id,
        refund=True,
        note="Refunded as asked.",
        actor="operator:test",
        arrival=arrival,
    )

    earliest, latest = SEPA.for_refund(clock.now())
    with container.uows().read() as uow:
        (refund,) = uow.refunds.for_charge(charge.attempt.id)
    assert refund.status is RefundStatus.SENT
    assert (refund.arrives_from, refund.arrives_by) == (earliest, latest)
    container.relay.drain()
    (email,) = [m for m in mailer.sent if m.subject.startswith(f"Case {case.reference}:")]
    for body in (read(email.text), email.html):
        assert f"{london(earliest)} and {london(latest)}" in body
