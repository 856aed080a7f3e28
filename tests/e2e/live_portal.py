"""The real portal, served by uvicorn in a background thread on a free local port.

Shared by the browser tests (tests/e2e/conftest.py) and scripts/screenshots.py, so both
drive exactly the server a customer would. Imports nothing from pytest.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from fairsub.bootstrap import Container
from fairsub.entrypoints.relay_process import Relay
from fairsub.entrypoints.web.app import create_app


def wait_until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Poll `condition` until it is true; fail with `what` when `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(0.02)


@dataclass(frozen=True, slots=True)
class LivePortal:
    url: str
    container: Container


@contextmanager
def running_portal(
    build: Callable[[str], Container], *, relay: Relay = Relay.THREAD, timeout: float = 10.0
) -> Iterator[LivePortal]:
    """Bind a free port, build the container for that base URL with `build(url)`, and
    serve it until the block ends; then stop the server, its relay and its engine.

    The socket is bound before the container is built (the base URL goes into emails and
    the list of official origins) and handed to uvicorn, so no other process can take the
    port in between.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
        url = f"http://{host}:{port}"
        container = build(url)
        try:
            config = uvicorn.Config(
                create_app(container, relay=relay),
                host=host,
                port=port,
                log_level="warning",
                timeout_graceful_shutdown=5,
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(
                target=server.run, kwargs={"sockets": [sock]}, name="portal", daemon=True
            )
            thread.start()
            try:
                wait_until(
                    lambda: server.started or not thread.is_alive(), "the portal to start", timeout
                )
                if not server.started:
                    raise RuntimeError("the portal failed to start; see the log above")
                yield LivePortal(url, container)
            finally:
                server.should_exit = True
                thread.join(timeout=timeout)
                if thread.is_alive():
                    raise RuntimeError(f"the portal did not stop within {timeout:g} s")
        finally:
            container.close()
