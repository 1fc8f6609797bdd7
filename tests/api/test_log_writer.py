"""The server's log writer, :class:`~casenet.api.log_writer.LineWriter`, and its wiring.

What is pinned: the lines written are exactly the formatted records, each once, each
thread's in its order, once :meth:`~LineWriter.flush` returns; a burst leaves in a few
writes, not one a record; :meth:`~LineWriter.close` writes what is queued and stops the
thread, and a record after it is written at once; logging never waits on the stream; a
record that fails to format, or a write that fails, does not stop later lines; the
app's logging config puts a LineWriter on the root and ``litestar`` loggers and starts
no Litestar queue listener. Streams are in memory: no socket, no process.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from logging.handlers import QueueListener
from pathlib import Path

import pytest
from litestar import Litestar

from casenet.api import log_writer
from casenet.api.log_writer import LINGER_SECONDS, LineWriter
from casenet.api.observability import JsonLines, logging_config
from casenet.settings import load_settings

#: How long a test waits for what should take milliseconds, before failing.
PATIENCE = 5.0


class CountingStream(io.StringIO):
    """A stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


class GatedStream(CountingStream):
    """A stream whose first write waits until ``gate`` is set (a stuck terminal or pipe)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write(self, text: str) -> int:
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(PATIENCE), "the test never opened the gate"
        return super().write(text)


class FailingOnceStream(CountingStream):
    """A stream whose first write raises."""

    def write(self, text: str) -> int:
        if self.writes == 0:
            self.writes += 1
            raise OSError("the pipe is gone")
        return super().write(text)


def writer_on(stream: io.StringIO, linger: float = LINGER_SECONDS) -> LineWriter:
    writer = LineWriter(stream, linger=linger)
    writer.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return writer


@pytest.fixture
def stream() -> CountingStream:
    return CountingStream()


@pytest.fixture
def writer(stream: CountingStream) -> Iterator[LineWriter]:
    handler = writer_on(stream)
    yield handler
    handler.close()


def logger_to(handler: logging.Handler) -> logging.Logger:
    """A logger of its own (not in logging's registry), writing only to ``handler``."""
    logger = logging.Logger("casenet.test.log_writer", logging.DEBUG)
    logger.addHandler(handler)
    return logger


def writing_thread(writer: LineWriter) -> threading.Thread:
    return writer._thread  # is it still running?


def test_lines_are_the_formatted_records_each_once_in_each_threads_order(
    writer: LineWriter, stream: CountingStream
) -> None:
    logger = logger_to(writer)
    threads, per_thread = 8, 125
    start = threading.Barrier(threads)

    def log(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            logger.warning("t%d n%d", t, i)

    workers = [threading.Thread(target=log, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    writer.flush()

    lines = stream.lines()
    assert len(lines) == threads * per_thread
    assert sorted(lines) == sorted(
        f"WARNING t{t} n{i}" for t in range(threads) for i in range(per_thread)
    )
    for t in range(threads):  # each thread's lines in the order it logged them
        own = [line for line in lines if line.startswith(f"WARNING t{t} ")]
        assert own == [f"WARNING t{t} n{i}" for i in range(per_thread)]


def test_flush_returns_once_every_line_before_it_is_written(
    writer: LineWriter, stream: CountingStream
) -> None:
    logger = logger_to(writer)
    for round_ in range(3):  # no sleep: flush alone makes the lines appear
        logger.info("round %d", round_)
        writer.flush()
        assert stream.lines()[-1] == f"INFO round {round_}"


def test_a_burst_leaves_in_a_few_writes_not_one_a_record(
    writer: LineWriter, stream: CountingStream
) -> None:
    logger = logger_to(writer)
    for i in range(500):
        logger.info("line %d", i)
    writer.flush()
    assert stream.lines() == [f"INFO line {i}" for i in range(500)]
    assert 1 <= stream.writes <= 50, stream.writes  # the reason the class exists


def test_without_lingering_every_line_is_still_written_in_order(stream: CountingStream) -> None:
    writer = writer_on(stream, linger=0)
    try:
        logger = logger_to(writer)
        for i in range(500):
            logger.info("line %d", i)
        writer.flush()
        assert stream.lines() == [f"INFO line {i}" for i in range(500)]
    finally:
        writer.close()


def test_close_writes_what_is_queued_and_stops_the_thread_and_later_lines_go_at_once(
    stream: CountingStream,
) -> None:
    writer = writer_on(stream, linger=0.05)  # long enough that close finds lines queued
    logger = logger_to(writer)
    for i in range(100):
        logger.info("queued %d", i)
    writer.close()  # no flush
    assert stream.lines() == [f"INFO queued {i}" for i in range(100)]
    assert not writing_thread(writer).is_alive()

    logger.error("after close")  # written at once, in this thread
    assert stream.lines()[-1] == "ERROR after close"

    writer.close()  # twice: nothing happens, nothing raises
    writer.flush()
    assert stream.lines() == [*(f"INFO queued {i}" for i in range(100)), "ERROR after close"]


def test_logging_never_waits_on_a_stuck_stream() -> None:
    stream = GatedStream()
    writer = writer_on(stream)
    try:
        logger = logger_to(writer)
        logger.info("first")
        assert stream.entered.wait(PATIENCE)  # the writing thread is stuck in write()

        started = time.perf_counter()
        for i in range(100):
            logger.info("line %d", i)
        assert time.perf_counter() - started < 1.0  # queued, not written
        assert stream.getvalue() == ""

        stream.gate.set()
        writer.flush()
        assert stream.lines() == ["INFO first", *(f"INFO line {i}" for i in range(100))]
    finally:
        stream.gate.set()
        writer.close()


def test_a_flush_gives_up_on_a_stream_stuck_past_its_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shutdown flushes the log: a pipe nobody reads must not hold it up for ever."""
    monkeypatch.setattr(log_writer, "FLUSH_TIMEOUT_SECONDS", 0.3)
    stream = GatedStream()
    writer = writer_on(stream)
    try:
        logger_to(writer).info("stuck")
        assert stream.entered.wait(PATIENCE)
        started = time.perf_counter()
        writer.flush()
        assert 0.25 <= time.perf_counter() - started < PATIENCE
        assert stream.getvalue() == ""  # not written: the stream is still stuck
    finally:
        stream.gate.set()
        writer.close()
    assert stream.lines() == ["INFO stuck"]


def test_a_record_that_fails_to_format_does_not_stop_later_lines(
    writer: LineWriter, stream: CountingStream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # no traceback on stderr
    logger = logger_to(writer)
    logger.info("before")
    logger.info("%d requests", "many")  # TypeError when formatted, in the writing thread
    logger.info("after")
    writer.flush()
    assert stream.lines() == ["INFO before", "INFO after"]
    assert writing_thread(writer).is_alive()


def test_a_failed_write_does_not_stop_later_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)
    stream = FailingOnceStream()
    writer = writer_on(stream)
    try:
        logger = logger_to(writer)
        logger.info("lost")
        writer.flush()  # the write of that line raised
        logger.info("written")
        writer.flush()
        assert stream.lines() == ["INFO written"]
    finally:
        writer.close()


def test_flush_during_a_close_waits_for_the_lines_queued_before_it() -> None:
    stream = GatedStream()
    writer = writer_on(stream)
    logger = logger_to(writer)
    logger.info("first")
    assert stream.entered.wait(PATIENCE)  # the writing thread is stuck in write()
    logger.info("second")  # queued behind it

    closing = threading.Thread(target=writer.close)
    flushing = threading.Thread(target=writer.flush)
    try:
        closing.start()
        time.sleep(0.05)  # close has begun: it waits for the thread
        flushing.start()
        flushing.join(0.1)
        assert flushing.is_alive(), "flush returned before the queued lines were written"
    finally:
        stream.gate.set()
    flushing.join(PATIENCE)
    closing.join(PATIENCE)
    assert not flushing.is_alive()
    assert not closing.is_alive()
    assert stream.lines() == ["INFO first", "INFO second"]


def test_a_record_logged_during_a_close_comes_after_those_queued_before_it() -> None:
    stream = GatedStream()
    writer = writer_on(stream)
    logger = logger_to(writer)
    logger.info("first")
    assert stream.entered.wait(PATIENCE)
    logger.info("second")

    closing = threading.Thread(target=writer.close)
    try:
        closing.start()
        time.sleep(0.05)  # close has begun: it waits for the thread
        logger.info("third")  # same thread as the others: its line must come last
    finally:
        stream.gate.set()
    closing.join(PATIENCE)
    assert not closing.is_alive()
    assert stream.lines() == ["INFO first", "INFO second", "INFO third"]


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The root and ``litestar`` loggers as they were, after a test configures logging."""
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate)
        for name in ("", "litestar")
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def queue_listener_threads() -> set[threading.Thread]:
    """Threads running a logging QueueListener (Litestar's default log handler starts one)."""
    return {
        t
        for t in threading.enumerate()
        if isinstance(getattr(getattr(t, "_target", None), "__self__", None), QueueListener)
    }


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_apps_logging_goes_through_a_line_writer_and_starts_no_queue_listener(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    settings = load_settings({"CASENET_DATA_DIR": str(tmp_path), "CASENET_LOG_FORMAT": log_format})
    listeners_before = queue_listener_threads()
    Litestar(route_handlers=[], logging_config=logging_config(settings))  # as create_app does

    writers = [h for h in logging.getLogger().handlers if isinstance(h, LineWriter)]
    assert len(writers) == 1
    assert writers == [
        h for h in logging.getLogger("litestar").handlers if isinstance(h, LineWriter)
    ]
    assert queue_listener_threads() <= listeners_before  # Litestar started none
    assert isinstance(writers[0].formatter, JsonLines) == (log_format == "json")

    logging.getLogger("casenet.test").warning("through the app's config")
    writers[0].flush()
    assert "through the app's config" in capsys.readouterr().err  # to stderr
