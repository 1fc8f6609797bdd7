"""Reads from PostgreSQL hot standbys, still read-your-writes (``CASENET_REPLICA_URLS``).

A request that only reads (the API opens :func:`routed_reads` for GET and HEAD) may
have its reads served by a replica. Its first routed read takes the primary's WAL
insert position (``pg_current_wal_insert_lsn()``: it covers the commits made with
``synchronous_commit = off`` too, a read model's batches), and is served by a replica
whose ``pg_last_wal_replay_lsn()`` is at or past it: everything that had committed on
the primary when the read started is visible there. A replica behind is polled for up
to ``wait`` seconds; past that, or when no replica can be reached, the primary serves,
and the rest of the request reads the primary (its reads never go back in time).

Anything written in the request (a save, a disclosure, a read model caught up) and any
block read on the primary (:func:`on_primary`: the read models' positions, which decide
whether to write) makes the next routed read take a fresh position. Outside a routed
request (writes, background threads, the CLI) every read goes to the primary.

Each replica has a few connections of its own, opened in the reading thread with a
short connect timeout: a replica that refuses or times out is marked down for
:data:`DOWN_SECONDS` (one log line, its address without password) and its reads go to
the primary meanwhile, with no error to the caller. (A ``psycopg_pool`` pool retries
failed connects in its background with a growing backoff and makes each caller wait
its whole timeout meanwhile: a down replica would cost every read that timeout.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from casenet.settings import DatabaseSettings

logger = logging.getLogger("casenet.replicas")

#: Seconds a replica that could not be reached is left alone before it is tried again.
DOWN_SECONDS = 5.0
#: Seconds to wait for a replica's connection (the primary's is longer: it must answer).
CONNECT_TIMEOUT_SECONDS = 2
#: Idle connections kept per replica (more are opened under load, then closed), and the
#: most a process opens to one replica at once (as its primary pool's 20).
IDLE_CONNECTIONS, MAX_CONNECTIONS = 4, 20
#: The first and the longest pause between two looks at a replica's replay position.
POLL_FIRST, POLL_MAX = 0.001, 0.01
#: The reasons a routed read went to the primary (``/metrics`` labels): every replica
#: behind past the bound, unreachable, or using all its connections.
LAG, DOWN, BUSY = "lag", "down", "busy"
#: The bytes of a WAL page and of its short header: a position just past a page's
#: header is where the WAL ended at the page's boundary (see :func:`wal_position`).
_PAGE, _SHORT_HEADER = 8192, 24


@dataclass
class Route:
    """One request's routing: the WAL position its routed reads need, if taken yet."""

    lsn: int | None = None
    #: Inside :func:`on_primary` blocks (nested).
    pinned: int = 0
    #: A read fell back to the primary: the rest of the request stays there.
    primary: bool = False


_route: ContextVar[Route | None] = ContextVar("casenet_read_route", default=None)


@contextmanager
def routed_reads() -> Iterator[None]:
    """Within: the reads of this context (and of the worker threads it is copied to) may
    be served by a replica."""
    token = _route.set(Route())
    try:
        yield
    finally:
        _route.reset(token)


@contextmanager
def on_primary() -> Iterator[None]:
    """Within: reads go to the primary; after: the next routed read takes a fresh WAL
    position (it must see at least what was read here)."""
    route = _route.get()
    if route is None:
        yield
        return
    route.pinned += 1
    try:
        yield
    finally:
        route.pinned -= 1
        route.lsn = None


def seen(position: str) -> None:
    """The request's last block on the primary read everything as of WAL ``position``
    (taken in its statement) and wrote nothing: the next routed read needs that, not a
    fresh position (one round trip fewer)."""
    route = _route.get()
    if route is not None and not route.pinned and route.lsn is None:
        route.lsn = wal_position(position)


def wrote() -> None:
    """Something was written: the next routed read must see it."""
    route = _route.get()
    if route is not None:
        route.lsn = None


def wal_position(text: str) -> int:
    """A ``pg_lsn`` as a number. The insert position just past a page's header is the
    end of the WAL at the page's boundary, which a replica reports without the header:
    both mean the same records."""
    high, _, low = text.partition("/")
    lsn = (int(high, 16) << 32) | int(low, 16)
    return lsn - _SHORT_HEADER if lsn % _PAGE == _SHORT_HEADER else lsn


@dataclass
class ReplicaStats:
    """What the replicas did in this process (``/metrics`` reads it)."""

    served: int = 0
    fallbacks: dict[str, int] = field(default_factory=lambda: {LAG: 0, DOWN: 0, BUSY: 0})
    waits: int = 0
    wait_seconds: float = 0.0
    #: Routed reads that asked the primary for its WAL position themselves (the others
    #: had it from the statement that read the read models' positions: :func:`seen`).
    positions: int = 0


class Replica:
    """One hot standby: its idle connections, the replay position last seen there, and
    until when it is down."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.display = settings.display
        self._connect_args: dict[str, Any] = {
            "host": settings.host,
            "port": settings.port,
            "user": settings.user,
            "password": settings.password or None,
            "dbname": settings.dbname,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "autocommit": True,
            "row_factory": dict_row,
        }
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        #: The highest replay position seen on this server (0 after any new connection:
        #: a restarted standby may start replaying from further back).
        self.replayed = 0
        self.down_until = 0.0

    def try_slot(self) -> bool:
        """Take one of the replica's connection slots (give it back by :meth:`free`)."""
        return self._slots.acquire(blocking=False)

    def free(self) -> None:
        self._slots.release()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = psycopg.connect(**self._connect_args)
            self.replayed = 0
        kept = False
        try:
            yield conn
            with self._lock:
                kept = len(self._idle) < IDLE_CONNECTIONS and not conn.closed
                if kept:
                    self._idle.append(conn)
        finally:
            if not kept:
                conn.close()

    def replay_position(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT pg_last_wal_replay_lsn()::text", prepare=True).fetchone()
        text = None if row is None else next(iter(dict(row).values()))
        if text is None:
            raise psycopg.OperationalError("not a hot standby (no WAL replay)")
        self.replayed = max(self.replayed, wal_position(str(text)))
        return self.replayed

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Replicas:
    """The replicas of one store and the routing of its reads (see the module)."""

    def __init__(
        self,
        replicas: Sequence[DatabaseSettings],
        wait: float,
        primary_lsn: Callable[[], str],
    ) -> None:
        self._replicas = [Replica(settings) for settings in replicas]
        self._wait = wait
        self._primary_lsn = primary_lsn
        self._next = 0
        self._lock = threading.Lock()
        self.stats = ReplicaStats()

    def read(self, query: str, params: tuple[Any, ...], tuples: bool) -> list[Any] | None:
        """The rows of a read served by a replica; None when the primary must serve it
        (no routed request, a block on the primary, every replica behind or down)."""
        route = _route.get()
        if route is None or route.pinned or route.primary:
            return None
        if route.lsn is None:
            route.lsn = wal_position(self._primary_lsn())
            with self._lock:
                self.stats.positions += 1
        reason = DOWN
        for replica in self._choose(time.monotonic()):
            if not replica.try_slot():
                reason = BUSY
                continue
            try:
                with replica.connection() as conn:
                    if not self._caught_up(replica, conn, route.lsn):
                        self._fell_back(route, LAG)
                        return None
                    cursor: Any = conn.execute(query, params)
                    if tuples:
                        cursor.row_factory = tuple_row
                    rows: list[Any] = [] if cursor.description is None else cursor.fetchall()
            except psycopg.Error as error:
                self._down(replica, error)
                continue
            finally:
                replica.free()
            with self._lock:
                self.stats.served += 1
            return rows
        self._fell_back(route, reason)
        return None

    def _choose(self, now: float) -> list[Replica]:
        """The replicas not marked down, the next one in turn first."""
        with self._lock:
            self._next = (self._next + 1) % len(self._replicas)
            turn = self._replicas[self._next :] + self._replicas[: self._next]
        return [replica for replica in turn if replica.down_until <= now]

    def _caught_up(self, replica: Replica, conn: psycopg.Connection[Any], lsn: int) -> bool:
        """Whether ``replica`` has replayed the WAL up to ``lsn``, waiting for it up to
        the bound (the replay position only grows: a query after a look sees it)."""
        if replica.replayed >= lsn:
            return True
        started = time.monotonic()
        pause = POLL_FIRST
        while replica.replay_position(conn) < lsn:
            waited = time.monotonic() - started
            if waited >= self._wait:
                self._waited(waited)
                return False
            time.sleep(min(pause, self._wait - waited))
            pause = min(pause * 2, POLL_MAX)
        self._waited(time.monotonic() - started)
        return True

    def _waited(self, seconds: float) -> None:
        with self._lock:
            self.stats.waits += 1
            self.stats.wait_seconds += seconds

    def _fell_back(self, route: Route, reason: str) -> None:
        route.primary = True
        with self._lock:
            self.stats.fallbacks[reason] += 1

    def _down(self, replica: Replica, error: psycopg.Error) -> None:
        """Leave ``replica`` alone for a while; one line, with no query nor value."""
        replica.down_until = time.monotonic() + DOWN_SECONDS
        replica.close()  # its other connections are likely broken too
        replica.replayed = 0
        logger.warning(
            "read replica %s unavailable (%s): reads go elsewhere for %.0f s",
            replica.display,
            type(error).__name__,
            DOWN_SECONDS,
        )

    def snapshot(self) -> ReplicaStats:
        with self._lock:
            stats = self.stats
            return ReplicaStats(
                stats.served,
                dict(stats.fallbacks),
                stats.waits,
                stats.wait_seconds,
                stats.positions,
            )

    def close(self) -> None:
        for replica in self._replicas:
            replica.close()
