"""Two small pools of threads for the portal's busiest database work: reads and writes.

FastAPI runs every `def` route and dependency in anyio's default pool of 40 threads. Under
load, up to one thread per open request then wants the GIL at once, and every query (SQLite
and psycopg let the GIL go while they wait) hands it from thread to thread: measured on the
dashboard, 60 context switches per request, which cost more CPU than the page itself.
Routes that do only short database work run it here instead; calls that wait on other
services (payment gateways, argon2) keep the big default pool, so a slow gateway never
holds up the dashboard.

How many threads each pool has depends on what its work waits for (DbThreads.for_dialect):

- SQLite runs its queries in this process: there is nothing to overlap but CPU, and each
  extra thread only adds hand-overs of the GIL. Writes queue for SQLite's one write lock
  anyway. So one thread reads and one writes, and a write waiting for the lock (held by the
  email relay, say) never holds up a read.
- PostgreSQL work waits on the network and on commits, so more threads overlap the waits;
  writes, with their commit and row locks, wait longest.

Measured with bench/portal.py on 2 cores (runs taken turn about), against one shared pool
of 4 threads: SQLite's dashboard went from about 590 to 850 requests/s (p99 43 -> 27 ms)
and its turn-off from about 370 to 550/s (p99 79 -> 62 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from starlette.requests import Request

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DbThreads:
    """How many threads the portal's read and write pools have."""

    reads: int
    writes: int

    @classmethod
    def for_dialect(cls, name: str) -> DbThreads:
        return cls(reads=1, writes=1) if name == "sqlite" else cls(reads=2, writes=4)


# The pools of the running event loop, by (kind, size): like anyio's own default pool, a
# CapacityLimiter belongs to one event loop.
_pools: RunVar[dict[tuple[str, int], CapacityLimiter]] = RunVar("fairsub_db_threads")


def _pool(kind: str, size: int) -> CapacityLimiter:
    try:
        pools = _pools.get()
    except LookupError:
        pools = {}
        _pools.set(pools)
    if (kind, size) not in pools:
        pools[kind, size] = CapacityLimiter(size)
    return pools[kind, size]


async def db_read(request: Request, work: Callable[[], T]) -> T:
    """Run `work` (short reads, no calls to other services) in the read pool."""
    sizes: DbThreads = request.app.state.db_threads
    return await to_thread.run_sync(work, limiter=_pool("reads", sizes.reads))


async def db_write(request: Request, work: Callable[[], T]) -> T:
    """Run `work` (one short write transaction, no calls to other services) in the write
    pool."""
    sizes: DbThreads = request.app.state.db_threads
    return await to_thread.run_sync(work, limiter=_pool("writes", sizes.writes))
