"""adapters.db.bulk on SQLite and PostgreSQL: many rows written in one statement read back
exactly as given, whichever form the database gets (an executemany through SQLAlchemy or
straight to the driver, or arrays unnested)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import StatementError

from fairsub.adapters.db import migrate
from fairsub.adapters.db.bulk import inserting, updating
from fairsub.adapters.db.engine import make_engine
from fairsub.adapters.db.tables import outbox

AT = datetime(2026, 11, 28, 9, 30, 15, 123456, tzinfo=UTC)
# What queuing an email writes: every column but the id and those a send fills in.
COLUMNS = tuple(
    c.name for c in outbox.c if c.name not in ("id", "sent_at", "last_error", "leased_until")
)
QUEUE = inserting(
    outbox,
    COLUMNS,
    returning=(outbox.c.id, outbox.c.dedupe_key),
    skip_conflicts_on=("dedupe_key",),
)
# No RETURNING: on SQLite this goes straight to the driver, laid out by bulk itself.
FILE = inserting(outbox, COLUMNS)
RETRY = updating(
    outbox, "id", ("attempts", "last_error"), also={"next_attempt_at": AT + timedelta(hours=1)}
)


def row(key: str, **changes: object) -> dict[str, object]:
    return {
        "account_id": None,
        "kind": "auto_renew_off",
        "recipient": f"{key}@example.com",
        "payload": {"reference": key, "product": "Schutz 360 — Jahr", "seats": [1, 2]},
        "dedupe_key": key,
        "created_at": AT,
        "attempts": 0,
        "next_attempt_at": AT,
        **changes,
    }


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def stored(engine: Engine) -> dict[str, dict[str, object]]:
    with engine.connect() as connection:
        rows = connection.execute(select(outbox).order_by(outbox.c.id)).mappings().all()
    return {str(r["dedupe_key"]): dict(r) for r in rows}


def test_inserted_rows_read_back_as_given_with_their_ids(engine: Engine) -> None:
    given = [row("a", account_id=7), row("b"), row("c", created_at=AT + timedelta(days=40))]
    with engine.begin() as connection:
        returned = {r.dedupe_key: r.id for r in QUEUE.execute(connection, given)}

    found = stored(engine)
    assert sorted(found) == ["a", "b", "c"]
    for want in given:
        got = found[str(want["dedupe_key"])]
        assert got["id"] == returned[want["dedupe_key"]]
        assert {c: got[c] for c in COLUMNS} == want


def test_rows_sent_straight_to_the_driver_read_back_as_given(engine: Engine) -> None:
    given = [
        row("a", account_id=7, payload={"amount": "1.234,56 €", "nested": {"n": None}}),
        row("b", created_at=datetime(2027, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)),
        row("c", kind="renewal_charged", attempts=4),
    ]
    with engine.begin() as connection:
        FILE.execute(connection, given)

    found = stored(engine)
    assert [{c: found[k][c] for c in COLUMNS} for k in "abc"] == given


def test_a_naive_time_sent_to_the_driver_is_refused_and_nothing_is_written(
    engine: Engine,
) -> None:
    naive = row("b", next_attempt_at=AT.replace(tzinfo=None))
    with (
        pytest.raises((StatementError, ValueError), match="naive datetime"),
        engine.begin() as connection,
    ):
        FILE.execute(connection, [row("a"), naive])
    assert stored(engine) == {}


def test_a_default_to_compute_per_row_is_refused_not_left_out(tmp_path: Path) -> None:
    """`attempts` has a column default, which SQLAlchemy would fill in for each row; the
    driver form cannot, so such a statement is refused the first time, not run without."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fairsub.db'}")
    migrate.upgrade(engine)
    without_attempts = inserting(outbox, [c for c in COLUMNS if c != "attempts"])
    rows = [{c: v for c, v in row("a").items() if c != "attempts"}]
    with pytest.raises(TypeError, match="not a statement for the driver"), engine.begin() as c:
        without_attempts.execute(c, rows)
    assert stored(engine) == {}
    engine.dispose()


def test_a_row_whose_key_is_taken_is_left_out_and_not_returned(engine: Engine) -> None:
    with engine.begin() as connection:
        QUEUE.execute(connection, [row("a"), row("b")])
    with engine.begin() as connection:
        again = QUEUE.execute(connection, [row("b", recipient="other@example.com"), row("c")])
        assert [r.dedupe_key for r in again] == ["c"]

    found = stored(engine)
    assert sorted(found) == ["a", "b", "c"]
    assert found["b"]["recipient"] == "b@example.com"


def test_update_changes_only_the_rows_named_each_to_its_own_values(engine: Engine) -> None:
    with engine.begin() as connection:
        ids = {r.dedupe_key: r.id for r in QUEUE.execute(connection, [row(k) for k in "abc"])}
    with engine.begin() as connection:
        changed = RETRY.execute(
            connection,
            [
                {"id": ids["a"], "attempts": 3, "last_error": "mail server refused"},
                {"id": ids["c"], "attempts": 1, "last_error": None},
            ],
        )
        assert changed.rowcount == 2

    found = stored(engine)
    assert (found["a"]["attempts"], found["a"]["last_error"]) == (3, "mail server refused")
    assert (found["c"]["attempts"], found["c"]["last_error"]) == (1, None)
    assert found["a"]["next_attempt_at"] == found["c"]["next_attempt_at"] == AT + timedelta(hours=1)
    assert (found["b"]["attempts"], found["b"]["next_attempt_at"]) == (0, AT)


def test_one_row_updated_alone_changes_that_row_only(engine: Engine) -> None:
    # A single row (a turn-off saving its subscription) is sent as the plain statement on
    # PostgreSQL too, not as arrays of one.
    with engine.begin() as connection:
        ids = {r.dedupe_key: r.id for r in QUEUE.execute(connection, [row(k) for k in "ab"])}
    with engine.begin() as connection:
        changed = RETRY.execute(connection, [{"id": ids["b"], "attempts": 2, "last_error": "é"}])
        assert changed.rowcount == 1

    found = stored(engine)
    assert (found["b"]["attempts"], found["b"]["last_error"]) == (2, "é")
    assert found["b"]["next_attempt_at"] == AT + timedelta(hours=1)
    assert (found["a"]["attempts"], found["a"]["next_attempt_at"]) == (0, AT)


def test_a_naive_time_in_a_batch_is_refused_and_nothing_is_written(engine: Engine) -> None:
    naive = row("b", created_at=AT.replace(tzinfo=None))
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as connection:
        QUEUE.execute(connection, [row("a"), naive])
    assert stored(engine) == {}
