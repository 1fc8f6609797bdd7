"""Plain SQL on the store's own database, for casenet's tables beside the event log.

The eventsourcing library owns the events table; casenet's data keys and read models
live in the same database, reached through the library's datastore so that one
setting (``CASENET_DATABASE_URL``) selects everything. Queries are written with
``%s`` placeholders and portable types.

:class:`Database` is what every store offers; what differs between stores is answered
by its subclass, one per store, next to that store's recorder
(``persistence/sqlite.py``, ``persistence/postgres.py``): the recorder builds it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from eventsourcing.persistence import PersistenceError

if TYPE_CHECKING:
    from casenet.infrastructure.persistence.replicas import ReplicaStats
    from casenet.settings import DatabaseSettings

#: One row: the fingerprint of the tables casenet created (see application.store).
SCHEMA_TABLE = "casenet_schema"

#: The stores' names, as ``Database.dialect`` gives them: for messages and tests. No code
#: outside ``persistence/`` branches on them; it asks the database's methods instead.
SQLITE = "sqlite"
POSTGRESQL = "postgresql"

#: (position, topic, aggregate id as stored, aggregate version, stored state): a row of
#: the log as ``raw_log`` reads it.
StoredRow = tuple[int, str, str, int, bytes]


class Datastore(Protocol):
    """What both the library's SQLite and PostgreSQL datastores offer."""

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]: ...


class Database(ABC):
    """Transactions and queries on the store's database; one subclass per store."""

    #: The store's name (SQLITE or POSTGRESQL).
    dialect: str
    #: Column types: bytes, a UUID, an instant.
    blob: str
    uuid: str
    time: str
    #: What ends a CREATE TABLE whose rows are kept in primary key order.
    clustered: str = ""

    def __init__(self, datastore: Datastore) -> None:
        self.datastore = datastore

    def sql(self, query: str) -> str:
        """``query`` (written with ``%s``) in the store's placeholders."""
        return query

    def id_param(self, value: UUID) -> Any:
        """A UUID as casenet's own tables take it as a parameter."""
        return value

    def now(self) -> Any:
        """The current instant as a parameter for a ``time`` column."""
        return datetime.now(UTC)

    @contextmanager
    def cursor(self, *, commit: bool) -> Iterator[Any]:
        """A DB-API cursor inside one transaction (committed only if ``commit``)."""
        with self.datastore.transaction(commit=commit) as cursor:
            # The library wraps SQLite's cursor; casenet wants the DB-API one.
            yield getattr(cursor, "sqlite_cursor", cursor)

    def bulk_cursor(self) -> AbstractContextManager[Any]:
        """A cursor in one transaction, committed at the end, that writes many rows."""
        return self.cursor(commit=True)

    def erasing_cursor(self) -> AbstractContextManager[Any]:
        """A cursor in one committed transaction for writes that destroy data (a data
        key erased or re-wrapped); :meth:`truncate_wal` after."""
        return self.cursor(commit=True)

    def truncate_wal(self) -> bool:
        """Leave no page image from before an erasure in a write-ahead log; False if
        that could not be done now (the next checkpoint finishes the job)."""
        return True

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Serialise table creation between processes starting together."""
        yield

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

    @abstractmethod
    def insert_rows(self, cursor: Any, table: str, rows: Collection[Sequence[Any]]) -> None:
        """Insert ``rows`` (values in the table's column order) into ``table``."""

    def run(self, query: str, params: tuple[Any, ...] = (), *, commit: bool) -> list[Any]:
        """Run one statement in its own transaction; rows (mapping-like) if any."""
        if not commit:
            return self.read(query, params)
        with self.cursor(commit=True) as cursor:
            cursor.execute(self.sql(query), params)
            return [] if cursor.description is None else list(cursor.fetchall())

    @abstractmethod
    def read(self, query: str, params: tuple[Any, ...] = (), *, tuples: bool = False) -> list[Any]:
        """Run one read-only statement without BEGIN and ROLLBACK around it.

        Both stores run a lone statement atomically on one snapshot, so an explicit
        transaction adds nothing but cost. Several statements that must agree need
        :meth:`cursor`. ``tuples``: rows as plain tuples, in the statement's column
        order, not mappings.
        """

    @abstractmethod
    def log_window(
        self, table: str, topics: Sequence[str], start: int, end: int
    ) -> list[StoredRow]:
        """The events of ``topics`` at positions in (``start``, ``end``], in order, with
        the aggregate id as ``str(UUID)``."""

    @abstractmethod
    def log_after(self, table: str, start: int, limit: int, stop: int | None) -> list[StoredRow]:
        """The next ``limit`` events after position ``start`` (up to ``stop``), with the
        aggregate id as the events table holds it."""

    def close(self) -> None:  # noqa: B027  (most stores open nothing of their own)
        """Close what this object opened (the library closes its own pool)."""

    # --- read replicas (PostgreSQL hot standbys; see persistence/replicas.py)

    def route_reads(self, replicas: Sequence[DatabaseSettings], wait: float) -> None:
        """Let :meth:`read` of a routed request use ``replicas`` (waiting up to ``wait``
        seconds for one to catch up). Only a store with replicas takes any."""
        if replicas:
            raise ValueError(f"a {self.dialect} store has no read replicas")

    def on_primary(self) -> AbstractContextManager[None]:
        """Within: reads go to the primary (what decides whether to write); after, the
        next routed read sees at least what was read here."""
        return nullcontext()

    def wal_position_sql(self) -> str | None:
        """An expression giving the primary's WAL position, for a statement that reads
        what a routed read must then see (None: no replicas, nothing to wait for)."""
        return None

    def primary_seen(self, position: str) -> None:  # noqa: B027  (no replicas: a no-op)
        """The request read the primary as of ``position`` (from :meth:`wal_position_sql`)
        and wrote nothing since: its next routed read waits for that position."""

    def replica_stats(self) -> ReplicaStats | None:
        """What the replicas served and why reads fell back (None: no replicas)."""
        return None

    # --- what the read models (infrastructure/projections) do differently per store

    @abstractmethod
    def notification_id_column(self) -> str:
        """The events table's column that holds a notification's id (its log position)."""

    @abstractmethod
    def add_missing_columns(
        self, cursor: Any, table: str, columns: Sequence[tuple[str, str]]
    ) -> None:
        """Add each ``(name, type)`` of ``columns`` that ``table`` lacks (a table made by
        older code), in the cursor's transaction."""

    def commit_without_flush(self, cursor: Any) -> None:  # noqa: B027  (a no-op by default)
        """Let the cursor's transaction commit without waiting for its WAL to reach the
        disk: for writes that a crash may lose whole (never in part) because they are
        made again from the log. PostgreSQL only (``synchronous_commit = off``); an
        SQLite bulk cursor already checkpoints rarely (see :meth:`bulk_cursor`)."""

    def rebuild_drops_indexes(self) -> bool:
        """Whether a rebuild drops a read model's secondary indexes and builds them at its
        end. SQLite only: on PostgreSQL the same measured no gain at 100k events (the
        server maintains indexes in its own process, beside casenet's Python), and the
        role that runs casenet in production (ops/) may not run DDL at all."""
        return False

    @abstractmethod
    def index_names(self) -> set[str]:
        """The names of the indexes in the database (in the current schema)."""

    def key_ordered(self) -> str:
        """The table option that keeps a table's rows in primary-key order (see
        :attr:`clustered`)."""
        return self.clustered

    def compress_column(self, table: str, column: str) -> list[str]:
        """Statements that compress ``column``'s large values where the store can; none
        by default."""
        return []

    def begin_bulk_read(self, cursor: Any) -> None:  # noqa: B027  (a no-op by default)
        """Start a read of many rows by several statements in the cursor's transaction:
        one snapshot for them all (an SQLite read transaction is one already)."""

    @abstractmethod
    def fetch_tuples(self, cursor: Any, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of ``query`` (``%s`` placeholders) on ``cursor``, as plain tuples (bytes
        as they are stored)."""

    @abstractmethod
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
        columns of ``columns``, whose values are integers or bytes, as ``kinds`` says),
        ``fetch`` rows a statement where the store reads by statements."""
