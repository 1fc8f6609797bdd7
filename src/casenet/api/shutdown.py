"""Knowing that the server is stopping while it still answers requests.

An ASGI server (granian, uvicorn) that gets SIGTERM stops accepting, waits for the
requests in flight to finish, and only THEN sends the app its lifespan shutdown. A feed
request waiting up to 30 s (``GET /v1/feed?wait=30``) would hold the whole shutdown
that long, so the app has to learn of the stop from the signal itself.

:func:`told_on_termination` chains a handler before the server's own, with the standard
library's ``signal`` module: the server's handler still runs (asyncio's
``add_signal_handler`` is woken by the wakeup fd, which does not depend on the Python
handler), and the previous handler is put back when the lifespan ends. Only the main
thread may set a handler; anywhere else (Litestar's ``TestClient`` runs the lifespan in
a thread of its own) nothing is installed: there is no signal to wait for there.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

#: What a server is stopped with (SIGINT: Ctrl-C in a terminal).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def told_on_termination(stopping: Callable[[], None]) -> Iterator[None]:
    """Call ``stopping`` when the process gets SIGTERM or SIGINT in the block, and then
    the handler that was there before. ``stopping`` runs in a signal handler: it must
    only set a flag (no lock, no I/O)."""
    installed: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            signal.signal(signum, _chained(stopping, previous))
            installed[signum] = previous
    try:
        yield
    finally:
        for stopped, previous in installed.items():
            signal.signal(stopped, previous if previous is not None else signal.SIG_DFL)


def _chained(
    stopping: Callable[[], None], previous: Any
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stopping()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # nobody handled it: what it would have done
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    return handler
