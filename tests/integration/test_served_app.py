"""The app as ``casenet serve`` builds it: the startup heap frozen out of the collector.

A full garbage collection walked the app's ~100k startup objects and held the GIL for
50-80 ms under load: the owner read's p99 (BENCHMARKS.md, "Owner read"). The served
factory freezes them; ``create_app`` (tests, embedders) leaves the interpreter alone.
"""

from __future__ import annotations

import gc
import importlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.concurrency import get_asyncio_executor, set_asyncio_executor

from casenet.api.app import create_app
from casenet.api.serving import SERVED_APP, served_app


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A development SQLite store in a fresh data dir, as ``casenet serve`` reads it."""
    monkeypatch.setenv("CASENET_ENV", "development")
    monkeypatch.setenv("CASENET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CASENET_DATABASE_URL", f"sqlite:///{tmp_path / 'casenet.sqlite3'}")
    try:
        yield
    finally:
        gc.unfreeze()  # back into the oldest generation: collectable again
        set_asyncio_executor(None)  # the loop's default pool again, for the other tests


def tracked(obj: object) -> bool:
    """Whether a collection would walk ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def close(app: Litestar) -> None:
    app.state["casenet"].close()


def test_casenet_serve_hands_granian_the_served_factory() -> None:
    module, _, name = SERVED_APP.partition(":")
    assert getattr(importlib.import_module(module), name) is served_app


@pytest.mark.usefixtures("environment")
def test_the_served_app_is_frozen_out_of_every_collection() -> None:
    frozen_before = gc.get_freeze_count()
    app = served_app()
    try:
        assert gc.get_freeze_count() > frozen_before + 10_000  # the import graph, the app
        assert not tracked(app)
        assert not tracked(app.state["casenet"])
        assert not tracked(app.routes)
        # what is allocated afterwards (a request's objects) is collected as before
        later: list[object] = []
        assert tracked(later)
    finally:
        close(app)


@pytest.mark.usefixtures("environment")
def test_create_app_leaves_the_interpreter_alone() -> None:
    frozen_before = gc.get_freeze_count()
    app = create_app()
    try:
        assert gc.get_freeze_count() == frozen_before
        assert tracked(app)
    finally:
        close(app)


@pytest.mark.usefixtures("environment")
def test_the_served_app_runs_its_handlers_on_a_pool_of_handler_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Litestar runs ``sync_to_thread`` handlers on the executor it is given: the served
    app gives it one of ``CASENET_HANDLER_THREADS`` threads, so no more run at once."""
    monkeypatch.setenv("CASENET_HANDLER_THREADS", "3")
    assert get_asyncio_executor() is None  # before: the event loop's default pool
    app = served_app()
    try:
        executor = get_asyncio_executor()
        assert executor is not None
        release = threading.Event()
        running: set[str] = set()

        def handler() -> None:
            running.add(threading.current_thread().name)
            release.wait(10)

        futures = [executor.submit(handler) for _ in range(6)]
        deadline = time.monotonic() + 5
        while len(running) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # room for a fourth thread, were there one
        assert len(running) == 3
        assert all(name.startswith("casenet-handler") for name in running)
        release.set()
        for future in futures:
            future.result(timeout=10)
        assert len(running) == 3  # the other three ran on the same threads
    finally:
        close(app)
