"""What every read model is: its tables, the events it follows, how it applies a batch.

One module per read model beside this one (``directory``, ``cases``, ``consents``,
``referrals``, ``disclosures``, ``feed``, ``audit``), each holding its tables' DDL, its
rows as named structures, and its ``apply_batch``; ``runner`` feeds them all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import msgspec
import psycopg
from eventsourcing.persistence import ConnectionUnavailableError, InterfaceError, OperationalError

from casenet.domain.aggregate import DomainEvent
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import Database

_JSON = msgspec.json.Encoder(order="sorted")

#: Each read model's position (the last notification it applied), epoch and state.
POSITIONS = "casenet_projection_positions"

#: Ids per SELECT of rows of earlier batches: well under any store's limit on parameters.
LOOKUP_CHUNK = 500


class ReadModel:
    """A read model: its tables, the events it follows, and how it applies a batch.

    The batching rule, which every model keeps: the rows after a batch are those that
    applying its facts one at a time, in log order, would leave; a batch boundary never
    shows in a model's rows (a rebuild equals the model fed live, and the checksums
    prove it). So that a batch costs a few statements, not one per event:

    - rows the batch creates are built in memory (a named structure per row) and the
      batch's later events change them there, so each is inserted once, complete;
    - events on rows of earlier batches are folded into one change per row (counts add
      up, the last version and time win, a value set later replaces one set earlier:
      ``COALESCE`` keeps the row's own where the batch set none), written as one
      ``UPDATE`` per row, all in one ``executemany``;
    - those UPDATEs go first, then the INSERTs: an UPDATE of a key the batch creates
      later meets the table as it was before the batch, as it would one event at a time;
    - what a batch needs of earlier batches' rows is read once, a few hundred keys per
      statement (:func:`lookup`), never per event.
    """

    name: str = ""
    #: The shape of its rows: one more whenever what ``apply_batch`` writes changes
    #: meaning, so a store that holds rows of the older shape is emptied and replayed
    #: when this version first opens it (``Projections.setup``).
    version: int = 1
    tables: tuple[str, ...] = ()
    follows: tuple[type[DomainEvent], ...] = ()
    #: Events it follows but reads no field of the state of (only their type, aggregate,
    #: version, position and time): when no other model of a batch reads them either,
    #: their facts come with an empty ``state``, and only their time is decoded.
    stateless: tuple[type[DomainEvent], ...] = ()

    def create_statements(self, db: Database) -> list[str]:
        """The DDL of its tables and indexes (idempotent: ``IF NOT EXISTS``)."""
        raise NotImplementedError

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        """Apply ``facts`` (the events it follows, in log order) in the open transaction,
        keeping the batching rule (see the class)."""
        raise NotImplementedError

    def primary_keys(self) -> dict[str, str]:
        """Table -> ORDER BY clause that lists its rows in a stable order (for checksums)."""
        raise NotImplementedError


class Row(msgspec.Struct, gc=False):
    """A row of a read model's table: its fields are the table's columns, in order.

    Not tracked by the cyclic garbage collector (its values are text and numbers).
    """


def as_json(value: Any) -> str:
    """``value`` as canonical JSON text (sorted keys), as a model's column holds it."""
    return _JSON.encode(value).decode()


def values(rows: Iterable[Row]) -> list[tuple[Any, ...]]:
    """``rows`` as tuples in their table's column order, for ``Database.insert_rows``."""
    astuple = msgspec.structs.astuple
    return [astuple(row) for row in rows]


def lookup(db: Database, cursor: Any, query: str, ids: Collection[str]) -> list[Any]:
    """Rows of ``query ({ids})`` (an ``IN`` list completed here), a few hundred ids per
    statement, in the batch's transaction."""
    # A cursor of its own, in the same transaction: in PostgreSQL's pipeline mode the
    # batch's shared cursor may still hold an earlier statement's result.
    reader = cursor.connection.cursor()
    found: list[Any] = []
    wanted = sorted(ids)
    try:
        for at in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[at : at + LOOKUP_CHUNK]
            reader.execute(db.sql(f"{query} ({', '.join(['%s'] * len(chunk))})"), chunk)
            found += reader.fetchall()
    finally:
        reader.close()
    return found


#: Errors of the store itself (down, restarting, locked, out of connections): a batch
#: that meets one is tried again later; any other error is the model's, and stops it.
TRANSIENT = (
    OperationalError,
    InterfaceError,
    ConnectionUnavailableError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,  # (the library wraps its own; the readers' are raw)
    TimeoutError,
)


class PositionConflict(Exception):
    """Another runner applied this batch first; ours was rolled back."""


class ReadModelUnavailable(Exception):
    """A read needs a read model that cannot answer now (the API's 503); the message
    names the model only, never data."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


class ReadModelStopped(ReadModelUnavailable):
    """The read model stopped at an event it could not apply: reads that need it answer
    503 until a fixed version resumes it (at start) or ``projections rebuild NAME``."""

    def __init__(self, name: str, position: int, reason: str) -> None:
        super().__init__(name, f"read model {name} stopped at position {position}: {reason}")
        self.position = position
        self.reason = reason


class ReadModelRebuilt(ReadModelUnavailable):
    """The read model was reset (rebuilt) under every attempt of a read."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"read model {name} is being rebuilt; retry")
