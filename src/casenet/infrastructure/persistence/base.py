"""What casenet's recorders share, whatever the store: group commit, and reading
several aggregates' events with their clients' data keys in one statement."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from casenet.infrastructure.keytable import SELECT_AS_EVENT_ROWS, DataKeyRow, row_of_event_row
from casenet.infrastructure.sql import Database

#: One save: its events and the data keys of the clients it registers.
Write = tuple[Sequence[StoredEvent], Sequence[DataKeyRow]]
Flush = Callable[[list[Write]], list[Sequence[int] | BaseException]]
#: Told the number of saves each committed batch wrote (``/metrics`` counts them: the
#: store knows nothing of Prometheus).
BatchObserver = Callable[[int], None]

#: An event row as :meth:`CasenetRecorder.read_aggregates` gives it: the aggregate id
#: as stored, its version, topic and stored state.
EventRow = tuple[Any, ...]


class _Save:
    __slots__ = ("done", "events", "outcome")

    def __init__(self, events: Write) -> None:
        self.events = events
        self.done = False
        self.outcome: Sequence[int] | BaseException = ()


class GroupCommit:
    """Leader/follower batching of concurrent saves (no thread of its own).

    The first waiting thread becomes the leader, takes every save queued so far and
    hands them to ``flush`` together, which writes them in one transaction and gives
    each save its outcome: its notification ids, or the error it alone gets.

    ``observers`` are told, by the leader, how many saves each batch wrote (those that
    got their ids, not their error), before any save of the batch returns.
    """

    def __init__(self, flush: Flush, max_batch: int = 256) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._queue: list[_Save] = []
        self._busy = False
        self._changed = threading.Condition()
        self.observers: list[BatchObserver] = []

    def submit(self, events: Write) -> Sequence[int]:
        save = _Save(events)
        with self._changed:
            self._queue.append(save)
            while self._busy and not save.done:
                self._changed.wait()
            if not save.done:
                self._busy = True
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
        if not save.done:
            try:
                outcomes = self._flush([s.events for s in batch])
            except BaseException as error:  # noqa: BLE001  (handed to every waiting caller)
                outcomes = [error] * len(batch)
            try:
                self._tell(outcomes)
            finally:  # the waiting saves get their outcomes, whatever an observer did
                with self._changed:
                    for member, outcome in zip(batch, outcomes, strict=True):
                        member.outcome, member.done = outcome, True
                    self._busy = False
                    self._changed.notify_all()
        if isinstance(save.outcome, BaseException):
            raise save.outcome
        return save.outcome

    def _tell(self, outcomes: list[Sequence[int] | BaseException]) -> None:
        written = sum(not isinstance(outcome, BaseException) for outcome in outcomes)
        if written:
            for observer in list(self.observers):
                observer(written)


class CasenetRecorder:
    """The part of casenet's application recorders that every store shares (a mixin
    before the library's recorder class: ``persistence.sqlite``, ``.postgres``)."""

    #: The library recorder's (declared here, defined there: the mixin comes first).
    events_table_name: str
    create_table: Callable[[], None]
    #: casenet's own tables (data keys, read models), in the events' database.
    database: Database
    #: Set by the application: returns (and forgets) this thread's staged key rows.
    staged_keys: Callable[[], list[DataKeyRow]] | None = None
    #: The store's group commit (set by each store's recorder).
    _group: GroupCommit

    def _casenet_init(self, database: Database) -> None:
        self.database = database
        self._statements: dict[tuple[int, int], str] = {}

    def observe_batches(self, observer: BatchObserver) -> Callable[[], None]:
        """Tell ``observer`` how many saves each committed batch wrote; returns the
        call that stops telling it."""
        self._group.observers.append(observer)
        return lambda: self._group.observers.remove(observer)

    def tables_exist(self) -> None:
        """The tables were created before (no DDL runs): what the store needs then."""

    def stored_id(self, aggregate_id: UUID) -> Any:
        """``aggregate_id`` as the events table holds it (and gives it back)."""
        return aggregate_id

    def _staged(self) -> list[DataKeyRow]:
        return self.staged_keys() if self.staged_keys is not None else []

    def read_aggregates(
        self, aggregate_ids: Sequence[UUID], subjects: Collection[UUID]
    ) -> tuple[list[list[EventRow]], list[DataKeyRow]]:
        """The events of each of ``aggregate_ids`` (in that order, each in version
        order) and the data key rows of those of ``subjects`` that have one, from ONE
        statement: one snapshot of the log, one round trip."""
        stored = [self.stored_id(aggregate_id) for aggregate_id in aggregate_ids]
        events: dict[Any, list[EventRow]] = {column: [] for column in stored}
        asked = {self.database.id_param(subject): subject for subject in subjects}
        query = self._statements.get((len(events), len(asked)))
        if query is None:
            query = self._statements[len(events), len(asked)] = self._events_statement(
                len(events), len(asked)
            )
        keys: list[DataKeyRow] = []
        for row in self.database.read(query, (*events, *asked), tuples=True):
            if row[1] >= 0:
                events[row[0]].append(row)
            else:  # a key row (version -1): its subject by the id it was asked by
                keys.append(row_of_event_row(asked[row[0]], row))
        return [events[column] for column in stored], keys

    def _events_statement(self, count: int, subjects: int) -> str:
        """The statement :meth:`read_aggregates` runs for ``count`` aggregates and
        ``subjects`` clients' key rows (as rows of version -1: subject, -1, master
        key id, wrapped key, data key id; events have a fifth column then)."""
        fifth = f", CAST(NULL AS {self.database.blob})" if subjects else ""
        query = (
            f"SELECT originator_id, originator_version, topic, state{fifth} "
            f"FROM {self.events_table_name} WHERE originator_id IN ({_marks(count)})"
        )
        if subjects:
            query += f" UNION ALL {SELECT_AS_EVENT_ROWS} IN ({_marks(subjects)})"
        return self.database.sql(query + " ORDER BY 1, 2")


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)
