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

#: Entries a thread's memo holds before it is emptied (see Database.memo).
MEMO_ENTRIES = 4096

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

    def memo(self) -> dict[Any, Any] | None:
        """A dict for this thread's results of reads, emptied whenever anything was
        committed to the database since its last use, so what it holds is what the
        reads would return now; None where that cannot be told cheaply (PostgreSQL,
        in-memory SQLite).

        On an SQLite file, ``PRAGMA data_version`` of this thread's reader changes when
        any other connection, of any process, commits (the reader itself cannot write):
        about 1 us, against 10-15 for a statement that reads a table.
        """
        if self._sqlite_file is None:
            return None
        try:
            reader = self._reader()
            version = reader.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as error:
            raise library_error(error) from error
        if version != reader.memo_version or len(reader.memo) >= MEMO_ENTRIES:
            reader.memo.clear()
            reader.memo_version = version
        return reader.memo

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

    # --- read-model hooks (issue 16 step 4): moved into the per-store classes at merge
    # What the read models (infrastructure/projections) do differently per store. Each
    # method holds its store branch, so no module of projections tests the dialect.

    def notification_id_column(self) -> str:
        """The events table's column that holds a notification's id (its log position)."""
        return "rowid" if self.dialect == SQLITE else "notification_id"

    def add_missing_columns(
        self, cursor: Any, table: str, columns: Sequence[tuple[str, str]]
    ) -> None:
        """Add each ``(name, type)`` of ``columns`` that ``table`` lacks (a table made by
        older code), in the cursor's transaction."""
        if self.dialect == SQLITE:
            cursor.execute(f"PRAGMA table_info({table})")
            present = {str(row[1]) for row in cursor.fetchall()}
            for column, kind in columns:
                if column not in present:
                    cursor.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            return
        for column, kind in columns:
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")

    def commit_without_flush(self, cursor: Any) -> None:
        """Let the cursor's transaction commit without waiting for its WAL to reach the
        disk: for writes that a crash may lose whole (never in part) because they are
        made again from the log. PostgreSQL only (``synchronous_commit = off``); an
        SQLite bulk cursor already checkpoints rarely (see :meth:`bulk_cursor`)."""
        if self.dialect != SQLITE:
            cursor.execute("SET LOCAL synchronous_commit = off")

    def rebuild_drops_indexes(self) -> bool:
        """Whether a rebuild drops a read model's secondary indexes and builds them at its
        end. SQLite only: on PostgreSQL the same measured no gain at 100k events (the
        server maintains indexes in its own process, beside casenet's Python), and the
        role that runs casenet in production (ops/) may not run DDL at all."""
        return self.dialect == SQLITE

    def index_names(self) -> set[str]:
        """The names of the indexes in the database (in the current schema)."""
        if self.dialect == SQLITE:
            query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        else:
            query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        return {str(row[0]) for row in self.read(query, tuples=True)}

    def key_ordered(self) -> str:
        """The table option that keeps a table's rows in primary-key order: on SQLite
        ``WITHOUT ROWID`` (rows read in key order in one sweep of the table's leaves, not
        through an index and back); PostgreSQL has none."""
        return " WITHOUT ROWID" if self.dialect == SQLITE else ""

    def compress_column(self, table: str, column: str) -> list[str]:
        """Statements that compress ``column``'s large values with lz4 where the server
        has it (PostgreSQL 14+ built with lz4; else its pglz stays); none on SQLite."""
        if self.dialect == SQLITE:
            return []
        return [
            f"DO $$ BEGIN EXECUTE 'ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION "
            "lz4'; EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL; END $$"
        ]

    def begin_bulk_read(self, cursor: Any) -> None:
        """Start a read of many rows by several statements in the cursor's transaction:
        one snapshot for them all, and on PostgreSQL a plan that reads rows in key order.
        (An SQLite read transaction is one snapshot already.)"""
        if self.dialect == SQLITE:
            return
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # Before its first ANALYZE a fresh table looks empty to the planner, which then
        # gathers every remaining row and sorts it (on disk) for each fetch.
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL work_mem = '32MB'")

    def fetch_tuples(self, cursor: Any, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of ``query`` (``%s`` placeholders) on ``cursor``, as plain tuples (binary
        on PostgreSQL: bytes as they are stored)."""
        if self.dialect == SQLITE:
            cursor.row_factory = None
            cursor.execute(self.sql(query), params)
        else:
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
        """Every row of ``table`` in the order of its primary key ``key`` (the first
        columns of ``columns``, whose values are integers or bytes, as ``kinds`` says).

        SQLite: ``fetch`` rows a query, each after the last one's key. PostgreSQL: one
        binary COPY (SELECTs cost half as much again, in the server's and psycopg's
        handling of each result).
        """
        listed = ", ".join(columns)
        if self.dialect != SQLITE:
            query = f"SELECT {listed} FROM {table} ORDER BY {', '.join(key)}"
            yield from self._copied_rows(cursor, query, kinds)
            return
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

    def _copied_rows(
        self, cursor: Any, query: str, kinds: Sequence[type[int] | type[bytes]]
    ) -> Iterator[tuple[Any, ...]]:
        """PostgreSQL: the rows of ``query`` by one binary COPY, decoded by ``kinds``."""
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
                    row, end = self._binary_row(data, at + 2, kinds)
                    if row is None:
                        break  # the row goes on in the next message
                    yield row
                    at = end
                rest = bytes(data[at:])
        if rest or not ended:
            raise ValueError("the binary COPY stream ended inside a row")

    @staticmethod
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
            values.append(
                int.from_bytes(field, "big", signed=True) if kind is int else bytes(field)
            )
        return tuple(values), at


class _Reader(sqlite3.Connection):
    """A reader connection; a subclass so that :class:`Database` can hold it weakly,
    and give it the memo of its thread's reads (see :meth:`Database.memo`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memo: dict[Any, Any] = {}
        self.memo_version: int | None = None


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
