"""The append-only, hash-chained audit log."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fairsub.adapters.db.bulk import inserting
from fairsub.adapters.db.tables import audit_events, audit_head
from fairsub.domain.audit import GENESIS, AuditEntry, chain_hash

VERIFY_BATCH = 5000

# Built once: compiling a statement costs more than running it on a small row.
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
_ADD = inserting(audit_events, [c.name for c in audit_events.c])
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("b_seq"), hash=bindparam("b_hash"))
)

# One entry, and the head moved to it, in one statement (PostgreSQL runs the UPDATE in
# the CTE): the head takes the entry's own seq and hash parameters.
_ADD_ONE_MOVING_HEAD = (
    insert(audit_events)
    .values({c.name: bindparam(c.name, type_=c.type) for c in audit_events.c})
    .add_cte(
        update(audit_head)
        .where(audit_head.c.id == 1)
        .values(seq=bindparam("seq"), hash=bindparam("hash"))
        .cte("moved_head")
    )
)


class SqlAuditLog:
    def __init__(self, connection: Connection) -> None:
        self._c = connection
        # This transaction's view of the head, once it holds the head's lock.
        self._head_cache: tuple[int, str] | None = None

    def _head(self) -> tuple[int, str]:
        row = self._c.execute(_HEAD).first()
        if row is None:
            # The very first entry: two writers may race to create the head. One insert
            # wins; the other does nothing and then waits on the winner's lock.
            insert_ = pg_insert if self._c.dialect.name == "postgresql" else sqlite_insert
            self._c.execute(
                insert_(audit_head).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing()
            )
            row = self._c.execute(_HEAD).one()
        return int(row.seq), str(row.hash)

    def append(self, entry: AuditEntry) -> int:
        self.append_many([entry])
        assert self._head_cache is not None
        return self._head_cache[0]

    def append_many(self, entries: Sequence[AuditEntry]) -> None:
        """Chain the entries after the head, in order: one insert and one head move."""
        if not entries:
            return
        seq, digest = self._head_cache or self._head()
        rows = []
        for entry in entries:
            seq += 1
            digest = chain_hash(digest, entry, seq)
            rows.append(
                {
                    "seq": seq,
                    "account_id": entry.account_id,
                    "at": entry.at,
                    "actor": entry.actor,
                    "channel": entry.channel,
                    "action": entry.action,
                    "subject": entry.subject,
                    "before": entry.before,
                    "after": entry.after,
                    "reason": entry.reason,
                    "hash": digest,
                }
            )
        if len(rows) == 1 and self._c.dialect.name == "postgresql":
            # A portal write holds the head, which every audited write waits for, from
            # here to its commit: move it in the INSERT's CTE, one round trip, not two.
            self._c.execute(_ADD_ONE_MOVING_HEAD, rows[0])
        else:
            _ADD.execute(self._c, rows)
            self._c.execute(_MOVE_HEAD, {"b_seq": seq, "b_hash": digest})
        self._head_cache = (seq, digest)

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
