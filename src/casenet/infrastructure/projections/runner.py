"""Feed read models from the notification log, exactly once, resumably.

Each read model records its position (the last notification id it applied) in
``casenet_projection_positions``, in the same transaction as its rows. A batch is
committed only if the position is still the one it started from (compare-and-swap),
so any number of runners in any number of processes may catch the same read model
up: each notification is applied once, and a crashed batch leaves no trace.

Read models work on events as stored (``facts``): ids, statuses and timestamps are
clear, and personal fields stay the ciphertexts they are in the log. Nothing is
decrypted here. What a model is, and the rule its batches keep: ``base.ReadModel``.
Emptying and refilling models (reset, rebuild, checksum) is ``rebuild.Rebuilds``; the
statements on the positions table are ``positions``'; the loop of the live runner
(a thread of the server, or ``projections run``) is ``live``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from typing import TypeVar

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.utils import get_topic

from casenet.domain.aggregate import DomainEvent
from casenet.infrastructure.projections.base import (
    TRANSIENT,
    PositionConflict,
    ReadModel,
    ReadModelRebuilt,
    ReadModelStopped,
)
from casenet.infrastructure.projections.facts import StoredFact, event_type_of, rows_to_facts
from casenet.infrastructure.projections.live import keep_current
from casenet.infrastructure.projections.positions import (
    ModelState,
    PositionsTable,
    ProjectionStatus,
)
from casenet.infrastructure.projections.rebuild import Rebuilds, bulk_indexes
from casenet.infrastructure.raw_log import next_rows
from casenet.infrastructure.sql import Database

logger = logging.getLogger("casenet.projections")

#: How many notifications one transaction applies.
BATCH_SIZE = 1000


#: How often a read runs again when its read model was reset under it (a rebuild).
READ_ATTEMPTS = 5

T = TypeVar("T")


class Projections(Rebuilds):
    """Every read model of one store, and the runner that keeps them current."""

    def __init__(
        self, recorder: ApplicationRecorder, database: Database, models: Sequence[ReadModel]
    ) -> None:
        self.recorder = recorder
        self.db = database
        self.models = {model.name: model for model in models}
        self._locks = {name: threading.Lock() for name in self.models}
        self._follows = {name: frozenset(model.follows) for name, model in self.models.items()}
        self._stateless = {
            name: frozenset(model.stateless) & self._follows[name]
            for name, model in self.models.items()
        }
        self._topics = {
            name: sorted(get_topic(t) for t in follows) for name, follows in self._follows.items()
        }
        #: Per model, the secondary indexes a rebuild drops and creates again at its end.
        self._bulk_indexes = {
            name: bulk_indexes(model, database) for name, model in self.models.items()
        }
        table = getattr(recorder, "events_table_name", "stored_events")
        column = database.notification_id_column()
        #: The log's head as a scalar subquery, to ask it in the same round trip as more.
        self.head_sql = f"(SELECT COALESCE(MAX({column}), 0) FROM {table})"
        self.table = PositionsTable(database, self.head_sql)
        #: Per model: is there an event it follows in a window of positions? (Plain SQL
        #: through :meth:`Database.read`, as ``raw_log`` reads: the library's
        #: ``select_notifications`` took its pool's reader-writer lock, so a read
        #: checking for news waited behind every commit, and built Notifications.)
        self._pending_sql = {
            name: database.sql(
                f"SELECT 1 FROM {table} WHERE {column} > %s AND {column} <= %s "
                f"AND topic IN ({', '.join(['%s'] * len(topics))}) LIMIT 1"
            )
            for name, topics in self._topics.items()
        }

    def setup(self) -> None:
        """Create the positions table and every read model's tables (idempotent).

        A model whose rows an older version of it wrote (its ``version`` went up) is
        emptied here, in the same transaction, and replayed from the log by the live
        runner or the first read that needs it: a deployed store gets the new rows
        without an operator's ``projections rebuild``.
        """
        versions = {name: model.version for name, model in self.models.items()}
        with self.db.cursor(commit=True) as cursor:
            outdated = self.table.create(cursor, versions)
            for model in self.models.values():
                for statement in model.create_statements(self.db):
                    cursor.execute(statement)
            for name in outdated:
                self.table.restart(cursor, name, versions[name])
                for table in self.models[name].tables:
                    cursor.execute(f"DELETE FROM {table}")
        for name in outdated:
            logger.warning("read model %s changed shape: replaying it from the log", name)

    def names(self, requested: Iterable[str] = ()) -> list[str]:
        names = list(requested) or list(self.models)
        unknown = [n for n in names if n not in self.models]
        if unknown:
            raise KeyError(f"no read model named {unknown[0]!r}; known: {', '.join(self.models)}")
        return names

    def positions(self) -> dict[str, tuple[int, bool]]:
        """Each model's position, and whether it is being rebuilt."""
        return {name: (st.position, st.rebuilding) for name, st in self.table.states().items()}

    def head(self) -> int:
        """The id of the newest notification in the log (0 for an empty log)."""
        return int(self.recorder.max_notification_id() or 0)

    def status(self) -> list[ProjectionStatus]:
        head = self.head()
        states = self.table.states()
        statuses = []
        for name in self.models:
            state = states.get(name, ModelState(name, 0, False, 0, None))
            statuses.append(
                ProjectionStatus(name, state.position, head, state.rebuilding, state.stopped)
            )
        return statuses

    def stopped(self) -> dict[str, str]:
        """The read models that stopped, with why (see :class:`ReadModelStopped`)."""
        return self.table.stopped()

    def resume(self, names: Iterable[str] = (), *, retry: bool = True) -> list[str]:
        """Let stopped read models run again (from their positions): a fixed version
        does at its start, ``projections rebuild NAME`` before it replays. The names
        resumed. ``retry``: first apply the event it stopped at, and leave the model
        stopped (reads keep answering 503, readiness keeps naming it) if it fails
        again; without, the model is only marked running (a rebuild follows).
        """
        wanted = set(names)
        resumed = []
        for name, reason in self.stopped().items():
            if wanted and name not in wanted:
                continue
            if retry:
                with self._locks[name]:
                    start = self.table.position(name)
                    try:
                        if self._apply_alone(name, start, None, BATCH_SIZE) is None:
                            logger.error("read model %s is still stopped: %s", name, reason)
                            continue  # it fails there still: stopped, as it was
                    except PositionConflict:
                        pass  # another process moved it: it runs there
            self.table.clear_stopped(name)
            logger.warning("read model %s resumed (it had stopped: %s)", name, reason)
            resumed.append(name)
        return resumed

    def ensure_current(self, names: Iterable[str] = ()) -> dict[str, int]:
        """Read your writes: bring read models up to the log's head as of now.

        Called at the start of a read, so a read model that is behind is caught up
        (by this thread, or by whoever holds the model's lock) before it is queried.
        Raises :class:`ReadModelStopped` for a stopped model: it would answer stale.
        Returns each model's epoch as it was before, for :meth:`current`.
        """
        # On the primary (with read replicas: the next routed read waits for what was
        # seen or written here). One round trip: each model's position beside the head
        # (and, with replicas, the WAL position a replica must reach to show them).
        with self.db.on_primary():
            rows, wal = self.table.with_head(self.names(names))
            for r in rows:
                if r.stopped is not None:
                    raise ReadModelStopped(r.name, r.position, r.stopped)
            behind = [r.name for r in rows if self.has_pending(r.name, r.position, r.head)]
            if behind:
                self.catch_up(behind, until=rows[0].head)
        if wal is not None and not behind:  # a catch-up wrote: the next read asks afresh
            self.db.primary_seen(wal)
        return {r.name: r.epoch for r in rows}

    def current(self, names: Iterable[str], read: Callable[[], T]) -> T:
        """``read()`` (queries of the models ``names``) on models current as of now, and
        never on a model a rebuild emptied meanwhile.

        A rebuild resets a model (its rows gone, its position 0, its epoch one more)
        and replays it: a query that ran between :meth:`ensure_current` and the end of
        that replay saw part of it (a consent missing: a wrong 404; its withdrawal
        missing: a disclosure). Positions only grow within an epoch, so if every
        model's epoch is still the one seen before catching up, the query saw each at
        or past the position it was caught up to; if not, it runs again.
        """
        wanted = self.names(names)
        for _ in range(READ_ATTEMPTS):
            epochs = self.ensure_current(wanted)
            result = read()
            if self.table.epochs(wanted) == epochs:
                return result
        raise ReadModelRebuilt(wanted[0])

    def has_pending(self, name: str, position: int, head: int) -> bool:
        """Whether the log holds, after ``position`` and up to ``head``, an event the
        model follows. A model behind only by events it ignores (a disclosure, for
        the directory) answers exactly as if current: no write is needed to read it,
        and the background runner moves its position later."""
        if position >= head or not self._topics[name]:
            return False
        return bool(self.db.read(self._pending_sql[name], (position, head, *self._topics[name])))

    def catch_up(
        self,
        names: str | Iterable[str],
        *,
        until: int | None = None,
        batch_size: int = BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Apply every notification after the models' positions (up to ``until``).

        Models at the same position move in lockstep: each batch of the log is read
        and decoded once for all of them and applied in one transaction. A model
        behind the others catches up to the next one's position first, then joins it.

        One model's failure is its own: a batch that fails (other than by the store
        being unavailable, which is raised for the caller to retry) is applied again
        one model at a time, and a model that fails alone stops at the event it cannot
        apply (:meth:`_apply_alone`) while the others go on. Raises
        :class:`ReadModelStopped` for a model of ``names`` that is stopped at the end.

        Long because it is one loop over the positions' states, under the models'
        locks: choosing who moves and where to stop, and what each outcome of a batch
        (a conflict, the store down, a model failing) does to the next round.
        """
        group = [names] if isinstance(names, str) else sorted(set(names))
        applied = 0
        alone = False  # after a failed lockstep batch: one model at a time
        with ExitStack() as held:
            for name in group:  # always in name order: no two callers deadlock
                held.enter_context(self._locks[name])
            while True:
                states = self.table.states(group)
                running = {n: st.position for n, st in states.items() if st.stopped is None}
                if not running:
                    break
                start = min(running.values())
                if until is not None and start >= until:
                    break
                movers = [n for n in group if running.get(n) == start]
                stops = [p for p in running.values() if p > start]
                if until is not None:
                    stops.append(until)
                stop = min(stops, default=None)
                try:
                    if alone or len(movers) == 1:
                        count = self._apply_alone(movers[0], start, stop, batch_size)
                    else:
                        count = self._apply_batch(movers, start, stop, batch_size)
                except PositionConflict:
                    continue  # someone else advanced one: re-read the positions and go on
                except TRANSIENT:
                    raise
                except Exception:  # noqa: BLE001  (one of the models failed: find which, alone)
                    alone = True
                    continue
                if count is None:
                    continue  # that model stopped; the others go on
                if count == 0:
                    break
                applied += count
                if progress is not None:
                    progress(count)
        for name, state in self.table.states(group).items():
            if state.stopped is not None:
                raise ReadModelStopped(name, state.position, state.stopped)
        return applied

    def _apply_alone(self, name: str, start: int, stop: int | None, batch_size: int) -> int | None:
        """Apply the next batch to one model; on its failure, smaller and smaller
        batches, down to the one event it cannot apply: the model stops before it
        (None), with a reason that names the event's position and type and the
        error's type only (an error's message may quote the data)."""
        size = batch_size
        while True:
            try:
                return self._apply_batch([name], start, stop, size)
            except (PositionConflict, *TRANSIENT):
                raise
            except Exception as error:  # noqa: BLE001  (the model's failure: it stops alone)
                if size > 1:
                    size = max(1, size // 2)
                    continue
                self._stop(name, start, stop, error)
                return None

    def _stop(self, name: str, start: int, stop: int | None, error: Exception) -> None:
        rows = next_rows(self.db, self.recorder, start, 1, stop)
        position, topic = (rows[0][0], rows[0][1]) if rows else (start + 1, "")
        kind = event_type_of(topic)
        reason = (
            f"{type(error).__name__} applying "
            f"{kind.__name__ if kind is not None else 'an event'} at position {position}"
        )
        if self.table.mark_stopped(name, start, reason):
            logger.error("read model %s stopped at position %d: %s", name, start, reason)

    def _apply_batch(self, names: list[str], start: int, stop: int | None, batch_size: int) -> int:
        follows = frozenset().union(*(self._follows[name] for name in names))
        stateless = frozenset(
            kind
            for kind in follows
            if all(kind in self._stateless[n] for n in names if kind in self._follows[n])
        )
        facts, last, count = self._read_facts(follows, start, stop, batch_size, stateless)
        if count == 0:
            return 0
        with self.db.bulk_cursor() as cursor:
            # The batch's rows and positions are lost together or kept together: a
            # batch lost to a server crash is applied again from the log (whose own
            # commits stay synchronous). So this commit need not wait for its WAL to
            # reach the disk: on PostgreSQL that wait was 8% of a rebuild.
            self.db.commit_without_flush(cursor)
            # Move the positions first: that takes the write lock at once (SQLite cannot
            # upgrade a stale read to a write), and it is the compare-and-swap that
            # makes a batch apply once however many runners race for it.
            moved = self.table.advance(cursor, names, start, last)
            if len(moved) != len(names):
                raise PositionConflict(min(set(names) - moved))
            mine: dict[str, list[StoredFact]] = {name: [] for name in names}
            routes = {
                kind: [mine[name] for name in names if kind in self._follows[name]]
                for kind in follows
            }
            for fact in facts:
                for bucket in routes[fact.event_type]:
                    bucket.append(fact)
            for name in names:
                if mine[name]:
                    self.models[name].apply_batch(self.db, cursor, mine[name])
        return count

    def _read_facts(
        self,
        follows: frozenset[type[DomainEvent]],
        start: int,
        stop: int | None,
        limit: int,
        stateless: frozenset[type[DomainEvent]] = frozenset(),
    ) -> tuple[list[StoredFact], int, int]:
        """The facts of the next ``limit`` notifications after ``start`` (up to ``stop``),
        the last one's position and how many were read.

        The log is read with plain SQL (``raw_log.next_rows``: tuples, ids as text), not
        with the library's ``select_notifications``, whose ``Notification`` and ``UUID``
        per row were most of a rebuild's read. The rows are gone when this returns: a
        batch is applied holding its facts (untracked by the garbage collector) only.
        (Reading a batch in chunks of 1,000 saved a little collection and cost more on
        PostgreSQL: a transaction and a pooled connection per query.)
        """
        rows = next_rows(self.db, self.recorder, start, limit, stop)
        if not rows:
            return [], start, 0
        return rows_to_facts(rows, follows, stateless), rows[-1][0], len(rows)

    def position(self, name: str) -> int:
        return self.table.position(name)

    def run_forever(
        self,
        stop: threading.Event,
        *,
        interval: float = 0.1,
        every: tuple[float, Callable[[], object]] | None = None,
    ) -> None:
        """Keep every read model current until ``stop`` is set, running ``every``'s
        step as often as it says (see ``live``)."""
        keep_current(self, stop, interval=interval, every=every)
