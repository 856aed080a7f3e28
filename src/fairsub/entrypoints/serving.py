"""Serving the portal from one process, or from several on one port.

Python runs one thread at a time per process, so one process keeps one core busy however
many the machine has. `fairsub serve --workers N` runs N copies of the portal behind the
same address and port. Each worker is a process of its own with its own listening socket
(SO_REUSEPORT), and the kernel spreads new connections over the sockets by their address
and port. uvicorn's own --workers shares one socket instead, and there whichever process
wakes first accepts every connection waiting: of 16 browsers connecting together to 2
workers, one worker took 15 or all 16 in two tries of ten, and the other core idled (the
dashboard made 485-520 requests/s instead of about twice that).

Any worker can answer any request because nothing in the portal lives in one process's
memory: sessions and sign-in throttling are in the database, the test clock in a file, and
CSRF tokens are signed with the secret key. Each worker starts its own email relay; their
leases keep them from sending an email twice.

The Supervisor checks that the port is free, starts the workers, replaces one
that dies, and on Ctrl-C or SIGTERM asks each to finish the requests in hand and waits.
Workers end by themselves if the supervisor is killed outright.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# Makes the ASGI app in a worker and cleans up after it. Must be picklable: a module-level
# function, or functools.partial of one.
AppRecipe = Callable[[], AbstractContextManager[Any]]

SHUTDOWN_TIMEOUT = 30.0  # seconds a worker has to finish its requests when asked to stop


class PortInUseError(Exception):
    """The address and port are taken by another program (or another fairsub)."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def bind(address: Address, *, shared: bool) -> socket.socket:
    """A socket bound to `address`, not yet listening (uvicorn does that). `shared` lets
    other workers bind the same port; the kernel then spreads connections over them."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as error:
        sock.close()
        raise PortInUseError(f"cannot listen on {address}: {error.strerror}") from error
    return sock


def _uvicorn_server(app: Any, proxy_headers: bool, on_serving: Callable[[], None]) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                on_serving()

    config = uvicorn.Config(
        app, log_level="warning", proxy_headers=proxy_headers, timeout_graceful_shutdown=25
    )
    return Server(config)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run(server: Any, sock: socket.socket) -> None:
    """Run uvicorn until Ctrl-C or SIGTERM, and return once it has shut down gracefully.
    (Afterwards uvicorn raises the signal it caught again, for whoever handled it before:
    here that is a KeyboardInterrupt for either, so what was opened is closed in order.)"""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_here(app: Any, address: Address, *, proxy_headers: bool) -> None:
    """Serve `app` from this process until Ctrl-C or SIGTERM. Raises PortInUseError."""
    with bind(address, shared=False) as sock:
        _run(_uvicorn_server(app, proxy_headers, lambda: None), sock)


SERVING = b"serving"  # what a worker tells the supervisor once it accepts connections


def _worker(
    recipe: AppRecipe, address: Address, proxy_headers: bool, supervisor: Connection
) -> None:
    """A worker process: its own socket on the shared port, its own app, until told to stop
    by SIGTERM (SIGINT is blocked in it from the start: see Supervisor._start_one). When the
    supervisor goes (killed outright, even), its end of the pipe closes and the worker stops
    as if sent SIGTERM, finishing the requests in hand."""

    def watch_supervisor() -> None:
        with suppress(EOFError):
            supervisor.recv_bytes()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_supervisor, name="supervisor-watch", daemon=True).start()
    with bind(address, shared=True) as sock, recipe() as app:
        server = _uvicorn_server(app, proxy_headers, lambda: supervisor.send_bytes(SERVING))
        _run(server, sock)


@dataclass
class _Running:
    process: BaseProcess
    pipe: Connection  # the supervisor's end; closing it tells the worker to stop
    started: float
    serving: bool = False


class Supervisor:
    """Starts `workers` worker processes on one port and keeps that many running.

    A worker that dies before any worker has served means the portal cannot start (the
    database is down, a setting is wrong): the supervisor stops and says so. Once the portal
    has served, a worker that dies is replaced, at most once a second per worker."""

    RESTART_PAUSE = 1.0

    def __init__(
        self, recipe: AppRecipe, address: Address, *, workers: int, proxy_headers: bool
    ) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self._recipe, self._address, self._count = recipe, address, workers
        self._proxy_headers = proxy_headers
        self._context = multiprocessing.get_context("spawn")
        self._running: list[_Running] = []
        self._served = False
        self._stop = threading.Event()

    def _start_one(self) -> _Running:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_worker,
            args=(self._recipe, self._address, self._proxy_headers, theirs),
            name="fairsub-web",
        )
        # Started with Ctrl-C held back (a blocked signal stays blocked across fork and
        # exec), a worker is not interrupted mid-start by the terminal's SIGINT, which
        # printed a traceback at whoever pressed it; the supervisor stops its workers with
        # SIGTERM. Held back here too only while the worker starts, a Ctrl-C meant for the
        # supervisor waits those milliseconds and is then heard, never lost. (Python's
        # resource tracker, started with the first worker, unblocks SIGINT as it starts:
        # started beforehand, it leaves this alone.)
        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        theirs.close()
        return _Running(process, ours, time.monotonic())

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def run(self) -> int:
        """Serve until Ctrl-C or SIGTERM (exit code 0), or until the portal cannot start
        (exit code 1). Raises PortInUseError before starting anything if the port is taken."""
        # Bound without SO_REUSEPORT, so it fails if anyone holds the port, even another
        # fairsub whose workers would otherwise quietly share it with ours.
        bind(self._address, shared=False).close()
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._running = [self._start_one() for _ in range(self._count)]
            return self._watch()
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _watch(self) -> int:
        while not self._stop.is_set():
            watched: list[Any] = [r.process.sentinel for r in self._running]
            watched += [r.pipe for r in self._running if not r.serving]
            wait(watched, timeout=0.5)
            for running in self._running:
                if not running.serving and running.pipe.poll():
                    with suppress(EOFError, OSError):
                        running.serving = running.pipe.recv_bytes() == SERVING
                        self._served = self._served or running.serving
            for index, running in enumerate(self._running):
                if running.process.is_alive() or self._stop.is_set():
                    continue
                running.pipe.close()
                code = running.process.exitcode
                if not self._served:
                    log.error("web_worker_failed_to_start", pid=running.process.pid, code=code)
                    return 1
                log.warning("web_worker_replaced", pid=running.process.pid, code=code)
                time.sleep(max(0.0, running.started + self.RESTART_PAUSE - time.monotonic()))
                self._running[index] = self._start_one()
        return 0

    def _stop_all(self) -> None:
        for running in self._running:
            if running.process.is_alive():
                running.process.terminate()  # SIGTERM: finish the requests in hand
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT
        for running in self._running:
            running.process.join(max(0.0, deadline - time.monotonic()))
            if running.process.is_alive():
                log.warning("web_worker_killed", pid=running.process.pid)
                running.process.kill()
                running.process.join()
            running.pipe.close()
        self._running = []


# Linux spreads connections over sockets sharing a port; elsewhere there is no such option,
# or (macOS) the option exists and one socket gets every connection.
CAN_SHARE_PORT = hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers() -> int:
    """One worker per core this process may use, where the port can be shared."""
    return usable_cores() if CAN_SHARE_PORT else 1
