"""Serving the portal from several processes on one port: `fairsub serve --workers N`.

Python runs one thread at a time per process, so one process keeps one core busy however
many the machine has. `fairsub serve --workers N` runs N copies of the portal behind the
same address and port. The Supervisor owns the one listening socket and deals each new
connection to the workers in turn, handing over the connected socket itself (SCM_RIGHTS
over a Unix socket pair); the worker serves it as if it had accepted it. Every worker ends
up with its share of the connections, and so of the work. Each worker answers every
connection it picks up, and one that falls behind (hung) is passed over until it catches up.

Letting the kernel choose instead was measured twice, and both times it dealt unevenly:
- one socket shared by every worker (uvicorn's --workers): whichever wakes first accepts all
  that are waiting. Of 16 browsers connecting together to 2 workers, one took 15 or all 16
  in two tries of ten, and the other core idled.
- a socket of its own per worker on the same port (SO_REUSEPORT): the kernel picks by a hash
  of each connection's address and port, which splits 16 connections 8/8 only one time in
  five, and the busier worker's queue sets the tail. In one hour's benchmark runs the
  PostgreSQL turn-off's p99 was 107-127 ms at 10/6 or worse and 76-90 ms at 8/8; in ten
  runs taken turn about with dealing, 96-143 ms against 82-121 ms.

Any worker can answer any request because nothing in the portal lives in one process's
memory: sessions and sign-in throttling are in the database, the test clock in a file, and
CSRF tokens are signed with the secret key. Each worker starts its own email relay; their
leases keep them from sending an email twice.

The Supervisor checks that the port is free, starts the workers, replaces one that dies,
and on Ctrl-C or SIGTERM stops taking connections and asks each worker to finish the
requests in hand. Workers end by themselves if the supervisor is killed outright.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
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

from fairsub.entrypoints.serving import Address, bind, run_until_stopped, uvicorn_server

log = structlog.get_logger(__name__)

# Makes the ASGI app in a worker and cleans up after it. Must be picklable: a module-level
# function, or functools.partial of one.
AppRecipe = Callable[[], AbstractContextManager[Any]]

SHUTDOWN_TIMEOUT = 30.0  # seconds a worker has to finish its requests when asked to stop

SERVING = b"serving"  # what a worker tells the supervisor once it takes connections
BACKLOG = 2048  # connections the kernel holds for the supervisor to deal (uvicorn's default)
# A worker that has not picked up this many of the connections handed to it is passed over
# (it is hung, or busy for longer than a page should take) until it catches up.
UNANSWERED_LIMIT = 16


def _worker(
    recipe: AppRecipe, proxy_headers: bool, supervisor: Connection, dealt: socket.socket
) -> None:
    """A worker process: its own app, serving the connections dealt to it, until told to
    stop by SIGTERM (SIGINT is blocked in it from the start: see Supervisor._start_one).
    When the supervisor goes (killed outright, even), its end of the pipe closes and the
    worker stops as if sent SIGTERM, finishing the requests in hand."""

    def watch_supervisor() -> None:
        with suppress(EOFError):
            supervisor.recv_bytes()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_supervisor, name="supervisor-watch", daemon=True).start()
    dealt.setblocking(False)
    with dealt, recipe() as app:
        server = uvicorn_server(
            app, proxy_headers, dealt=dealt, on_serving=lambda: supervisor.send_bytes(SERVING)
        )
        run_until_stopped(server, [])


@dataclass
class _Running:
    process: BaseProcess
    pipe: Connection  # the supervisor's end; closing it tells the worker to stop
    deal: socket.socket  # the supervisor's end of the socket connections are handed over on
    started: float
    serving: bool = False


class Supervisor:
    """Starts `workers` worker processes, deals them the connections to one port, and keeps
    that many running.

    A worker that dies before any worker has served means the portal cannot start (the
    database is down, a setting is wrong): the supervisor stops and says so. Once the portal
    has served, a worker that dies is replaced, at most once a second per worker. While no
    worker serves, connections wait in the kernel's queue for the port."""

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
        # The sockets of the workers that serve, in dealing order; the dealer's to read.
        self._dealing: list[socket.socket] = []
        self._dealing_changed = threading.Condition()
        self._turn = 0  # the dealer's: which of them gets the next connection
        self._unanswered: dict[socket.socket, int] = {}  # the dealer's: handed, not picked up
        self.failure: str | None = None  # why run() returned 1

    def _start_one(self) -> _Running:
        ours, theirs = self._context.Pipe()
        deal, dealt = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process = self._context.Process(
            target=_worker,
            args=(self._recipe, self._proxy_headers, theirs, dealt),
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
            dealt.close()
        deal.setblocking(False)
        return _Running(process, ours, deal, time.monotonic())

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def run(self) -> int:
        """Serve until Ctrl-C or SIGTERM (exit code 0), or until the portal cannot start
        (exit code 1). Raises CannotListenError before starting anything if it cannot listen."""
        listener = bind(self._address)
        listener.listen(BACKLOG)
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        dealer = threading.Thread(target=self._deal, args=(listener,), name="dealer")
        try:
            self._running = [self._start_one() for _ in range(self._count)]
            dealer.start()
            return self._watch(dealer)
        finally:
            self._stop.set()
            with self._dealing_changed:
                self._dealing_changed.notify_all()
            if dealer.is_alive():
                dealer.join()
            listener.close()  # new connections are refused from here on
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _set_dealing(self) -> None:
        with self._dealing_changed:
            self._dealing = [r.deal for r in self._running if r.serving]
            self._dealing_changed.notify_all()

    def _deal(self, listener: socket.socket) -> None:
        """Accept each connection and hand it to a worker."""
        listener.settimeout(0.5)  # to see a stop in time
        while not self._stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError as error:  # out of file descriptors, say: the rest wait meanwhile
                log.warning("accept_failed", error=str(error))
                self._stop.wait(0.1)
                continue
            with connection:  # the worker has a copy of its own once handed over
                with suppress(OSError):  # a browser that has gone already
                    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._hand_over(connection)

    def _hand_over(self, connection: socket.socket) -> None:
        """To the next worker in turn that takes it and is not behind (UNANSWERED_LIMIT).
        While none can (none serves yet, the only one is being replaced, all are behind),
        the connection waits here, and those after it in the kernel's queue; on stopping,
        it is closed unanswered."""
        while not self._stop.is_set():
            with self._dealing_changed:
                workers = self._dealing
                if not workers:
                    self._dealing_changed.wait(0.5)
                    continue
            if any(worker not in workers for worker in self._unanswered):  # replaced ones
                self._unanswered = {w: n for w, n in self._unanswered.items() if w in workers}
            for offset in range(len(workers)):
                worker = workers[(self._turn + offset) % len(workers)]
                if self._unanswered_by(worker) >= UNANSWERED_LIMIT:
                    continue
                try:
                    socket.send_fds(worker, [b"c"], [connection.fileno()])
                except OSError:  # gone: the next one
                    continue
                self._unanswered[worker] = self._unanswered.get(worker, 0) + 1
                self._turn = (self._turn + offset + 1) % len(workers)
                return
            with self._dealing_changed:  # none took it: wait for a change, then try again
                self._dealing_changed.wait(0.1)

    def _unanswered_by(self, worker: socket.socket) -> int:
        """How many connections handed to `worker` it has not picked up yet."""
        while True:
            try:
                answers = worker.recv(4096)
            except BlockingIOError:
                break
            except OSError:
                answers = b""
            if not answers:  # gone
                return UNANSWERED_LIMIT
            self._unanswered[worker] = self._unanswered.get(worker, 0) - len(answers)
        return self._unanswered.get(worker, 0)

    def _watch(self, dealer: threading.Thread) -> int:
        while not self._stop.is_set():
            if not dealer.is_alive():  # never expected: its error is in the log above
                self.failure = "the supervisor stopped taking connections"
                log.error("connection_dealer_stopped")
                return 1
            watched: list[Any] = [r.process.sentinel for r in self._running]
            watched += [r.pipe for r in self._running if not r.serving]
            wait(watched, timeout=0.5)
            for running in self._running:
                if not running.serving and running.pipe.poll():
                    with suppress(EOFError, OSError):
                        running.serving = running.pipe.recv_bytes() == SERVING
                        self._served = self._served or running.serving
                        self._set_dealing()
            for index, running in enumerate(self._running):
                if running.process.is_alive() or self._stop.is_set():
                    continue
                running.serving = False
                self._set_dealing()
                running.pipe.close()
                running.deal.close()
                code = running.process.exitcode
                if not self._served:
                    self.failure = "a web worker stopped while starting"
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
            running.deal.close()
        self._running = []


# Handing a connection to another process takes a Unix socket that carries descriptors:
# every Unix has one, Windows has not.
CAN_DEAL = hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers() -> int:
    """One worker per core this process may use, where connections can be dealt."""
    return usable_cores() if CAN_DEAL else 1
