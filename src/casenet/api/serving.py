"""The app as ``casenet serve`` runs it: built once, then the server process's
interpreter settled for serving (the factory granian calls in each worker).

**The startup heap is frozen** (:func:`gc.freeze`). Building the app imports Litestar,
msgspec's and the OpenAPI schema's objects, the vocabulary and the services: about 100k
objects that live as long as the process. CPython's full (generation 2) collection walks
every tracked object, and under load it came every second or so and held the GIL for
50-80 ms, so every request in flight waited that long: the owner read's p99 at 32
connections was such a pause (BENCHMARKS.md, "Owner read"). Frozen objects are left out of
every collection, so a full collection walks only what was allocated since (1-2 ms).
Nothing about them changes otherwise: freed by reference counting as before; only a
reference cycle among them, if the app ever dropped one, would stay (the app lives as
long as the process).

Tests and other embedders build the app with :func:`casenet.api.app.create_app`, which
leaves the interpreter alone; ``casenet serve`` gives granian :data:`SERVED_APP`.
"""

from __future__ import annotations

import gc

from litestar import Litestar

from casenet.api.app import create_app

#: The factory ``casenet serve`` hands granian (``module:function``, called in each worker).
SERVED_APP = "casenet.api.serving:served_app"


def served_app() -> Litestar:
    """The app over the store the environment names, with the startup heap frozen."""
    app = create_app()
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> int:
    """Collect what startup left behind, then move every live object out of the garbage
    collector's generations for good; how many objects that froze."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
