"""The library's SQLite recorder, also writing new clients' data keys in the events'
transaction (so registering a client costs no commit of its own)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from casenet.infrastructure.keytable import DataKeyRow, insert_params, insert_statement
from casenet.infrastructure.sql import SQLITE


class KeyStagingSQLiteRecorder(SQLiteApplicationRecorder):
    """Inserts the key ring's staged keys first, in the same transaction as the events."""

    #: Set by the application: returns (and forgets) this thread's staged key rows.
    staged_keys: Callable[[], list[DataKeyRow]] | None = None

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        rows = self.staged_keys() if self.staged_keys is not None else []
        if rows:
            c.executemany(insert_statement(SQLITE), [insert_params(r, SQLITE) for r in rows])
        return super()._insert_events(c, stored_events, **kwargs)
