"""The positions table: where each read model is in the log, and in what state.

One row per read model in ``casenet_projection_positions``: its position (the last
notification it applied), ``rebuilding`` (reset and being replayed), its epoch (one
more at each reset, so a read can tell that a model was emptied under it) and why it
stopped, if it did. Every statement on that table is here; ``runner`` and
``rebuild`` decide when to run them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from casenet.infrastructure.projections.base import POSITIONS
from casenet.infrastructure.sql import Database

#: Columns that stores of older code lack: ``epoch`` and ``stopped`` (issue 15), and
#: ``model_version`` (issue 17), the version of the model whose rows the tables hold
#: (every model was at 1 before it existed).
ADDED_COLUMNS = (
    ("epoch", "BIGINT NOT NULL DEFAULT 0"),
    ("stopped", "TEXT"),
    ("model_version", "BIGINT NOT NULL DEFAULT 1"),
)


@dataclass(frozen=True)
class ProjectionStatus:
    """A read model's position against the log's head, as ``projections status`` shows."""

    name: str
    position: int
    head: int
    rebuilding: bool
    #: Why the model stopped (one safe line: the event's position and type, the error's
    #: type), or None while it runs.
    stopped: str | None = None

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


@dataclass(frozen=True)
class ModelState:
    """One row of the positions table."""

    name: str
    position: int
    rebuilding: bool
    epoch: int
    stopped: str | None


@dataclass(frozen=True)
class CurrentState:
    """A model's row beside the log's head, read in one snapshot."""

    name: str
    position: int
    epoch: int
    stopped: str | None
    head: int


def _marks(names: Sequence[str]) -> str:
    return ", ".join(["%s"] * len(names))


class PositionsTable:
    """The statements on the positions table."""

    def __init__(self, db: Database, head_sql: str) -> None:
        self.db = db
        #: The log's head as a scalar subquery (see ``runner.Projections``).
        self.head_sql = head_sql

    def _read(self, query: str, params: tuple[Any, ...] = (), *, tuples: bool) -> list[Any]:
        """On the primary: positions decide whether to write, and what a read waits for."""
        with self.db.on_primary():
            return self.db.read(query, params, tuples=tuples)

    def create(self, cursor: Any, versions: Mapping[str, int]) -> list[str]:
        """Create the table (and the columns an older store lacks), and a row at
        position 0 for each model of ``versions`` (name -> version) that has none.

        Returns the models whose rows were written by an older version of them (a
        changed row shape): the caller empties them (:meth:`restart`) to be replayed.
        """
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {POSITIONS} (name TEXT PRIMARY KEY, "
            "position BIGINT NOT NULL, rebuilding INTEGER NOT NULL DEFAULT 0, "
            "epoch BIGINT NOT NULL DEFAULT 0, stopped TEXT, "
            "model_version BIGINT NOT NULL DEFAULT 1)"
        )
        self.db.add_missing_columns(cursor, POSITIONS, ADDED_COLUMNS)
        for name, version in versions.items():
            cursor.execute(
                self.db.sql(
                    f"INSERT INTO {POSITIONS} (name, position, model_version) VALUES (%s, 0, %s) "
                    "ON CONFLICT (name) DO NOTHING"
                ),
                (name, version),
            )
        rows = self.db.fetch_tuples(cursor, f"SELECT name, model_version FROM {POSITIONS}", ())
        return sorted(
            str(name)
            for name, version in rows
            if str(name) in versions and int(version) < versions[str(name)]
        )

    def restart(self, cursor: Any, name: str, version: int) -> None:
        """Back to position 0 in a new epoch, running, at model ``version`` (in
        ``cursor``'s transaction, which deletes the model's rows): the live runner and
        the next read replay it, as for a model never run before."""
        cursor.execute(
            self.db.sql(
                f"UPDATE {POSITIONS} SET position = 0, rebuilding = 0, epoch = epoch + 1, "
                "stopped = NULL, model_version = %s WHERE name = %s"
            ),
            (version, name),
        )

    def states(self, names: Sequence[str] = ()) -> dict[str, ModelState]:
        """The rows of ``names`` (every model's if none)."""
        query = f"SELECT name, position, rebuilding, epoch, stopped FROM {POSITIONS}"
        if names:
            query += f" WHERE name IN ({_marks(names)})"
        rows = self._read(query, tuple(names), tuples=True)
        return {str(r[0]): _state(r) for r in rows}

    def state_in(self, cursor: Any, name: str) -> ModelState:
        """The row of ``name`` in the snapshot of ``cursor``'s transaction."""
        query = (
            f"SELECT name, position, rebuilding, epoch, stopped FROM {POSITIONS} WHERE name = %s"
        )
        return _state(self.db.fetch_tuples(cursor, query, (name,))[0])

    def with_head(self, names: Sequence[str]) -> tuple[list[CurrentState], str | None]:
        """The rows of ``names`` beside the log's head, in one round trip; with read
        replicas, also the primary's WAL position as of that read (else None)."""
        wal = self.db.wal_position_sql()
        rows = self._read(
            f"SELECT name, position, epoch, stopped, {self.head_sql} AS head"
            f"{'' if wal is None else f', {wal}'} FROM {POSITIONS} "
            f"WHERE name IN ({_marks(names)})",
            tuple(names),
            tuples=True,
        )
        states = [
            CurrentState(str(r[0]), int(r[1]), int(r[2]), _text(r[3]), int(r[4])) for r in rows
        ]
        return states, None if wal is None or not rows else str(rows[0][5])

    def epochs(self, names: Sequence[str]) -> dict[str, int]:
        query = f"SELECT name, epoch FROM {POSITIONS} WHERE name IN ({_marks(names)})"
        return {str(r[0]): int(r[1]) for r in self._read(query, tuple(names), tuples=True)}

    def stopped(self) -> dict[str, str]:
        """The models that stopped, with why."""
        query = f"SELECT name, stopped FROM {POSITIONS} WHERE stopped IS NOT NULL"
        return {str(r[0]): str(r[1]) for r in self._read(query, tuples=True)}

    def position(self, name: str) -> int:
        query = f"SELECT position FROM {POSITIONS} WHERE name = %s"
        return int(self._read(query, (name,), tuples=True)[0][0])

    def advance(self, cursor: Any, names: Sequence[str], start: int, last: int) -> set[str]:
        """Move ``names`` from ``start`` to ``last`` in the batch's transaction, each only
        if it is still at ``start`` (the compare-and-swap); the names moved."""
        cursor.execute(
            self.db.sql(
                f"UPDATE {POSITIONS} SET position = %s WHERE position = %s "
                f"AND name IN ({_marks(names)}) RETURNING name"
            ),
            (last, start, *names),
        )
        return {str(row["name"]) for row in cursor.fetchall()}

    def mark_stopped(self, name: str, start: int, reason: str) -> bool:
        """Stop ``name`` at ``start`` with ``reason`` (unless it moved or stopped)."""
        return bool(
            self.db.run(
                f"UPDATE {POSITIONS} SET stopped = %s WHERE name = %s AND position = %s "
                "AND stopped IS NULL RETURNING name",
                (reason, name, start),
                commit=True,
            )
        )

    def clear_stopped(self, name: str) -> None:
        self.db.run(f"UPDATE {POSITIONS} SET stopped = NULL WHERE name = %s", (name,), commit=True)

    def reset(self, cursor: Any, name: str) -> None:
        """Back to position 0, rebuilding, in a new epoch, running (in ``cursor``'s
        transaction, before the model's rows are deleted: see ``Rebuilds.reset``)."""
        cursor.execute(
            self.db.sql(
                f"UPDATE {POSITIONS} SET position = 0, rebuilding = 1, "
                "epoch = epoch + 1, stopped = NULL WHERE name = %s"
            ),
            (name,),
        )

    def rebuilt(self, cursor: Any, names: Sequence[str]) -> None:
        """``names`` are rebuilt: no longer marked rebuilding."""
        cursor.execute(
            self.db.sql(f"UPDATE {POSITIONS} SET rebuilding = 0 WHERE name IN ({_marks(names)})"),
            tuple(names),
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _state(row: Sequence[Any]) -> ModelState:
    return ModelState(str(row[0]), int(row[1]), bool(row[2]), int(row[3]), _text(row[4]))
