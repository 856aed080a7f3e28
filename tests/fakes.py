"""In-memory stand-ins for the ports that talk to the world outside the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fairsub.services.ports import EmailMessage


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self._now = moment


class FakeMailer:
    """Records what would have been sent; can be told to fail like a server that is down."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.down = False

    def send(self, message: EmailMessage) -> None:
        if self.down:
            raise ConnectionRefusedError("SMTP server is down")
        self.sent.append(message)
