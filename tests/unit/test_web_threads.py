"""The portal's small pools for database work: off the event loop, a few threads at most,
and a write that waits never holds up a read."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import anyio
import pytest
from starlette.requests import Request

from fairsub.entrypoints.web import threads
from fairsub.entrypoints.web.threads import DbThreads, db_read, db_write

Run = Callable[[Request, Callable[[], int]], Awaitable[int]]


def request_to(dialect: str) -> Request:
    """A request to a portal built on `dialect`, as create_app sets it up."""
    state = SimpleNamespace(db_threads=DbThreads.for_dialect(dialect))
    return Request({"type": "http", "app": SimpleNamespace(state=state)})


def test_sqlite_gets_one_thread_for_reads_and_one_for_writes_postgresql_more() -> None:
    assert DbThreads.for_dialect("sqlite") == DbThreads(reads=1, writes=1)
    postgres = DbThreads.for_dialect("postgresql")
    assert postgres.reads > 1 and postgres.writes > 1


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize(("kind", "run"), [("reads", db_read), ("writes", db_write)])
def test_work_runs_off_the_event_loop_in_at_most_its_pools_threads(
    dialect: str, kind: str, run: Run
) -> None:
    request = request_to(dialect)
    size: int = getattr(request.app.state.db_threads, kind)
    release = threading.Event()
    workers: set[int] = set()
    lock = threading.Lock()
    running = peak = 0
    extra = 2

    def work() -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            workers.add(threading.get_ident())
        try:
            assert release.wait(timeout=10), "never released"
        finally:
            with lock:
                running -= 1
        return 1

    async def main() -> tuple[int, int]:
        loop_thread = threading.get_ident()
        done: list[int] = []

        async def one() -> None:
            done.append(await run(request, work))

        async with anyio.create_task_group() as group:
            for _ in range(size + extra):
                group.start_soon(one)
            pool = threads._pool(kind, size)
            deadline = time.monotonic() + 10
            # Until the pool is full (each thread inside work(), not just holding a
            # token) and the rest wait for a token.
            while running < size or pool.statistics().tasks_waiting < extra:
                assert time.monotonic() < deadline, pool.statistics()
                await anyio.sleep(0.001)
            waiting = pool.statistics().tasks_waiting
            release.set()
        assert loop_thread not in workers
        return len(done), waiting

    finished, waiting = anyio.run(main)
    assert finished == size + extra
    assert waiting == extra
    assert peak == size


def test_on_sqlite_a_read_goes_ahead_while_the_write_thread_waits() -> None:
    request = request_to("sqlite")
    lock_held = threading.Event()  # the write lock, held elsewhere (the email relay, say)

    def write() -> int:
        assert lock_held.wait(timeout=10), "never released"
        return 1

    def read() -> int:
        return 2

    async def main() -> tuple[int, bool]:
        async with anyio.create_task_group() as group:
            group.start_soon(db_write, request, write)
            await anyio.sleep(0.01)
            read_result = await db_read(request, read)
            write_still_waiting = not lock_held.is_set()
            lock_held.set()
        return read_result, write_still_waiting

    assert anyio.run(main) == (2, True)
