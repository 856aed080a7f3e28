"""Cancel now with a refund over HTTP: the two choices side by side, the one-click
confirmation, the proof page, and the refund on the statement with when it arrives."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fairsub.adapters import display
from fairsub.adapters.db.tables import cancellations, refunds
from fairsub.bootstrap import Container
from fairsub.domain.money import Money
from fairsub.domain.refunding import ArrivalWindow
from fairsub.domain.subscriptions import PaymentMethodKind
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app
from fairsub.services import refunds as refund_service
from fairsub.services import subscriptions as subs
from tests.builders import Demo, refund_charge, seeded
from tests.conftest import make_container
from tests.e2e.test_portal_http import csrf, sign_in
from tests.e2e.test_statements_http import rows, text
from tests.fakes import FakeClock, FakeGateway, FakeMailer

Portal = tuple[TestClient, Container, Demo]
REFERENCE = re.compile(r"FS-[0-9A-Z]{4}-[0-9A-Z]{4}")


@pytest.fixture
def portal(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> Iterator[Portal]:
    """The demo data with every period so far paid, as `fairsub demo` seeds it."""
    container = make_container(sqlite_url, tmp_path, clock, mailer)
    data = seeded(container, history=True)
    with TestClient(create_app(container, relay=Relay.OFF), follow_redirects=False) as client:
        sign_in(client)
        yield client, container, data
    container.close()


def count(container: Container, table) -> int:  # type: ignore[no-untyped-def]
    with container.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def london(moment) -> str:  # type: ignore[no-untyped-def]
    return display.local_date(moment, "Europe/London", "en_GB")


def card_window(container: Container) -> ArrivalWindow:
    """The demo customer pays by card: the policy's window for cards."""
    return container.refund_policy().arrival.for_kind(PaymentMethodKind.CARD)


def arrival(container: Container, clock: FakeClock) -> tuple[str, str]:
    earliest, latest = card_window(container).for_refund(clock.now())
    return london(earliest), london(latest)


def cancel_now(client: TestClient, subscription_id: int, minor: int = 7999):  # type: ignore[no-untyped-def]
    path = f"/account/subscriptions/{subscription_id}/cancel-now"
    return client.post(
        path,
        data={"csrf_token": csrf(client, path), "shown_minor": minor, "shown_currency": "GBP"},
    )


def test_c28_the_annual_plan_page_offers_turn_off_and_cancel_now_with_the_refund_side_by_side(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, data = portal
    page = client.get(f"/account/subscriptions/{data.annual.id}").text
    shown = text(page)

    choices = page[page.index('<div class="choices">') :]
    assert choices.index("Turn off auto-renew — keep it until") < choices.index("Cancel now and")
    assert "Turn off auto-renew — keep it until 7 November 2027" in shown
    assert "Cancel now and get £79.99 back" in shown
    assert "Full refund: you are within 60 days of your purchase on 2026-11-07." in shown
    assert "Offer open until 6 January 2027, 12:00:00 GMT" in shown
    earliest, latest = arrival(container, clock)
    assert f"goes back to Visa ending 4242, arriving between {earliest} and {latest}" in shown
    assert f'href="/account/subscriptions/{data.annual.id}/cancel-now"' in page
    assert f'href="/account/subscriptions/{data.annual.id}/turn-off"' in page


def test_the_monthly_plan_page_offers_only_the_turn_off_and_says_why_no_refund(
    portal: Portal,
) -> None:
    client, _, data = portal
    page = client.get(f"/account/subscriptions/{data.monthly.id}").text

    assert "Turn off auto-renew — keep it until 24 December 2026" in text(page)
    assert "/cancel-now" not in page and "Cancel now and get" not in page
    (why,) = re.findall(r'<p class="why-not" id="no-refund">(.*?)</p>', page)
    assert why.startswith("No refund: the refund policy gives none for the renewal of a monthly")
    assert why.count(".") == 1  # one sentence


def test_c28_cancel_now_is_one_confirmation_then_the_proof_with_the_refund_state(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, data = portal
    confirm = client.get(f"/account/subscriptions/{data.annual.id}/cancel-now")
    assert confirm.status_code == 200
    assert "Cancel Larkspur 360 now and get £79.99 back?" in text(confirm.text)
    assert 'name="shown_minor" value="7999"' in confirm.text

    done = cancel_now(client, data.annual.id)

    assert done.status_code == 303
    location = done.headers["location"]
    reference = location.rsplit("/", 1)[-1]
    assert REFERENCE.fullmatch(reference)
    proof = client.get(location)
    shown = text(proof.text)
    earliest, latest = arrival(container, clock)
    assert "Cancelled — £79.99 refund on its way" in shown
    assert f"Reference number {reference}" in shown
    assert "Refund £79.99 back to Visa ending 4242, the card that paid" in shown
    assert f"Refund status On its way arrives between {earliest} and {latest}" in shown
    assert "Service ended 27 November 2026, 12:00:00 GMT" in shown
    saved = client.get(f"{location}.txt")
    assert saved.headers["content-type"].startswith("text/plain")
    assert f"Reference number:  {reference}\n" in saved.text
    assert "Refund status:     on its way\n" in saved.text
    # Back on the subscription page: ended, with the reference and the refund's state.
    page = text(client.get(f"/account/subscriptions/{data.annual.id}").text)
    assert "Cancelled — £79.99 refund You cancelled Larkspur 360 on 27 November 2026" in page
    assert reference in page and "Turn off auto-renew" not in page
    # The confirmation step for a finished one leads to the proof, not to a second refund.
    again = client.get(f"/account/subscriptions/{data.annual.id}/cancel-now")
    assert again.status_code == 303 and again.headers["location"] == location
    assert cancel_now(client, data.annual.id).headers["location"] == location
    assert count(container, refunds) == 1
    gateway = container.gateway
    assert isinstance(gateway, FakeGateway) and len(gateway.refunds) == 1


def test_c31_the_statement_shows_the_refund_of_the_receipt_with_when_it_arrives(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, data = portal
    before = rows(client.get("/account/billing").text)
    cancel_now(client, data.annual.id)

    lines = rows(client.get("/account/billing").text)

    (refund_row,) = [row for _, row in lines if row.startswith("27 November 2026 Refund")]
    (number, charge_row) = next((n, row) for n, row in lines if "360 Annual, purchase" in row)
    earliest, latest = arrival(container, clock)
    assert f"Refund of receipt {number} : Larkspur 360 — 360 Annual , reference FS-" in refund_row
    assert "-£79.99" in refund_row
    assert f"On its way arrives between {earliest} and {latest}" in refund_row
    assert "£79.99 Paid" in charge_row
    # A charge all given back is not one to question any more; it was before.
    was = next(row for n, row in before if n == number and "360 Annual, purchase" in row)
    assert "I don't recognise this charge" in was
    assert "I don't recognise this charge" not in charge_row
    receipt = text(client.get(f"/account/billing/receipts/{number}").text)
    assert "Refunds of this payment -£79.99 requested 27 November 2026" in receipt
    # Once the window has passed, the janitor marks it arrived.
    _, by = card_window(container).for_refund(clock.now())
    clock.set(by + timedelta(minutes=1))
    refund_service.settle(
        container.uows, container.gateway, clock, arrival=container.refund_policy().arrival
    )
    sign_in(client)  # two weeks later
    (arrived,) = [row for _, row in rows(client.get("/account/billing").text) if "Refund" in row]
    assert f"Arrived by {latest}" in arrived


def test_a_refund_that_changed_while_the_page_was_open_is_shown_again_not_taken(
    portal: Portal,
) -> None:
    client, container, data = portal
    response = cancel_now(client, data.annual.id, minor=5000)

    assert response.status_code == 409
    assert 'role="alert"' in response.text
    assert "The refund changed while the page was open" in response.text
    assert 'name="shown_minor" value="7999"' in response.text  # the figure as it is now
    assert count(container, refunds) == 0
    sub, _ = subs.get_subscription(container.uows(), data.alex.id, data.annual.id)
    assert sub.status.value == "active"


def test_a_monthly_plan_cannot_be_cancelled_with_a_refund_by_posting_anyway(
    portal: Portal,
) -> None:
    client, container, data = portal
    confirm = client.get(f"/account/subscriptions/{data.monthly.id}/cancel-now")
    assert "No refund for Larkspur Antivirus now" in confirm.text and "<button" not in text(
        confirm.text
    )

    response = cancel_now(client, data.monthly.id, minor=449)

    assert response.status_code == 409
    assert "gives none for the renewal of a monthly plan" in response.text
    assert f'action="/account/subscriptions/{data.monthly.id}/cancel-now"' not in response.text
    assert count(container, cancellations) == 0 and count(container, refunds) == 0


def test_cancel_now_needs_the_csrf_token_and_the_own_subscription(portal: Portal) -> None:
    client, container, data = portal
    path = f"/account/subscriptions/{data.annual.id}/cancel-now"
    forged = client.post(path, data={"shown_minor": 7999, "shown_currency": "GBP"})
    assert forged.status_code == 403

    theirs = f"/account/subscriptions/{data.erikas.id}/cancel-now"
    assert client.get(theirs).status_code == 404
    token = csrf(client, path)
    answer = client.post(
        theirs, data={"csrf_token": token, "shown_minor": 3999, "shown_currency": "EUR"}
    )
    assert answer.status_code == 404
    assert count(container, refunds) == 0


def test_a_receipt_refunded_in_part_says_how_much_in_the_readers_money(portal: Portal) -> None:
    client, container, data = portal
    number, attempt_id = next(
        (line.invoice_number, line.attempt_id)
        for line in statement_lines(container, data)
        if line.subscription_id == data.annual.id and line.attempt_id is not None
    )
    refund_charge(container, data.alex.id, attempt_id, Money(1000, "GBP"))

    receipt = text(client.get(f"/account/billing/receipts/{number}").text)
    assert "Paid, then £10.00 refunded" in receipt
    assert "GBP" not in receipt
    lines = rows(client.get("/account/billing").text)
    charge_row = next(row for n, row in lines if n == number and "Refund" not in row)
    assert "I don't recognise this charge" in charge_row  # £69.99 of it is still theirs


def statement_lines(container: Container, data: Demo):  # type: ignore[no-untyped-def]
    from fairsub.services import statements

    arrival = container.refund_policy().arrival
    return statements.statement(container.uows(), data.alex.id, arrival=arrival)
