"""The withdrawal function over HTTP (C24-C27): open to anyone from every page's footer,
one neutral answer whatever was typed, forms that need their CSRF token, the German page,
and the two C27 boxes at checkout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fairsub.adapters.db.tables import consents
from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.domain.refunding import RefundStatus
from fairsub.domain.subscriptions import Status
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app
from fairsub.services import withdrawal
from tests.builders import seeded
from tests.conftest import make_container
from tests.e2e.test_checkout_http import order_form
from tests.e2e.test_portal_http import csrf, sign_in
from tests.fakes import FakeClock, FakeGateway, FakeMailer
from tests.integration.test_withdrawal import JANA, buy, customer, state

NEUTRAL = (
    "If these details match a contract that can still be withdrawn from, we have sent the "
    "confirmation to the email address on the account."
)
FOOTER = (
    '<a href="/withdraw">Withdraw from contract here</a>',
    '<a href="/vertrag-widerrufen" lang="de">Vertrag widerrufen</a>',
)


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


def form(client: TestClient, path: str = "/withdraw", **fields: object) -> dict[str, str]:
    data = {
        "csrf_token": csrf(client, path),
        "name": "Jana Neu",
        "email": JANA,
        "contract": "",
        "reason": "",
    }
    data.update({k: str(v) for k, v in fields.items()})
    return data


def test_c24_every_page_links_to_the_withdrawal_function_in_its_footer(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    pages = ["/login", "/plans", "/contact", "/terms", "/withdraw", "/vertrag-widerrufen"]
    pages += ["/password-reset", "/no-such-page"]
    for path in pages:
        html = client.get(path).text
        assert all(link in html for link in FOOTER), path
    sign_in(client)
    for path in ["/account", "/account/billing", "/plans"]:
        html = client.get(path).text
        assert all(link in html for link in FOOTER), path


def test_c24_the_withdrawal_page_opens_without_signing_in_and_asks_only_what_it_needs(
    portal,  # type: ignore[no-untyped-def]
) -> None:
    client, _ = portal
    page = client.get("/withdraw")

    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert '<h1 id="withdraw-heading">Withdraw from contract here</h1>' in html
    assert '<button type="submit" class="primary">Confirm withdrawal</button>' in html
    fields = re.findall(r'<(?:input|textarea)[^>]* name="(\w+)"', html)
    assert [f for f in fields if f != "csrf_token"] == ["name", "email", "contract", "reason"]
    assert 'name="reason" maxlength' in html and 'id="reason" name="reason" required' not in html
    for field in ("name", "email", "contract", "reason"):
        assert f'<label for="{field}">' in html  # every field has its label


def test_c24_withdrawing_over_http_refunds_sends_the_email_and_answers_neutrally(
    portal, jana: Account, clock: FakeClock, mailer: FakeMailer
) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    bought = buy(container, jana)
    clock.advance(days=2)

    response = client.post("/withdraw", data=form(client, contract=bought.invoice_number))

    assert response.status_code == 200
    assert NEUTRAL in response.text and "29 November 2026" in response.text
    with container.uows().read() as uow:
        (refund,) = uow.refunds.for_account(jana.id)
        subscription = uow.subscriptions.get(jana.id, bought.subscription_id)
    assert subscription is not None and subscription.status is Status.REFUNDED
    assert refund.status is RefundStatus.SENT  # sent right after the answer
    gateway = container.gateway
    assert isinstance(gateway, FakeGateway) and len(gateway.refunds) == 1
    container.relay.drain()
    (mail,) = [m for m in mailer.sent if "withdrawal" in m.subject]
    assert mail.to == JANA and refund.reference in mail.subject


def test_c24_the_answer_is_the_same_whether_or_not_the_account_exists(
    portal, jana: Account, mailer: FakeMailer
) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    bought = buy(container, jana)
    tried = [
        {"email": "nobody@example.com", "contract": bought.invoice_number},
        {"email": JANA, "contract": 4242},
        {"email": "demo@example.com", "contract": bought.invoice_number},
        {"email": JANA, "contract": bought.invoice_number},  # the one that matches
        {"email": JANA, "contract": bought.invoice_number},  # and again
    ]

    answers = [client.post("/withdraw", data=form(client, **fields)) for fields in tried]

    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert len({tuple(sorted(a.headers.items())) for a in answers}) == 1
    container.relay.drain()
    assert [m.to for m in mailer.sent if "withdrawal" in m.subject] == [JANA]


def test_c24_a_withdrawal_without_its_csrf_token_is_refused_and_changes_nothing(
    portal, jana: Account
) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    bought = buy(container, jana)
    before = state(container)
    data = form(client, contract=bought.invoice_number)

    missing = client.post("/withdraw", data={k: v for k, v in data.items() if k != "csrf_token"})
    forged = client.post("/withdraw", data={**data, "csrf_token": "0" * 64})
    elsewhere = TestClient(client.app, follow_redirects=False).post(
        "/vertrag-widerrufen", data=data
    )

    assert [r.status_code for r in (missing, forged, elsewhere)] == [403, 403, 403]
    assert "Nothing was changed" in missing.text
    assert state(container) == before


def test_a_form_to_correct_is_shown_again_with_the_message_and_what_was_typed(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    response = client.post("/withdraw", data=form(client, contract="my antivirus"))

    assert response.status_code == 422
    assert f'role="alert" id="withdraw-error">{withdrawal.CONTRACT_MISSING}' in response.text
    assert 'value="my antivirus"' in response.text and f'value="{JANA}"' in response.text
    assert NEUTRAL not in response.text


def test_too_many_requests_get_429_for_known_and_unknown_addresses_alike(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    for email in (JANA, "nobody@example.com"):
        for _ in range(withdrawal.MAX_PER_EMAIL):
            assert client.post("/withdraw", data=form(client, email=email, contract=1)).is_success
        refused = client.post("/withdraw", data=form(client, email=email, contract=1))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "3600"
        assert "try again in an hour" in refused.text


def test_c24_the_german_page_says_it_in_german(portal, jana: Account) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    bought = buy(container, jana)
    page = client.get("/vertrag-widerrufen").text
    assert '<div lang="de" class="withdrawal">' in page
    assert '<h1 id="withdraw-heading">Vertrag widerrufen</h1>' in page
    assert ">Widerruf bestätigen</button>" in page and 'action="/vertrag-widerrufen"' in page
    assert 'href="/withdraw" lang="en"' in page

    wrong = client.post("/vertrag-widerrufen", data=form(client, "/vertrag-widerrufen", email="x"))
    assert wrong.status_code == 422
    assert "Bitte geben Sie die E-Mail-Adresse Ihres Kontos ein." in wrong.text

    done = client.post(
        "/vertrag-widerrufen",
        data=form(client, "/vertrag-widerrufen", contract=f"Beleg {bought.invoice_number}"),
    )
    assert "haben wir die Bestätigung an die E-Mail-Adresse des Kontos geschickt" in done.text
    assert "27. November 2026, 13:00:00 MEZ" in done.text  # received, in Berlin time, in German
    with container.uows().read() as uow:
        assert len(uow.refunds.for_account(jana.id)) == 1


# --- C27 at checkout --------------------------------------------------------------------


def boxes(html: str) -> list[str]:
    return [
        c
        for c in re.findall(r"<input[^>]+>", html)
        if 'name="immediate_start"' in c or 'name="withdrawal_right_waived"' in c
    ]


def test_c27_two_separate_unticked_boxes_are_offered_in_the_eu_and_uk_only(portal) -> None:  # type: ignore[no-untyped-def]
    client, _ = portal
    sign_in(client, "sam@example.com")  # United States
    assert boxes(client.get("/checkout?plan=antivirus-annual").text) == []
    sign_in(client)  # Alex, United Kingdom
    html = client.get("/checkout?plan=antivirus-annual").text

    found = boxes(html)
    assert len(found) == 2 and all('type="checkbox"' in c for c in found)
    assert all("checked" not in c and "required" not in c for c in found)
    assert "Start my subscription now, before the 14-day withdrawal period ends." in html
    assert "I keep my right of withdrawal but pay for the days I used" in html
    assert html.index('name="withdrawal_right_waived"') < html.index('name="card_number"')


def test_c27_the_boxes_ticked_at_checkout_are_kept_with_the_consent(portal, jana: Account) -> None:  # type: ignore[no-untyped-def]
    client, container = portal
    sign_in(client, JANA, "correct horse battery")  # in Germany
    data = order_form(
        client,
        "antivirus-annual",
        currency="EUR",
        immediate_start="yes",
        withdrawal_right_waived="yes",
    )
    data.pop("payment_method")
    placed = client.post("/checkout", data=data)
    assert placed.status_code == 303, placed.text

    with container.engine.connect() as connection:
        kept = connection.execute(
            select(consents.c.immediate_start, consents.c.withdrawal_right_waived)
        ).all()
    assert [tuple(row) for row in kept] == [(True, True)]
    done = client.get(placed.headers["location"]).text
    assert "a withdrawal refunds the price less the days used" in done
