"""Billing history and receipts over HTTP (C31): charges made by moving the clock past a
renewal and running the billing run, then read back as the customer sees them."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fairsub.adapters.db.tables import accounts, payment_methods, subscriptions
from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.domain.subscriptions import Subscription
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app
from fairsub.services import billing
from fairsub.services import subscriptions as subs
from tests.builders import Demo, seeded, turn_off
from tests.conftest import make_container
from tests.e2e.test_portal_http import sign_in
from tests.fakes import FakeClock, FakeMailer

ERIKA, KENJI, SAM = "erika@example.com", "kenji@example.com", "sam@example.com"
ROW = re.compile(r'<tr role="row" class="line[^"]*" data-invoice="(\d+)">(.*?)</tr>', re.S)
TAG = re.compile(r"<[^>]+>")
SPACE = re.compile(r"[ \t\r\n]+")

Portal = tuple[TestClient, Container, Demo]


@pytest.fixture
def portal(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> Iterator[Portal]:
    container = make_container(sqlite_url, tmp_path, clock, mailer)
    data = seeded(container)
    with TestClient(create_app(container, relay=Relay.OFF), follow_redirects=False) as client:
        yield client, container, data
    container.close()


def text(fragment: str) -> str:
    """What a reader sees: tags gone, entities decoded, spaces collapsed (but not the
    no-break spaces Babel puts in amounts)."""
    return SPACE.sub(" ", html.unescape(TAG.sub(" ", fragment))).strip()


def span(start: str, end: str) -> str:
    return f"{start} \N{EN DASH} {end}"


def rows(page: str) -> list[tuple[int, str]]:
    """(invoice number, the row's text) for each line of the statement, top to bottom."""
    return [(int(number), text(body)) for number, body in ROW.findall(page)]


def account(container: Container, email: str) -> Account:
    with container.uows().read() as uow:
        found = uow.accounts.by_email(email)
    assert found is not None
    return found[0]


def only_subscription(container: Container, email: str) -> tuple[Account, Subscription]:
    owner = account(container, email)
    (subscription,) = subs.list_subscriptions(container.uows(), owner.id)
    return owner, subscription


def renew(container: Container, clock: FakeClock, subscription_id: int, account_id: int) -> None:
    """Move the clock just past the subscription's current period and run billing."""
    current, _ = subs.get_subscription(container.uows(), account_id, subscription_id)
    clock.set(current.period.end + timedelta(minutes=1))
    billing.run(container.uows, container.gateway, clock)


def card_behaviour(container: Container, subscription_id: int, token: str) -> None:
    """Give the subscription's card a behaviour of the fake gateway (tests/fakes.py)."""
    with container.engine.begin() as connection:
        method = connection.execute(
            select(subscriptions.c.payment_method_id).where(subscriptions.c.id == subscription_id)
        ).scalar_one()
        connection.execute(
            update(payment_methods).where(payment_methods.c.id == method).values(token=token)
        )


def test_statement_needs_sign_in(portal: Portal) -> None:
    client, _, _ = portal
    response = client.get("/account/billing")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account/billing"
    assert client.get("/account/billing/receipts/1").status_code == 303


def test_billing_is_in_the_nav_and_linked_from_each_direct_subscription(portal: Portal) -> None:
    client, _, data = portal
    sign_in(client)
    assert '<a href="/account/billing">Billing</a>' in client.get("/account").text
    page = client.get(f"/account/subscriptions/{data.monthly.id}").text
    assert '<a href="/account/billing">Charges and receipts</a>' in page


def test_empty_statement_says_no_charges_yet(portal: Portal) -> None:
    client, _, _ = portal
    sign_in(client, email=SAM)
    page = client.get("/account/billing")
    assert page.status_code == 200
    assert "No charges yet" in page.text
    assert rows(page.text) == []


def test_c31_statement_lists_a_renewal_with_date_description_amount_and_status(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, data = portal
    renew(container, clock, data.monthly.id, data.alex.id)  # period ended 24 Dec 2026, 12:00 UTC
    sign_in(client)

    ((number, row),) = rows(client.get("/account/billing").text)

    assert row.startswith("24 December 2026 ")
    period = span("24 December 2026", "24 January 2027")
    assert f"Larkspur Antivirus — Antivirus Monthly, renewal {period}" in row
    assert "£4.49" in row
    assert f"Paid No. {number}" in row


def test_two_renewals_get_consecutive_receipt_numbers_newest_first(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, data = portal
    turn_off(container, data.alex, data.monthly)  # so no one else's charge comes between
    kenji, plan = only_subscription(container, KENJI)
    renew(container, clock, plan.id, kenji.id)
    renew(container, clock, plan.id, kenji.id)
    sign_in(client, email=KENJI)

    lines = rows(client.get("/account/billing").text)

    (newer, second), (older, first) = lines
    assert newer == older + 1
    assert "Paid" in first and "Paid" in second
    assert span("December 17, 2026", "January 17, 2027") in first
    assert span("January 17, 2027", "February 17, 2027") in second
    for number in (older, newer):
        receipt = client.get(f"/account/billing/receipts/{number}")
        assert receipt.status_code == 200
        assert f'<dd class="reference invoice-number">{number}</dd>' in receipt.text


def test_receipt_shows_vendor_customer_number_dates_amount_and_card(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, data = portal
    renew(container, clock, data.monthly.id, data.alex.id)
    sign_in(client)
    ((number, _),) = rows(client.get("/account/billing").text)

    page = client.get(f"/account/billing/receipts/{number}")

    assert page.status_code == 200
    shown = text(page.text)
    assert "Larkspur Security Receipt" in shown
    assert f"Invoice number {number}" in shown
    assert "Status Paid" in shown
    assert "Date paid 24 December 2026" in shown
    assert "Billed to Alex Demo demo@example.com" in shown
    assert "Description Larkspur Antivirus — Antivirus Monthly, renewal" in shown
    assert f"Period {span('24 December 2026', '24 January 2027')}" in shown
    assert "Amount £4.49" in shown
    assert "Payment method Visa ending 4242" in shown
    assert f'href="/account/billing/receipts/{number}.txt"' in page.text  # Save, without JS
    assert 'src="/static/print.js"' in page.text


def test_receipt_saved_as_text_is_plain_text_not_html(portal: Portal, clock: FakeClock) -> None:
    client, container, _ = portal
    kenji, plan = only_subscription(container, KENJI)
    with container.engine.begin() as connection:  # characters HTML would escape
        connection.execute(
            update(accounts).where(accounts.c.id == kenji.id).values(name="Kenji O'Rei & Co")
        )
    renew(container, clock, plan.id, kenji.id)
    sign_in(client, email=KENJI)
    ((number, _),) = rows(client.get("/account/billing").text)

    saved = client.get(f"/account/billing/receipts/{number}.txt")

    assert saved.status_code == 200
    assert saved.headers["content-type"].startswith("text/plain")
    assert f'filename="receipt-{number}.txt"' in saved.headers["content-disposition"]
    assert f"Invoice number:    {number}\n" in saved.text
    assert "Billed to:         Kenji O'Rei & Co <kenji@example.com>\n" in saved.text
    assert "Amount:            ¥1,500\n" in saved.text
    assert "Payment method:    Visa ending 4242\n" in saved.text
    assert "<" not in saved.text.replace("<kenji@example.com>", "")
    assert "&amp;" not in saved.text and "&#39;" not in saved.text


def test_someone_elses_receipt_is_404_like_an_unknown_number(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, _ = portal
    kenji, plan = only_subscription(container, KENJI)
    renew(container, clock, plan.id, kenji.id)
    sign_in(client, email=KENJI)
    ((theirs, _),) = rows(client.get("/account/billing").text)
    client.cookies.clear()
    sign_in(client)  # Alex, who has no charges

    other = client.get(f"/account/billing/receipts/{theirs}")
    unknown = client.get(f"/account/billing/receipts/{theirs + 1000}")

    assert other.status_code == unknown.status_code == 404
    assert text(other.text) == text(unknown.text)
    assert "Kenji" not in other.text and "1,500" not in other.text
    assert client.get(f"/account/billing/receipts/{theirs}.txt").status_code == 404
    assert rows(client.get("/account/billing").text) == []


@pytest.mark.parametrize("number", ["0", "-1", "99999999999999999999999", "abc", "1.5"])
def test_malformed_receipt_numbers_get_a_page_not_a_trace(portal: Portal, number: str) -> None:
    client, _, _ = portal
    sign_in(client)
    for path in (f"/account/billing/receipts/{number}", f"/account/billing/receipts/{number}.txt"):
        response = client.get(path)
        assert response.status_code in (404, 422), path
        assert "Traceback" not in response.text


def test_declined_renewal_shows_declined_with_the_reason_and_each_retry(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, data = portal
    card_behaviour(container, data.monthly.id, "tok_decline_1")
    end = data.monthly.period.end
    clock.set(end + timedelta(minutes=1))
    billing.run(container.uows, container.gateway, clock)
    clock.set(end + timedelta(days=1, minutes=1))  # the first dunning retry
    billing.run(container.uows, container.gateway, clock)
    sign_in(client)

    (retry_number, retry), (first_number, first) = rows(client.get("/account/billing").text)

    assert retry_number == first_number  # one invoice, two attempts
    assert "Declined (card declined)" in first and "Declined (card declined)" in retry
    assert first.startswith("24 December 2026") and retry.startswith("25 December 2026")
    page = text(client.get(f"/account/billing/receipts/{first_number}").text)
    assert "Invoice — not paid" in page and "No money was taken" in page
    assert "Date paid" not in page


def test_answer_lost_in_transit_shows_pending_until_the_gateway_confirms(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, data = portal
    card_behaviour(container, data.monthly.id, "tok_timeout_1")
    clock.set(data.monthly.period.end + timedelta(minutes=1))
    billing.run(container.uows, container.gateway, clock)
    sign_in(client)

    ((number, row),) = rows(client.get("/account/billing").text)
    assert "Pending confirmation" in row

    billing.run(container.uows, container.gateway, clock)  # the janitor asks the gateway

    ((again, row),) = rows(client.get("/account/billing").text)
    assert again == number
    assert "Paid" in row and "Pending" not in row


def test_german_customer_sees_euros_in_german_format(portal: Portal, clock: FakeClock) -> None:
    client, container, _ = portal
    erika, plan = only_subscription(container, ERIKA)
    renew(container, clock, plan.id, erika.id)
    sign_in(client, email=ERIKA)

    ((number, row),) = rows(client.get("/account/billing").text)

    assert "39,99\xa0€" in row
    assert span("18 October 2027", "18 October 2028") in row
    saved = client.get(f"/account/billing/receipts/{number}.txt").text
    assert "Amount:            39,99\xa0€\n" in saved


def test_japanese_customer_sees_yen_without_minor_units(portal: Portal, clock: FakeClock) -> None:
    client, container, _ = portal
    kenji, plan = only_subscription(container, KENJI)
    renew(container, clock, plan.id, kenji.id)
    sign_in(client, email=KENJI)

    ((number, row),) = rows(client.get("/account/billing").text)

    assert "¥1,500" in row and "¥1,500.00" not in row
    page = text(client.get(f"/account/billing/receipts/{number}").text)
    assert "Amount ¥1,500 " in page
