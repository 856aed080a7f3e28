"""Email goes out through the outbox relay to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from fairsub.adapters.email.relay import LEASE, OutboxRelay
from fairsub.adapters.email.render import EmailRenderer, Site
from fairsub.adapters.email.smtp import SmtpMailer
from fairsub.bootstrap import Container
from fairsub.services.ports import EmailMessage as Outgoing
from tests.builders import seeded, turn_off
from tests.conftest import free_port, make_container
from tests.fakes import FakeClock, FakeMailer

WRITTEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


class Inbox:
    """What the server received. It refuses mail to REFUSED, as a server refuses an
    address that does not exist, ends the session on HANG_UP_ON, and counts its sessions
    (one EHLO each)."""

    REFUSED = "nobody@larkspur.example"
    HANG_UP_ON = "Hang up"  # a message with this subject is refused and the session ended

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.sessions = 0

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: object, session: Any, envelope: object, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: object, session: object, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address == self.REFUSED:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.content  # type: ignore[attr-defined]
        self.raw.append(raw)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message["Subject"] == self.HANG_UP_ON:
            return "421 4.3.2 Closing the session"
        self.messages.append(message)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on loopback that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_container(
    sqlite_url: str, tmp_path: Path, clock: FakeClock, smtp: SmtpServer
) -> Iterator[Container]:
    mailer = SmtpMailer(
        "127.0.0.1", smtp.port, "Larkspur Security <no-reply@larkspur.example>", timeout=5
    )
    built = make_container(
        sqlite_url, tmp_path, clock, mailer, base_url="https://portal.larkspur.example"
    )
    yield built
    built.close()


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_c11_confirmation_email_carries_the_reference_end_date_and_a_link(
    smtp_container: Container, smtp: SmtpServer
) -> None:
    data = seeded(smtp_container)
    cancellation = turn_off(smtp_container, data.alex, data.annual)

    result = smtp_container.relay.drain()

    assert (result.sent, result.failed) == (1, 0)
    (message,) = smtp.inbox.messages
    assert message["To"] == "demo@example.com"
    assert cancellation.reference in message["Subject"]
    text, html = parts(message)
    for body in (text, html):
        assert cancellation.reference in body
        assert "https://portal.larkspur.example/account/subscriptions/" in body
        assert "7 November 2027" in body  # ends_at, in the customer's zone and locale
        assert "GMT" in body  # received time carries its time zone


def test_c30_no_email_asks_anyone_to_call_a_number(
    smtp_container: Container, smtp: SmtpServer
) -> None:
    data = seeded(smtp_container)
    turn_off(smtp_container, data.alex, data.annual)
    smtp_container.relay.drain()
    text, html = parts(smtp.inbox.messages[0])
    for body in (text, html):
        assert "never ask you to call" in body
        assert not re.search(r"\+?\d[\d\s().-]{7,}\d", body.replace("2027", "").replace("2026", ""))


def test_email_waits_in_the_outbox_while_smtp_is_down_and_goes_out_when_it_returns(
    smtp_container: Container, smtp: SmtpServer, clock: FakeClock
) -> None:
    data = seeded(smtp_container)
    smtp.stop()
    cancellation = turn_off(smtp_container, data.alex, data.annual)

    down = smtp_container.relay.run_once()
    assert (down.sent, down.failed) == (0, 1)

    smtp.start()
    assert smtp_container.relay.run_once().sent == 0  # not before its retry time
    clock.advance(minutes=1)
    assert smtp_container.relay.run_once().sent == 1
    (message,) = smtp.inbox.messages
    assert cancellation.reference in message["Subject"]
    # Dated when the turn-off queued it, by fairsub's clock, not when SMTP came back.
    assert message["Date"].datetime == cancellation.received_at.replace(microsecond=0)
    assert smtp_container.relay.run_once().sent == 0  # sent once, not again


def test_relay_thread_sends_soon_after_commit(smtp_container: Container, smtp: SmtpServer) -> None:
    data = seeded(smtp_container)
    smtp_container.relay.start(interval=60)  # a long poll: only the commit's nudge is fast
    try:
        cancellation = turn_off(smtp_container, data.alex, data.annual)
        deadline = time.monotonic() + 10
        while not smtp.inbox.messages and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        smtp_container.relay.stop()
    assert smtp.inbox.messages, "email not sent within 10 s of the commit"
    assert cancellation.reference in smtp.inbox.messages[0]["Subject"]


def test_awkward_lines_arrive_over_smtp_as_written(smtp: SmtpServer) -> None:
    # smtplib writes the message out itself. Trailing blanks and long lines survive
    # quoted-printable, and a body holding "=_" cannot end its part (the boundary starts
    # "=_", which quoted-printable never writes, so the writer no longer searches for it).
    text = (
        "Your receipt.\ntrailing blanks   \n.\n--=_ not a boundary =_ either\n" + "x" * 200 + "\n"
    )
    html = f"<p>{text}</p>\n"
    mailer = SmtpMailer("127.0.0.1", smtp.port, "Larkspur <no-reply@larkspur.example>", timeout=5)

    sent = mailer.deliver(
        [Outgoing("jana@example.de", "Receipt — Lärkspur", text, html, "<8@l.example>", WRITTEN)]
    )

    assert sent == [None]
    [raw] = smtp.inbox.raw
    assert all(len(line) <= 78 for line in raw.splitlines())
    # As a mail client reads it: SMTP's CRLF line ends back to the text's own.
    message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert str(message["Subject"]) == "Receipt — Lärkspur"
    assert parts(message) == (text, html)


def test_a_batch_goes_over_one_session_and_a_refused_address_fails_alone(
    smtp: SmtpServer,
) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp.port, "Larkspur <no-reply@larkspur.example>", timeout=5)
    to = ["a@example.de", Inbox.REFUSED, "b@example.de", "c@example.de"]
    batch = [
        Outgoing(t, f"Note {n}", "Text.\n", "<p>Text.</p>\n", f"<{n}@l>", WRITTEN)
        for n, t in enumerate(to)
    ]

    outcomes = mailer.deliver(batch)

    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    assert isinstance(outcomes[1], smtplib.SMTPRecipientsRefused)
    assert [m["To"] for m in smtp.inbox.messages] == [
        "a@example.de",
        "b@example.de",
        "c@example.de",
    ]
    assert smtp.inbox.sessions == 1


def test_with_no_server_every_message_of_the_batch_fails_unsent(smtp: SmtpServer) -> None:
    smtp.stop()
    mailer = SmtpMailer("127.0.0.1", smtp.port, "Larkspur <no-reply@larkspur.example>", timeout=5)
    batch = [
        Outgoing(f"{n}@example.de", "Note", "Text.\n", "<p>Text.</p>\n", f"<{n}@l>", WRITTEN)
        for n in range(3)
    ]

    outcomes = mailer.deliver(batch)

    assert len(outcomes) == 3
    assert all(isinstance(o, ConnectionRefusedError) for o in outcomes)


def test_when_the_server_ends_the_session_the_rest_go_over_a_new_one(smtp: SmtpServer) -> None:
    mailer = SmtpMailer("127.0.0.1", smtp.port, "Larkspur <no-reply@larkspur.example>", timeout=5)
    subjects = ["First", Inbox.HANG_UP_ON, "Third", "Fourth"]
    batch = [
        Outgoing("a@example.de", s, "Text.\n", "<p>Text.</p>\n", f"<{n}@l>", WRITTEN)
        for n, s in enumerate(subjects)
    ]

    outcomes = mailer.deliver(batch)

    assert isinstance(outcomes[1], smtplib.SMTPDataError)
    assert outcomes[:1] + outcomes[2:] == [None, None, None]
    assert [m["Subject"] for m in smtp.inbox.messages] == ["First", "Third", "Fourth"]
    assert smtp.inbox.sessions == 2


class HeldMailer(FakeMailer):
    """Holds its first batch until released, as a slow mail server holds a relay."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()
        self._first = True

    def deliver(self, messages: Sequence[Outgoing]) -> list[Exception | None]:
        if self._first:
            self._first = False
            self.holding.set()
            self.release.wait(10)
        return super().deliver(messages)


def test_a_day_passing_while_the_relay_sends_does_not_send_its_email_twice(
    db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    # The demo's "+1 day" runs the day's work, email included, while the relay thread may
    # be sending: its lease must outlast the clock's jump (it did not when it counted in
    # the clock's time).
    mailer = HeldMailer()
    container = make_container(db_url, tmp_path, clock, mailer)
    try:
        data = seeded(container)
        turn_off(container, data.alex, data.annual)
        sending = threading.Thread(target=container.relay.run_once)
        sending.start()
        assert mailer.holding.wait(10)
        clock.advance(days=1)
        days_work = threading.Thread(target=container.relay.run_once)
        days_work.start()
        time.sleep(0.3)  # long enough for the day's pass to take what it finds
        mailer.release.set()
        sending.join(10)
        days_work.join(10)
    finally:
        container.close()
    ids = [message.message_id for message in mailer.sent]
    assert ids, "nothing was sent"
    assert len(ids) == len(set(ids)), f"sent twice: {sorted(ids)}"


class CrashingMailer(FakeMailer):
    """Dies mid-send, as a relay process killed while talking to the mail server."""

    def deliver(self, messages: Sequence[Outgoing]) -> list[Exception | None]:
        raise SystemExit("killed mid-send")


def test_email_leased_by_a_relay_that_died_goes_out_after_the_lease_in_real_time(
    db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    container = make_container(db_url, tmp_path, clock, FakeMailer())
    wall = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))  # real time, apart from the test clock
    site = Site(
        base_url="http://fairsub.test",
        vendor="Larkspur",
        sender="Larkspur <billing@larkspur.example>",
        message_domain="larkspur.example",
    )

    def relay(mailer: FakeMailer) -> OutboxRelay:
        return OutboxRelay(container.uows, mailer, EmailRenderer(site), clock, wall=wall.now)

    try:
        data = seeded(container)
        turn_off(container, data.alex, data.annual)
        with pytest.raises(SystemExit):
            relay(CrashingMailer()).run_once()
        survivor = FakeMailer()
        clock.advance(days=30)  # however far the test clock moves, the lease holds
        assert relay(survivor).run_once().sent == 0
        wall.advance(seconds=LEASE.total_seconds() + 1)
        assert relay(survivor).drain().sent >= 1
    finally:
        container.close()
    assert any("Auto-renew is off" in message.subject for message in survivor.sent)
