"""The background worker: the billing run, reminders and the email relay, on a loop.

`fairsub worker` runs it on its own; `fairsub demo` runs it in a thread beside the portal.
Several workers may run against one PostgreSQL: every step claims its rows first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import structlog

from fairsub.bootstrap import Container
from fairsub.entrypoints.stopping import sigterm_as_ctrl_c
from fairsub.services import billing, refunds
from fairsub.services.billing import RunSummary

log = structlog.get_logger(__name__)


class Worker:
    def __init__(
        self, container: Container, *, interval: float = 30.0, batch: int = 200, in_flight: int = 1
    ) -> None:
        self.container = container
        self.interval = interval
        self.batch = batch
        self.in_flight = in_flight
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one pass at a time within this process

    def run_once(self) -> RunSummary:
        """Everything due now: settle lost answers, renew, expire, remind, send email."""
        c = self.container
        with self._lock:
            summary = billing.run(
                c.uows, c.gateway, c.clock, batch=self.batch, in_flight=self.in_flight
            )
            summary.reminded = send_reminders(c)
            c.relay.drain()
            # Last: a refund policy file that does not parse stops only this step.
            refunds.settle(c.uows, c.gateway, c.clock, arrival=c.refund_policy().arrival)
        return summary

    def advance(self, days: int, progress: object = None) -> RunSummary:
        """Move the test clock a day at a time, doing each day's work, like days passing."""
        from fairsub.adapters.clock import OffsetFileClock

        clock = self.container.clock
        if not isinstance(clock, OffsetFileClock):
            raise TypeError("only the test clock can be moved")
        total = RunSummary()
        for _ in range(days):
            clock.advance(timedelta(days=1))
            total.add(self.run_once())
            if callable(progress):
                progress(1)
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                summary = self.run_once()
                if summary.credentials_refused:  # one line a pass: a setting to fix
                    log.error("gateway_credentials_refused", reason=summary.credentials_refused)
                if summary.charged or summary.declined or summary.unknown or summary.expired:
                    log.info(
                        "billing_pass",
                        charged=summary.charged,
                        declined=summary.declined,
                        unknown=summary.unknown,
                        expired=summary.expired,
                    )
            except Exception:
                log.exception("worker_pass_failed")
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="fairsub-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def forever(
        self, *, mail_every: float = 1.0, running: Callable[[], None] = lambda: None
    ) -> None:
        """Run in the foreground until interrupted (Ctrl-C or SIGTERM). The email relay runs
        beside the passes, looking for new email every `mail_every` seconds, so a portal
        served with `--no-relay` still has its confirmations sent within a second or so.

        `running` is called once the relay's thread is up: a stop that answers it (a
        service manager's, a test's) cannot land in the middle of starting that thread,
        which left it running unjoined while the database closed under it."""
        with sigterm_as_ctrl_c():
            self.container.relay.start(interval=mail_every)
            try:
                running()
                self._loop()
            except KeyboardInterrupt:
                self._stop.set()
            finally:
                self.container.relay.stop()


def send_reminders(container: Container) -> int:
    from fairsub.services import reminders

    return reminders.send_due_reminders(container.uows, container.clock)
