"""The audit records read model: every audit record's bundle line, ready to export.

A record is the same in every bundle it is in (ids, times, statuses, sections,
purposes, its store position and version: no personal data), so it is rendered once,
when its event is projected, as the exact line a bundle holds (``Reader.line`` in
``audit_records``, the one rendering, which the export from the log uses too: the
canonical bytes beside their digest). Each row is keyed by what an export's scope
asks: the file, the position (log order), the case (and on case rows its client and
owner, as the export from the log selects), the client of an erasure or of a copy
made for them, and the time for records the ``from``/``to`` range applies to.
Each file's lines are also kept joined per page of ``PAGE_POSITIONS`` log positions,
written once, when the page is complete: by the batch whose last fact lies in a later
page (positions only grow, so no later fact can add to it), from that batch's lines
and those earlier batches left in rows. A live batch of a few events thus writes its
rows only, not the page it adds to again (that rewrite grew with the page: ~140 KB a
one-event batch on SQLite, ~12 KB of WAL on PostgreSQL, plus a dead tuple and its
TOAST chunks). Which pages are stored depends only on the facts applied, never on
where batches ended, so a rebuild's checksum equals the live model's. The pages are
the bundle's chunks (see ``audit_export``).

A store made by the code before this rule kept the last page as far as it went: the
first start of this code drops it (``_OPEN_PAGES_OF_BEFORE``), and its lines are read
from rows until a batch completes it.

A record whose case was never opened before it (none in practice), and the erasure
(or copy) of a client none of whose cases was opened before it, belong to no scope and
get no row, as the export from the log keeps none.

The queries that read it, an export's, are ``audit_export``'s: they are bound to the
page layout defined here, and to nothing else of the model.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import msgspec

from casenet.domain.agency import AgencyRegistered
from casenet.domain.aggregate import DomainEvent
from casenet.domain.case import CaseOpened
from casenet.domain.client import ClientErased, SubjectAccessProvided
from casenet.domain.consent import ConsentGranted, ConsentWithdrawn
from casenet.domain.disclosure import DisclosureRecorded
from casenet.domain.emergency import (
    EmergencyGrantCreated,
    EmergencyGrantReviewed,
    EmergencyGrantRevoked,
)
from casenet.domain.referral import STATUS_OF_EVENT, ReferralRequested
from casenet.infrastructure.audit_bundle import FILES
from casenet.infrastructure.audit_records import READERS, Reader
from casenet.infrastructure.projections.base import ReadModel, Row, lookup, values
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import Database

#: (case_id, client_id, owner_agency_id) of a case, or of a consent or referral's case.
Keys = tuple[str, str, str]

_BY_TYPE: dict[type[DomainEvent], Reader] = {r.event_type: r for r in READERS.values()}
FILE_NUMBER = {name: number for number, name in enumerate(FILES)}
CASES = FILE_NUMBER["cases.jsonl"]
#: Events whose record belongs to the case named in the event.
_OF_CASE = (ConsentGranted, DisclosureRecorded, ReferralRequested, EmergencyGrantCreated)
#: Events whose aggregate is then looked up by later events (withdrawals, status
#: changes, an emergency grant's revocation and review).
_SUBJECTS = (CaseOpened, ConsentGranted, ReferralRequested, EmergencyGrantCreated)
#: Events whose record takes the keys of their own aggregate's beginning.
_LATER = (ConsentWithdrawn, EmergencyGrantRevoked, EmergencyGrantReviewed, *STATUS_OF_EVENT)
#: Events of a client (their erasure, a copy made for them): kept, keyed by the
#: client, once a case of theirs was opened.
_OF_CLIENT = (ClientErased, SubjectAccessProvided)
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
ALL_FILES = ", ".join(str(number) for number in range(len(FILES)))
#: The first page not stored: every page before it that has lines is stored, complete,
#: and no page from it on is (see ``AuditRecordsModel._seal_pages``).
FIRST_OPEN_PAGE = f"COALESCE({_greatest('page', 'rm_audit_pages')} + 1, 0)"
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
    #: 2: emergency grants' records, and their grants on disclosures' (issue 18);
    #: 3: the copies made for clients (``SubjectAccessProvided``) beside erasures.
    version = 3
    tables = ("rm_audit_records", "rm_audit_pages", "rm_audit_subjects")
    follows = tuple(_BY_TYPE)

    def create_statements(self, db: Database) -> list[str]:
        # Rows in key order where the store can (SQLite): a file's lines are read in one
        # sweep of the table's leaves. Pages compressed with lz4 where the server has it
        # (PostgreSQL): an export of everything reads every page, and 50 MB of lines COPY
        # out in 0.032-0.041 s with lz4, 0.045-0.062 uncompressed or with pglz, and take
        # a fifth of the room.
        return [
            "CREATE TABLE IF NOT EXISTS rm_audit_records (file INTEGER NOT NULL, "
            "position BIGINT NOT NULL, case_id TEXT, client_id TEXT, owner_agency_id TEXT, "
            f"at TEXT, line {db.blob} NOT NULL, PRIMARY KEY (file, position)){db.key_ordered()}",
            "CREATE INDEX IF NOT EXISTS rm_audit_records_case ON rm_audit_records "
            "(case_id, file, position)",
            "CREATE INDEX IF NOT EXISTS rm_audit_records_client ON rm_audit_records "
            f"(client_id, position) WHERE file = {CASES}",
            "CREATE TABLE IF NOT EXISTS rm_audit_pages (file INTEGER NOT NULL, page BIGINT "
            f"NOT NULL, records INTEGER NOT NULL, data {db.blob} NOT NULL, "
            "PRIMARY KEY (file, page))",
            *db.compress_column("rm_audit_pages", "data"),
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
        stored, wanted, wanted_clients = _decoded(facts)
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
            elif kind in _OF_CLIENT:
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
                keys = (keys[0], keys[1] if kind in _OF_CLIENT else None, None)
            file = FILE_NUMBER[reader.file]
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
            rows = db.fetch_tuples(
                reader,
                "SELECT file, position, line FROM rm_audit_records WHERE file IN "
                f"({ALL_FILES}) AND position >= {PAGE_POSITIONS} * {FIRST_OPEN_PAGE} "
                "AND position < %s ORDER BY file, position",
                (min(facts[0].position, top * PAGE_POSITIONS),),
            )
            for file, position, line in rows:
                sealed.setdefault((int(file), page_of(int(position))), []).append(bytes(line))
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
            f"SELECT DISTINCT client_id FROM rm_audit_records WHERE file = {CASES} "
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


def _decoded(facts: Sequence[StoredFact]) -> tuple[list[Any], set[str], set[str]]:
    """Each fact's state as its reader stores it, and what the batch must look up of
    earlier batches: the subjects its events name, the clients its erasures and copies name.

    Subjects this batch creates are known in memory; those of earlier batches are
    looked up once. One made later in the batch than an event naming it is not yet
    known to that event, as one event at a time would have it.
    """
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
        elif kind in _OF_CLIENT and fact.aggregate_id not in clients:
            wanted_clients.add(fact.aggregate_id)
    return stored, wanted, wanted_clients


def _subject_named(kind: type[DomainEvent], s: Any, id_: str) -> str | None:
    """The earlier aggregate whose keys the event's record takes, if any."""
    if kind in _OF_CASE:
        return str(s.case_id)
    if kind in _LATER:
        return id_
    return None
