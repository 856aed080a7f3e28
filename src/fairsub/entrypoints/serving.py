"""Serving the portal from one process: on a port of its own, or on connections handed to
it by the Supervisor of `fairsub serve --workers N` (see supervisor.py)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from fairsub.entrypoints.stopping import sigterm_as_ctrl_c

PICKED_UP = b"p"  # the answer to each connection handed over, once it has been picked up


class CannotListenError(Exception):
    """The portal cannot listen on the address and port it was given."""


class PortInUseError(CannotListenError):
    """The address and port are taken by another program (or another fairsub)."""


class NotThisMachineError(CannotListenError):
    """The host is no address of this machine, or a name that resolves to none."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def bind(address: Address) -> socket.socket:
    """A socket bound to `address`, not yet listening. Raises PortInUseError if taken,
    NotThisMachineError if the host is not here, CannotListenError for anything else."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as error:
        sock.close()
        message = f"cannot listen on {address}: {error.strerror or error}"
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(message) from error
        if error.errno == errno.EADDRNOTAVAIL or isinstance(error, socket.gaierror):
            raise NotThisMachineError(message) from error
        raise CannotListenError(message) from error
    return sock


def uvicorn_server(
    app: Any,
    proxy_headers: bool,
    *,
    dealt: socket.socket | None = None,
    on_serving: Callable[[], None] = lambda: None,
) -> Any:
    """uvicorn's server for `app`. With `dealt`, it serves the connections the supervisor
    hands over on that socket rather than accepting its own."""
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.started:
                return
            if dealt is not None:
                self._adopting: set[asyncio.Task[None]] = set()
                asyncio.get_running_loop().add_reader(dealt.fileno(), self._take_dealt)
            on_serving()

        def _take_dealt(self) -> None:
            """Serve each connection waiting on `dealt`, as uvicorn serves one it accepted."""
            assert dealt is not None
            loop = asyncio.get_running_loop()
            while True:
                try:
                    message, fds, _, _ = socket.recv_fds(dealt, 1, 1)
                except BlockingIOError:
                    return
                except OSError:
                    message = b""
                if not message:  # the supervisor has gone: stop, as on SIGTERM
                    loop.remove_reader(dealt.fileno())
                    self.should_exit = True
                    return
                for fd in fds:
                    task = loop.create_task(self._serve_connection(socket.socket(fileno=fd)))
                    self._adopting.add(task)
                    task.add_done_callback(self._adopting.discard)
                    with suppress(OSError):  # tell the supervisor: one more picked up
                        dealt.send(PICKED_UP)

        def _protocol(self) -> asyncio.Protocol:
            # As uvicorn makes one for each connection it accepts (Server.startup).
            return self.config.http_protocol_class(  # type: ignore[call-arg]
                config=self.config, server_state=self.server_state, app_state=self.lifespan.state
            )

        async def _serve_connection(self, connection: socket.socket) -> None:
            try:
                await asyncio.get_running_loop().connect_accepted_socket(self._protocol, connection)
            except OSError:  # the browser has gone already
                connection.close()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if dealt is not None:
                asyncio.get_running_loop().remove_reader(dealt.fileno())
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        log_level="warning",
        proxy_headers=proxy_headers,
        timeout_graceful_shutdown=25,
        server_header=False,  # no need to tell everyone which server software answers
    )
    return Server(config)


def run_until_stopped(server: Any, sockets: list[socket.socket]) -> None:
    """Run uvicorn until Ctrl-C or SIGTERM, and return once it has shut down gracefully.
    (Afterwards uvicorn raises the signal it caught again, for whoever handled it before:
    here that is a KeyboardInterrupt for either, so what was opened is closed in order.)"""
    with sigterm_as_ctrl_c(), suppress(KeyboardInterrupt):
        server.run(sockets=sockets)


def serve_here(app: Any, address: Address, *, proxy_headers: bool) -> None:
    """Serve `app` from this process until Ctrl-C or SIGTERM. Raises CannotListenError."""
    with bind(address) as sock:
        run_until_stopped(uvicorn_server(app, proxy_headers), [sock])
