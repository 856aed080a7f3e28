"""The German cancellation button over HTTP (C2-C4): the footer link on every page, the
form without signing in and with nothing in between, "jetzt kündigen", one neutral answer
whatever was typed, and forms to correct shown again in German with what was typed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app
from fairsub.entrypoints.web.routes import statutory_cancellation as route
from fairsub.services import public_forms
from tests.builders import seeded
from tests.conftest import make_container
from tests.e2e.test_portal_http import csrf, sign_in
from tests.fakes import FakeClock, FakeMailer
from tests.integration.test_withdrawal import JANA, buy, customer, state

PATH = "/vertraege-kuendigen"
FOOTER_LINK = '<a href="/vertraege-kuendigen" lang="de">Verträge hier kündigen</a>'
BUTTON = '<button type="submit" class="primary">jetzt kündigen</button>'
RECEIVED = "Ihre Kündigung ist eingegangen"


@pytest.fixture
def portal(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> Iterator[tuple[TestClient, Container]]:
    container = make_container(sqlite_url, tmp_path, clock, mailer)
    seeded(container)
    with TestClient(create_app(container, relay=Relay.OFF), follow_redirects=False) as client:
        yield client, container
    container.close()


@pytest.fixture
def jana(portal: tuple[TestClient, Container]) -> Account:
    return customer(portal[1])


def form(client: TestClient, **fields: object) -> dict[str, str]:
    data = {
        "csrf_token": csrf(client, PATH),
        "kind": "ordinary",
        "reason": "",
        "name": "Jana Neu",
        "email": JANA,
        "contract": "",
        "end": "earliest",
        "end_date": "",
    }
    data.update({k: str(v) for k, v in fields.items()})
    return data


def footer(html: str) -> str:
    return html[html.index("<footer") :]


def main(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


def auto_renew(container: Container, account: Account, subscription_id: int) -> bool:
    with container.uows().read() as uow:
        found = uow.subscriptions.get(account.id, subscription_id)
    assert found is not None
    return found.auto_renew


def test_c2_every_page_links_to_the_cancellation_button_in_its_footer(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    pages = ["/login", "/plans", "/contact", "/terms", "/withdraw", "/vertrag-widerrufen", PATH]
    pages += ["/password-reset", "/no-such-page", "/account/subscriptions/abc"]
    for path in pages:
        assert FOOTER_LINK in footer(client.get(path, follow_redirects=True).text), path
    sign_in(client)
    for path in ["/account", "/account/billing", "/plans", "/account/payment-methods", PATH]:
        assert FOOTER_LINK in footer(client.get(path).text), path


def test_c3_the_link_opens_the_form_itself_without_signing_in(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    page = client.get(PATH)

    assert page.status_code == 200  # no redirect to a sign-in page, a survey or an offer
    assert page.headers["cache-control"] == "no-store"
    html = main(page.text)
    assert '<div lang="de" class="statutory-cancellation">' in html
    assert '<h1 id="cancel-heading">Verträge hier kündigen</h1>' in html
    assert html.count("<form") == 1 and html.count('type="submit"') == 1
    assert BUTTON in html and f'action="{PATH}"' in html


def test_c4_the_form_asks_only_what_the_law_lists_each_with_its_label(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    html = client.get(PATH).text

    fields = re.findall(r'<(?:input|textarea)[^>]* name="(\w+)"', main(html))
    assert fields == [
        "csrf_token",
        *("kind", "kind", "reason"),  # ordinary, or extraordinary with its reason
        *("name", "email"),  # who: the account's email, where the confirmation goes
        "contract",  # which contract
        *("end", "end", "end_date"),  # the earliest possible end, or a later date
    ]
    for field in ("kind-ordinary", "kind-extraordinary", "reason", "name", "email", "contract"):
        assert f'<label for="{field}">' in html
    for field in ("end-earliest", "end-date", "end_date"):
        assert f'<label for="{field}">' in html
    assert re.search(r'id="kind-ordinary" name="kind" value="ordinary" checked', html)
    assert re.search(r'id="end-earliest" name="end" value="earliest" checked', html)
    assert "<legend>Art der Kündigung</legend>" in html
    assert "<legend>Gewünschtes Vertragsende</legend>" in html


def test_c4_cancelling_over_http_turns_auto_renew_off_and_shows_what_was_declared(
    portal, jana: Account, clock: FakeClock, mailer: FakeMailer
) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    bought = buy(container, jana)
    clock.advance(days=2)

    response = client.post(
        PATH,
        data=form(
            client,
            kind="extraordinary",
            reason="Umzug ins Ausland",
            contract=f"Beleg {bought.invoice_number}",
            end="date",
            end_date="2027-03-31",
        ),
    )

    assert response.status_code == 200
    html = response.text
    assert 'role="status"' in html and RECEIVED in html
    assert "29. November 2026, 13:00:00 MEZ" in html  # when, in Berlin time, in German
    for shown in (
        "<dd>Außerordentliche Kündigung</dd>",
        "<dd>Umzug ins Ausland</dd>",
        "<dd>Jana Neu</dd>",
        f"<dd>{JANA}</dd>",
        f"<dd>Belegnummer {bought.invoice_number}</dd>",
        "<dd>31.03.2027</dd>",
    ):
        assert shown in html, shown
    assert "antwortet Ihnen unser Support per E-Mail" in html
    assert "data-print" in html and "/static/print.js" in html  # printable
    assert auto_renew(container, jana, bought.subscription_id) is False
    container.relay.drain()
    (mail,) = [m for m in mailer.sent if m.subject.startswith("Auto-renew is off")]
    assert mail.to == JANA


def test_c4_the_answer_is_the_same_whether_or_not_the_account_exists(
    portal, jana: Account, mailer: FakeMailer
) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    bought = buy(container, jana)
    sam_email = "sam.new@example.com"
    fields = {"email": sam_email, "contract": bought.invoice_number + 1, "name": "Sam New"}

    unknown = client.post(PATH, data=form(client, **fields))  # no such account, yet
    sam = customer(container, "DE", sam_email)
    sams = buy(container, sam)
    assert sams.invoice_number == bought.invoice_number + 1
    matched = client.post(PATH, data=form(client, **fields))
    again = client.post(PATH, data=form(client, **fields))

    assert unknown.status_code == matched.status_code == again.status_code == 200
    assert unknown.text == matched.text == again.text
    assert sorted(unknown.headers.items()) == sorted(matched.headers.items())
    assert auto_renew(container, sam, sams.subscription_id) is False
    container.relay.drain()
    assert [m.to for m in mailer.sent if m.subject.startswith("Auto-renew is off")] == [sam_email]


def test_c4_the_confirmation_goes_to_the_account_never_to_a_typed_address(
    portal, jana: Account, mailer: FakeMailer
) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    bought = buy(container, jana)

    client.post(
        PATH, data=form(client, email="attacker@example.com", contract=bought.invoice_number)
    )

    assert auto_renew(container, jana, bought.subscription_id) is True
    container.relay.drain()
    assert all(m.to != "attacker@example.com" for m in mailer.sent)


def test_c4_without_its_csrf_token_the_form_comes_back_with_the_message_and_nothing_changes(
    portal, jana: Account
) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    bought = buy(container, jana)
    before = state(container)
    data = form(client, contract=bought.invoice_number, name="Jana Neu")

    missing = client.post(PATH, data={k: v for k, v in data.items() if k != "csrf_token"})
    forged = client.post(PATH, data={**data, "csrf_token": "0" * 64})
    elsewhere = TestClient(client.app, follow_redirects=False).post(PATH, data=data)

    for refused in (missing, forged, elsewhere):
        assert refused.status_code == 403
        assert f'role="alert" id="cancel-error">{route.CSRF_FAILED}' in refused.text
        assert f'value="{bought.invoice_number}"' in refused.text  # what was typed, kept
        assert BUTTON in refused.text and RECEIVED not in refused.text
    assert state(container) == before
    retried = client.post(PATH, data={**data, "csrf_token": csrf(client, PATH)})
    assert RECEIVED in retried.text
    assert auto_renew(container, jana, bought.subscription_id) is False


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"contract": "my antivirus"}, "Bitte geben Sie die Belegnummer"),
        ({"email": "x"}, "Bitte geben Sie die E-Mail-Adresse Ihres Kontos ein."),
        ({"name": "\x00 \t"}, "Bitte geben Sie Ihren Namen ein."),
        ({"kind": "<script>"}, "Bitte wählen Sie eine ordentliche oder eine außerordentliche"),
        ({"kind": "extraordinary"}, "Eine außerordentliche Kündigung braucht ihren Grund."),
        ({"end": "date", "end_date": "gestern"}, "Bitte geben Sie das spätere Vertragsende"),
        ({"end": "date", "end_date": "2026-01-01"}, "Bitte geben Sie das spätere Vertragsende"),
        ({"end": "sometime"}, "Bitte wählen Sie den nächstmöglichen Zeitpunkt"),
    ],
)
def test_c4_a_form_to_correct_comes_back_in_german_with_what_was_typed(
    portal, fields: dict[str, str], message: str
) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    before = state(container)
    data = form(client, **{"contract": "1042", **fields})

    response = client.post(PATH, data=data)

    assert response.status_code == 422
    assert re.search(r'role="alert" id="cancel-error">' + re.escape(message), response.text)
    assert 'value="1042"' in response.text or 'value="my antivirus"' in response.text
    assert "<script>" not in main(response.text)  # nothing typed is ever markup
    assert BUTTON in response.text and "Traceback" not in response.text
    assert state(container) == before


def test_c4_oversized_input_is_refused_without_a_stack_trace(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    response = client.post(PATH, data=form(client, name="x" * 5000, contract="1"))

    assert response.status_code == 422
    assert "Traceback" not in response.text and "Nothing was changed" in response.text


def test_c4_too_many_cancellations_get_429_for_known_and_unknown_addresses_alike(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    for email in (JANA, "nobody@example.com"):
        for _ in range(public_forms.MAX_PER_EMAIL):
            assert client.post(PATH, data=form(client, email=email, contract=1)).is_success
        refused = client.post(PATH, data=form(client, email=email, contract=1))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "3600"
        assert "Zu viele Kündigungen" in refused.text and f'value="{email}"' in refused.text


def test_c4_a_signed_in_customer_finds_their_name_and_email_filled_in(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    sign_in(client)
    html = client.get(PATH).text
    assert 'value="demo@example.com"' in html and 'value="Alex Demo"' in html
