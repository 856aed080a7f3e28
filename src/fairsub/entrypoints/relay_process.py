"""The email relay in a process of its own, beside the web server `fairsub serve` runs.

Rendering and sending email is CPU work. In a thread of the web process it would hold the
interpreter lock while pages wait (a turn-off's p99 went from about 50 to 190 ms under load);
in its own process the operating system gives it the other core, at a lower priority
than the server's (NICENESS).

The server keeps the write end of a pipe. Every commit that queued an email writes one byte
to it, so the email still goes out at once; the relay reads the pipe and sends. When the
server exits, for any reason, the pipe closes and the relay stops after the batch in hand.
Anything unsent stays in the outbox for the next relay: nothing is lost either way.

    python -m fairsub.entrypoints.relay_process FD INTERVAL   (started by RelayProcess)
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from enum import StrEnum

import structlog

log = structlog.get_logger(__name__)

GATHER = 0.25  # seconds: under load, the most an email waits for others to go with it
# The relay runs at this much lower priority than its server. An email may wait a second
# while the machine is busy; a customer's page should not. At the same priority, under a
# stream of turn-offs on 2 cores, the relay took CPU from the server and PostgreSQL and
# the turn-off's p99 was 98-117 ms; niced, 69-75 ms, with the email a few seconds behind
# at the peak (bench/portal.py prints how far) and caught up when it passed.
NICENESS = 10


class Relay(StrEnum):
    """Where queued email is sent from while the portal runs."""

    PROCESS = "process"  # a process of its own, woken at each commit: what `fairsub serve` does
    THREAD = "thread"  # a thread of this process: tests with their own mailer, and the demo
    OFF = "off"  # elsewhere: a `fairsub worker` sends it


class RelayProcess:
    """Starts, wakes and stops the relay process. `nudge` is safe from any thread.

    A relay that has died (killed from outside, say) is started again by the next nudge,
    at most once every RESTART_AFTER seconds; meanwhile its email waits in the outbox."""

    RESTART_AFTER = 10.0

    def __init__(self, *, interval: float = 5.0) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._pipe: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0

    def start(self) -> None:
        with self._lock:
            self._spawn()

    def _spawn(self) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(read_end), str(self._interval)],
                pass_fds=(read_end,),
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._pipe = write_end
        self._started = time.monotonic()

    def _revive_if_gone(self) -> None:
        process = self._process
        if process is None or process.poll() is None:
            return
        if time.monotonic() - self._started < self.RESTART_AFTER:
            return
        log.warning("email_relay_restarted", pid=process.pid, exit_code=process.returncode)
        if self._pipe is not None:
            os.close(self._pipe)
        self._spawn()

    def nudge(self) -> None:
        with self._lock:
            if self._pipe is None:
                return
            self._revive_if_gone()
            # A full pipe already holds a wake-up; a relay that has just gone leaves the
            # email in the outbox for the one that replaces it.
            with suppress(BlockingIOError, BrokenPipeError):
                os.write(self._pipe, b"\0")

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._pipe is not None:
                os.close(self._pipe)  # the relay's cue to finish its batch and exit
                self._pipe = None
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("email_relay_killed", pid=self._process.pid, after_s=timeout)
                self._process.kill()
                self._process.wait()
            self._process = None


def main(pipe: int, interval: float) -> None:
    from fairsub.bootstrap import bootstrap
    from fairsub.config import Settings
    from fairsub.entrypoints import heap

    # Ctrl-C at a terminal, or a service manager stopping the unit, signals the whole
    # process group. The relay ends when the server's end of the pipe closes instead, which
    # happens however the server ends, so a batch is never cut short between sending and
    # marking it sent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Behind the server in the queue for a core: see NICENESS.
    os.nice(NICENESS)
    container = bootstrap(Settings())
    heap.settle()

    last_pass = 0.0

    def wait(seconds: float) -> bool:
        nonlocal last_pass
        ready, _, _ = select.select([pipe], [], [], seconds)
        if ready:
            if os.read(pipe, 4096) == b"":
                return False  # the server has closed its end
            # Under load, let more commits queue their email for GATHER after the last
            # pass, so a pass sends them together: the relay then takes the write lock
            # twice a batch rather than twice an email. After a quiet spell, at once.
            pause = last_pass + GATHER - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        last_pass = time.monotonic()
        return True

    try:
        container.relay.serve(wait, interval)
    finally:
        container.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
