"""The queries that read the audit records model: an export's lines, chunked per page.

An export of everything reads the complete pages whole (``Database.scan``: on
PostgreSQL one binary COPY) and the open page (the last one or two) from rows; one of
a case, a client or a time range reads rows by index. Either way rows are joined per
page as the pages are: the pages are the bundle's chunks, so an export does no work
per record. The page layout is ``audit``'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from casenet.infrastructure.audit_bundle import FILES
from casenet.infrastructure.audit_shapes import Scope
from casenet.infrastructure.projections.audit import (
    ALL_FILES,
    CASES,
    FILE_NUMBER,
    FIRST_OPEN_PAGE,
    PAGE_POSITIONS,
    page_of,
)
from casenet.infrastructure.sql import Database

#: Lines read per query while exporting.
FETCH = 8192
#: Pages read per query while exporting (at most PAGE_POSITIONS lines each).
FETCH_PAGES = 32
AGENCIES = FILE_NUMBER["agencies.jsonl"]
ERASURES = FILE_NUMBER["erasures.jsonl"]


def begin_export(db: Database, cursor: Any) -> None:
    """Start an export's transaction: one snapshot for every file's queries, planned to
    read a file's rows in key order."""
    db.begin_bulk_read(cursor)


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
        stored = db.scan(
            cursor,
            "rm_audit_pages",
            ("file", "page", "records", "data"),
            ("file", "page"),
            (int, int, int, bytes),
            fetch=FETCH_PAGES,
        )
        pending = list(range(len(FILES)))  # files whose open pages are still to come
        for file, _, records, data in stored:
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
        number = FILE_NUMBER[name]
        for records, data in _lines_by_page(db, cursor, number, scope, lower, upper, 0, stop):
            yield name, records, data


def _open_pages(db: Database, cursor: Any, stop: int) -> list[list[tuple[int, bytes]]]:
    """Per file, the lines up to ``stop`` of the pages not stored yet, joined per page:
    (records, bytes). (Everything's erasures need no check of their client's case:
    the model kept a row only for an erasure whose client had one.)"""
    rows = db.fetch_tuples(
        cursor,
        f"SELECT file, position, line FROM rm_audit_records WHERE file IN ({ALL_FILES}) "
        f"AND position >= {PAGE_POSITIONS} * {FIRST_OPEN_PAGE} AND position <= %s "
        "ORDER BY file, position",
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
    if number != AGENCIES and number != CASES:  # dated
        if lower is not None:
            where.append("r.at >= %s")
            params.append(lower)
        if upper is not None:
            where.append("r.at < %s")
            params.append(upper)
    case_rule, case_params = _case_rule(scope)
    if number == CASES:
        if case_rule:
            where.append(case_rule.replace("c.", "r."))
            params += case_params
    elif number == ERASURES:
        where.append(
            "EXISTS (SELECT 1 FROM rm_audit_records c WHERE c.file = "
            f"{CASES} AND c.client_id = r.client_id AND c.position < r.position"
            + (f" AND {case_rule})" if case_rule else ")")
        )
        params += case_params
    elif number != AGENCIES and case_rule:
        where.append(
            f"r.case_id IN (SELECT c.case_id FROM rm_audit_records c WHERE c.file = {CASES} "
            f"AND {case_rule})"
        )
        params += case_params
    query = (
        f"SELECT r.position, r.line FROM rm_audit_records r WHERE {' AND '.join(where)} "
        f"ORDER BY r.position LIMIT {FETCH}"
    )
    page, lines = -1, list[bytes]()
    while True:
        rows = db.fetch_tuples(cursor, query, (after, stop, *params))
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
