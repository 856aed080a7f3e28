"""A small pool of threads for the portal's busiest database work.

FastAPI runs every `def` route and dependency in anyio's default pool of 40 threads. Under
load, up to one thread per open request then wants the GIL at once, and every query (SQLite
and psycopg let the GIL go while they wait) hands it from thread to thread: measured on the
dashboard, 60 context switches per request, which cost more CPU than the page itself.
Routes that do only short database work run it here instead, in a few threads; calls
that wait on other services (payment gateways, argon2) keep the big default pool, so a
slow gateway never holds up the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar

T = TypeVar("T")

# Enough to keep a core busy while others wait on PostgreSQL, few enough that they rarely
# queue for the GIL. The process runs Python on one core at a time whatever this is.
DB_THREADS = 4

_limiter: RunVar[CapacityLimiter] = RunVar("fairsub_db_threads")


def _db_limiter() -> CapacityLimiter:
    """One limiter per event loop, like anyio's own default pool."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = CapacityLimiter(DB_THREADS)
        _limiter.set(limiter)
        return limiter


async def in_db_thread(work: Callable[[], T]) -> T:
    """Run `work` (short database work, no calls to other services) in the small pool."""
    return await to_thread.run_sync(work, limiter=_db_limiter())
