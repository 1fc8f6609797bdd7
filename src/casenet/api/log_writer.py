"""The server's log leaves the process in batches, written by a thread of its own.

A request only puts its record on a queue (:meth:`LineWriter.emit`: no lock, no system
call), so the event loop never waits on a terminal or a pipe, nor gives up the GIL to
write. One thread formats what is queued and writes all of it with ONE write, then
lingers a few milliseconds so that, under load, the next write carries the lines of many
requests. Writing each line as it came (Litestar's queue listener) cost a write, a flush
and a wake-up of the writing thread per request; each is a point where the threads of a
process hand the GIL to one another, and a server answering thousands of requests a
second spends more on those hand-offs than on the lines (BENCHMARKS.md, "Owner read").

Nothing is lost by waiting: :meth:`LineWriter.flush` returns once every line queued
before it is written, and :meth:`LineWriter.close` (logging's shutdown at exit, and
``dictConfig`` replacing the handler) writes the rest and stops the thread. A line is at
most :data:`LINGER_SECONDS` late, and never late when the server is idle.

Records are formatted in the writing thread. That is safe for casenet's records, whose
arguments are strings and numbers; a record whose arguments were mutable objects changed
after logging would show them as changed (the standard library's ``QueueHandler`` formats
in the caller to avoid that, on the event loop).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Iterable
from typing import TextIO

#: How long the writing thread waits after a line before writing what came meanwhile.
LINGER_SECONDS = 0.005
#: The longest :meth:`LineWriter.flush` waits: a stream stuck that long (a full pipe
#: nobody reads) must not hold up a server's shutdown for ever.
FLUSH_TIMEOUT_SECONDS = 10.0

#: What the queue carries: a record to write, an event to set once everything queued
#: before it is written (a flush), or None to stop (a close).
_Item = logging.LogRecord | threading.Event | None


class LineWriter(logging.Handler):
    """A logging handler writing formatted lines to ``stream`` (standard error by
    default) from a thread of its own, many lines a write."""

    def __init__(self, stream: TextIO | None = None, linger: float = LINGER_SECONDS) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self._linger = linger
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._closing = False  # close() has begun
        self._closed = False  # ... and the writing thread has stopped
        self._thread = threading.Thread(target=self._write_forever, name="casenet-log", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        """As :meth:`logging.Handler.handle`, without its lock: the queue is thread-safe."""
        kept = self.filter(record)
        if isinstance(kept, logging.LogRecord):  # from Python 3.12 a filter may replace it
            record = kept
        if kept:
            self.emit(record)
        return bool(kept)

    def emit(self, record: logging.LogRecord) -> None:
        self._queue.put(record)
        if self._closed:  # logging during the interpreter's shutdown: written at once
            self._drain()

    def flush(self) -> None:
        """Return once every line queued before this call is written (or after
        :data:`FLUSH_TIMEOUT_SECONDS`, with the stream stuck)."""
        if threading.current_thread() is self._thread:
            return
        written = threading.Event()
        self._queue.put(written)
        if self._closed:
            self._drain()
        written.wait(FLUSH_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Write what is queued, then stop the writing thread.

        Until the thread has stopped, what is logged or flushed meanwhile goes through the
        queue, behind what was queued before it (in order, and a flush waits for it).
        ``_closed`` is set only then; what raced it onto the queue is written by whoever
        sees it set: each caller puts its item BEFORE looking, so none is left behind."""
        if not self._closing:
            self._closing = True
            self._queue.put(None)
            self._thread.join()
            self._closed = True
            self._drain()
        super().close()

    def _write_forever(self) -> None:
        while True:
            first = self._queue.get()
            if isinstance(first, logging.LogRecord) and self._linger:
                time.sleep(self._linger)
            batch = [first, *self._queued()]
            self._settle(batch)
            if any(item is None for item in batch):
                return  # close() writes what came after

    def _drain(self) -> None:
        """Write what is queued and answer its flushes, in the calling thread (once the
        writing thread has stopped)."""
        self._settle(self._queued())

    def _settle(self, batch: list[_Item]) -> None:
        """Write the batch's records, then answer the flushes among them."""
        self._write(item for item in batch if isinstance(item, logging.LogRecord))
        for item in batch:
            if isinstance(item, threading.Event):
                item.set()

    def _queued(self) -> list[_Item]:
        items: list[_Item] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _write(self, records: Iterable[logging.LogRecord]) -> None:
        lines = []
        for record in records:
            try:
                lines.append(self.format(record) + "\n")
            except Exception:  # noqa: BLE001  (logging's own policy: report, go on)
                self.handleError(record)
        if lines:
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except Exception:  # noqa: BLE001
                self.handleError(logging.makeLogRecord({"msg": "the log stream failed"}))
