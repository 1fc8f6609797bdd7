"""The app as ``casenet serve`` builds it: the startup heap frozen out of the collector.

A full garbage collection walked the app's ~100k startup objects and held the GIL for
50-80 ms under load: the owner read's p99 (BENCHMARKS.md, "Owner read"). The served
factory freezes them; ``create_app`` (tests, embedders) leaves the interpreter alone.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar

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
