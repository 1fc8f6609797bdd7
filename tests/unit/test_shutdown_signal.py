"""api/shutdown.py: SIGTERM (and SIGINT) in the lifespan tells the app first, then the
handler that was there before (the server's, which must still stop the server); after
the lifespan the server's handler is back alone; off the main thread nothing is set."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from casenet.api.shutdown import told_on_termination


@pytest.fixture
def server_handler() -> Iterator[list[tuple[str, int]]]:
    """A stand-in for the server's own SIGTERM and SIGINT handlers, recording calls."""
    calls: list[tuple[str, int]] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        calls.append(("server", signum))

    before = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield calls
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_app_is_told_first_and_the_server_still_gets_the_signal(
    server_handler: list[tuple[str, int]], signum: int
) -> None:
    calls = server_handler
    with told_on_termination(lambda: calls.append(("app", 0))):
        signal.raise_signal(signum)
        assert calls == [("app", 0), ("server", signum)]
    signal.raise_signal(signum)
    assert calls == [("app", 0), ("server", signum), ("server", signum)]


def test_off_the_main_thread_nothing_is_installed(server_handler: list[tuple[str, int]]) -> None:
    servers = signal.getsignal(signal.SIGTERM)
    handlers: list[object] = []

    def lifespan_in_a_thread() -> None:
        with told_on_termination(lambda: None):
            handlers.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=lifespan_in_a_thread)
    thread.start()
    thread.join()
    assert handlers == [servers]
    signal.raise_signal(signal.SIGTERM)
    assert server_handler == [("server", signal.SIGTERM)]
