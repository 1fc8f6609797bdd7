"""The notification log read with plain SQL: only the wanted topics, in big batches.

The library's ``select_notifications`` builds a ``Notification`` per row (every column,
UUIDs parsed) and cannot be told to skip topics without a query per topic; a reader
that walks the whole log, such as the audit export, pays that per event. This one
asks the database for the five columns it needs, filters topics in SQL, and hands
back plain tuples. It reads events as stored and decrypts nothing.

Both readers hand every stored state through ``readable``: the code before issue 15
stored text with NUL characters in it (a worker's name), which PostgreSQL's text
columns refuse, so a read model written from such an event failed for ever. Such a
state comes back with each NUL replaced by U+FFFD (the replacement character), the
same on both stores, for every read model and the audit export alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
from eventsourcing.persistence import ApplicationRecorder

from casenet.infrastructure.sql import Database, StoredRow

__all__ = ["BATCH", "StoredRow", "next_rows", "readable", "stored_rows", "uuid_text"]

#: Positions read per query: few round trips, bounded memory.
BATCH = 10_000


def stored_rows(
    db: Database,
    recorder: ApplicationRecorder,
    topics: Iterable[str],
    *,
    stop: int,
    batch: int = BATCH,
) -> Iterator[StoredRow]:
    """The log's events of ``topics`` at positions up to ``stop``, in position order,
    with the aggregate id as ``str(UUID)``."""
    wanted = sorted(topics)
    table = getattr(recorder, "events_table_name", "stored_events")
    # Each query reads a window of positions, not "the next N after": with LIMIT,
    # PostgreSQL (misled by stale statistics) sorted everything up to the head for
    # every batch.
    for start in range(0, stop, batch):
        yield from readable(db.log_window(table, wanted, start, min(start + batch, stop)))


def next_rows(
    db: Database,
    recorder: ApplicationRecorder,
    start: int,
    limit: int,
    stop: int | None = None,
) -> list[StoredRow]:
    """The next ``limit`` events of every topic after position ``start`` (up to
    ``stop``), in position order: the notifications the library's
    ``select_notifications(start + 1, limit, stop)`` gives, as plain tuples, but with
    the aggregate id as stored: on SQLite its 32 hex digits (``uuid_text`` gives
    ``str(UUID)``; a rebuild does so once per run of an aggregate's events).

    A rebuild reads the whole log this way: the library builds a ``Notification`` and
    a ``UUID`` per row, which cost two to four times what the query and a tuple per
    row do.
    """
    table = getattr(recorder, "events_table_name", "stored_events")
    return readable(db.log_after(table, start, limit, stop))


#: How JSON writes a NUL character (no letters in it: no other case to look for).
_NUL = b"\\u0000"


def readable(rows: list[StoredRow]) -> list[StoredRow]:
    """``rows`` with every NUL in their states' text replaced by U+FFFD (see above).

    One search of each state's bytes (C, a few ns); only a state that holds the
    escape is decoded, mended and encoded again (its other text unchanged, an escaped
    backslash before "u0000" too).
    """
    mended: list[StoredRow] | None = None
    for at, row in enumerate(rows):
        state = row[4]
        if _NUL in state:
            value = msgspec.json.decode(state)
            clean = _without_nul(value)
            if clean != value:
                mended = mended if mended is not None else list(rows)
                mended[at] = (row[0], row[1], row[2], row[3], msgspec.json.encode(clean))
    return rows if mended is None else mended


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def uuid_text(stored: str) -> str:
    """An aggregate id as stored, as ``str(UUID)``: SQLite's library keeps a UUID as its
    32 hex digits (slicing costs a fraction of a UUID object); other text is as is."""
    if len(stored) != 32:
        return stored
    return f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"
