"""The audit log on real databases (invariant 5): entries linked by the database (one at a
time, on PostgreSQL) and by Python (batches, and SQLite) make one chain that verifies,
whatever the entries hold and however many writers append at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import select

from fairsub.adapters.db.tables import audit_events
from fairsub.bootstrap import Container
from fairsub.domain.audit import AuditEntry
from fairsub.services import audit

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

AWKWARD = [
    AuditEntry(
        "account:1",
        "portal",
        "portal:subscription:auto_renew_off",
        "subscription:1",
        1,
        AT,
        {"status": "active"},
        {"status": "canceled"},
    ),
    AuditEntry(
        "agent:ana",
        "support",
        "support:note",
        'quote " and \\ backslash',
        None,
        AT,
        None,
        None,
        "why: ünïcödé, 日本語, emoji \U0001f600",
    ),
    AuditEntry(
        "system:billing",
        "worker",
        "worker:x",
        "subscription:2",
        2,
        AT,
        {"seq": 99, "subject": "not me", "nested": {"seq": [1, None, True]}},
        {"after": "}", "list": ["a", 15]},
        "",
    ),
]


def append(container: Container, entries: list[AuditEntry]) -> None:
    with container.uows().write() as uow:
        uow.audit.append_many(entries)
        uow.commit()


def seqs(container: Container) -> list[int]:
    with container.engine.connect() as connection:
        return list(connection.execute(select(audit_events.c.seq).order_by("seq")).scalars())


def test_entries_appended_one_by_one_and_in_batches_make_one_chain(container: Container) -> None:
    for entry in AWKWARD:
        append(container, [entry])
    append(container, AWKWARD)
    for entry in AWKWARD:
        append(container, [entry])

    assert audit.verify(container.uows()) == (9, None)
    assert seqs(container) == list(range(1, 10))


def test_two_entries_in_one_transaction_follow_each_other(container: Container) -> None:
    with container.uows().write() as uow:
        assert uow.audit.append(AWKWARD[0]) == 1
        assert uow.audit.append(AWKWARD[1]) == 2
        uow.commit()

    assert audit.verify(container.uows()) == (2, None)


def test_writers_appending_at_once_never_fork_the_chain(container: Container) -> None:
    def writer(n: int) -> None:
        for i in range(15):
            append(container, [AWKWARD[(n + i) % len(AWKWARD)]])

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(writer, range(6)))

    assert audit.verify(container.uows()) == (90, None)
    assert seqs(container) == list(range(1, 91))
