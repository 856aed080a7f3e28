"""Fixtures for browser tests: the real portal over HTTP, a real SMTP server, Chromium;
and the command line run in this process (`fairsub`).

Each test gets a fresh, migrated SQLite database seeded with the demo data, a portal served
by uvicorn whose outbox relay sends mail over SMTP to an aiosmtpd server kept by the test,
and a new browser context. The clock is a FakeClock, so every date on the pages is known.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from fairsub.bootstrap import Container
from fairsub.entrypoints import heap
from fairsub.entrypoints.cli.main import app
from tests.builders import seeded
from tests.conftest import CHROMIUM, free_port, make_container, require
from tests.e2e.live_portal import LivePortal, running_portal
from tests.fakes import FakeClock

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class SmtpInbox:
    """An aiosmtpd handler that keeps every message it receives, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def with_subject(self, text: str) -> list[EmailMessage]:
        return [m for m in list(self.messages) if text in str(m["Subject"])]


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpInbox, int]]:
    inbox = SmtpInbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=free_port(), server_hostname="localhost"
    )
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
def inbox(smtp_server: tuple[SmtpInbox, int]) -> SmtpInbox:
    return smtp_server[0]


@pytest.fixture
def live_portal(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, smtp_server: tuple[SmtpInbox, int]
) -> Iterator[LivePortal]:
    """The portal with the demo data, mailing over SMTP; its relay runs as in production."""

    def build(url: str) -> Container:
        container = make_container(
            sqlite_url,
            tmp_path,
            clock,
            mail_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=smtp_server[1],
            base_url=url,
            log_level="warning",
        )
        seeded(container)
        return container

    with running_portal(build) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require(os.path.exists(CHROMIUM), "Debian chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class PageOpener:
    """Opens pages in new browser contexts pointed at the portal; closes them afterwards."""

    def __init__(self, browser: Browser, portal: LivePortal) -> None:
        self._browser, self._portal = browser, portal
        self._contexts: list[BrowserContext] = []

    def __call__(self, **options: Any) -> Page:
        options.setdefault("viewport", {"width": 1200, "height": 900})
        context = self._browser.new_context(base_url=self._portal.url, **options)
        self._contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    def close(self) -> None:
        for context in self._contexts:
            context.close()


@pytest.fixture
def open_page(browser: Browser, live_portal: LivePortal) -> Iterator[PageOpener]:
    opener = PageOpener(browser, live_portal)
    try:
        yield opener
    finally:
        opener.close()


@pytest.fixture
def page(open_page: PageOpener) -> Page:
    """A signed-out page, 1200 px wide, in a fresh context; goto("/login") is relative."""
    return open_page()


Fairsub = Callable[..., tuple[int, str, str]]


@pytest.fixture
def fairsub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Fairsub:
    """`fairsub ARGS` with the FAIRSUB_* variables given: (exit code, stdout, stderr)."""
    for name in [n for n in os.environ if n.startswith("FAIRSUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's, and nothing left where pytest runs
    monkeypatch.setenv("FAIRSUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(heap, "settle", lambda: None)  # no freezing pytest's own heap

    def run(*args: str, **env: str) -> tuple[int, str, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit) as exited:
            app(list(args), prog_name="fairsub")
        said = capsys.readouterr()
        code = exited.value.code
        return (code if isinstance(code, int) else 0), said.out, said.err

    return run


def one_line(stderr: str) -> str:
    (line,) = stderr.splitlines()
    assert "Traceback" not in stderr
    return line
