"""The append-only, hash-chained audit log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fairsub.adapters.db.bulk import inserting
from fairsub.adapters.db.tables import audit_events, audit_head
from fairsub.domain.audit import GENESIS, AuditEntry, around_seq, chain_hash

VERIFY_BATCH = 5000

# Built once: compiling a statement costs more than running it on a small row.
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
_ADD = inserting(audit_events, [c.name for c in audit_events.c])
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("b_seq"), hash=bindparam("b_hash"))
)

# On PostgreSQL, one entry is linked and written in one statement: the UPDATE takes the
# head's lock, moves it on and computes the new link, sha256(previous hash || the entry's
# canonical form with the new seq put in), exactly as chain_hash does; the INSERT writes
# the entry with them. The head stays locked from here to the commit, which every audited
# write waits for: one round trip and the commit, where reading the head first took two.
_LINKED_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(
        seq=audit_head.c.seq + 1,
        hash=func.encode(
            func.sha256(
                func.convert_to(
                    audit_head.c.hash
                    + bindparam("before_seq", type_=Text)
                    + cast(audit_head.c.seq + 1, Text)
                    + bindparam("after_seq", type_=Text),
                    literal_column("'UTF8'"),
                )
            ),
            literal_column("'hex'"),
        ),
    )
    .returning(audit_head.c.seq, audit_head.c.hash)
    .cte("linked_head")
)
_FIELDS = ("account_id", "at", "actor", "channel", "action", "subject", "before", "after", "reason")
_ADD_LINKED = (
    insert(audit_events)
    .from_select(
        ["seq", *_FIELDS, "hash"],
        select(
            _LINKED_HEAD.c.seq,
            *(bindparam(name, type_=audit_events.c[name].type) for name in _FIELDS),
            _LINKED_HEAD.c.hash,
        ),
    )
    .returning(audit_events.c.seq, audit_events.c.hash)
)


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in _FIELDS}


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
        if len(entries) == 1 and self._head_cache is None and self._c.dialect.name == "postgresql":
            self._append_linked(entries[0])
            return
        seq, digest = self._head_cache or self._head()
        rows = []
        for entry in entries:
            seq += 1
            digest = chain_hash(digest, entry, seq)
            rows.append({"seq": seq, **_fields(entry), "hash": digest})
        _ADD.execute(self._c, rows)
        self._c.execute(_MOVE_HEAD, {"b_seq": seq, "b_hash": digest})
        self._head_cache = (seq, digest)

    def _append_linked(self, entry: AuditEntry) -> None:
        before_seq, after_seq = around_seq(entry)
        parameters = {"before_seq": before_seq, "after_seq": after_seq, **_fields(entry)}
        row = self._c.execute(_ADD_LINKED, parameters).first()
        if row is None:  # no head yet: the very first entry
            self._head()
            row = self._c.execute(_ADD_LINKED, parameters).one()
        self._head_cache = (int(row.seq), str(row.hash))

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
