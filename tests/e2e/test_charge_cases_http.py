"""Charge cases over HTTP: the "I don't recognise this charge" link on each paid charge,
the form, bad input, someone else's charge, and the case page with its reference."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fairsub.adapters.db.tables import charge_cases
from fairsub.bootstrap import Container
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app
from fairsub.services import cases
from tests.builders import Demo, seeded, turn_off
from tests.conftest import make_container
from tests.e2e.test_portal_http import csrf, sign_in
from tests.e2e.test_statements_http import KENJI, only_subscription, renew, rows, text
from tests.fakes import FakeClock, FakeMailer
from tests.integration.test_charge_cases import only, rogue_charge

QUESTION = re.compile(r'href="/account/billing/charges/(\d+)/question"')
CASE_PAGE = re.compile(r"/account/billing/cases/(FS-[0-9A-Z]{4}-[0-9A-Z]{4})$")

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


def case_count(container: Container) -> int:
    with container.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(charge_cases)).scalar_one())


def charged(portal: Portal, clock: FakeClock) -> int:
    """Renew Alex's monthly plan, sign Alex in, and return the charge's id from the link."""
    client, container, data = portal
    only(container, data.monthly)
    renew(container, clock, data.monthly.id, data.alex.id)
    sign_in(client)
    (attempt_id,) = QUESTION.findall(client.get("/account/billing").text)
    return int(attempt_id)


def ask(client: TestClient, attempt_id: int, **form: str):  # type: ignore[no-untyped-def]
    path = f"/account/billing/charges/{attempt_id}/question"
    return client.post(path, data={"csrf_token": csrf(client, path), **form})


def test_each_paid_charge_has_an_i_dont_recognise_this_charge_link(
    portal: Portal, clock: FakeClock
) -> None:
    client, _, _ = portal
    attempt_id = charged(portal, clock)

    ((number, row),) = rows(client.get("/account/billing").text)

    assert f"Paid No. {number} I don't recognise this charge of £4.49" in row
    form = client.get(f"/account/billing/charges/{attempt_id}/question")
    assert form.status_code == 200
    shown = text(form.text)
    assert "I don't recognise this charge" in shown and "£4.49" in shown
    for value in ("after_cancel", "unknown_charge", "wrong_amount", "other"):
        assert f'type="radio" id="reason-{value}" name="reason" value="{value}"' in form.text
        assert f'<label for="reason-{value}">' in form.text
    assert '<label for="note">' in form.text
    assert 'name="csrf_token"' in form.text
    assert "bank details" in shown


def test_the_form_opens_a_case_shown_with_its_reference_and_on_the_statement(
    portal: Portal, clock: FakeClock, mailer: FakeMailer
) -> None:
    client, container, _ = portal
    attempt_id = charged(portal, clock)

    sent = ask(client, attempt_id, reason="wrong_amount", note="I was quoted less.")

    assert sent.status_code == 303
    found = CASE_PAGE.search(sent.headers["location"])
    assert found, sent.headers["location"]
    reference = found.group(1)
    page = text(client.get(sent.headers["location"]).text)
    assert "We have your question" in page
    assert f"Case reference {reference}" in page
    assert "The amount is wrong: “I was quoted less.”" in page
    statement = client.get("/account/billing").text
    assert "Your open questions about charges" in statement
    ((_, row),) = rows(statement)
    assert f"Case {reference}: we are looking into it" in row
    assert QUESTION.search(statement) is None  # asked once; the line links the case now
    again = ask(client, attempt_id, reason="other")  # a second send shows the same case
    assert again.headers["location"] == sent.headers["location"]
    assert case_count(container) == 1
    container.relay.drain()
    assert [m.to for m in mailer.sent if reference in m.subject] == ["demo@example.com"]


def test_no_reason_shows_the_form_again_with_a_message_and_keeps_the_note(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, _ = portal
    attempt_id = charged(portal, clock)

    response = ask(client, attempt_id, note="Kept <as typed>")

    assert response.status_code == 422
    assert 'role="alert"' in response.text and "Choose what is wrong" in response.text
    assert "Kept &lt;as typed&gt;</textarea>" in response.text
    assert "Traceback" not in response.text
    assert case_count(container) == 0


def test_a_form_without_its_csrf_token_is_refused(portal: Portal, clock: FakeClock) -> None:
    client, container, _ = portal
    attempt_id = charged(portal, clock)
    response = client.post(
        f"/account/billing/charges/{attempt_id}/question", data={"reason": "other"}
    )
    assert response.status_code == 403
    assert case_count(container) == 0


def test_someone_elses_charge_and_case_are_404_like_unknown_ones(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, _ = portal
    kenji, plan = only_subscription(container, KENJI)
    renew(container, clock, plan.id, kenji.id)
    sign_in(client, email=KENJI)
    (theirs,) = QUESTION.findall(client.get("/account/billing").text)
    reference = CASE_PAGE.search(ask(client, int(theirs), reason="other").headers["location"])
    assert reference is not None
    client.cookies.clear()
    sign_in(client)  # Alex

    paths = (
        f"/account/billing/charges/{theirs}/question",
        f"/account/billing/charges/{int(theirs) + 1000}/question",
    )
    other, unknown = (client.get(path) for path in paths)
    posted = ask(client, int(theirs), reason="other")
    their_case = client.get(f"/account/billing/cases/{reference.group(1)}")

    assert other.status_code == unknown.status_code == posted.status_code == 404
    assert text(other.text) == text(unknown.text)
    assert "¥" not in other.text and "Kenji" not in other.text
    assert their_case.status_code == 404 and reference.group(1) not in their_case.text
    assert client.get("/account/billing/charges/abc/question").status_code == 404
    assert case_count(container) == 1  # only Kenji's own


def test_a_charge_after_a_turn_off_shows_as_refunded_automatically(
    portal: Portal, clock: FakeClock
) -> None:
    client, container, data = portal
    only(container, data.monthly)
    turn_off(container, data.alex, data.monthly)
    clock.advance(days=1)
    charge = rogue_charge(container, clock, data)
    sign_in(client)

    sent = ask(client, charge.id, reason="unknown_charge")

    page = text(client.get(sent.headers["location"]).text)
    assert "Refunded" in page and "should never have happened" in page
    assert "£4.49 back to the card that was charged" in page
    (listed,) = cases.list_cases(container.uows(), alerts_only=True)
    assert listed.case.reference in sent.headers["location"]
