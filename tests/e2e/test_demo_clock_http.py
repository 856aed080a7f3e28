"""The demo's clock control (FAIRSUB_CLOCK=test): days pass with their billing work, and
whoever pressed the button is still signed in afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fairsub.adapters.clock import OffsetFileClock
from fairsub.bootstrap import Container
from tests.builders import Demo
from tests.e2e.test_portal_http import csrf, seeded_portal, sign_in
from tests.fakes import FakeMailer


@pytest.fixture
def demo(
    sqlite_url: str, tmp_path: Path, mailer: FakeMailer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Container, Demo]]:
    monkeypatch.setenv("FAIRSUB_CLOCK", "test")  # the footer's clock control is shown
    clock = OffsetFileClock(tmp_path / "test-clock.json")
    with seeded_portal(sqlite_url, tmp_path, clock, mailer) as opened:
        yield opened


def advance(client: TestClient, days: int) -> None:
    response = client.post(
        "/dev/clock/advance",
        data={"days": str(days), "back": "/account", "csrf_token": csrf(client, "/contact")},
    )
    assert response.status_code == 303 and response.headers["location"] == "/account"


def test_thirty_days_pass_and_the_customer_is_still_signed_in(
    demo: tuple[TestClient, Container, Demo],
) -> None:
    client, container, _ = demo
    assert sign_in(client).status_code == 303
    assert 'action="/dev/clock/advance"' in client.get("/account").text
    before = container.clock.now()

    advance(client, 30)

    assert container.clock.now() - before >= timedelta(days=30)
    page = client.get("/account")
    assert page.status_code == 200  # not sent to /login: the session came along
    assert "Sign out" in page.text


def test_a_session_idle_for_real_still_expires_after_the_clock_moves(
    demo: tuple[TestClient, Container, Demo],
) -> None:
    client, container, _ = demo
    assert sign_in(client).status_code == 303
    advance(client, 1)
    assert isinstance(container.clock, OffsetFileClock)
    container.clock.advance(timedelta(minutes=31))  # away from the page, not pressing it

    response = client.get("/account")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_moving_the_clock_signed_out_signs_no_one_in(
    demo: tuple[TestClient, Container, Demo],
) -> None:
    client, _, _ = demo
    advance(client, 2)
    response = client.get("/account")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
