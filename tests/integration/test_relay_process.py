"""The email relay process `fairsub serve` runs: woken by each commit, gone with its server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fairsub.adapters.clock import SystemClock
from fairsub.adapters.email.maildir import MaildirMailer
from fairsub.bootstrap import Container
from fairsub.entrypoints.relay_process import NICENESS, RelayProcess
from fairsub.services import accounts
from fairsub.services.demo import DEMO_EMAIL
from fairsub.services.ports import EmailMessage
from tests.builders import seeded
from tests.conftest import make_container
from tests.e2e.live_portal import wait_until

AN_HOUR = 3600.0


@pytest.fixture
def container(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Container]:
    """A container in this process and, through the environment, the same settings for the
    relay process (it reads them as `fairsub serve` would)."""
    for name in [k for k in os.environ if k.startswith("FAIRSUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FAIRSUB_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("FAIRSUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FAIRSUB_LOG_LEVEL", "warning")
    built = make_container(sqlite_url, tmp_path, SystemClock())
    seeded(built)
    yield built
    built.close()


def sent(container: Container) -> int:
    mailbox = container.mailer
    assert isinstance(mailbox, MaildirMailer)
    return len(mailbox.messages())


def ask_for_a_reset(container: Container) -> None:
    accounts.request_password_reset(container.uows(), container.clock, email=DEMO_EMAIL)


def test_each_commit_that_queues_email_wakes_the_relay_process(container: Container) -> None:
    relay = RelayProcess(interval=AN_HOUR)  # no pass of its own until an hour has gone
    relay.start()
    container.uows.on_commit = relay.nudge
    try:
        ask_for_a_reset(container)
        wait_until(lambda: sent(container) == 1, "the first email", 30)
        # The relay has done its first pass by now, so only the nudge can send this one.
        ask_for_a_reset(container)
        wait_until(lambda: sent(container) == 2, "the second email, after a nudge", 30)
    finally:
        relay.stop()


def test_a_relay_killed_from_outside_is_started_again_by_the_next_commit(
    container: Container,
) -> None:
    relay = RelayProcess(interval=AN_HOUR)
    relay.RESTART_AFTER = 0.0  # an hour-long test otherwise
    relay.start()
    container.uows.on_commit = relay.nudge
    try:
        ask_for_a_reset(container)
        wait_until(lambda: sent(container) == 1, "the first email", 30)
        first = relay._process
        assert first is not None
        first.kill()
        first.wait(10)
        ask_for_a_reset(container)  # its commit finds the relay gone and starts another
        wait_until(lambda: sent(container) == 2, "the email after the restart", 30)
        assert relay._process is not first and relay._process.poll() is None
    finally:
        relay.stop()


def test_stop_ends_the_process_and_later_nudges_are_harmless(container: Container) -> None:
    relay = RelayProcess(interval=AN_HOUR)
    relay.start()
    process = relay._process
    assert process is not None and process.poll() is None
    relay.stop()
    assert process.poll() == 0  # it finished its batch and left on its own
    relay.nudge()  # a commit racing the shutdown: nothing to wake, and no error
    relay.stop()  # stopping twice is fine too


def test_the_mailbox_reads_and_files_while_another_process_is_making_it(tmp_path: Path) -> None:
    """`fairsub serve`'s relay files into the Maildir while the web process reads it for
    /dev/mailbox. mailbox.Maildir makes tmp/, new/ and cur/ one after the other, so the
    reader could find the folder without cur/ (this test failed once in CI that way)."""
    folder = tmp_path / "mailbox"
    folder.mkdir()  # made by the other process, which has not got to tmp/, new/, cur/ yet
    (folder / "tmp").mkdir()
    box = MaildirMailer(folder, "Larkspur <no-reply@larkspur.example>")
    assert box.messages() == []
    filed = EmailMessage(
        to="someone@example.com",
        subject="Filed",
        text="Plain.",
        html="<p>Plain.</p>",
        message_id="<filed@larkspur.example>",
        written_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
    )
    assert box.deliver([filed]) == [None]
    assert [m.subject for m in box.messages()] == ["Filed"]


def test_the_relay_process_runs_at_a_lower_priority_than_its_server(
    container: Container,
) -> None:
    relay = RelayProcess(interval=AN_HOUR)
    relay.start()
    container.uows.on_commit = relay.nudge
    try:
        ask_for_a_reset(container)
        wait_until(lambda: sent(container) == 1, "the first email", 30)  # past its start-up
        assert relay._process is not None
        server = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, relay._process.pid) == min(server + NICENESS, 19)
    finally:
        relay.stop()
