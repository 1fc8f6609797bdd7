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
from psycopg.rows import tuple_row

from casenet.infrastructure.sql import SQLITE, Database

#: (position, topic, aggregate id as text, aggregate version, stored state)
StoredRow = tuple[int, str, str, int, bytes]

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
    """The log's events of ``topics`` at positions up to ``stop``, in position order."""
    wanted = sorted(topics)
    table = getattr(recorder, "events_table_name", "stored_events")
    # Only the library's table name is interpolated; every value is a parameter. Each
    # query reads a window of positions, not "the next N after": with LIMIT, PostgreSQL
    # (misled by stale statistics) sorted everything up to the head for every batch.
    if db.dialect == SQLITE:
        marks = ", ".join("?" * len(wanted))
        query = (
            "SELECT rowid, topic, originator_id, originator_version, state "  # noqa: S608
            f"FROM {table} WHERE rowid > ? AND rowid <= ? AND topic IN ({marks}) "
            "ORDER BY rowid"
        )
    else:
        query = (
            "SELECT notification_id, topic, originator_id::text, originator_version, state "  # noqa: S608
            f"FROM {table} WHERE notification_id > %s AND notification_id <= %s "
            "AND topic = ANY(%s) ORDER BY notification_id"
        )
    for start in range(0, stop, batch):
        end = min(start + batch, stop)
        params = (start, end, *wanted) if db.dialect == SQLITE else (start, end, wanted)
        with db.cursor(commit=False) as cursor:
            if db.dialect == SQLITE:
                cursor.row_factory = None  # plain tuples
                cursor.execute(query, params)
                rows = [(p, t, uuid_text(i), v, s) for p, t, i, v, s in cursor.fetchall()]
            else:  # plain tuples, binary: no text to parse for ids and states
                cursor.row_factory = tuple_row
                cursor.execute(query, params, binary=True)
                rows = cursor.fetchall()
        yield from readable(rows)


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
    a ``UUID`` per row (from ``sqlite3.Row`` on SQLite), which cost two to four times
    what the query and a tuple per row do.
    """
    table = getattr(recorder, "events_table_name", "stored_events")
    sqlite = db.dialect == SQLITE
    column = "rowid" if sqlite else "notification_id"
    ident = "originator_id" if sqlite else "originator_id::text"
    bound = "" if stop is None else f" AND {column} <= %s"
    # As the library asks it (the next N by position), with only the columns needed.
    query = db.sql(
        f"SELECT {column}, topic, {ident}, originator_version, state "  # noqa: S608
        f"FROM {table} WHERE {column} > %s{bound} ORDER BY {column} LIMIT %s"
    )
    params = (start, limit) if stop is None else (start, stop, limit)
    with db.cursor(commit=False) as cursor:
        if sqlite:
            cursor.row_factory = None  # plain tuples
            cursor.execute(query, params)
            stored: list[StoredRow] = cursor.fetchall()
            return readable(stored)
        cursor.row_factory = tuple_row
        cursor.execute(query, params, binary=True, prepare=True)
        rows: list[StoredRow] = cursor.fetchall()
        return readable(rows)


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
    """SQLite: the library keeps a UUID as its 32 hex digits; this gives ``str(UUID)``
    (slicing costs a fraction of a UUID object)."""
    if len(stored) != 32:
        return stored
    return f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"
