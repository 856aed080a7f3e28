"""Forms a screen reader can follow, over HTTP: when a form comes back with an error, the
field at fault says it is invalid and is described by the message, and what was typed
is still there (card numbers and security codes excepted)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.bootstrap import Container
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app
from tests.builders import Demo, seeded
from tests.conftest import make_container
from tests.e2e.test_checkout_http import order_form
from tests.e2e.test_portal_http import csrf, sign_in
from tests.fakes import FakeClock, FakeMailer

CARD_FIELDS = ("card_number", "expiry", "cvc")


class Elements(HTMLParser):
    """Each element with an id: its attributes and the text inside it."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.attrs: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if "id" in found:
            self.attrs[found["id"]] = found
            self.text.setdefault(found["id"], "")
        if tag not in ("input", "br", "meta", "link"):
            self._open.append(found.get("id"))

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("input", "br", "meta", "link") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for opened in self._open:
            if opened:
                self.text[opened] += data

    def description(self, field: str) -> str:
        """What a screen reader reads after the field's label: its aria-describedby."""
        ids = self.attrs[field].get("aria-describedby", "").split()
        return " ".join(" ".join(self.text.get(i, "").split()) for i in ids)

    def invalid(self, field: str) -> bool:
        return self.attrs[field].get("aria-invalid") == "true"


@pytest.fixture
def portal(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> Iterator[tuple[TestClient, Container, Demo]]:
    bank = SandboxGateway(tmp_path / "sandbox.db", clock)  # it checks cards as a bank would
    container = make_container(sqlite_url, tmp_path, clock, mailer, gateway=bank)
    data = seeded(container)
    with TestClient(create_app(container, relay=Relay.OFF), follow_redirects=False) as client:
        yield client, container, data
    container.close()


@pytest.mark.parametrize(
    ("typed", "at_fault", "says"),
    [
        ({"card_number": "4242 4242 4242 4241"}, "card_number", "card number is not valid"),
        ({"card_number": "4242"}, "card_number", "12 to 19 digits"),
        ({"expiry": "1230"}, "expiry", "month and year"),
        ({"expiry": "13/30"}, "expiry", "between 01 and 12"),
        ({"expiry": "01/20"}, "expiry", "expired"),
        ({"cvc": "12"}, "cvc", "security code"),
    ],
)
def test_a_card_refused_on_the_payment_methods_page_names_the_field_to_correct(
    portal, typed: dict[str, str], at_fault: str, says: str
) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    sign_in(client)
    card = {"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123", **typed}
    page = client.post(
        "/account/payment-methods",
        data={"csrf_token": csrf(client, "/account/payment-methods"), **card},
    )
    assert page.status_code == 422
    html = Elements(page.text)
    assert html.invalid(at_fault)
    assert says in html.description(at_fault)
    for other in CARD_FIELDS:
        if other != at_fault:
            assert not html.invalid(other), other
            assert says not in html.description(other), other
    # The expiry is kept, so only the number and the code are typed again.
    assert html.attrs["expiry"].get("value") == card["expiry"]
    assert "value" not in html.attrs["card_number"] and "value" not in html.attrs["cvc"]


def test_a_card_refused_at_checkout_names_the_field_to_correct(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    sign_in(client, email="sam@example.com")
    page = client.post("/checkout", data=order_form(client, "antivirus-annual", expiry="13/30"))
    assert page.status_code == 422
    html = Elements(page.text)
    assert html.invalid("expiry") and not html.invalid("card_number")
    assert "between 01 and 12" in html.description("expiry")
    assert html.attrs["expiry"].get("value") == "13/30"


def test_a_checkout_error_that_is_not_about_the_card_marks_no_card_field(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    sign_in(client, email="sam@example.com")
    page = client.post("/checkout", data=order_form(client, "antivirus-annual", renewal=""))
    assert page.status_code == 422
    html = Elements(page.text)
    assert not any(html.invalid(f) for f in CARD_FIELDS)
    assert re.search(r'role="alert"[^>]*>Choose how your subscription continues', page.text)


NEW_CUSTOMER = {"email": "jana@example.com", "name": "Jana Neu", "password": "correct horse"}


@pytest.mark.parametrize(
    ("typed", "at_fault", "says"),
    [
        ({"email": "jana@"}, "email", "Enter your email address"),
        ({"name": ""}, "name", "Enter your name"),
        ({"password": "short"}, "password", "at least 10 characters"),
    ],
)
def test_creating_an_account_at_checkout_names_the_field_to_correct(
    portal, typed: dict[str, str], at_fault: str, says: str
) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    start = "/checkout?plan=antivirus-annual&region=DE"
    page = client.post(
        "/checkout/account",
        data={
            "csrf_token": csrf(client, start),
            "plan": "antivirus-annual",
            "region": "DE",
            **NEW_CUSTOMER,
            **typed,
        },
    )
    assert page.status_code == 422
    html = Elements(page.text)
    assert html.invalid(at_fault)
    assert says in html.description(at_fault)
    for other in {"email", "name", "password"} - {at_fault}:
        assert not html.invalid(other), other
        assert says not in html.description(other), other
    assert "At least 10 characters" in html.description("password")  # the hint stays
    assert html.attrs["name"].get("value") == ({**NEW_CUSTOMER, **typed})["name"]


@pytest.mark.parametrize(
    ("typed", "at_fault", "says"),
    [
        ({"password": "short", "confirm": "short"}, "password", "at least 10 characters"),
        ({"password": "long enough 1", "confirm": "long enough 2"}, "confirm", "not the same"),
    ],
)
def test_choosing_a_new_password_names_the_field_to_correct(
    portal, typed: dict[str, str], at_fault: str, says: str
) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    token = csrf(client, "/password-reset")
    page = client.post("/password-reset/some-token", data={"csrf_token": token, **typed})
    assert page.status_code == 422
    html = Elements(page.text)
    assert html.invalid(at_fault)
    assert says in html.description(at_fault)
    (other,) = {"password", "confirm"} - {at_fault}
    assert not html.invalid(other)


@pytest.mark.parametrize("step", ["turn-off", "cancel-now"])
def test_the_way_back_from_a_confirmation_says_where_it_goes(portal, step: str) -> None:  # type: ignore[no-untyped-def]
    # A screen reader's list of links showed just "Back", which says nothing out of context.
    client, _, demo = portal
    sign_in(client)
    sub = demo.annual.id
    page = client.get(f"/account/subscriptions/{sub}/{step}")
    assert page.status_code == 200
    links = re.findall(r'<a href="/account/subscriptions/\d+">([^<]*)</a>', page.text)
    assert links and all(link.endswith("Back to Larkspur 360") for link in links), links


PUBLIC_FORM = {"name": "Jana Neu", "email": "jana@example.de", "contract": "receipt 1"}


@pytest.mark.parametrize(
    ("path", "typed", "at_fault"),
    [
        ("/withdraw", {"name": ""}, "name"),
        ("/withdraw", {"email": "jana@"}, "email"),
        ("/withdraw", {"contract": "my order"}, "contract"),
        ("/vertrag-widerrufen", {"contract": "my order"}, "contract"),
        ("/vertraege-kuendigen", {"name": ""}, "name"),
        ("/vertraege-kuendigen", {"email": "jana@"}, "email"),
        ("/vertraege-kuendigen", {"contract": ""}, "contract"),
        ("/vertraege-kuendigen", {"kind": "extraordinary", "reason": ""}, "reason"),
        ("/vertraege-kuendigen", {"end": "date", "end_date": "31.02.2027"}, "end_date"),
    ],
)
def test_the_withdrawal_and_cancellation_forms_name_the_field_to_correct(
    portal, path: str, typed: dict[str, str], at_fault: str
) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    page = client.post(path, data={"csrf_token": csrf(client, path), **PUBLIC_FORM, **typed})

    assert page.status_code == 422
    html = Elements(page.text)
    error = " ".join(
        html.text[
            "withdraw-error" if "widerruf" in path or path == "/withdraw" else "cancel-error"
        ].split()
    )
    assert html.invalid(at_fault)
    assert error in html.description(at_fault)
    for other in ("name", "email", "contract", "reason"):
        if other != at_fault:
            assert not html.invalid(other), other


def test_an_expired_sign_in_form_keeps_the_email_and_blames_neither_field(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    page = client.post(
        "/login", data={"csrf_token": "expired", "email": "demo@example.com", "password": "x"}
    )

    assert page.status_code == 403
    html = Elements(page.text)
    assert html.attrs["email"].get("value") == "demo@example.com"
    assert not html.invalid("email") and not html.invalid("password")
    # A wrong password, by contrast, is about what was typed in both.
    wrong = client.post(
        "/login",
        data={"csrf_token": csrf(client, "/login"), "email": "demo@example.com", "password": "x"},
    )
    assert Elements(wrong.text).invalid("email") and Elements(wrong.text).invalid("password")


def test_an_expired_password_reset_request_comes_back_with_the_email_kept(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    page = client.post("/password-reset", data={"csrf_token": "x", "email": "demo@example.com"})

    assert page.status_code == 403
    assert "Reset your password" in page.text and 'role="alert"' in page.text
    assert Elements(page.text).attrs["email"].get("value") == "demo@example.com"
