"""A webhook receiver on 127.0.0.1: a small threaded HTTP server that records every
request it gets (headers, body, when) and answers what the test tells it to.

    with Receiver() as receiver:
        receiver.fail_next(3)          # three 500s, then 204s
        ... register receiver.url ...
        receiver.wait_for(5)           # until five 2xx answers were given
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec


@dataclass(frozen=True)
class Received:
    """One request the receiver got, and what it answered."""

    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


class Receiver:
    """Records requests; answers 500 while failures are owed, else 204 (after
    ``delay`` seconds)."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.received: list[Received] = []
        self._failures = 0
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver._answer()
                receiver._record(Received(dict(self.headers.items()), body, time.time(), status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/casenet/webhook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, count: int) -> None:
        with self._lock:
            self._failures = count

    def _answer(self) -> int:
        with self._lock:
            if self._failures:
                self._failures -= 1
                return 500
            return 204

    def _record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)
            self._lock.notify_all()

    def delivered(self) -> list[Received]:
        """The requests answered 2xx, in the order they arrived."""
        with self._lock:
            return [r for r in self.received if r.status < 300]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until ``count`` requests were answered 2xx; the 2xx requests."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while sum(r.status < 300 for r in self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = sum(r.status < 300 for r in self.received)
                    raise AssertionError(f"{got} of {count} deliveries within {timeout} s")
                self._lock.wait(left)
        return self.delivered()
