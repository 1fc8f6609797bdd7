"""Group commit (:class:`GroupCommit`, used by both stores' recorders), and PostgreSQL
appends through it, keeping the log's ordering guarantee. (SQLite's recorder, which
writes a batch with a savepoint per save, is ``sqlite_recorder``.)

The library serialises writers with ``LOCK TABLE ... IN EXCLUSIVE MODE`` so that
notification ids commit in order: a follower reading by id never passes a gap that
a slower transaction fills later (a skipped event is a confidentiality bug). That
lock costs one transaction per save, in several round trips.

Here concurrent saves of one process are committed together: the first waiting
thread becomes the leader, takes every save queued so far, and writes them all in
ONE call of a database function that takes the same table lock, inserts and
returns the ids (one round trip, one commit). The lock is kept, so the guarantee is
the library's; only the number of lock-and-commit cycles drops. Each save stays
atomic: if any save of a batch conflicts (another writer won its version), the
batch rolls back and each of its saves is retried alone, so exactly the losers get
the conflict.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from casenet.infrastructure.keytable import TABLE as KEYS_TABLE
from casenet.infrastructure.keytable import DataKeyRow

Write = tuple[Sequence[StoredEvent], Sequence[DataKeyRow]]
Flush = Callable[[list[Write]], list[Sequence[int] | BaseException]]


class _Save:
    __slots__ = ("done", "events", "outcome")

    def __init__(self, events: Write) -> None:
        self.events = events
        self.done = False
        self.outcome: Sequence[int] | BaseException = ()


class GroupCommit:
    """Leader/follower batching of concurrent calls (no thread of its own)."""

    def __init__(self, flush: Flush, max_batch: int = 256) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._queue: list[_Save] = []
        self._busy = False
        self._changed = threading.Condition()

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
            with self._changed:
                for member, outcome in zip(batch, outcomes, strict=True):
                    member.outcome, member.done = outcome, True
                self._busy = False
                self._changed.notify_all()
        if isinstance(save.outcome, BaseException):
            raise save.outcome
        return save.outcome


class GroupCommitRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, writing through :class:`GroupCommit`."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_function = f"{events_table_name}_append"
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event_type}[], "
                "key_subjects uuid[], key_ids bytea[], key_masters text[], key_wrapped bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                # New clients' data keys, in the same transaction as their events.
                "IF cardinality(key_subjects) > 0 THEN "
                "INSERT INTO {schema}.{keys} (subject_id, data_key_id, master_key_id, wrapped, "
                "created_at) SELECT s, i, m, w, now() FROM unnest(key_subjects, key_ids, "
                "key_masters, key_wrapped) AS k(s, i, m, w); END IF; "
                # The same lock as the library's default path: commit order = id order.
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
                "WITH ORDINALITY AS e(originator_id, originator_version, topic, state, n) "
                "ORDER BY n RETURNING notification_id; END; $BODY$"
            ).format(
                schema=Identifier(datastore.schema),
                function=Identifier(self.insert_function),
                event_type=Identifier(self.stored_event_type_name),
                table=Identifier(events_table_name),
                keys=Identifier(KEYS_TABLE),
                lock_timeout=datastore.lock_timeout,
            )
        )
        self._call = SQL("SELECT * FROM {schema}.{function}(%s, %s, %s, %s, %s)").format(
            schema=Identifier(datastore.schema), function=Identifier(self.insert_function)
        )
        self._group = GroupCommit(self._flush)
        #: Set by the application: returns (and forgets) this thread's staged key rows.
        self.staged_keys: Callable[[], list[DataKeyRow]] | None = None

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        if kwargs.get("tracking") is not None:  # a process recorder's write: not batched
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        keys = self.staged_keys() if self.staged_keys is not None else []
        return self._group.submit((stored_events, keys))

    def _flush(self, saves: list[Write]) -> list[Sequence[int] | BaseException]:
        try:
            ids: list[int] = self._insert(
                [e for events, _ in saves for e in events], [k for _, keys in saves for k in keys]
            )
        except IntegrityError:
            if len(saves) == 1:
                raise
            return [self._insert_alone(save) for save in saves]
        outcomes: list[Sequence[int] | BaseException] = []
        start = 0
        for events, _ in saves:
            outcomes.append(ids[start : start + len(events)])
            start += len(events)
        return outcomes

    def _insert_alone(self, save: Write) -> Sequence[int] | BaseException:
        try:
            ids: list[int] = self._insert(*save)
        except IntegrityError as error:
            return error
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert(self, events: Sequence[StoredEvent], keys: Sequence[DataKeyRow]) -> list[int]:
        key_columns = (
            [k.subject_id for k in keys],
            [k.data_key_id for k in keys],
            [k.master_key_id for k in keys],
            [k.wrapped for k in keys],
        )
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in events
        ]
        # Autocommit: the function's lock, insert and commit are one round trip.
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self._call, (rows, *key_columns), prepare=True)
            return [row[self.insert_function] for row in cursor.fetchall()]
