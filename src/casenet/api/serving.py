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

**The handlers run on a pool sized for the store** (``CASENET_HANDLER_THREADS``): every
handler that touches the store runs in a worker thread (``sync_to_thread``), on the pool
Litestar is given (:func:`litestar.concurrency.set_asyncio_executor`) instead of the
event loop's default (``min(32, cores + 4)``: 6 threads here). On SQLite a request's work
is the process's own CPU, under the GIL; each statement's steps let go of the GIL and
take it back, and the more threads wait for it, the more of those are hand-overs from one
thread to another: 16-19 context switches an owner read with 6 threads, 9-10 with 3, 7
with 2. SQLite owner read at 32 connections, one fresh server a run, three rounds
alternated: 6 threads 2,835-3,310 req/s, p99 17.0-21.0 ms; 3 threads 3,506-3,830 req/s,
p99 13.6-15.9 ms; 2 threads 3,327-3,980 req/s, p99 13.1-17.9 ms. Writes want a few
threads (the group commit batches the saves waiting at once): case creation 517-740
req/s with 6, 507-660 with 3, 461-556 with 2. So 3 on SQLite (BENCHMARKS.md, "Owner
read"). On PostgreSQL a thread waits on round trips, and 2 threads halved the
rate through a 1 ms round trip: 16 there.

Tests and other embedders build the app with :func:`casenet.api.app.create_app`, which
leaves the interpreter alone; ``casenet serve`` gives granian :data:`SERVED_APP`.
"""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor

from litestar import Litestar
from litestar.concurrency import set_asyncio_executor

from casenet.api.app import create_app
from casenet.settings import load_settings

#: The factory ``casenet serve`` hands granian (``module:function``, called in each worker).
SERVED_APP = "casenet.api.serving:served_app"


def served_app() -> Litestar:
    """The app over the store the environment names, its handlers on a pool of
    ``CASENET_HANDLER_THREADS`` threads, the startup heap frozen."""
    settings = load_settings()
    app = create_app(settings)
    set_asyncio_executor(
        ThreadPoolExecutor(settings.handler_threads, thread_name_prefix="casenet-handler")
    )
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> int:
    """Collect what startup left behind, then move every live object out of the garbage
    collector's generations for good; how many objects that froze."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
