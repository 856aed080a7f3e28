"""How the long-running commands are stopped: SIGTERM (a service manager, `kill`) as Ctrl-C.

Python turns Ctrl-C (SIGINT) into KeyboardInterrupt, which unwinds the stack and runs every
clean-up on the way; SIGTERM's default is to end the process on the spot, skipping them."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt, as Ctrl-C does. Only the main
    thread may set a signal handler; in another (the demo's worker) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
