"""The cases read model: cases by owning agency, with status, needs and note counts,
and their clients (for names: the ciphertext the log holds, gone with an erasure);
and the queries that read it (a case scoped to an agency, an agency's cases)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec

from casenet.domain.aggregate import DomainEvent
from casenet.domain.case import CaseClosed, CaseNoteAdded, CaseOpened, CaseReopened
from casenet.domain.client import ClientErased, ClientRegistered
from casenet.infrastructure.projections.base import ReadModel, Row, as_json, values
from casenet.infrastructure.projections.consents import ConsentTermsRow, EmergencyTermsRow
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import Database


class ClientRow(Row):
    """A row of ``rm_clients``."""

    client_id: str
    registered_by_agency_id: str
    name_ciphertext: str | None  # None once erased
    erased: int
    created_at: str


class CaseRow(Row):
    """A row of ``rm_cases``."""

    case_id: str
    owner_agency_id: str
    client_id: str
    status: str
    needs: str  # JSON
    note_count: int
    version: int
    created_at: str
    updated_at: str


class CaseChange(Row):
    """What a batch did to a case of an earlier batch (status None: unchanged)."""

    notes: int
    version: int
    updated_at: str
    status: str | None


#: The status a case's event leaves it in ("" for a note: unchanged).
_CASE_STATUS: dict[type[DomainEvent], str] = {
    CaseNoteAdded: "",
    CaseClosed: "closed",
    CaseReopened: "open",
}


class CasesModel(ReadModel):
    """Cases by owning agency, with status, needs and note counts; clients for names."""

    name = "cases"
    tables = ("rm_clients", "rm_cases")
    follows = (
        ClientRegistered,
        ClientErased,
        CaseOpened,
        CaseNoteAdded,
        CaseClosed,
        CaseReopened,
    )
    #: A case counts its notes and takes its status from the event's type alone.
    stateless = (CaseNoteAdded, CaseClosed, CaseReopened)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_clients (client_id TEXT PRIMARY KEY, "
            "registered_by_agency_id TEXT NOT NULL, name_ciphertext TEXT, "
            "erased INTEGER NOT NULL, created_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS rm_cases (case_id TEXT PRIMARY KEY, owner_agency_id TEXT "
            "NOT NULL, client_id TEXT NOT NULL, status TEXT NOT NULL, needs TEXT NOT NULL, "
            "note_count INTEGER NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL, "
            "updated_at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_cases_owner ON rm_cases "
            "(owner_agency_id, created_at, case_id)",
            "CREATE INDEX IF NOT EXISTS rm_cases_client ON rm_cases (client_id)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_clients": "client_id", "rm_cases": "case_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        clients: dict[str, ClientRow] = {}  # registered in this batch
        erased: dict[str, None] = {}  # of earlier batches
        cases: dict[str, CaseRow] = {}  # opened in this batch
        changed: dict[str, CaseChange] = {}  # of earlier batches
        for fact in facts:
            kind = fact.event_type
            status = _CASE_STATUS.get(kind)
            if status is not None:  # a note (most of a log), a closing or a reopening
                notes = 1 if kind is CaseNoteAdded else 0
                if (case := cases.get(fact.aggregate_id)) is not None:
                    case.note_count += notes
                    case.version, case.updated_at = fact.version, fact.at
                    if status:
                        case.status = status
                elif (change := changed.get(fact.aggregate_id)) is not None:
                    change.notes += notes
                    change.version, change.updated_at = fact.version, fact.at
                    if status:
                        change.status = status
                else:
                    changed[fact.aggregate_id] = CaseChange(
                        notes, fact.version, fact.at, status or None
                    )
                continue
            s = fact.state
            if kind is CaseOpened:
                cases[fact.aggregate_id] = _opened(fact)
            elif kind is ClientRegistered:
                clients[fact.aggregate_id] = ClientRow(
                    fact.aggregate_id, s["registered_by_agency_id"], s["name"], 0, fact.at
                )
            elif (client := clients.get(fact.aggregate_id)) is not None:  # ClientErased
                client.name_ciphertext, client.erased = None, 1
            else:
                erased[fact.aggregate_id] = None
        db.write_many(
            cursor,
            "UPDATE rm_clients SET erased = 1, name_ciphertext = NULL WHERE client_id = %s",
            [(client_id,) for client_id in erased],
        )
        db.write_many(
            cursor,
            "UPDATE rm_cases SET note_count = note_count + %s, version = %s, updated_at = %s, "
            "status = COALESCE(%s, status) WHERE case_id = %s",
            [(c.notes, c.version, c.updated_at, c.status, id_) for id_, c in changed.items()],
        )
        db.insert_rows(cursor, "rm_clients", values(clients.values()))
        db.insert_rows(cursor, "rm_cases", values(cases.values()))


def _opened(fact: StoredFact) -> CaseRow:
    """The row of a case as its opening makes it."""
    s = fact.state
    return CaseRow(
        case_id=fact.aggregate_id,
        owner_agency_id=s["owner_agency_id"],
        client_id=s["client_id"],
        status="open",
        needs=as_json(s["needs"]),
        note_count=0,
        version=fact.version,
        created_at=fact.at,
        updated_at=fact.at,
    )


# --- the queries that read it --------------------------------------------------------


class CaseScope(msgspec.Struct, frozen=True, gc=False):
    """A case's parties, the owner's restriction, and the consents and emergency grants
    an agency holds on it (active or not): all a policy needs to decide what that agency
    may see."""

    owner_agency_id: str
    client_id: str
    restricted: bool
    consents: list[ConsentTermsRow]
    emergencies: list[EmergencyTermsRow] = msgspec.field(default_factory=list)


class CaseListRow(Row):
    """A case as the owner's list shows it, with its client's name as the log holds it."""

    case_id: str
    version: int
    status: str
    client_id: str
    needs: str  # JSON
    note_count: int
    created_at: str
    updated_at: str
    name_ciphertext: str | None
    erased: int


#: A case's parties and the agency's consents and emergency grants on it (each pair of
#: them a row: there are a handful at most), or no row if the agency is neither its
#: owner nor a grantee of any of its consents or emergency grants (active or not).
_SCOPED_CASE = (
    "SELECT c.owner_agency_id, c.client_id, a.restricted, k.consent_id, "
    "k.grantee_agency_id, k.sections, k.granted_at, k.withdrawn_at, k.valid_until, "
    "e.grant_id, e.grantee_agency_id, e.sections, e.basis, e.created_at, e.revoked_at, "
    "e.expires_at "
    "FROM rm_cases c LEFT JOIN rm_agencies a ON a.agency_id = c.owner_agency_id "
    "LEFT JOIN rm_consents k ON k.case_id = c.case_id AND k.grantee_agency_id = %s "
    "LEFT JOIN rm_emergency_grants e ON e.case_id = c.case_id AND e.grantee_agency_id = %s "
    "WHERE c.case_id = %s AND (c.owner_agency_id = %s OR k.consent_id IS NOT NULL "
    "OR e.grant_id IS NOT NULL)"
)


def scoped_case(db: Database, case_id: UUID, agency_id: UUID) -> CaseScope | None:
    """The case as far as ``agency_id`` is concerned, or None if it owns it not and holds
    no consent or emergency grant on it: one statement scoped to the agency (from the
    cases, consents and directory models), so a case it cannot see answers as a random
    id does."""
    agency = str(agency_id)
    rows = db.read(_SCOPED_CASE, (agency, agency, str(case_id), agency), tuples=True)
    if not rows:
        return None
    owner, client, restricted = rows[0][:3]
    consents = {row[3]: ConsentTermsRow(*row[3:9]) for row in rows if row[3] is not None}
    emergencies = {row[9]: EmergencyTermsRow(*row[9:]) for row in rows if row[9] is not None}
    return CaseScope(
        str(owner),
        str(client),
        bool(restricted),
        list(consents.values()),
        list(emergencies.values()),
    )


def case_owned_by(db: Database, case_id: UUID, agency_id: UUID) -> bool:
    """Whether ``agency_id`` owns the case."""
    query = "SELECT 1 FROM rm_cases WHERE case_id = %s AND owner_agency_id = %s"
    return bool(db.read(query, (str(case_id), str(agency_id))))


def client_registered_by(db: Database, client_id: UUID, agency_id: UUID) -> bool:
    """Whether ``agency_id`` registered the client."""
    query = "SELECT 1 FROM rm_clients WHERE client_id = %s AND registered_by_agency_id = %s"
    return bool(db.read(query, (str(client_id), str(agency_id))))


def agency_cases(
    db: Database,
    agency_id: UUID,
    *,
    status: str | None,
    after: tuple[str, ...] | None,
    limit: int,
) -> list[CaseListRow]:
    """Up to ``limit`` of the agency's own cases, oldest first, after the cursor's
    ``(created_at, case_id)``; with ``status``, those in it only."""
    query = (
        "SELECT c.case_id, c.version, c.status, c.client_id, c.needs, c.note_count, "
        "c.created_at, c.updated_at, k.name_ciphertext, k.erased FROM rm_cases c "
        "JOIN rm_clients k ON k.client_id = c.client_id WHERE c.owner_agency_id = %s"
    )
    params: tuple[Any, ...] = (str(agency_id),)
    if status is not None:
        query += " AND c.status = %s"
        params += (status,)
    if after is not None:
        query += " AND (c.created_at > %s OR (c.created_at = %s AND c.case_id > %s))"
        params += (after[0], after[0], after[1])
    query += " ORDER BY c.created_at, c.case_id LIMIT %s"
    return [CaseListRow(*row) for row in db.read(query, (*params, limit), tuples=True)]


def case_ids_of_client(db: Database, client_id: UUID) -> list[UUID]:
    """The ids of the client's cases, oldest first."""
    query = "SELECT case_id FROM rm_cases WHERE client_id = %s ORDER BY created_at, case_id"
    return [UUID(row[0]) for row in db.read(query, (str(client_id),), tuples=True)]
