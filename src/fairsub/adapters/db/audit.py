"""The append-only, hash-chained audit log."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fairsub.adapters.db.tables import audit_events, audit_head
from fairsub.domain.audit import GENESIS, AuditEntry, chain_hash

VERIFY_BATCH = 5000


class SqlAuditLog:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        # This transaction's view of the head, once it holds the head's lock.
        self._head_cache: tuple[int, str] | None = None

    def _head(self) -> tuple[int, str]:
        query = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        row = self._c.execute(query.with_for_update()).first()
        if row is None:
            # The very first entry: two writers may race to create the head. One insert
            # wins; the other does nothing and then waits on the winner's lock.
            insert_ = pg_insert if self._c.dialect.name == "postgresql" else sqlite_insert
            self._c.execute(
                insert_(audit_head).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing()
            )
            row = self._c.execute(query.with_for_update()).one()
        return int(row.seq), str(row.hash)

    def append(self, entry: AuditEntry) -> int:
        seq, previous = self._head_cache or self._head()
        seq += 1
        digest = chain_hash(previous, entry, seq)
        self._c.execute(
            insert(audit_events).values(
                seq=seq,
                account_id=entry.account_id,
                at=entry.at,
                actor=entry.actor,
                channel=entry.channel,
                action=entry.action,
                subject=entry.subject,
                before=entry.before,
                after=entry.after,
                reason=entry.reason,
                hash=digest,
            )
        )
        self._c.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
        self._head_cache = (seq, digest)
        return seq

    def count(self) -> int:
        return int(self._c.execute(select(func.count()).select_from(audit_events)).scalar_one())

    def verify(self, progress: Callable[[int], None] | None = None) -> int | None:
        """Walk the chain in seq order, in batches so memory stays flat."""
        previous, expected_seq, after = GENESIS, 1, 0
        t = audit_events
        while True:
            rows = self._c.execute(
                select(t).where(t.c.seq > after).order_by(t.c.seq).limit(VERIFY_BATCH)
            ).all()
            if not rows:
                break
            for row in rows:
                entry = AuditEntry(
                    row.actor,
                    row.channel,
                    row.action,
                    row.subject,
                    row.account_id,
                    row.at,
                    row.before,
                    row.after,
                    row.reason,
                )
                if row.seq != expected_seq or chain_hash(previous, entry, row.seq) != row.hash:
                    return int(row.seq) if row.seq == expected_seq else expected_seq
                previous, expected_seq = row.hash, expected_seq + 1
            after = rows[-1].seq
            if progress:
                progress(len(rows))
        head = self._c.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
        if head is not None and (head.seq != expected_seq - 1 or head.hash != previous):
            return expected_seq  # entries were removed from the end
        return None
