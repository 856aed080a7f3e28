"""The portal over HTTP: bad input, someone else's ids, forged forms, headers, cookies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fairsub.adapters.db.tables import cancellations, outbox
from fairsub.bootstrap import Container
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app
from fairsub.services.demo import DEMO_EMAIL, DEMO_PASSWORD
from fairsub.services.ports import Clock
from tests.builders import Demo, seeded
from tests.conftest import make_container
from tests.fakes import FakeClock, FakeMailer

REFERENCE = re.compile(r"FS-[0-9A-Z]{4}-[0-9A-Z]{4}")


@contextmanager
def seeded_portal(
    sqlite_url: str, tmp_path: Path, clock: Clock, mailer: FakeMailer
) -> Iterator[tuple[TestClient, Container, Demo]]:
    """The portal over the demo data, without a relay (the fake mailer is read directly)."""
    container = make_container(sqlite_url, tmp_path, clock, mailer)
    data = seeded(container)
    with TestClient(create_app(container, relay=Relay.OFF), follow_redirects=False) as client:
        yield client, container, data
    container.close()


@pytest.fixture
def portal(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> Iterator[tuple[TestClient, Container, Demo]]:
    with seeded_portal(sqlite_url, tmp_path, clock, mailer) as opened:
        yield opened


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path, follow_redirects=True)
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found, f"no form on {path}"
    return found.group(1)


def sign_in(client: TestClient, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "next": "/account",
            "csrf_token": csrf(client, "/login"),
        },
    )


def count(container: Container, table) -> int:  # type: ignore[no-untyped-def]
    with container.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_account_pages_need_sign_in(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, data = portal
    response = client.get(f"/account/subscriptions/{data.annual.id}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/account/subscriptions/{data.annual.id}"


def test_wrong_password_shows_the_form_again_with_a_message(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    response = sign_in(client, password="wrong-password")
    assert response.status_code == 401
    assert "That email and password do not match." in response.text
    assert 'value="demo@example.com"' in response.text  # what was typed is kept
    assert "fairsub_session" not in response.headers.get("set-cookie", "")


def test_sign_in_sets_a_fresh_httponly_samesite_session_cookie(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/account"
    cookie = next(c for c in response.headers.get_list("set-cookie") if "fairsub_session" in c)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    first = client.cookies.get("fairsub_session")
    sign_in(client)
    assert client.cookies.get("fairsub_session") != first  # rotated at every sign-in


def test_https_deployments_get_host_prefixed_secure_cookies(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> None:
    container = make_container(
        sqlite_url, tmp_path, clock, mailer, base_url="https://portal.larkspur.example"
    )
    seeded(container)
    with TestClient(
        create_app(container, relay=Relay.OFF),
        base_url="https://testserver",
        follow_redirects=False,
    ) as client:
        response = sign_in(client)
    container.close()
    cookie = next(c for c in response.headers.get_list("set-cookie") if "fairsub_session" in c)
    assert cookie.startswith("__Host-fairsub_session=")
    assert "Secure" in cookie and "Path=/" in cookie


def test_pages_carry_security_headers(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    headers = client.get("/login").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


def test_turn_off_without_csrf_token_is_refused_and_changes_nothing(portal) -> None:  # type: ignore[no-untyped-def]
    client, container, data = portal
    sign_in(client)
    response = client.post(f"/account/subscriptions/{data.annual.id}/turn-off", data={})
    assert response.status_code == 403
    assert "Nothing was changed" in response.text
    forged = client.post(
        f"/account/subscriptions/{data.annual.id}/turn-off", data={"csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    assert count(container, cancellations) == 0


def test_login_without_csrf_token_shows_the_form_again(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    client.get("/login")
    response = client.post("/login", data={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
    assert response.status_code == 403
    assert "<form" in response.text and "did not come from this site" in response.text


def test_c1_turn_off_is_two_clicks_from_the_dashboard_and_shows_proof(portal) -> None:  # type: ignore[no-untyped-def]
    client, container, data = portal
    sign_in(client)
    dashboard = client.get("/account")
    start = f"/account/subscriptions/{data.annual.id}/turn-off"
    assert f'href="{start}"' in dashboard.text  # click 1: on the dashboard itself
    token = csrf(client, start)
    done = client.post(start, data={"csrf_token": token})  # click 2: confirm
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert page.status_code == 200
    (reference,) = set(REFERENCE.findall(page.text))
    assert "Auto-renew: Off" in page.text
    assert "Active until" in page.text
    assert "GMT" in page.text  # C10: time of receipt with its zone
    assert count(container, cancellations) == 1
    after = client.get("/account").text
    assert "Active until" in after and reference not in after


def test_double_submit_gives_the_same_reference_and_one_email(portal) -> None:  # type: ignore[no-untyped-def]
    client, container, data = portal
    sign_in(client)
    path = f"/account/subscriptions/{data.monthly.id}/turn-off"
    token = csrf(client, path)
    first = client.post(path, data={"csrf_token": token})
    second = client.post(path, data={"csrf_token": token})
    assert first.headers["location"] == second.headers["location"]
    assert count(container, cancellations) == 1
    assert count(container, outbox) == 1


def test_another_customers_subscription_is_404_for_every_action(portal) -> None:  # type: ignore[no-untyped-def]
    client, container, data = portal
    sign_in(client)
    theirs = data.erikas.id
    token = csrf(client, "/account")
    assert client.get(f"/account/subscriptions/{theirs}").status_code == 404
    assert client.get(f"/account/subscriptions/{theirs}/turn-off").status_code == 404
    assert (
        client.post(
            f"/account/subscriptions/{theirs}/turn-off", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/account/subscriptions/{theirs}/turn-on", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert count(container, cancellations) == 0


def test_someone_elses_reference_is_404(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, data = portal
    sign_in(client, email="erika@example.com")
    path = f"/account/subscriptions/{data.erikas.id}/turn-off"
    location = client.post(path, data={"csrf_token": csrf(client, path)}).headers["location"]
    client.cookies.clear()
    sign_in(client)
    assert client.get(location).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/account/subscriptions/999999",
        "/account/subscriptions/not-a-number",
        "/account/cancellations/FS-0000-0000",
        "/account/cancellations/garbage",
        # Beyond a 64-bit id: names nothing, and must not reach the database (OverflowError).
        "/account/subscriptions/9223372036854775808",
        "/account/subscriptions/9223372036854775808/turn-off",
        "/account/subscriptions/9223372036854775808/cancel-now",
        "/account/billing/charges/9223372036854775808/question",
        "/account/billing/receipts/9223372036854775808",
        "/checkout/done/9223372036854775808",
        "/account/subscriptions/0",
    ],
)
def test_unknown_or_malformed_ids_get_a_clear_page_not_a_trace(portal, path: str) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    sign_in(client)
    response = client.get(path)
    assert response.status_code == 404
    assert "Traceback" not in response.text and "<form" in response.text  # the page, with nav


def test_posting_to_an_id_beyond_64_bits_is_404_and_changes_nothing(portal) -> None:  # type: ignore[no-untyped-def]
    client, container, data = portal
    sign_in(client)
    token = csrf(client, f"/account/subscriptions/{data.annual.id}/turn-off")
    before = count(container, cancellations)
    for action in ("turn-off", "turn-on"):
        path = f"/account/subscriptions/{2**64}/{action}"
        assert client.post(path, data={"csrf_token": token}).status_code == 404
    assert count(container, cancellations) == before


def test_head_is_answered_wherever_get_is_and_405_names_what_is_allowed(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    sign_in(client)
    for path in ("/account", "/account/billing", "/contact"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
    refused = client.put("/login")
    assert refused.status_code == 405
    assert "GET" in refused.headers["allow"]  # (Starlette names the first route's methods)


def test_a_body_larger_than_any_form_sends_is_refused_unread(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    token = csrf(client, "/contact")
    huge = {"csrf_token": token, "value": "x" * (300 * 1024)}
    response = client.post("/contact", data=huge)
    assert response.status_code == 413
    assert "Nothing was changed" in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("path", ["/login", "/contact", "/plans", "/terms", "/account"])
def test_no_page_is_kept_by_browsers_or_proxies(portal, path: str) -> None:  # type: ignore[no-untyped-def]
    # Every page's header says who is signed in, and every form carries a token.
    client, _, _ = portal
    sign_in(client)
    assert client.get(path).headers["cache-control"] == "no-store"


def test_a_form_token_from_before_signing_in_or_out_is_refused_after(portal) -> None:  # type: ignore[no-untyped-def]
    client, container, data = portal
    before = csrf(client, "/login")
    sign_in(client)
    path = f"/account/subscriptions/{data.annual.id}/turn-off"
    assert client.post(path, data={"csrf_token": before}).status_code == 403
    during = csrf(client, path)
    client.post("/logout", data={"csrf_token": during})
    sign_in(client)
    assert client.post(path, data={"csrf_token": during}).status_code == 403
    assert count(container, cancellations) == 0


def test_a_field_longer_than_the_form_allows_is_named_and_nothing_changes(portal) -> None:  # type: ignore[no-untyped-def]
    client, container, _ = portal
    before = count(container, outbox)
    answer = client.post(
        "/password-reset", data={"email": "x" * 400, "csrf_token": csrf(client, "/password-reset")}
    )
    assert answer.status_code == 422
    assert "The email sent was longer than 320 characters" in answer.text
    assert count(container, outbox) == before
    assert 'maxlength="320"' in client.get("/password-reset").text  # a browser stops there


def test_a_resellers_subscription_has_no_turn_off_form_to_fill_in_vain(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, data = portal
    sign_in(client)
    answer = client.get(f"/account/subscriptions/{data.resold.id}/turn-off")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/account/subscriptions/{data.resold.id}"


def test_every_page_has_one_main_heading(portal) -> None:  # type: ignore[no-untyped-def]
    # Screen readers jump by headings: the subscription's page had its name as an h2 only.
    client, _, data = portal
    sign_in(client)
    for path in (
        "/account",
        f"/account/subscriptions/{data.annual.id}",
        f"/account/subscriptions/{data.annual.id}/turn-off",
        "/account/billing",
        "/contact",
    ):
        assert client.get(path).text.count("<h1") == 1, path


def test_reseller_subscription_shows_where_to_cancel_instead_of_a_button(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, data = portal
    sign_in(client)
    page = client.get(f"/account/subscriptions/{data.resold.id}").text
    assert "Bluebird Software Store" in page and "BB-2026-118204" in page
    assert "https://store.bluebird.example/account/orders" in page
    assert f"/account/subscriptions/{data.resold.id}/turn-off" not in page


def test_empty_account_says_so(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    sign_in(client, email="sam@example.com")
    assert "No subscriptions yet" in client.get("/account").text


def test_login_redirect_never_leaves_the_site(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    response = client.post(
        "/login",
        data={
            "email": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
            "next": "//evil.example/phish",
            "csrf_token": csrf(client, "/login"),
        },
    )
    assert response.headers["location"] == "/account"


def test_c31_contact_checker_tells_ours_from_not_ours(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = portal
    token = csrf(client, "/contact")
    ours = client.post("/contact", data={"csrf_token": token, "value": "support@larkspur.example"})
    assert "is ours" in ours.text
    fake = client.post("/contact", data={"csrf_token": token, "value": "+1 555 0100 1234"})
    assert "is not ours" in fake.text and "Do not call it" in fake.text
    empty = client.post("/contact", data={"csrf_token": token, "value": "   "})
    assert empty.status_code == 422 and "Paste the phone number" in empty.text


def test_c10_confirmation_can_be_saved_as_a_file_without_javascript(portal) -> None:  # type: ignore[no-untyped-def]
    client, _, data = portal
    sign_in(client)
    path = f"/account/subscriptions/{data.annual.id}/turn-off"
    location = client.post(path, data={"csrf_token": csrf(client, path)}).headers["location"]
    reference = location.rsplit("/", 1)[1]
    saved = client.get(f"{location}.txt")
    assert saved.status_code == 200
    assert saved.headers["content-type"].startswith("text/plain")
    assert f'filename="{reference}.txt"' in saved.headers["content-disposition"]
    assert reference in saved.text and "Auto-renew:        Off" in saved.text
    assert "<demo@example.com>" in saved.text  # plain text, not HTML-escaped
