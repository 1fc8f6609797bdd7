"""The rebuild side of the runner: reset a read model, replay the log into it as a bulk
load, and prove the result (checksums).

``runner.Projections`` keeps the models current as the log grows (live catch-up,
reads that catch up first, stopped models); this mixin adds what empties and refills
them. Both work on the same positions table and the same per-model locks, so a reset
or a rebuild is safe beside live catch-up in this or any other process.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from casenet.infrastructure.projections.base import ReadModel, ReadModelStopped
from casenet.infrastructure.projections.positions import PositionsTable
from casenet.infrastructure.sql import Database

#: The same for a rebuild, which nobody reads while it runs: each commit costs a disk
#: flush and each batch a few round trips, the same whatever the size (1000 events
#: paid about a fifth of a rebuild's time in those); memory grows with it, not with
#: the log.
REBUILD_BATCH_SIZE = 5000


class Rebuilds:
    """Reset, rebuild, restore_indexes and checksum, for :class:`runner.Projections`."""

    db: Database
    table: PositionsTable
    models: dict[str, ReadModel]
    #: Per model, the lock its batches are applied under (in this process).
    _locks: dict[str, threading.Lock]
    #: Per model, the secondary indexes a rebuild drops and creates again at its end.
    _bulk_indexes: dict[str, dict[str, str]]

    if TYPE_CHECKING:  # the live side, in runner.Projections

        def catch_up(
            self,
            names: str | Iterable[str],
            *,
            until: int | None = None,
            batch_size: int = ...,
            progress: Callable[[int], None] | None = None,
        ) -> int: ...

        def resume(self, names: Iterable[str] = (), *, retry: bool = True) -> list[str]: ...

        def positions(self) -> dict[str, tuple[int, bool]]: ...

        def stopped(self) -> dict[str, str]: ...

    def reset(self, names: str | Iterable[str], *, drop_indexes: bool = False) -> None:
        """Drop the read models' rows and start them again from the first notification.

        Marks them ``rebuilding``; a rebuild interrupted after this resumes from their
        positions instead of starting over (see :meth:`rebuild`). ``drop_indexes``: drop
        their secondary indexes too (see :func:`bulk_indexes`), in the same transaction,
        so that a model marked rebuilding is the only kind that may lack them.
        """
        group = [names] if isinstance(names, str) else sorted(set(names))
        with ExitStack() as held:
            for name in group:  # in name order, as catch_up takes them
                held.enter_context(self._locks[name])
            with self.db.cursor(commit=True) as cursor:
                for name in group:
                    # The position first: on PostgreSQL that waits for a batch another
                    # process is applying to commit (it holds the row), so the DELETEs
                    # below see its rows and take them too. (Deleted first, those rows
                    # outlived the reset, and the replay met them again: a duplicate
                    # key that no rebuild could get past.) The epoch tells reads that
                    # ran meanwhile that they saw an emptied model (see ``current``).
                    self.table.reset(cursor, name)
                    if drop_indexes:  # first: the rows then go without their entries
                        for index in self._bulk_indexes[name]:
                            cursor.execute(f"DROP INDEX IF EXISTS {index}")
                    for table in self.models[name].tables:
                        cursor.execute(f"DELETE FROM {table}")

    def rebuild(
        self, names: str | Iterable[str], *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Replay the whole log into the models (in one pass for all of them); an
        interrupted rebuild resumes from where each model's last batch committed.

        A bulk load: models that start from the first notification lose their
        secondary indexes until the end, where they are built once, from sorted keys,
        in the transaction that ends the rebuild (on SQLite, their random-key inserts
        were a sixth of a rebuild at a million events). Meanwhile the models answer
        reads as before (a read catches the model up, then queries it), only without
        those indexes; a rebuild that stops half-way leaves them to the next rebuild,
        or to the next start (:meth:`restore_indexes`).
        """
        group = [names] if isinstance(names, str) else list(names)
        self.resume(group, retry=False)  # a stopped model is rebuilt too
        positions = self.positions()
        fresh = [name for name in group if not positions.get(name, (0, False))[1]]
        self.reset(fresh, drop_indexes=True)
        applied, failed = 0, None
        try:
            applied = self.catch_up(group, batch_size=REBUILD_BATCH_SIZE, progress=progress)
        except ReadModelStopped as error:
            failed = error
            # A resumed rebuild that fails may be failing on what an earlier one left
            # (rows past its position, say): those models start over, once.
            again = sorted(set(self.stopped()) & (set(group) - set(fresh)))
            if again:
                self.reset(again, drop_indexes=True)  # (which resumes them)
                try:
                    applied = self.catch_up(group, batch_size=REBUILD_BATCH_SIZE, progress=progress)
                    failed = None
                except ReadModelStopped as second:
                    failed = second
        # The models that got to the end are rebuilt, whether or not another stopped.
        stopped = self.stopped()
        done = [name for name in group if name not in stopped]
        if done:
            with self.db.cursor(commit=True) as cursor:
                for name in done:
                    for statement in self._bulk_indexes[name].values():
                        cursor.execute(statement)  # IF NOT EXISTS: a resumed rebuild may have them
                self.table.rebuilt(cursor, done)
        if failed is not None:
            raise failed
        return applied

    def restore_indexes(self) -> list[str]:
        """Create the secondary indexes that a rebuild dropped and did not get to build
        again (it was stopped half-way); the names of those created.

        Run at every start: one query when nothing is missing. A rebuild still running
        in another process then goes on with its indexes: slower, and as correct.
        """
        wanted = {
            index: statement
            for indexes in self._bulk_indexes.values()
            for index, statement in indexes.items()
        }
        if not wanted:
            return []
        present = self.db.index_names()
        missing = [index for index in wanted if index not in present]
        if missing:
            with self.db.cursor(commit=True) as cursor:
                for index in missing:
                    cursor.execute(wanted[index])
        return missing

    def checksum(self, name: str) -> str:
        """SHA-256 over the model's rows in a stable order: equal for equal content."""
        model = self.models[name]
        digest = hashlib.sha256()
        encoder = msgspec.json.Encoder(order="sorted")
        with self.db.cursor(commit=False) as cursor:
            for table, order_by in model.primary_keys().items():
                digest.update(table.encode() + b"\n")
                cursor.execute(f"SELECT * FROM {table} ORDER BY {order_by}")
                columns = [column[0] for column in cursor.description]
                digest.update(encoder.encode(columns) + b"\n")
                while rows := cursor.fetchmany(1000):
                    for row in rows:
                        digest.update(encoder.encode([_plain(row[c]) for c in columns]) + b"\n")
        return digest.hexdigest()


#: A secondary index as a read model declares it (not UNIQUE: those are constraints).
_SECONDARY_INDEX = re.compile(r"CREATE INDEX IF NOT EXISTS (\w+) ON ", re.ASCII)


def bulk_indexes(model: ReadModel, db: Database) -> dict[str, str]:
    """The secondary indexes of ``model`` that a rebuild drops and builds again at its
    end: index name -> the statement that creates it (from ``create_statements``); none
    where the store gains nothing by it (``Database.rebuild_drops_indexes``).
    """
    if not db.rebuild_drops_indexes():
        return {}
    found = {}
    for statement in model.create_statements(db):
        if (match := _SECONDARY_INDEX.match(statement)) is not None:
            found[match.group(1)] = statement
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, UUID):
        return str(value)
    return value
