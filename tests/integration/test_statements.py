"""services.statements against SQLite and PostgreSQL: the ledger read back as lines and
receipts, each customer seeing only their own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from fairsub.adapters.db.tables import invoices, payment_methods, subscriptions
from fairsub.bootstrap import Container
from fairsub.domain.billing import InvoiceKind
from fairsub.domain.errors import NotFound
from fairsub.domain.money import Money
from fairsub.services import billing, statements
from fairsub.services import subscriptions as subs
from fairsub.services.statements import LineKind, LineStatus
from tests.builders import seeded
from tests.fakes import FakeClock


def statement_of(container: Container, account_id: int) -> list[statements.StatementLine]:
    return statements.statement(
        container.uows(), account_id, arrival=container.refund_policy().arrival
    )


def receipt_of(container: Container, account_id: int, number: int) -> statements.Receipt:
    return statements.receipt(
        container.uows(), account_id, number, arrival=container.refund_policy().arrival
    )


def run_at(container: Container, clock: FakeClock, moment) -> None:  # type: ignore[no-untyped-def]
    clock.set(moment)
    billing.run(container.uows, container.gateway, clock)


def card_behaviour(container: Container, subscription_id: int, token: str) -> None:
    with container.engine.begin() as connection:
        method = connection.execute(
            select(subscriptions.c.payment_method_id).where(subscriptions.c.id == subscription_id)
        ).scalar_one()
        connection.execute(
            update(payment_methods).where(payment_methods.c.id == method).values(token=token)
        )


def test_c31_a_paid_renewal_is_one_line_and_a_receipt_with_the_card_charged(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    end = data.monthly.period.end
    run_at(container, clock, end + timedelta(minutes=1))

    (line,) = [
        x for x in statement_of(container, data.alex.id) if x.subscription_id == data.monthly.id
    ]
    receipt = receipt_of(container, data.alex.id, line.invoice_number)

    assert line.kind is LineKind.CHARGE
    assert (line.status, line.status_text, line.at) == (LineStatus.PAID, "Paid", clock.now())
    assert line.amount == Money(449, "GBP")
    assert line.charged.title == "Larkspur Antivirus — Antivirus Monthly, renewal"
    assert line.charged.invoice_kind is InvoiceKind.RENEWAL
    assert line.charged.period.start == end
    assert receipt.paid and receipt.paid_at == clock.now()
    assert (receipt.customer_name, receipt.customer_email) == ("Alex Demo", "demo@example.com")
    assert receipt.card is not None and receipt.card.last4 == "4242"
    assert receipt.payment_reference is not None


def test_invoice_numbers_follow_each_other_across_renewals(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    first_end = data.monthly.period.end
    run_at(container, clock, first_end + timedelta(minutes=1))
    renewed, _ = subs.get_subscription(container.uows(), data.alex.id, data.monthly.id)
    run_at(container, clock, renewed.period.end + timedelta(minutes=1))

    mine = [
        x.invoice_number
        for x in statement_of(container, data.alex.id)
        if x.subscription_id == data.monthly.id
    ]
    with container.engine.connect() as connection:
        every = sorted(connection.execute(select(invoices.c.number)).scalars())

    assert len(mine) == 2 and mine[0] > mine[1]  # newest first
    assert every == list(range(1, len(every) + 1))  # no gaps, none twice, across customers


def test_declines_are_lines_of_their_own_with_the_reason_in_plain_words(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    card_behaviour(container, data.monthly.id, "tok_decline_1")
    end = data.monthly.period.end
    run_at(container, clock, end + timedelta(minutes=1))
    run_at(container, clock, end + timedelta(days=1, minutes=1))

    lines = [
        x for x in statement_of(container, data.alex.id) if x.subscription_id == data.monthly.id
    ]
    receipt = receipt_of(container, data.alex.id, lines[0].invoice_number)

    assert [x.attempt_no for x in lines] == [2, 1]
    assert {x.status_text for x in lines} == {"Declined (card declined)"}
    assert (receipt.paid, receipt.paid_at, receipt.payment_reference) == (False, None, None)
    assert receipt.status_text == "Declined (card declined)"


def test_an_invoice_that_ended_unpaid_reads_void_on_its_receipt(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    card_behaviour(container, data.monthly.id, "tok_decline_1")
    end = data.monthly.period.end
    for days in (0, 1, 3, 7):
        run_at(container, clock, end + timedelta(days=days, minutes=1))
    run_at(container, clock, end + timedelta(days=15))  # grace over: the subscription expires

    number = next(
        x.invoice_number
        for x in statement_of(container, data.alex.id)
        if x.subscription_id == data.monthly.id
    )
    receipt = receipt_of(container, data.alex.id, number)

    assert (receipt.status, receipt.status_text) == (LineStatus.VOID, "Void")
    assert receipt.card is not None  # the card that was tried


def test_someone_elses_receipt_and_an_unknown_number_are_the_same_not_found(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    run_at(container, clock, data.erikas.period.end + timedelta(minutes=1))
    (erikas,) = statement_of(container, data.erika.id)

    with pytest.raises(NotFound) as theirs:
        receipt_of(container, data.alex.id, erikas.invoice_number)
    with pytest.raises(NotFound) as unknown:
        receipt_of(container, data.alex.id, 10**30)

    assert theirs.value.message == unknown.value.message
    assert all(
        x.invoice_number != erikas.invoice_number for x in statement_of(container, data.alex.id)
    )


def test_an_account_never_charged_has_an_empty_statement(container: Container) -> None:
    data = seeded(container)
    assert statement_of(container, data.erika.id) == []


def test_the_demo_history_is_numbered_in_the_order_it_was_paid(container: Container) -> None:
    # Receipt No. 1 was dated November and Nos. 2-4 August to October: numbered customer by
    # customer, not by date. A shop's invoice numbers follow its calendar.
    seeded(container, history=True)
    with container.engine.connect() as connection:
        dates = list(
            connection.execute(
                select(invoices.c.period_start).order_by(invoices.c.number)
            ).scalars()
        )
    assert len(dates) > 3
    assert dates == sorted(dates)
