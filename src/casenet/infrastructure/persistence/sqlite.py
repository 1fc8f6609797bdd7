"""SQLite: the library's SQLite application recorder, committing concurrent saves
together, and casenet's tables on the same file (:class:`SQLiteDatabase`).

Long because it is everything SQLite does its own way, in one place (issue 16: one
module per store, no dialect switch elsewhere): split, a reader would look for the
store's locking, readers and SQL in two files.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from casenet.infrastructure.keytable import SELECT_AS_EVENT_ROWS
from casenet.infrastructure.keytable import TABLE as KEYS_TABLE
from casenet.infrastructure.persistence.base import CasenetRecorder, GroupCommit, Write
from casenet.infrastructure.raw_log import uuid_text
from casenet.infrastructure.sql import SQLITE, Database, StoredRow

#: WAL pages (4 KiB) after which a bulk write's commit checkpoints (see bulk_cursor).
BULK_CHECKPOINT_PAGES = 10_000

#: Page cache of each reader connection (KiB).
READER_CACHE_KIB = 1024


#: Most ids :meth:`CasenetSQLiteRecorder.read_aggregates` reads by a UNION ALL.
UNION_MAX = 8

#: SQLite's clock as ``datetime.isoformat`` writes UTC (milliseconds, not microseconds).
NOW = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"

#: New clients' data keys, written with their events. ``created_at`` is the database's
#: clock: formatting the time in Python cost more than the rest of the row's parameters.
_INSERT_KEYS = (
    f"INSERT INTO {KEYS_TABLE} (subject_id, data_key_id, master_key_id, wrapped, created_at) "
    f"VALUES (?, ?, ?, ?, {NOW})"
)


class CasenetSQLiteRecorder(CasenetRecorder, SQLiteApplicationRecorder):
    """Commits concurrent saves together, each with the key ring's staged keys.

    **Group commit.** SQLite has one writer at a time, and each save was a transaction
    of its own, ending in an fsync: threads saving at once queued for the write lock
    and each paid a commit. Here (:class:`GroupCommit`) the first waiting thread takes
    every save queued so far and writes them in ONE transaction: one lock, one commit,
    one fsync. Each save keeps its own savepoint, so a save that loses a race (its
    aggregate's version was taken) is rolled back alone and gets its conflict, while
    the others of the batch commit. A save alone is written without a savepoint.

    **Keys after the events.** The first write of a transaction pays for starting it
    (the write lock, the WAL index, pages of the events' B-trees), and a key row
    written first paid that on a table it shares no pages with (measured: the key's
    INSERT took 76 us first and 23 us after). The transaction commits both or neither.
    """

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        self._casenet_init(SQLiteDatabase(datastore))
        self._group = GroupCommit(self._flush)

    def stored_id(self, aggregate_id: UUID) -> Any:
        # The library's 32 hex digits; a %-format costs less than UUID.hex's frame.
        return "%032x" % aggregate_id.int  # noqa: UP031

    def _events_statement(self, count: int, subjects: int) -> str:
        if count + subjects > UNION_MAX:
            return super()._events_statement(count, subjects)
        # One index search per id, merged in index order: SQLite runs ``IN (...)``
        # through a temporary b-tree of the ids and sorts (owner read: 90k -> 66k
        # instructions a statement for two ids).
        fifth = ", CAST(NULL AS BLOB)" if subjects else ""
        select = (
            f"SELECT originator_id, originator_version, topic, state{fifth} "
            f"FROM {self.events_table_name} WHERE originator_id = ?"
        )
        parts = [select] * count + [f"{SELECT_AS_EVENT_ROWS} = ?"] * subjects
        return " UNION ALL ".join(parts) + " ORDER BY 1, 2"

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None:  # a process recorder's write: not batched
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        # The keys are this thread's: taken here, not by the thread that writes the batch.
        return self._group.submit((stored_events, self._staged()))

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # Only the unbatched path (``tracking``) comes here, with its own thread's keys.
        return self._write(c, (stored_events, self._staged()))

    def _write(self, c: SQLiteCursor, save: Write) -> list[int]:
        events, keys = save
        ids = super()._insert_events(c, events)
        if keys:
            c.executemany(
                _INSERT_KEYS,
                [(str(k.subject_id), k.data_key_id, k.master_key_id, k.wrapped) for k in keys],
            )
        return list(ids or ())

    def _flush(self, saves: list[Write]) -> list[Sequence[int] | BaseException]:
        with self.datastore.transaction(commit=True) as c:
            if len(saves) == 1:  # an error rolls the transaction back and reaches the caller
                return [self._write(c, saves[0])]
            outcomes: list[Sequence[int] | BaseException] = []
            for save in saves:
                c.execute("SAVEPOINT casenet_save")
                try:
                    outcomes.append(self._write(c, save))
                except sqlite3.IntegrityError as error:
                    c.execute("ROLLBACK TO casenet_save")
                    outcomes.append(IntegrityError(error))
                c.execute("RELEASE casenet_save")
            return outcomes


class SQLiteDatabase(Database):
    """casenet's tables in the SQLite file (or memory) of the events."""

    dialect = SQLITE
    blob = "BLOB"
    uuid = "TEXT"
    time = "TEXT"
    clustered = " WITHOUT ROWID"

    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore)
        self._store = datastore
        #: A file: one read-only connection per thread for :meth:`read` (see there).
        self._file: str | None = None
        if not datastore.pool.is_sqlite_memory_mode:
            self._file = str(datastore.pool.db_name)
            self._lock_timeout = float(datastore.pool.lock_timeout or 5)
        self._readers = threading.local()
        self._reader_connections: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._readers_lock = threading.Lock()
        self._closed = False

    def sql(self, query: str) -> str:
        return query.replace("%s", "?")

    def id_param(self, value: UUID) -> Any:
        return str(value)

    def now(self) -> Any:
        return datetime.now(UTC).isoformat()

    @contextmanager
    def bulk_cursor(self) -> Iterator[Any]:
        """Its commit checkpoints the WAL only past BULK_CHECKPOINT_PAGES, not past
        SQLite's default of 1,000 (4 MB); the events' writers keep the default. At a
        million events a rebuild spent a fifth of its time copying WAL pages into the
        database at each commit; fewer, larger checkpoints copy a page rewritten by
        several batches once."""
        with self._cursor_with("wal_autocheckpoint", BULK_CHECKPOINT_PAGES) as cursor:
            yield cursor

    @contextmanager
    def erasing_cursor(self) -> Iterator[Any]:
        """What its writes overwrite or delete is zeroed in the page (``secure_delete``),
        not left in its free space. The WAL still holds the pages as they were:
        :meth:`truncate_wal` after."""
        with self._cursor_with("secure_delete", 1) as cursor:
            yield cursor

    @contextmanager
    def cursor(self, *, commit: bool) -> Iterator[Any]:
        """A transaction that will write takes the write lock at its start (``BEGIN
        IMMEDIATE``), waiting for it up to the lock timeout. The library's ``BEGIN``
        is deferred: a transaction that reads first and writes later, while another
        process commits in between, cannot take the lock at all, and SQLite answers
        "database is locked" at once, without waiting (a rebuild's last transaction
        failed so against a live server, 1 run in 8)."""
        if not commit:
            with super().cursor(commit=False) as cursor:
                yield cursor
            return
        with self._store.get_connection(commit=True) as connection, _writing(connection) as raw:
            yield raw

    @contextmanager
    def _cursor_with(self, pragma: str, value: int) -> Iterator[Any]:
        """A cursor in one committed transaction (see :meth:`cursor`) on a pooled
        connection whose ``pragma`` is ``value`` meanwhile; the connection gets its own
        setting back before it returns to the pool."""
        with self._store.get_connection(commit=True) as connection:
            raw = connection.cursor().sqlite_cursor
            before = int(raw.execute(f"PRAGMA {pragma}").fetchone()[0])
            raw.execute(f"PRAGMA {pragma} = {value}")
            try:
                with _writing(connection) as cursor:
                    yield cursor
            finally:
                raw.execute(f"PRAGMA {pragma} = {before}")

    def truncate_wal(self) -> bool:
        """Copy the WAL into the database and truncate it to nothing; False if readers
        kept it from completing within the lock timeout."""
        with _sqlite_errors(), self._store.get_connection(commit=True) as connection:
            raw = connection.cursor().sqlite_cursor
            busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return not busy

    def insert_rows(self, cursor: Any, table: str, rows: Collection[Sequence[Any]]) -> None:
        # executemany loops in C.
        if rows:
            marks = ", ".join("?" * len(next(iter(rows))))
            query = f"INSERT INTO {table} VALUES ({marks})"
            cursor.executemany(query, rows)

    def read(self, query: str, params: tuple[Any, ...] = (), *, tuples: bool = False) -> list[Any]:
        """On a file each thread reads through a read-only connection of its own, not
        the library's pool, whose locks and wrappers cost 7.5 us a statement (SELECT 1:
        8.5 -> 1 us); ``BEGIN`` and ``ROLLBACK`` around it cost 21 -> 10 us a query.
        ``tuples``: a row by position costs 2.7k instructions less than its four
        columns by name through sqlite3.Row."""
        if self._file is None:  # in memory: the pool keeps readers and writer apart
            with (
                _sqlite_errors(),
                self._store.get_connection(commit=False) as conn,
                conn.cursor() as cursor,
            ):
                cursor.execute(self.sql(query), params)
                rows: list[Any] = [] if cursor.description is None else cursor.fetchall()
                return [tuple(row) for row in rows] if tuples else rows
        # try/except, not _sqlite_errors(): a generator's context costs more than the
        # rest of this method.
        try:
            if tuples:
                cursor = self._reader().cursor()
                cursor.row_factory = None
                cursor.execute(self.sql(query), params)
            else:
                cursor = self._reader().execute(self.sql(query), params)
            return [] if cursor.description is None else cursor.fetchall()
        except sqlite3.Error as error:
            raise library_error(error) from error

    def log_window(
        self, table: str, topics: Sequence[str], start: int, end: int
    ) -> list[StoredRow]:
        query = (
            "SELECT rowid, topic, originator_id, originator_version, state "
            f"FROM {table} WHERE rowid > ? AND rowid <= ? "
            f"AND topic IN ({', '.join('?' * len(topics))}) ORDER BY rowid"
        )
        with self.cursor(commit=False) as cursor:
            cursor.row_factory = None  # plain tuples
            cursor.execute(query, (start, end, *topics))
            return [(p, t, uuid_text(i), v, s) for p, t, i, v, s in cursor.fetchall()]

    def log_after(self, table: str, start: int, limit: int, stop: int | None) -> list[StoredRow]:
        bound = "" if stop is None else " AND rowid <= ?"
        query = (
            "SELECT rowid, topic, originator_id, originator_version, state "
            f"FROM {table} WHERE rowid > ?{bound} ORDER BY rowid LIMIT ?"
        )
        params = (start, limit) if stop is None else (start, stop, limit)
        with self.cursor(commit=False) as cursor:
            cursor.row_factory = None  # plain tuples
            cursor.execute(query, params)
            rows: list[StoredRow] = cursor.fetchall()
            return rows

    # --- what the read models need of this store (see Database)

    def notification_id_column(self) -> str:
        return "rowid"

    def add_missing_columns(
        self, cursor: Any, table: str, columns: Sequence[tuple[str, str]]
    ) -> None:
        cursor.execute(f"PRAGMA table_info({table})")
        present = {str(row[1]) for row in cursor.fetchall()}
        for column, kind in columns:
            if column not in present:
                cursor.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def rebuild_drops_indexes(self) -> bool:
        return True

    def index_names(self) -> set[str]:
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        return {str(row[0]) for row in self.read(query, tuples=True)}

    def fetch_tuples(self, cursor: Any, query: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor.row_factory = None
        cursor.execute(self.sql(query), params)
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
        """``fetch`` rows a query, each after the last one's key."""
        listed = ", ".join(columns)
        # After the last key: k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...
        after = " OR ".join(
            "(" + " AND ".join([*(f"{k} = %s" for k in key[:n]), f"{key[n]} > %s"]) + ")"
            for n in range(len(key))
        )
        order = f"ORDER BY {', '.join(key)} LIMIT {fetch}"
        rows = self.fetch_tuples(cursor, f"SELECT {listed} FROM {table} {order}")
        while True:
            yield from rows
            if len(rows) < fetch:
                return
            last = rows[-1][: len(key)]
            params = [value for n in range(len(key)) for value in last[: n + 1]]
            query = f"SELECT {listed} FROM {table} WHERE {after} {order}"
            rows = self.fetch_tuples(cursor, query, params)

    def _reader(self) -> _Reader:
        """This thread's read-only connection to the file, opened on first use.

        Only the thread holds it: when the thread ends, it is closed. In autocommit
        mode a statement's read transaction ends when its rows are fetched, so an idle
        reader holds no snapshot and never delays a checkpoint.
        """
        connection: _Reader | None = getattr(self._readers, "connection", None)
        if connection is not None:
            return connection
        assert self._file is not None
        with self._readers_lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the database is closed")
            connection = sqlite3.connect(
                self._file,
                uri=True,
                check_same_thread=False,  # closed by close(), from another thread
                isolation_level=None,
                timeout=self._lock_timeout,
                factory=_Reader,
            )
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA query_only = ON")
            # A server may read from dozens of threads: 1 MiB of page cache each (the
            # default is 2), over the operating system's cache of the same file.
            connection.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
            self._reader_connections.add(connection)
        self._readers.connection = connection
        return connection

    def close(self) -> None:
        """Close the readers :meth:`read` opened (the library closes its own pool)."""
        with self._readers_lock:
            self._closed = True
            connections = list(self._reader_connections)
        for connection in connections:
            connection.close()


class _Reader(sqlite3.Connection):
    """A reader connection; a subclass so that :class:`SQLiteDatabase` can hold it
    weakly (a plain ``sqlite3.Connection`` takes no weak reference)."""


@contextmanager
def _writing(connection: Any) -> Iterator[sqlite3.Cursor]:
    """A DB-API cursor in one transaction on ``connection`` (a pooled connection in
    autocommit mode) that holds the write lock from its start and commits at its end,
    or rolls back; sqlite3's errors raised as the library's."""
    raw: sqlite3.Cursor = connection.cursor().sqlite_cursor
    with _sqlite_errors():
        raw.execute("BEGIN IMMEDIATE")
        try:
            yield raw
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


@contextmanager
def _sqlite_errors() -> Iterator[None]:
    """sqlite3's exceptions as the library's, as its own transactions raise them."""
    try:
        yield
    except sqlite3.Error as error:
        raise library_error(error) from error


def library_error(error: sqlite3.Error) -> PersistenceError:
    """The library's exception for one of sqlite3's (see :func:`_sqlite_errors`)."""
    if isinstance(error, sqlite3.IntegrityError):
        return IntegrityError(error)
    if isinstance(error, sqlite3.OperationalError):
        return OperationalError(error)
    if isinstance(error, sqlite3.ProgrammingError):
        return ProgrammingError(error)
    if isinstance(error, sqlite3.DatabaseError):
        return DatabaseError(error)
    return PersistenceError(error)
