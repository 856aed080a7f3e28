"""Engines for SQLite (embedded, WAL) and PostgreSQL, with one write discipline for both.

Write transactions must not interleave on the rows they change. PostgreSQL gets that
from SELECT ... FOR UPDATE in the repositories. SQLite has no row locks, so a write
transaction starts with BEGIN IMMEDIATE (taking the database's write lock up front,
never failing half-way with SQLITE_BUSY on upgrade), and writers, in this process and in
others, queue on a lock first instead of sleep-polling in SQLite's busy handler (WriteGate).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: SQLite's busy handler alone there
    fcntl = None  # type: ignore[assignment]

log = structlog.get_logger(__name__)

WRITE_OPTION = "fairsub_write"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


# Matches the web server's thread pool (anyio's default of 40 threads), so a busy portal
# reuses connections instead of opening and closing overflow ones on every request.
POOL_SIZE = 40


# A pooled PostgreSQL connection idle this long is pinged before it is handed out.
PING_AFTER_IDLE = 5.0  # seconds


def make_engine(
    url: str, *, pool_size: int = POOL_SIZE, ping_after_idle: float = PING_AFTER_IDLE
) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_size=pool_size, max_overflow=10)
        _ping_after_idle(engine, ping_after_idle)
        return engine
    database = parsed.database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if database in ("", ":memory:"):
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(pool_size=pool_size, max_overflow=10)
    engine = create_engine(url, **kwargs)
    _sqlite_discipline(engine)
    return engine


def _sqlite_discipline(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, below, issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint when the WAL reaches 10,000 pages (about 40 MB), not 1,000. A billing
        # batch changes over 1,000 pages, so at the default every batch's commit copied all
        # of them back into the database file; pages changed again by the next batches are
        # now copied once. The billing run went from about 1,450 to 1,550 renewals/s at
        # N = 100,000. A page read looks in the WAL's hash index first, whatever its size.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        # Straight to the driver: through exec_driver_sql, a BEGIN cost as much Python as
        # a small INSERT, and the sandbox gateway begins one transaction per charge.
        connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")


def _ping_after_idle(engine: Engine, seconds: float) -> None:
    """Ping a pooled connection before handing it out only if it sat idle `seconds` or more.

    A connection that idled through a server restart or a dropped network is found dead
    here and replaced, before any request uses it. SQLAlchemy's pool_pre_ping does the same
    on every checkout: one more round trip per transaction, which on the portal's busiest
    pages was a tenth of their CPU time. A connection used within the last few seconds is
    trusted; if the server went away in that moment, the statement fails, the request
    answers "nothing was changed, try again", and SQLAlchemy discards the whole pool."""

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < seconds:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out another (a new one if need be).
            raise DisconnectionError(f"pooled connection found dead: {error}") from error


class WriteGate:
    """Lines up write transactions on SQLite, so each waits its turn for the write lock
    instead of sleep-polling in SQLite's busy handler; free on PostgreSQL.

    Within a process, writers queue on a lock. Across processes (web workers, their email
    relays, `fairsub worker`, the CLI) they queue on an advisory lock (flock) of a file
    beside the database, `<database>-writer`: the kernel wakes the next writer the moment
    the last lets go. SQLite's busy handler, which was all that lined processes up before,
    sleeps and tries again, ever longer, up to 100 ms a try: with two web workers taking
    turn-offs, their p99 went over 100 ms. SQLite's own lock stays what keeps writes apart;
    this only orders the queue, so a process that cannot open the file (another user's,
    say) goes without it and still writes correctly."""

    def __init__(self, engine: Engine) -> None:
        sqlite = is_sqlite(engine)
        self._lock: threading.Lock | None = threading.Lock() if sqlite else None
        database = (engine.url.database or "") if sqlite else ""
        self._path = f"{database}-writer" if database and database != ":memory:" else None
        self._fd: int | None = None

    def _file(self) -> int | None:
        if self._fd is None and self._path is not None and fcntl is not None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as error:
                log.warning("sqlite_writer_lock_unavailable", path=self._path, error=str(error))
                self._path = None
        return self._fd

    def acquire(self) -> None:
        if self._lock is None:
            return
        self._lock.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # lets the GIL go while it waits
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
