"""The outbox relay: sends queued emails after their transaction committed, and retries.

Each email is leased with a conditional UPDATE before sending, so several relays (the web
server's and a worker's) never send the same row at once, and no transaction stays open
while talking to the mail server. A crash after sending and before marking sends again on
the next lease: delivery is at least once, with a stable Message-ID for the duplicate.
A lease counts in real time, whatever clock the email's due times follow: when it counted
in the test clock's time, a day's jump ended it mid-send and a second relay sent the same
email (the demo did, after "+30 days").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from fairsub.adapters.db.outbox import PendingEmail, SqlOutbox
from fairsub.adapters.db.uow import SqlUnitOfWorkFactory
from fairsub.adapters.email.render import EmailRenderer
from fairsub.services.ports import Clock, EmailMessage, Mailer

log = structlog.get_logger(__name__)

LEASE = timedelta(minutes=2)
MAX_BACKOFF = timedelta(hours=1)
# A pass that fails as a whole (the database is down, say) waits twice as long after each
# failure in a row, up to this many seconds, and logs one line a wait rather than a
# traceback a second.
RELAY_BACKOFF_CAP = 60.0


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=15 * 2**attempts), MAX_BACKOFF)


@dataclass(frozen=True, slots=True)
class RelayResult:
    sent: int
    failed: int


class OutboxRelay:
    def __init__(
        self,
        uows: SqlUnitOfWorkFactory,
        mailer: Mailer,
        renderer: EmailRenderer,
        clock: Clock,
        batch: int = 50,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uows, self._mailer, self._renderer = uows, mailer, renderer
        self._clock, self._batch = clock, batch
        # Leases are about relays, which run in real time: `wall`, never the test clock.
        self._wall = wall
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _lease(self, now: datetime) -> list[PendingEmail]:
        with self._uows().write() as uow:
            box = SqlOutbox(uow.connection)
            held_at = self._wall()
            leased = box.due(now, self._batch, held_at=held_at)
            box.lease([item.id for item in leased], held_at + LEASE)
            uow.commit()
        return leased

    def run_once(self) -> RelayResult:
        """Send one batch, over one connection to the mail server. What was sent is marked
        in one transaction at the end, and what failed in another, so the relay takes the
        database's write lock at most three times a batch rather than once an email; a
        crash in between sends those again after the lease, under the same Message-ID."""
        leased = self._lease(self._clock.now())
        rendered: list[tuple[PendingEmail, EmailMessage]] = []
        failed: list[tuple[PendingEmail, Exception]] = []
        for item in leased:
            try:
                message = self._renderer.render(
                    item.id, item.kind, item.recipient, item.payload, item.written_at
                )
            except Exception as error:  # noqa: BLE001 - any failure is retried later
                failed.append((item, error))
            else:
                rendered.append((item, message))
        outcomes = self._mailer.deliver([message for _, message in rendered]) if rendered else []
        sent: list[int] = []
        for (item, _), outcome in zip(rendered, outcomes, strict=True):
            if outcome is None:
                sent.append(item.id)
                log.info("email_sent", outbox_id=item.id, kind=item.kind)
            else:
                failed.append((item, outcome))
        if sent:
            with self._uows().write() as uow:
                SqlOutbox(uow.connection).mark_sent(sent, self._clock.now())
                uow.commit()
        if failed:
            self._retry_later(failed)
        return RelayResult(len(sent), len(failed))

    def _retry_later(self, failed: list[tuple[PendingEmail, Exception]]) -> None:
        now = self._clock.now()
        with self._uows().write() as uow:
            box = SqlOutbox(uow.connection)
            for item, error in failed:
                retry_at = now + backoff(item.attempts)
                log.warning(
                    "email_send_failed",
                    outbox_id=item.id,
                    kind=item.kind,
                    error=str(error),
                    retry_at=retry_at.isoformat(),
                )
                box.mark_failed(item.id, repr(error), retry_at)
            uow.commit()

    def drain(self) -> RelayResult:
        """Send everything due now; for the CLI and tests."""
        total_sent = total_failed = 0
        while True:
            result = self.run_once()
            total_sent += result.sent
            total_failed += result.failed
            if result.sent == 0:
                return RelayResult(total_sent, total_failed)

    def nudge(self) -> None:
        self._wake.set()

    def serve(
        self,
        wait: Callable[[float], bool],
        interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Send batches until `wait` says stop. After a batch, `wait(seconds)` waits that
        long or until woken (new email committed) and returns False to stop. With a backlog
        the next batch goes at once; `wait(0)` still gets the chance to stop it.

        A pass that fails (the database is down, say) backs off: it waits `interval`, then
        twice as long after each failure in a row, up to RELAY_BACKOFF_CAP seconds, and a
        wake-up meanwhile does not cut the wait short (every commit would otherwise bring
        the next failure at once). The first failure is logged with its traceback, later
        ones in one line each, saying when the relay tries again; a success ends it."""
        failures = 0
        while True:
            try:
                result = self.run_once()
            except Exception as error:
                failures += 1
                delay = min(max(interval, 1.0) * 2 ** (failures - 1), RELAY_BACKOFF_CAP)
                if failures == 1:
                    log.exception("outbox_relay_error", retry_in_s=delay)
                else:
                    log.warning(
                        "outbox_relay_still_failing",
                        failures=failures,
                        error=f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}",
                        retry_in_s=delay,
                    )
                deadline = monotonic() + delay
                while (left := deadline - monotonic()) > 0:
                    if not wait(left):
                        return
                continue
            if failures:
                log.info("outbox_relay_recovered", failures=failures)
                failures = 0
            backlog = result.sent + result.failed >= self._batch
            if not wait(0 if backlog else interval):
                return

    def start(self, interval: float = 5.0) -> None:
        """Serve in a thread of this process, woken by `nudge`."""

        def wait(seconds: float) -> bool:
            self._wake.wait(seconds)
            self._wake.clear()
            return not self._stop.is_set()

        self._thread = threading.Thread(
            target=self.serve, args=(wait, interval), name="outbox-relay", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            with suppress(RuntimeError):  # never started: a Ctrl-C cut start() short
                self._thread.join(timeout=10)
