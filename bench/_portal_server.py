"""The portal under test, in processes of its own, served as `fairsub serve` serves it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import httpx

from _portal_data import COOKIES, PASSWORD, Population
from _support import (
    SECRET_KEY,
    children,
    free_port,
)

BENCH_DIR = Path(__file__).resolve().parent
CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


class Server:
    """The portal under test, in processes of its own, served as `fairsub serve` serves."""

    def __init__(self, url: str, data_dir: Path, *, relay: str, workers: int) -> None:
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
        self.env.update(
            FAIRSUB_DATABASE_URL=url,
            FAIRSUB_DATA_DIR=str(data_dir),
            FAIRSUB_SECRET_KEY=SECRET_KEY,
            FAIRSUB_BASE_URL=self.base_url,
            FAIRSUB_MAIL_BACKEND="maildir",
            FAIRSUB_ENV="dev",  # production refuses maildir; dev adds one footer line
            BENCH_RELAY=relay,
            PYTHONUNBUFFERED="1",
        )
        self.cwd = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        command = [
            sys.executable, str(BENCH_DIR / "serve_app.py"), "--port", str(self.port),
            "--workers", str(self.workers),
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log_tail()}")
            if self._all_workers_answer():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def _all_workers_answer(self) -> bool:
        """Whether every worker answers yet: each new connection goes to one of them."""
        heard: set[int] = set()
        for _ in range(20 * self.workers):
            with suppress(httpx.HTTPError):
                answer = httpx.get(
                    f"{self.base_url}/bench/stats", headers={"Connection": "close"}, timeout=2
                )
                heard.add(answer.json()["pid"])
            if len(heard) == self.workers:
                return True
        return False

    def worker_pids(self) -> list[int]:
        """The processes that answer: the workers, or the server itself if it has none."""
        found = [
            pid
            for pid in children(self.pid)
            if b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        return found or [self.pid]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def check_real_flow(server: Server, population: Population) -> None:
    """Once, through real HTTP: sign in with POST /login, see the dashboard, and check that
    the turn-off form carries the CSRF token the load generator is going to send."""
    victim = population.users[-1]
    with httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=30) as client:
        page = client.get("/login")
        token = CSRF_INPUT.search(page.text)
        if page.status_code != 200 or token is None:
            raise RuntimeError(f"GET /login: {page.status_code}, no csrf_token field")
        signed_in = client.post(
            "/login",
            data={
                "email": victim.email,
                "password": PASSWORD,
                "next": "/account",
                "csrf_token": token.group(1),
            },
        )
        if signed_in.status_code != 303 or COOKIES.session_name not in client.cookies:
            raise RuntimeError(f"POST /login: {signed_in.status_code}, no session cookie")
        dashboard = client.get("/account")
        if dashboard.status_code != 200 or "data-subscription=" not in dashboard.text:
            raise RuntimeError(f"GET /account after POST /login: {dashboard.status_code}")
        user_index, sub_id = population.turnable[-1]
        user = population.users[user_index]
        form = client.get(
            f"/account/subscriptions/{sub_id}/turn-off", headers={"Cookie": user.cookie}
        )
        found = CSRF_INPUT.search(form.text)
        if form.status_code != 200 or found is None or found.group(1) != user.csrf:
            raise RuntimeError(f"turn-off form: {form.status_code}, CSRF token not as expected")
