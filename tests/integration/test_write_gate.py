"""SQLite writers line up on a lock file beside the database, across processes and within
one, instead of sleep-polling in SQLite's busy handler (adapters/db/engine.py, WriteGate)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from fairsub.adapters.db.engine import make_engine
from fairsub.adapters.db.uow import SqlUnitOfWorkFactory

# Holds an exclusive flock on the file named by argv[1] until a line arrives on stdin.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "fairsub.db"


@pytest.fixture
def engine(database: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE marks (who TEXT)"))
    yield engine
    engine.dispose()


def write_in_background(uows: SqlUnitOfWorkFactory, who: str) -> threading.Event:
    done = threading.Event()

    def write() -> None:
        with uows().write() as uow:
            uow.connection.execute(text("INSERT INTO marks VALUES (:who)"), {"who": who})
            uow.commit()
        done.set()

    threading.Thread(target=write, daemon=True).start()
    return done


def marks(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [row.who for row in connection.execute(text("SELECT who FROM marks"))]


def test_a_write_waits_while_another_process_holds_the_writer_lock(
    database: Path, engine: Engine
) -> None:
    """Only the lock file is held, not SQLite's own lock: the write waiting shows that
    writers line up on the file."""
    uows = SqlUnitOfWorkFactory(engine)
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, f"{database}-writer"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdin is not None
            assert holder.stdout.readline().strip() == "locked"
            done = write_in_background(uows, "us")
            assert not done.wait(0.5), "the write went ahead while another process held it"
            holder.stdin.write("go\n")
            holder.stdin.flush()
            assert done.wait(10), "the write did not go ahead once the lock was let go"
        finally:
            holder.kill()
            uows.close()
    assert marks(engine) == ["us"]


def test_two_gates_on_one_database_in_one_process_take_turns(engine: Engine) -> None:
    """Two containers in one process (as in tests) take turns as two processes do."""
    first, second = SqlUnitOfWorkFactory(engine), SqlUnitOfWorkFactory(engine)
    try:
        with first().write() as uow:
            uow.connection.execute(text("INSERT INTO marks VALUES ('first')"))
            done = write_in_background(second, "second")
            assert not done.wait(0.5), "the second gate did not wait for the first"
            uow.commit()
        assert done.wait(10)
    finally:
        first.close()
        second.close()
    assert marks(engine) == ["first", "second"]


def test_the_lock_file_sits_beside_the_database(database: Path, engine: Engine) -> None:
    uows = SqlUnitOfWorkFactory(engine)
    with uows().write() as uow:
        uow.connection.execute(text("INSERT INTO marks VALUES ('one')"))
        uow.commit()
    uows.close()
    assert (database.parent / "fairsub.db-writer").exists()


def test_an_in_memory_database_has_no_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a lock file named from no path at all would go
    engine = make_engine("sqlite://")
    uows = SqlUnitOfWorkFactory(engine)
    with uows().write() as uow:
        uow.connection.execute(text("SELECT 1"))
    uows.close()
    engine.dispose()
    assert list(tmp_path.iterdir()) == []
