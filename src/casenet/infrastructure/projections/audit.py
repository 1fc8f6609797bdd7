"""The audit records read model: every audit record's bundle line, ready to export.

A record is the same in every bundle it is in (ids, times, statuses, sections,
purposes, its store position and version: no personal data), so it is rendered once,
when its event is projected, as the exact line a bundle holds (``Reader.line`` in
``audit_records``, the one rendering, which the export from the log uses too: the
canonical bytes beside their digest). Each row is
keyed by what an export's scope asks: the file, the position (log order), the case
(and on case rows its client and owner, as the export from the log selects), the
client of an erasure, and the time for records the ``from``/``to`` range applies to.
Each file's lines are also kept joined per page of ``PAGE_POSITIONS`` log positions,
written once, when the page is complete: by the batch whose last fact lies in a later
page (positions only grow, so no later fact can add to it), from that batch's lines
and those earlier batches left in rows. A live batch of a few events thus writes its
rows only, not the page it adds to again (that rewrite grew with the page: ~140 KB a
one-event batch on SQLite, ~12 KB of WAL on PostgreSQL, plus a dead tuple and its
TOAST chunks). Which pages are stored depends only on the facts applied, never on
where batches ended, so a rebuild's checksum equals the live model's. An export of
everything reads the complete pages whole and the open page (the last one or two)
from rows; one of a case, a client or a time range reads rows by index. Either way
rows are joined per page as the pages are: the pages are the bundle's chunks, so an
export does no work per record.

A store made by the code before this rule kept the last page as far as it went: the
first start of this code drops it (``_OPEN_PAGES_OF_BEFORE``), and its lines are read
from rows until a batch completes it.

A record whose case was never opened before it (none in practice), and the erasure
of a client none of whose cases was opened before it, belong to no scope and get no
row, as the export from the log keeps none.

Over 400 lines, on purpose: one read model, as every model's module holds it, its
tables, how it applies a batch and the queries that read it; here the reads are the
export's (pages whole, rows by scope, PostgreSQL's binary COPY), bound to the layout
of the pages that the batch writes.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import msgspec
from psycopg.rows import tuple_row

from casenet.domain.agency import AgencyRegistered
from casenet.domain.aggregate import DomainEvent
from casenet.domain.case import CaseOpened
from casenet.domain.client import ClientErased
from casenet.domain.consent import ConsentGranted, ConsentWithdrawn
from casenet.domain.disclosure import DisclosureRecorded
from casenet.domain.referral import STATUS_OF_EVENT, ReferralRequested
from casenet.infrastructure.audit_bundle import FILES
from casenet.infrastructure.audit_records import READERS, Reader, Scope
from casenet.infrastructure.projections.base import ReadModel, Row, lookup, values
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import SQLITE, Database

#: (case_id, client_id, owner_agency_id) of a case, or of a consent or referral's case.
Keys = tuple[str, str, str]

_BY_TYPE: dict[type[DomainEvent], Reader] = {r.event_type: r for r in READERS.values()}
_FILE_NUMBER = {name: number for number, name in enumerate(FILES)}
_CASES = _FILE_NUMBER["cases.jsonl"]
_ERASURES = _FILE_NUMBER["erasures.jsonl"]
_AGENCIES = _FILE_NUMBER["agencies.jsonl"]
#: Events whose record belongs to the case named in the event.
_OF_CASE = (ConsentGranted, DisclosureRecorded, ReferralRequested)
#: Events whose aggregate is then looked up by later events (withdrawals, status changes).
_SUBJECTS = (CaseOpened, ConsentGranted, ReferralRequested)
#: PostgreSQL: pages compressed with lz4 where the server has it (pglz, the default,
#: where not). An export of everything reads every page: 50 MB of lines COPY out in
#: 0.032-0.041 s with lz4, 0.045-0.062 uncompressed or with pglz, and take a fifth of
#: the room.
_LZ4_PAGES = (
    "DO $$ BEGIN EXECUTE 'ALTER TABLE rm_audit_pages ALTER COLUMN data SET COMPRESSION lz4'; "
    "EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL; END $$"
)
#: Lines read per query while exporting.
FETCH = 8192
#: Pages read per query while exporting (at most PAGE_POSITIONS lines each).
FETCH_PAGES = 32
#: Log positions per page: a page holds a file's lines of those positions, joined, and
#: is one chunk (one link of the chain) of every bundle that has any of its records.
PAGE_POSITIONS = 256


def page_of(position: int) -> int:
    """The page (and the bundle chunk) a record at ``position`` belongs to."""
    return position // PAGE_POSITIONS


def _greatest(column: str, table: str) -> str:
    """SQL for the greatest ``column`` of ``table`` over every file (NULL if none): one
    probe of the primary key (which begins with the file) per file, not a scan."""
    probes = " UNION ALL ".join(
        f"SELECT (SELECT MAX({column}) FROM {table} WHERE file = {number}) AS greatest"
        for number in range(len(FILES))
    )
    return f"(SELECT MAX(greatest) FROM ({probes}) AS probes)"


#: Every file's number, for an IN list that lets a range of positions use the key.
_ALL_FILES = ", ".join(str(number) for number in range(len(FILES)))
#: The first page not stored: every page before it that has lines is stored, complete,
#: and no page from it on is (see ``AuditRecordsModel._seal_pages``).
_FIRST_OPEN_PAGE = f"COALESCE({_greatest('page', 'rm_audit_pages')} + 1, 0)"
#: A store of the code before: it appended each batch's lines to their page, so the
#: page of its last record may be incomplete. Run when the schema fingerprint changes;
#: that page's lines are then read from the rows until a batch completes it. On a
#: store of this code it deletes nothing, or (the last facts having no row, so a later
#: page begun) a complete page, which the next batch writes again.
_OPEN_PAGES_OF_BEFORE = (
    "DELETE FROM rm_audit_pages WHERE page >= "
    f"{_greatest('position', 'rm_audit_records')} / {PAGE_POSITIONS}"
)


class RecordRow(Row):
    """A row of ``rm_audit_records``: one record's bundle line, with the keys an
    export's scope selects it by (None where the scope reaches it through its case)."""

    file: int  # its number in ``FILES``
    position: int
    case_id: str | None
    client_id: str | None
    owner_agency_id: str | None
    at: str | None  # for records a time range applies to
    line: bytes


class SubjectRow(Row):
    """A row of ``rm_audit_subjects``: the keys of a case, consent or referral, which
    later events' records (withdrawals, status changes) take."""

    subject_id: str
    case_id: str
    client_id: str
    owner_agency_id: str


class AuditRecordsModel(ReadModel):
    """Every audit record's bundle line, keyed by file, position, case and time."""

    name = "audit"
    tables = ("rm_audit_records", "rm_audit_pages", "rm_audit_subjects")
    follows = tuple(_BY_TYPE)

    def create_statements(self, db: Database) -> list[str]:
        # SQLite keeps the rows in key order (no rowid): a file's lines are read in one
        # sweep of the table's leaves, not through an index and back to the table.
        clustered = " WITHOUT ROWID" if db.dialect == SQLITE else ""
        return [
            "CREATE TABLE IF NOT EXISTS rm_audit_records (file INTEGER NOT NULL, "
            "position BIGINT NOT NULL, case_id TEXT, client_id TEXT, owner_agency_id TEXT, "
            f"at TEXT, line {db.blob} NOT NULL, PRIMARY KEY (file, position)){clustered}",
            "CREATE INDEX IF NOT EXISTS rm_audit_records_case ON rm_audit_records "
            "(case_id, file, position)",
            "CREATE INDEX IF NOT EXISTS rm_audit_records_client ON rm_audit_records "
            f"(client_id, position) WHERE file = {_CASES}",
            "CREATE TABLE IF NOT EXISTS rm_audit_pages (file INTEGER NOT NULL, page BIGINT "
            f"NOT NULL, records INTEGER NOT NULL, data {db.blob} NOT NULL, "
            "PRIMARY KEY (file, page))",
            *([] if db.dialect == SQLITE else [_LZ4_PAGES]),
            _OPEN_PAGES_OF_BEFORE,
            "CREATE TABLE IF NOT EXISTS rm_audit_subjects (subject_id TEXT PRIMARY KEY, "
            "case_id TEXT NOT NULL, client_id TEXT NOT NULL, owner_agency_id TEXT NOT NULL)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {
            "rm_audit_records": "file, position",
            "rm_audit_pages": "file, page",
            "rm_audit_subjects": "subject_id",
        }

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        # Subjects this batch creates are known in memory; those of earlier batches are
        # looked up once. One made later in the batch than an event naming it is not
        # yet known to that event, as one event at a time would have it.
        created: set[str] = set()
        clients: set[str] = set()  # with a case opened so far in this batch
        wanted: set[str] = set()
        wanted_clients: set[str] = set()
        stored: list[Any] = []
        for fact in facts:
            kind, reader = fact.event_type, _BY_TYPE[fact.event_type]
            s: Any = msgspec.convert(fact.state, reader.stored)
            stored.append(s)
            subject = _subject_named(kind, s, fact.aggregate_id)
            if subject is not None and subject not in created:
                wanted.add(subject)
            if kind in _SUBJECTS:
                created.add(fact.aggregate_id)
            if kind is CaseOpened:
                clients.add(s.client_id)
            elif kind is ClientErased and fact.aggregate_id not in clients:
                wanted_clients.add(fact.aggregate_id)
        known = self._subjects(db, cursor, wanted)
        with_cases = self._clients_with_cases(db, cursor, wanted_clients)
        subjects: list[SubjectRow] = []
        rows: list[RecordRow] = []
        pages: dict[tuple[int, int], list[bytes]] = {}
        for fact, s in zip(facts, stored, strict=True):
            kind, id_ = fact.event_type, fact.aggregate_id
            reader = _BY_TYPE[kind]
            keys: tuple[str | None, str | None, str | None]
            if kind is AgencyRegistered:
                keys = (None, None, None)
            elif kind is ClientErased:
                if id_ not in with_cases:
                    continue  # no case of theirs was opened before: in no scope
                keys = (None, id_, None)
            elif kind is CaseOpened:
                keys = (id_, s.client_id, s.owner_agency_id)
                with_cases.add(s.client_id)
            else:
                subject = _subject_named(kind, s, id_)
                assert subject is not None
                found = known.get(subject)
                if found is None:
                    continue  # its case was never opened: in no scope
                keys = found
            if kind in _SUBJECTS:
                subject_keys: Keys = keys  # type: ignore[assignment]
                known[id_] = subject_keys
                subjects.append(SubjectRow(id_, *subject_keys))
            line = reader.line(s, id_, fact.position, fact.version)
            at = s.at if reader.dated else None
            if kind is not CaseOpened:  # scopes reach other records through their case
                keys = (keys[0], keys[1] if kind is ClientErased else None, None)
            file = _FILE_NUMBER[reader.file]
            case_id, client_id, owner_agency_id = keys
            rows.append(
                RecordRow(file, fact.position, case_id, client_id, owner_agency_id, at, line)
            )
            pages.setdefault((file, page_of(fact.position)), []).append(line)
        db.insert_rows(cursor, "rm_audit_subjects", values(subjects))
        db.insert_rows(cursor, "rm_audit_records", values(rows))
        self._seal_pages(db, cursor, facts, pages)

    def _seal_pages(
        self,
        db: Database,
        cursor: Any,
        facts: Sequence[StoredFact],
        pages: dict[tuple[int, int], list[bytes]],
    ) -> None:
        """Write each page that this batch completes, once.

        A page is complete when the model has a fact past it: later facts have later
        positions. So after every batch the pages before its last fact's page are all
        stored (those with lines), and that page's lines are only in rows. This batch
        completes the pages from the first one not stored yet up to its last fact's
        page; their lines come from this batch (in memory) and, for lines of earlier
        batches, from the rows (at most the page their last fact was in, as that rule
        left it). Which pages are stored thus depends only on the facts applied, not
        on where batches ended: the checksums stay equal to a rebuild's.
        """
        top = page_of(facts[-1].position)
        sealed: dict[tuple[int, int], list[bytes]] = {}
        # The lines earlier batches left in rows of the pages before ``top``: one
        # statement, a probe of each file's last page and an empty range of rows when
        # no page is complete (most live batches).
        reader = cursor.connection.cursor()  # as in base.lookup
        try:
            reader.execute(
                db.sql(
                    "SELECT file, position, line FROM rm_audit_records WHERE file IN "
                    f"({_ALL_FILES}) AND position >= {PAGE_POSITIONS} * {_FIRST_OPEN_PAGE} "
                    "AND position < %s ORDER BY file, position"
                ),
                (min(facts[0].position, top * PAGE_POSITIONS),),
            )
            for row in reader.fetchall():
                key = (int(row["file"]), page_of(int(row["position"])))
                sealed.setdefault(key, []).append(bytes(row["line"]))
        finally:
            reader.close()
        for (file, page), lines in pages.items():
            if page < top:
                sealed.setdefault((file, page), []).extend(lines)
        # Each page is written once, by the batch that completes it. Were it there
        # already (a server of the code before this one appending to it), the complete
        # page replaces it.
        db.write_many(
            cursor,
            "INSERT INTO rm_audit_pages (file, page, records, data) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (file, page) DO UPDATE SET records = excluded.records, "
            "data = excluded.data",
            [
                (file, page, len(lines), b"".join(lines))
                for (file, page), lines in sorted(sealed.items())
            ],
        )

    def _clients_with_cases(self, db: Database, cursor: Any, ids: Collection[str]) -> set[str]:
        """Which of ``ids`` have a case whose record earlier batches wrote."""
        rows = lookup(
            db,
            cursor,
            f"SELECT DISTINCT client_id FROM rm_audit_records WHERE file = {_CASES} "
            "AND client_id IN",
            ids,
        )
        return {str(row["client_id"]) for row in rows}

    def _subjects(self, db: Database, cursor: Any, ids: Collection[str]) -> dict[str, Keys]:
        """The keys recorded by earlier batches for ``ids`` (absent: none recorded)."""
        rows = lookup(
            db,
            cursor,
            "SELECT subject_id, case_id, client_id, owner_agency_id FROM "
            "rm_audit_subjects WHERE subject_id IN",
            ids,
        )
        return {
            str(row["subject_id"]): (
                str(row["case_id"]),
                str(row["client_id"]),
                str(row["owner_agency_id"]),
            )
            for row in rows
        }


def _subject_named(kind: type[DomainEvent], s: Any, id_: str) -> str | None:
    """The earlier aggregate whose keys the event's record takes, if any."""
    if kind in _OF_CASE:
        return str(s.case_id)
    if kind is ConsentWithdrawn or kind in STATUS_OF_EVENT:
        return id_
    return None


def begin_export(db: Database, cursor: Any) -> None:
    """Start an export's transaction: one snapshot for every file's queries, and on
    PostgreSQL a plan that reads a file's rows in key order."""
    if db.dialect == SQLITE:
        return  # a read transaction is one snapshot already
    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    # Before its first ANALYZE a fresh table looks empty to the planner, which then
    # gathers every remaining row of a file and sorts it (on disk) for each fetch.
    cursor.execute("SET LOCAL enable_bitmapscan = off")
    cursor.execute("SET LOCAL work_mem = '32MB'")


def exported_chunks(
    db: Database,
    cursor: Any,
    scope: Scope,
    *,
    lower: str | None,
    upper: str | None,
    stop: int,
) -> Iterator[tuple[str, int, bytes]]:
    """Every file's lines for ``scope`` and ``[lower, upper)`` up to position ``stop``
    (at least the model's position in this snapshot), file by file in the order of
    ``FILES`` and in position order, in chunks: (file, count, bytes), a page's each."""
    if scope.kind == "all" and scope.owner_agency_id is None and lower is None is upper:
        # Everything: each complete page is a chunk, as stored; then each file's lines
        # of the pages not complete yet (the last one or two) from rows, joined per
        # page as any export joins them. Those are read first, by one statement:
        # PostgreSQL's COPY holds the connection until it ends.
        open_pages = _open_pages(db, cursor, stop)
        stored = _selected_pages(db, cursor) if db.dialect == SQLITE else _copied_pages(cursor)
        pending = list(range(len(FILES)))  # files whose open pages are still to come
        for file, records, data in stored:
            while pending[0] < file:  # the files before this page's are done
                number = pending.pop(0)
                for count, lines in open_pages[number]:
                    yield FILES[number], count, lines
            yield FILES[file], records, data
        for number in pending:
            for count, lines in open_pages[number]:
                yield FILES[number], count, lines
        return
    for name in FILES:
        number = _FILE_NUMBER[name]
        for records, data in _lines_by_page(db, cursor, number, scope, lower, upper, 0, stop):
            yield name, records, data


def _open_pages(db: Database, cursor: Any, stop: int) -> list[list[tuple[int, bytes]]]:
    """Per file, the lines up to ``stop`` of the pages not stored yet, joined per page:
    (records, bytes). (Everything's erasures need no check of their client's case:
    the model kept a row only for an erasure whose client had one.)"""
    rows = _fetch(
        db,
        cursor,
        db.sql(
            f"SELECT file, position, line FROM rm_audit_records WHERE file IN ({_ALL_FILES}) "
            f"AND position >= {PAGE_POSITIONS} * {_FIRST_OPEN_PAGE} AND position <= %s "
            "ORDER BY file, position"
        ),
        (stop,),
    )
    found: list[list[tuple[int, bytes]]] = [[] for _ in FILES]
    key, lines = (-1, -1), list[bytes]()
    for file, position, line in rows:
        if (file, page_of(position)) != key:
            if lines:
                found[key[0]].append((len(lines), b"".join(lines)))
            key, lines = (file, page_of(position)), []
        lines.append(bytes(line))
    if lines:
        found[key[0]].append((len(lines), b"".join(lines)))
    return found


def _selected_pages(db: Database, cursor: Any) -> Iterator[tuple[int, int, bytes]]:
    """SQLite: every stored page, (file number, records, data), a few per query."""
    query = db.sql(
        "SELECT file, page, records, data FROM rm_audit_pages WHERE file > %s OR "
        f"(file = %s AND page > %s) ORDER BY file, page LIMIT {FETCH_PAGES}"
    )
    file, page = -1, -1
    while True:
        rows = _fetch(db, cursor, query, (file, file, page))
        for number, _, records, data in rows:
            yield number, records, bytes(data)
        if len(rows) < FETCH_PAGES:
            return
        file, page = rows[-1][0], rows[-1][1]


def _copied_pages(cursor: Any) -> Iterator[tuple[int, int, bytes]]:
    """PostgreSQL: every stored page, (file number, records, data), in one binary COPY
    (SELECTs of pages cost half as much again, in the server's and psycopg's handling
    of each result)."""
    query = (
        "COPY (SELECT file, records, data FROM rm_audit_pages ORDER BY file, page) "
        "TO STDOUT (FORMAT binary)"
    )
    rest = b""  # of a message that ended inside a row (the server sends whole rows)
    header, ended = True, False
    with cursor.copy(query) as copy:
        for message in copy:
            data = memoryview(rest + bytes(message)) if rest else memoryview(message)
            at = 0
            if header:
                if len(data) < len(_COPY_HEADER):
                    rest = bytes(data)
                    continue
                if bytes(data[: len(_COPY_SIGNATURE)]) != _COPY_SIGNATURE:
                    raise ValueError("not a binary COPY stream")
                at, header = len(_COPY_HEADER), False
            while at < len(data):
                if bytes(data[at : at + 2]) == _COPY_TRAILER:
                    at, ended = at + 2, True
                    break
                if len(data) - at < _ROW_HEAD.size:
                    break
                fields, _, file, _, records, size = _ROW_HEAD.unpack_from(data, at)
                start = at + _ROW_HEAD.size
                if fields != 3 or start + size > len(data):
                    break
                yield file, records, bytes(data[start : start + size])
                at = start + size
            rest = bytes(data[at:])
    if rest or not ended:
        raise ValueError("the binary COPY stream ended inside a row")


#: The binary COPY header: signature, flags, header extension length (0).
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER = _COPY_SIGNATURE + bytes(8)
_COPY_TRAILER = b"\xff\xff"
#: A row's head: 3 fields; file and records (4-byte integers), then the data's length.
_ROW_HEAD = struct.Struct(">hiiiii")


def _lines_by_page(
    db: Database,
    cursor: Any,
    number: int,
    scope: Scope,
    lower: str | None,
    upper: str | None,
    after: int,
    stop: int,
) -> Iterator[tuple[int, bytes]]:
    """The lines in scope after position ``after``, read row by row, joined by page."""
    where = [f"r.file = {number}", "r.position > %s", "r.position <= %s"]
    params: list[Any] = []
    if number != _AGENCIES and number != _CASES:  # dated
        if lower is not None:
            where.append("r.at >= %s")
            params.append(lower)
        if upper is not None:
            where.append("r.at < %s")
            params.append(upper)
    case_rule, case_params = _case_rule(scope)
    if number == _CASES:
        if case_rule:
            where.append(case_rule.replace("c.", "r."))
            params += case_params
    elif number == _ERASURES:
        where.append(
            "EXISTS (SELECT 1 FROM rm_audit_records c WHERE c.file = "
            f"{_CASES} AND c.client_id = r.client_id AND c.position < r.position"
            + (f" AND {case_rule})" if case_rule else ")")
        )
        params += case_params
    elif number != _AGENCIES and case_rule:
        where.append(
            f"r.case_id IN (SELECT c.case_id FROM rm_audit_records c WHERE c.file = {_CASES} "
            f"AND {case_rule})"
        )
        params += case_params
    query = db.sql(
        f"SELECT r.position, r.line FROM rm_audit_records r WHERE {' AND '.join(where)} "
        f"ORDER BY r.position LIMIT {FETCH}"
    )
    page, lines = -1, list[bytes]()
    while True:
        rows = _fetch(db, cursor, query, (after, stop, *params))
        for position, line in rows:
            if position // PAGE_POSITIONS != page:
                if lines:
                    yield len(lines), b"".join(lines)
                page, lines = position // PAGE_POSITIONS, []
            lines.append(bytes(line))
        if len(rows) < FETCH:
            break
        after = rows[-1][0]
    if lines:
        yield len(lines), b"".join(lines)


def _fetch(db: Database, cursor: Any, query: str, params: Sequence[Any]) -> list[Any]:
    """Rows as plain tuples (binary on PostgreSQL: bytes as they are stored)."""
    if db.dialect == SQLITE:
        cursor.row_factory = None
        cursor.execute(query, params)
    else:
        cursor.row_factory = tuple_row
        cursor.execute(query, params, binary=True)
    rows: list[Any] = cursor.fetchall()
    return rows


def _case_rule(scope: Scope) -> tuple[str, list[str]]:
    """Which case rows (alias ``c``) the scope takes, as the export from the log does."""
    rules, params = [], []
    if scope.kind == "case":
        rules.append("c.case_id = %s")
        params.append(str(scope.id))
    elif scope.kind == "client":
        rules.append("c.client_id = %s")
        params.append(str(scope.id))
    if scope.owner_agency_id is not None:
        rules.append("c.owner_agency_id = %s")
        params.append(str(scope.owner_agency_id))
    return " AND ".join(rules), params
