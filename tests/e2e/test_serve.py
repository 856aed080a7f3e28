"""`fairsub serve` as an operator runs it: a real server process and its email relay process.

The relay runs in a process of its own (so rendering email never holds the web process's
interpreter lock) and is woken by every commit that queues an email. These tests start the
command, turn auto-renew off over HTTP, read the confirmation at a real SMTP server, and stop
or kill the server to see the relay go with it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fairsub.services.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.conftest import free_port
from tests.e2e.conftest import SmtpInbox
from tests.e2e.live_portal import wait_until
from tests.e2e.test_cli import FAIRSUB, run

REFERENCE = re.compile(r"FS-[0-9A-Z]{4}-[0-9A-Z]{4}")
RELAY_MODULE = "fairsub.entrypoints.relay_process"


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


class Served:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process, self.url = process, url

    def relays(self) -> list[int]:
        return [pid for pid in children(self.process.pid) if RELAY_MODULE in command_line(pid)]


@pytest.fixture
def served(tmp_path: Path, smtp_server: tuple[SmtpInbox, int]) -> Iterator[Served]:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    assert run(tmp_path, "seed-demo").returncode == 0
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
    environment.update(
        FAIRSUB_DATA_DIR=str(tmp_path / "var"),
        FAIRSUB_MAIL_BACKEND="smtp",
        FAIRSUB_SMTP_HOST="127.0.0.1",
        FAIRSUB_SMTP_PORT=str(smtp_server[1]),
        FAIRSUB_BASE_URL=f"http://127.0.0.1:{port}",
        FAIRSUB_LOG_LEVEL="warning",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*FAIRSUB, "serve", "--port", str(port)],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}")

    def answering() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{served.url}/login", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answering, "fairsub serve to answer", 30)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def turn_off_one(url: str) -> str:
    """Sign in as the demo customer and turn off the first subscription offered; the
    reference shown on the confirmation page."""

    def token(client: httpx.Client, path: str) -> str:
        found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get(path).text)
        assert found, f"no form on {path}"
        return found.group(1)

    with httpx.Client(base_url=url, follow_redirects=True, timeout=10) as client:
        signed_in = client.post(
            "/login",
            data={
                "email": DEMO_EMAIL,
                "password": DEMO_PASSWORD,
                "next": "/account",
                "csrf_token": token(client, "/login"),
            },
        )
        assert signed_in.url.path == "/account"
        found = re.search(r'href="(/account/subscriptions/\d+/turn-off)"', signed_in.text)
        assert found, "the demo customer has nothing to turn off"
        done = client.post(found.group(1), data={"csrf_token": token(client, found.group(1))})
        assert done.status_code == 200 and "Auto-renew: Off" in done.text
        (reference,) = set(REFERENCE.findall(done.text))
        return reference


def test_serve_sends_the_turn_off_email_from_a_relay_process_of_its_own(
    served: Served, inbox: SmtpInbox
) -> None:
    (relay,) = served.relays()
    reference = turn_off_one(served.url)

    def arrived() -> bool:
        return any(reference in str(m["Subject"]) + m.as_string() for m in inbox.messages)

    wait_until(arrived, f"the email for {reference}", 30)
    assert served.relays() == [relay]  # still the same process, serving on

    served.process.send_signal(signal.SIGINT)  # Ctrl-C at the terminal
    assert served.process.wait(30) == 0
    wait_until(lambda: not alive(relay), "the relay to stop with the server", 15)


def test_the_relay_does_not_outlive_a_killed_server(served: Served) -> None:
    (relay,) = served.relays()
    served.process.kill()
    served.process.wait(10)
    wait_until(lambda: not alive(relay), "the relay to notice the server has gone", 15)


def test_serve_no_relay_starts_no_relay_process(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
    environment.update(FAIRSUB_DATA_DIR=str(tmp_path / "var"))
    process = subprocess.Popen(
        [*FAIRSUB, "serve", "--port", str(port), "--no-relay"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def answering() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answering, "fairsub serve to answer", 30)
        assert not [p for p in children(process.pid) if RELAY_MODULE in command_line(p)]
    finally:
        process.kill()
        process.wait(10)
