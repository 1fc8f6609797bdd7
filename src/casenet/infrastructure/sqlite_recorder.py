"""The library's SQLite recorder, also writing new clients' data keys in the events'
transaction (so registering a client costs no commit of its own)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from casenet.infrastructure.keytable import DataKeyRow, insert_params, insert_statement
from casenet.infrastructure.sql import SQLITE

_INSERT_KEYS = insert_statement(SQLITE)


class KeyStagingSQLiteRecorder(SQLiteApplicationRecorder):
    """Inserts the key ring's staged keys in the same transaction as the events.

    After the events, not before: the first write of a transaction pays for starting
    it (the write lock, the WAL index, pages of the events' B-trees), and a key row
    written first paid that on a table it shares no pages with. Measured on the
    encryption benchmark's open-case commit: the key's INSERT took 76 us first and
    23 us after (the events' inserts 37 -> 43 us). The transaction commits both or
    neither either way.
    """

    #: Set by the application: returns (and forgets) this thread's staged key rows.
    staged_keys: Callable[[], list[DataKeyRow]] | None = None

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        rows = self.staged_keys() if self.staged_keys is not None else []
        ids = super()._insert_events(c, stored_events, **kwargs)
        if rows:
            c.executemany(_INSERT_KEYS, [insert_params(r, SQLITE) for r in rows])
        return ids
