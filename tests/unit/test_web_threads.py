"""The portal's small pool for database work: off the event loop, a few threads at most."""

from __future__ import annotations

import threading
import time

import anyio

from fairsub.entrypoints.web import threads


def test_database_work_runs_off_the_event_loop_in_at_most_db_threads_threads() -> None:
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
            done.append(await threads.in_db_thread(work))

        async with anyio.create_task_group() as group:
            for _ in range(threads.DB_THREADS + extra):
                group.start_soon(one)
            limiter = threads._db_limiter()
            deadline = time.monotonic() + 10
            # Until the pool is full (each thread inside work(), not just holding a
            # token) and the rest wait for a token.
            while running < threads.DB_THREADS or limiter.statistics().tasks_waiting < extra:
                assert time.monotonic() < deadline, limiter.statistics()
                await anyio.sleep(0.001)
            waiting = limiter.statistics().tasks_waiting
            release.set()
        assert loop_thread not in workers
        return len(done), waiting

    finished, waiting = anyio.run(main)
    assert finished == threads.DB_THREADS + extra
    assert waiting == extra
    assert peak == threads.DB_THREADS
