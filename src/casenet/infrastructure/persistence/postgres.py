"""PostgreSQL: the library's application recorder, appending concurrent saves in one
call of a database function, and casenet's tables in the same database
(:class:`PostgresDatabase`).

The library serialises writers with ``LOCK TABLE ... IN EXCLUSIVE MODE`` so that
notification ids commit in order: a follower reading by id never passes a gap that
a slower transaction fills later (a skipped event is a confidentiality bug). That
lock costs one transaction per save, in several round trips.

Here concurrent saves of one process are committed together (:class:`GroupCommit`):
the leader writes them all in ONE call of a database function that takes the same
table lock, inserts and returns the ids (one round trip, one commit). The lock is
kept, so the guarantee is the library's; only the number of lock-and-commit cycles
drops. Each save stays atomic: if any save of a batch conflicts (another writer won
its version), the batch rolls back and each of its saves is retried alone, so exactly
the losers get the conflict.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from casenet.infrastructure.keytable import TABLE as KEYS_TABLE
from casenet.infrastructure.keytable import DataKeyRow
from casenet.infrastructure.persistence import replicas
from casenet.infrastructure.persistence.base import CasenetRecorder, GroupCommit, Write
from casenet.infrastructure.sql import POSTGRESQL, Database, StoredRow
from casenet.settings import DatabaseSettings

#: Advisory lock key held while casenet creates its tables ("casenet" in ASCII).
SCHEMA_LOCK = 0x636173656E6574


class CasenetPostgresRecorder(CasenetRecorder, PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, writing through :class:`GroupCommit`."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self._casenet_init(PostgresDatabase(datastore))
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

    def tables_exist(self) -> None:
        # The library creates its composite type's adapter with the table; register it.
        self.datastore.register_type_adapters()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        if kwargs.get("tracking") is not None:  # a process recorder's write: not batched
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        try:
            return self._group.submit((stored_events, self._staged()))
        finally:
            replicas.wrote()

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


class PostgresDatabase(Database):
    """casenet's tables in the PostgreSQL database of the events."""

    dialect = POSTGRESQL
    blob = "BYTEA"
    uuid = "UUID"
    time = "TIMESTAMPTZ"

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore)
        self._store = datastore
        self._replicas: replicas.Replicas | None = None

    # --- reads from hot standbys (persistence/replicas.py)

    def route_reads(self, urls: Sequence[DatabaseSettings], wait: float) -> None:
        if urls:
            self._replicas = replicas.Replicas(urls, wait, self._insert_position)

    def _insert_position(self) -> str:
        rows = self._primary_read("SELECT pg_current_wal_insert_lsn()::text", (), True)
        return str(rows[0][0])

    def on_primary(self) -> AbstractContextManager[None]:
        return nullcontext() if self._replicas is None else replicas.on_primary()

    def wal_position_sql(self) -> str | None:
        return None if self._replicas is None else "pg_current_wal_insert_lsn()::text"

    def primary_seen(self, position: str) -> None:
        if self._replicas is not None:
            replicas.seen(position)

    def replica_stats(self) -> replicas.ReplicaStats | None:
        return None if self._replicas is None else self._replicas.snapshot()

    @contextmanager
    def cursor(self, *, commit: bool) -> Iterator[Any]:
        """A write here makes the request's next routed read wait for it."""
        try:
            with super().cursor(commit=commit) as cursor:
                yield cursor
        finally:
            if commit:
                replicas.wrote()

    def close(self) -> None:
        if self._replicas is not None:
            self._replicas.close()

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """PostgreSQL's DDL races between processes starting together ('tuple
        concurrently updated'): an advisory lock serialises them."""
        with self._store.get_connection() as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    def insert_rows(self, cursor: Any, table: str, rows: Collection[Sequence[Any]]) -> None:
        """By COPY: psycopg's executemany costs some 15 us a row in Python, COPY about 1."""
        if not rows:
            return
        with cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def read(self, query: str, params: tuple[Any, ...] = (), *, tuples: bool = False) -> list[Any]:
        """On a replica when the request's routing allows it (persistence/replicas.py),
        else on the primary."""
        if self._replicas is not None:
            rows = self._replicas.read(query, params, tuples)
            if rows is not None:
                return rows
        return self._primary_read(query, params, tuples)

    def _primary_read(self, query: str, params: tuple[Any, ...], tuples: bool) -> list[Any]:
        """The connections are in autocommit mode: one round trip, not the three of a
        transaction (measured: 161 -> 60 us a query)."""
        with self._store.get_connection() as conn:
            cursor: Any = conn.execute(query, params)
            if tuples:
                cursor.row_factory = tuple_row
            rows: list[Any] = [] if cursor.description is None else cursor.fetchall()
            return rows

    def log_window(
        self, table: str, topics: Sequence[str], start: int, end: int
    ) -> list[StoredRow]:
        query = (
            "SELECT notification_id, topic, originator_id::text, originator_version, state "
            f"FROM {table} WHERE notification_id > %s AND notification_id <= %s "
            "AND topic = ANY(%s) ORDER BY notification_id"
        )
        with self.cursor(commit=False) as cursor:
            # Plain tuples, binary: no text to parse for ids and states.
            cursor.row_factory = tuple_row
            cursor.execute(query, (start, end, list(topics)), binary=True)
            rows: list[StoredRow] = cursor.fetchall()
            return rows

    def log_after(self, table: str, start: int, limit: int, stop: int | None) -> list[StoredRow]:
        bound = "" if stop is None else " AND notification_id <= %s"
        query = (
            "SELECT notification_id, topic, originator_id::text, originator_version, state "
            f"FROM {table} WHERE notification_id > %s{bound} ORDER BY notification_id LIMIT %s"
        )
        params = (start, limit) if stop is None else (start, stop, limit)
        with self.cursor(commit=False) as cursor:
            cursor.row_factory = tuple_row
            cursor.execute(query, params, binary=True, prepare=True)
            rows: list[StoredRow] = cursor.fetchall()
            return rows

    # --- what the read models need of this store (see Database)

    def notification_id_column(self) -> str:
        return "notification_id"

    def add_missing_columns(
        self, cursor: Any, table: str, columns: Sequence[tuple[str, str]]
    ) -> None:
        for column, kind in columns:
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")

    def commit_without_flush(self, cursor: Any) -> None:
        """Not with read replicas: a standby gets WAL once it is flushed, and the WAL
        writer flushes an asynchronous commit up to ``wal_writer_delay`` (200 ms) later;
        a routed read waiting for that batch would fall back to the primary."""
        if self._replicas is None:
            cursor.execute("SET LOCAL synchronous_commit = off")

    def index_names(self) -> set[str]:
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        return {str(row[0]) for row in self.read(query, tuples=True)}

    def compress_column(self, table: str, column: str) -> list[str]:
        """lz4 where the server has it (PostgreSQL 14+ built with lz4; else pglz stays)."""
        return [
            f"DO $$ BEGIN EXECUTE 'ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION "
            "lz4'; EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL; END $$"
        ]

    def begin_bulk_read(self, cursor: Any) -> None:
        """One snapshot for several statements, and a plan that reads rows in key order."""
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # Before its first ANALYZE a fresh table looks empty to the planner, which then
        # gathers every remaining row and sorts it (on disk) for each fetch.
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL work_mem = '32MB'")

    def fetch_tuples(self, cursor: Any, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Binary: bytes as they are stored."""
        cursor.row_factory = tuple_row
        cursor.execute(query, params, binary=True)
        rows: list[Any] = cursor.fetchall()
        return rows

    def scan(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[str],
        key: Sequence[str],
        kinds: Sequence[type[int] | type[bytes]],
        *,
        fetch: int,
    ) -> Iterator[tuple[Any, ...]]:
        """One binary COPY (SELECTs cost half as much again, in the server's and
        psycopg's handling of each result); ``fetch`` does not apply."""
        query = f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(key)}"
        yield from _copied_rows(cursor, query, kinds)


def _copied_rows(
    cursor: Any, query: str, kinds: Sequence[type[int] | type[bytes]]
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` by one binary COPY, decoded by ``kinds``."""
    signature = b"PGCOPY\n\xff\r\n\x00"
    header_size = len(signature) + 8  # then flags and the header extension's length
    rest = b""  # of a message that ended inside a row
    header, ended = True, False
    with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
        for message in copy:
            data = memoryview(rest + bytes(message)) if rest else memoryview(message)
            at = 0
            if header:
                if len(data) < header_size:
                    rest = bytes(data)
                    continue
                if bytes(data[: len(signature)]) != signature:
                    raise ValueError("not a binary COPY stream")
                at, header = header_size, False
            while at + 2 <= len(data):
                fields = int.from_bytes(data[at : at + 2], "big", signed=True)
                if fields == -1:  # the trailer
                    at, ended = at + 2, True
                    break
                if fields != len(kinds):
                    raise ValueError("a binary COPY row of another shape")
                row, end = _binary_row(data, at + 2, kinds)
                if row is None:
                    break  # the row goes on in the next message
                yield row
                at = end
            rest = bytes(data[at:])
    if rest or not ended:
        raise ValueError("the binary COPY stream ended inside a row")


def _binary_row(
    data: memoryview, at: int, kinds: Sequence[type[int] | type[bytes]]
) -> tuple[tuple[Any, ...] | None, int]:
    """The row whose fields begin at ``at`` (each a 4-byte length, then its bytes; -1
    for NULL), and where it ends; None if ``data`` ends inside it."""
    values: list[Any] = []
    for kind in kinds:
        if at + 4 > len(data):
            return None, at
        size = int.from_bytes(data[at : at + 4], "big", signed=True)
        at += 4
        if size < 0:
            values.append(None)
            continue
        if at + size > len(data):
            return None, at
        field = data[at : at + size]
        at += size
        values.append(int.from_bytes(field, "big", signed=True) if kind is int else bytes(field))
    return tuple(values), at
