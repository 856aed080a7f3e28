"""The outbox: emails written with the change they announce, sent by the relay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fairsub.adapters.db.bulk import inserting
from fairsub.adapters.db.tables import outbox
from fairsub.services.ports import OutboxMessage


@dataclass(frozen=True, slots=True)
class PendingEmail:
    id: int
    kind: str
    recipient: str
    payload: dict[str, Any]
    attempts: int
    written_at: datetime


# Insert unless the dedupe key is there, by dialect; built once.
_QUEUE_ONE = {
    name: insert_(outbox)
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(outbox.c.id)
    for name, insert_ in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_QUEUE = inserting(
    outbox,
    (
        "account_id",
        "kind",
        "recipient",
        "payload",
        "dedupe_key",
        "created_at",
        "attempts",
        "next_attempt_at",
    ),
    skip_conflicts_on=("dedupe_key",),
)


def _row(message: OutboxMessage, at: datetime) -> dict[str, Any]:
    return {
        "account_id": message.account_id,
        "kind": message.kind,
        "recipient": message.recipient,
        "payload": message.payload,
        "dedupe_key": message.dedupe_key,
        "created_at": at,
        "attempts": 0,
        "next_attempt_at": at,
    }


class SqlOutbox:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        self.added = False  # lets the unit of work wake the relay only when mail was queued

    def add(self, message: OutboxMessage, at: datetime) -> bool:
        """One statement: insert unless the dedupe key is already there."""
        row = self._c.execute(_QUEUE_ONE[self._c.dialect.name], _row(message, at)).first()
        if row is None:  # the key was there already (rowcount is unreliable with RETURNING)
            return False
        self.added = True
        return True

    def add_many(self, messages: Sequence[OutboxMessage], at: datetime) -> None:
        if messages:
            _QUEUE.execute(self._c, [_row(m, at) for m in messages])
            self.added = True

    def due(self, now: datetime, limit: int, *, held_at: datetime) -> list[PendingEmail]:
        """Unsent email due by `now` (the clock's time) that no relay holds at `held_at`
        (real time)."""
        query = (
            select(outbox)
            .where(
                outbox.c.sent_at.is_(None),
                outbox.c.next_attempt_at <= now,
                or_(outbox.c.leased_until.is_(None), outbox.c.leased_until <= held_at),
            )
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if self._c.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [
            PendingEmail(row.id, row.kind, row.recipient, row.payload, row.attempts, row.created_at)
            for row in self._c.execute(query)
        ]

    def lease(self, message_ids: Sequence[int], until: datetime) -> None:
        """Keep other relays off these messages until then, in real time (the caller
        selected them in this transaction: locked on PostgreSQL, the write lock held on
        SQLite)."""
        if message_ids:
            self._c.execute(
                update(outbox).where(outbox.c.id.in_(message_ids)).values(leased_until=until)
            )

    def mark_sent(self, message_ids: Sequence[int], at: datetime) -> None:
        if message_ids:
            self._c.execute(
                update(outbox)
                .where(outbox.c.id.in_(message_ids))
                .values(
                    sent_at=at, attempts=outbox.c.attempts + 1, last_error=None, leased_until=None
                )
            )

    def mark_failed(self, message_id: int, error: str, retry_at: datetime) -> None:
        self._c.execute(
            update(outbox)
            .where(outbox.c.id == message_id)
            .values(
                attempts=outbox.c.attempts + 1,
                last_error=error[:1000],
                next_attempt_at=retry_at,
                leased_until=None,
            )
        )

    def pending_count(self) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int(self._c.execute(query).scalar_one())
