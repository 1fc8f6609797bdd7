"""The ``casenet_data_keys`` table: clients' data keys, wrapped, in the store's database.

One row per client (the data subject). Erasure sets ``wrapped`` to NULL and stamps
``erased_at``: the row stays as a tombstone so that no later write creates a new key
for that client (a new key could not bring the old data back, but the tombstone also
tells every reader the client is erased).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from casenet.infrastructure.sql import Database

TABLE = "casenet_data_keys"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataKeyRow:
    """A client's data key as stored: wrapped by ``master_key_id``; None once erased."""

    subject_id: UUID
    data_key_id: bytes
    master_key_id: str
    wrapped: bytes | None


#: The start of a SELECT of key rows shaped as event rows, for a UNION ALL with the
#: events of a load (see ``CasenetApplication.get_all``): subject id, version -1,
#: master key id, wrapped key, then the data key id (events get a fifth column then).
#: Ends with the subject column, for ``= ?`` or ``IN (...)``.
SELECT_AS_EVENT_ROWS = (
    f"SELECT subject_id, -1, master_key_id, wrapped, data_key_id FROM {TABLE} WHERE subject_id"
)


def row_of_event_row(subject_id: UUID, row: Sequence[Any]) -> DataKeyRow:
    """The key row of ``subject_id`` that one of :data:`SELECT_AS_EVENT_ROWS`'s rows
    holds (the caller knows the subject by the id it asked for)."""
    wrapped = None if row[3] is None else bytes(row[3])
    return DataKeyRow(subject_id, bytes(row[4]), str(row[2]), wrapped)


class KeyTable:
    """The data keys' SQL, on the store's database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _run(self, query: str, params: tuple[Any, ...] = (), *, commit: bool) -> list[Any]:
        return self.database.run(query, params, commit=commit)

    def _id_param(self, subject_id: UUID) -> Any:
        return self.database.id_param(subject_id)

    def create_table(self) -> None:
        self._run(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            f"subject_id {self.database.uuid} PRIMARY KEY, "
            f"data_key_id {self.database.blob} NOT NULL, "
            "master_key_id TEXT NOT NULL, "
            f"wrapped {self.database.blob}, "
            f"created_at {self.database.time} NOT NULL, "
            f"erased_at {self.database.time}){self.database.clustered}",
            commit=True,
        )

    def _row(self, raw: Any) -> DataKeyRow:
        wrapped = raw["wrapped"]
        return DataKeyRow(
            subject_id=UUID(str(raw["subject_id"])),
            data_key_id=bytes(raw["data_key_id"]),
            master_key_id=str(raw["master_key_id"]),
            wrapped=None if wrapped is None else bytes(wrapped),
        )

    def get(self, subject_id: UUID) -> DataKeyRow | None:
        rows = self._run(
            f"SELECT subject_id, data_key_id, master_key_id, wrapped FROM {TABLE} "
            "WHERE subject_id = %s",
            (self._id_param(subject_id),),
            commit=False,
        )
        return self._row(rows[0]) if rows else None

    def get_many(self, subject_ids: Collection[UUID]) -> list[DataKeyRow]:
        """The rows of ``subject_ids`` that exist, in one statement."""
        if not subject_ids:
            return []
        marks = ", ".join(["%s"] * len(subject_ids))
        rows = self._run(
            f"SELECT subject_id, data_key_id, master_key_id, wrapped FROM {TABLE} "
            f"WHERE subject_id IN ({marks})",
            tuple(self._id_param(subject_id) for subject_id in subject_ids),
            commit=False,
        )
        return [self._row(raw) for raw in rows]

    def insert_or_get(self, row: DataKeyRow) -> DataKeyRow:
        """Insert ``row``, or return the row already there (a racing writer's, a tombstone)."""
        inserted = self._run(
            f"INSERT INTO {TABLE} (subject_id, data_key_id, master_key_id, wrapped, created_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (subject_id) DO NOTHING RETURNING subject_id",
            (
                self._id_param(row.subject_id),
                row.data_key_id,
                row.master_key_id,
                row.wrapped,
                self.database.now(),
            ),
            commit=True,
        )
        if inserted:  # one statement for a new client: no read before or after
            return row
        stored = self.get(row.subject_id)
        assert stored is not None
        return stored

    def erase(self, subject_id: UUID) -> None:
        """Destroy the wrapped key; a client that never had a key gets a tombstone too.

        On SQLite the old bytes are zeroed in the page and the WAL is truncated (see
        ``Database.erasing_cursor``), so the wrapped key is in no file of the store.
        """
        with self.database.erasing_cursor() as cursor:
            cursor.execute(
                self.database.sql(
                    f"INSERT INTO {TABLE} (subject_id, data_key_id, master_key_id, wrapped, "
                    "created_at, erased_at) VALUES (%s, %s, '', NULL, %s, %s) "
                    "ON CONFLICT (subject_id) DO UPDATE SET wrapped = NULL, "
                    f"erased_at = COALESCE({TABLE}.erased_at, excluded.erased_at)"
                ),
                (self._id_param(subject_id), b"", self.database.now(), self.database.now()),
            )
        self.truncate_wal()

    def truncate_wal(self) -> None:
        if not self.database.truncate_wal():
            logger.warning(
                "data keys: the WAL checkpoint after an erasure or rotation was "
                "kept from completing by readers; the next one completes it"
            )

    def master_key_ids(self) -> list[str]:
        rows = self._run(
            f"SELECT DISTINCT master_key_id FROM {TABLE} WHERE wrapped IS NOT NULL",
            commit=False,
        )
        return sorted(str(r["master_key_id"]) for r in rows)

    def sample_for_master(self, master_key_id: str) -> DataKeyRow | None:
        rows = self._run(
            f"SELECT subject_id, data_key_id, master_key_id, wrapped FROM {TABLE} "
            "WHERE master_key_id = %s AND wrapped IS NOT NULL LIMIT 1",
            (master_key_id,),
            commit=False,
        )
        return self._row(rows[0]) if rows else None

    def rows_not_wrapped_by(self, master_key_id: str) -> Iterator[DataKeyRow]:
        """Live keys wrapped by another master key, in batches (never all in memory)."""
        after = ""
        while True:
            rows = self._run(
                f"SELECT subject_id, data_key_id, master_key_id, wrapped FROM {TABLE} "
                "WHERE master_key_id <> %s AND wrapped IS NOT NULL AND "
                f"CAST(subject_id AS TEXT) > %s ORDER BY CAST(subject_id AS TEXT) LIMIT 500",
                (master_key_id, after),
                commit=False,
            )
            if not rows:
                return
            for raw in rows:
                yield self._row(raw)
            after = str(rows[-1]["subject_id"])

    def rewrap(self, old: DataKeyRow, master_key_id: str, wrapped: bytes) -> bool:
        """Swap in the re-wrapped key, unless the row changed (erased, rotated) meanwhile."""
        with self.database.erasing_cursor() as cursor:  # the old wrapping is zeroed
            cursor.execute(
                self.database.sql(
                    f"UPDATE {TABLE} SET master_key_id = %s, wrapped = %s "
                    "WHERE subject_id = %s AND master_key_id = %s AND wrapped IS NOT NULL"
                ),
                (master_key_id, wrapped, self._id_param(old.subject_id), old.master_key_id),
            )
            return bool(cursor.rowcount == 1)

    def counts(self) -> dict[str, int]:
        """How many live data keys each master key wraps, and how many clients are erased."""
        rows = self._run(
            "SELECT CASE WHEN wrapped IS NULL THEN '(erased)' ELSE master_key_id END AS k, "
            f"COUNT(*) AS n FROM {TABLE} GROUP BY 1 ORDER BY 1",
            commit=False,
        )
        return {str(r["k"]): int(r["n"]) for r in rows}
