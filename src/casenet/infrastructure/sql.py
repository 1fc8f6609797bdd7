"""Plain SQL on the store's own database, for casenet's tables beside the event log.

The eventsourcing library owns the events table; casenet's data keys and read models
live in the same database, reached through the library's datastore so that one
setting (``CASENET_DATABASE_URL``) selects everything. Queries are written with
``%s`` placeholders and portable types; SQLite gets ``?``.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
)
from psycopg.rows import tuple_row

#: Advisory lock key held while casenet creates its tables ("casenet" in ASCII).
_SCHEMA_LOCK = 0x636173656E6574

#: One row: the fingerprint of the tables casenet created (see application.store).
SCHEMA_TABLE = "casenet_schema"

#: WAL pages (4 KiB) after which a bulk write's commit checkpoints (see bulk_cursor).
BULK_CHECKPOINT_PAGES = 10_000

#: Page cache of each SQLite reader connection (KiB).
READER_CACHE_KIB = 1024

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


class Datastore(Protocol):
    """What both the library's SQLite and PostgreSQL datastores offer."""

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]: ...


class Database:
    """Transactions and queries on the store's database, in its dialect."""

    def __init__(self, datastore: Datastore, dialect: str) -> None:
        self.datastore = datastore
        self.dialect = dialect
        self.blob = "BLOB" if dialect == SQLITE else "BYTEA"
        self.uuid = "TEXT" if dialect == SQLITE else "UUID"
        self.time = "TEXT" if dialect == SQLITE else "TIMESTAMPTZ"
        #: SQLite file: one read-only connection per thread for :meth:`read` (see there).
        pool: Any = getattr(datastore, "pool", None)
        self._sqlite_file: str | None = None
        if dialect == SQLITE and pool is not None and not pool.is_sqlite_memory_mode:
            self._sqlite_file = str(pool.db_name)
            self._lock_timeout = float(pool.lock_timeout or 5)
        self._readers = threading.local()
        self._reader_connections: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._readers_lock = threading.Lock()
        self._closed = False

    def sql(self, query: str) -> str:
        return query.replace("%s", "?") if self.dialect == SQLITE else query

    def id_param(self, value: UUID) -> Any:
        return str(value) if self.dialect == SQLITE else value

    @contextmanager
    def cursor(self, *, commit: bool) -> Iterator[Any]:
        """A DB-API cursor inside one transaction (committed only if ``commit``)."""
        with self.datastore.transaction(commit=commit) as cursor:
            # The library wraps SQLite's cursor; casenet wants the DB-API one.
            yield getattr(cursor, "sqlite_cursor", cursor)

    @contextmanager
    def bulk_cursor(self) -> Iterator[Any]:
        """A cursor in one transaction, committed at the end, that writes many rows.

        On SQLite its commit checkpoints the WAL only past BULK_CHECKPOINT_PAGES, not
        past SQLite's default of 1,000 (4 MB), and the connection gets its setting
        back before it returns to the pool: the events' writers keep the default. At
        a million events a rebuild spent a fifth of its time copying WAL pages into
        the database at each commit; fewer, larger checkpoints copy a page rewritten
        by several batches once.
        """
        if self.dialect != SQLITE:
            with self.cursor(commit=True) as cursor:
                yield cursor
            return
        with self._sqlite_cursor_with("wal_autocheckpoint", BULK_CHECKPOINT_PAGES) as cursor:
            yield cursor

    @contextmanager
    def erasing_cursor(self) -> Iterator[Any]:
        """A cursor in one committed transaction for writes that destroy data (a data
        key erased or re-wrapped): on SQLite, what they overwrite or delete is zeroed
        in the page (``secure_delete``), not left in its free space. The WAL still
        holds the pages as they were: :meth:`truncate_wal` after. The connection gets
        its setting back before it returns to the pool.
        """
        if self.dialect != SQLITE:
            with self.cursor(commit=True) as cursor:
                yield cursor
            return
        with self._sqlite_cursor_with("secure_delete", 1) as cursor:
            yield cursor

    @contextmanager
    def _sqlite_cursor_with(self, pragma: str, value: int) -> Iterator[Any]:
        """SQLite: a cursor in one committed transaction on a pooled connection whose
        ``pragma`` is ``value`` meanwhile; the connection gets its own setting back
        before it returns to the pool."""
        with self.datastore.get_connection(commit=True) as connection:  # type: ignore[attr-defined]
            raw = connection.cursor().sqlite_cursor
            before = int(raw.execute(f"PRAGMA {pragma}").fetchone()[0])
            raw.execute(f"PRAGMA {pragma} = {value}")
            try:
                with connection.transaction(commit=True) as wrapped:
                    yield wrapped.sqlite_cursor
            finally:
                raw.execute(f"PRAGMA {pragma} = {before}")

    def truncate_wal(self) -> bool:
        """SQLite: copy the WAL into the database and truncate it to nothing, so that no
        page image from before an erasure stays on disk; False if readers kept it from
        completing within the lock timeout (the next checkpoint finishes the job).
        PostgreSQL: nothing to do here (its old row versions go at VACUUM)."""
        if self.dialect != SQLITE:
            return True
        with (
            _sqlite_errors(),
            self.datastore.get_connection(commit=True) as connection,  # type: ignore[attr-defined]
        ):
            raw = connection.cursor().sqlite_cursor
            busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return not busy

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Serialise table creation between processes starting together (PostgreSQL's
        DDL races: 'tuple concurrently updated'); SQLite's file lock already does."""
        if self.dialect == SQLITE:
            yield
            return
        with self.datastore.get_connection() as connection:  # type: ignore[attr-defined]
            connection.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))

    def schema_fingerprint(self) -> str | None:
        """The fingerprint of the schema casenet last created here; None if none yet."""
        try:
            rows = self.run(f"SELECT fingerprint FROM {SCHEMA_TABLE}", commit=False)
        except PersistenceError:  # no table yet (or no right to read it)
            return None
        return str(rows[0]["fingerprint"]) if rows else None

    def record_schema_fingerprint(self, fingerprint: str) -> None:
        with self.cursor(commit=True) as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (fingerprint TEXT NOT NULL)")
            cursor.execute(f"DELETE FROM {SCHEMA_TABLE}")
            cursor.execute(self.sql(f"INSERT INTO {SCHEMA_TABLE} VALUES (%s)"), (fingerprint,))

    def write_many(self, cursor: Any, query: str, rows: Collection[Sequence[Any]]) -> None:
        """Run one statement once per row, in one go (nothing is sent for no rows)."""
        if rows:
            cursor.executemany(self.sql(query), rows)

    def insert_rows(self, cursor: Any, table: str, rows: Collection[Sequence[Any]]) -> None:
        """Insert ``rows`` (values in the table's column order) into ``table``.

        PostgreSQL gets them by COPY: psycopg's executemany costs some 15 µs a row in
        Python, COPY about 1. SQLite's executemany loops in C already.
        """
        if not rows:
            return
        if self.dialect == SQLITE:
            marks = ", ".join("?" * len(next(iter(rows))))
            cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            return
        with cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def run(self, query: str, params: tuple[Any, ...] = (), *, commit: bool) -> list[Any]:
        """Run one statement in its own transaction; rows (mapping-like) if any."""
        if not commit:
            return self.read(query, params)
        with self.cursor(commit=True) as cursor:
            cursor.execute(self.sql(query), params)
            return [] if cursor.description is None else list(cursor.fetchall())

    def read(self, query: str, params: tuple[Any, ...] = (), *, tuples: bool = False) -> list[Any]:
        """Run one read-only statement without BEGIN and ROLLBACK around it.

        Both stores run a lone statement atomically on one snapshot (the connections are
        in autocommit mode), so the explicit transaction adds nothing but cost: measured
        here, 161 -> 60 us a query on PostgreSQL (three round trips become one) and
        21 -> 10 us on SQLite. On an SQLite file each thread reads through a read-only
        connection of its own, not the library's pool, whose locks and wrappers cost
        7.5 us a statement (SELECT 1: 8.5 -> 1 us). Several statements that must agree
        need :meth:`cursor`.

        ``tuples``: rows as plain tuples, in the statement's column order, not mappings
        (the owner's read: a row by position costs 2.7k instructions less than its four
        columns by name through sqlite3.Row).
        """
        if self._sqlite_file is not None:
            # try/except, not _sqlite_errors(): a generator's context costs more than
            # the rest of this method (the owner's read runs two statements).
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
        datastore: Any = self.datastore
        if self.dialect == SQLITE:  # in memory: the pool keeps readers and writer apart
            with (
                _sqlite_errors(),
                datastore.get_connection(commit=False) as conn,
                conn.cursor() as cursor,
            ):
                cursor.execute(self.sql(query), params)
                rows: list[Any] = [] if cursor.description is None else cursor.fetchall()
                return [tuple(row) for row in rows] if tuples else rows
        with datastore.get_connection() as conn:
            cursor = conn.execute(query, params)
            if tuples:
                cursor.row_factory = tuple_row
            rows = [] if cursor.description is None else cursor.fetchall()
            return rows

    def _reader(self) -> _Reader:
        """This thread's read-only connection to the SQLite file, opened on first use.

        Only the thread holds it: when the thread ends, it is closed. In autocommit
        mode a statement's read transaction ends when its rows are fetched, so an idle
        reader holds no snapshot and never delays a checkpoint.
        """
        connection: _Reader | None = getattr(self._readers, "connection", None)
        if connection is not None:
            return connection
        assert self._sqlite_file is not None
        with self._readers_lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the database is closed")
            connection = sqlite3.connect(
                self._sqlite_file,
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
    """A reader connection; a subclass so that :class:`Database` can hold it weakly."""


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
