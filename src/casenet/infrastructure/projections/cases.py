"""The cases read model: cases by owning agency, with status, needs and note counts,
and their clients (for names: the ciphertext the log holds, gone with an erasure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from casenet.domain.aggregate import DomainEvent
from casenet.domain.case import CaseClosed, CaseNoteAdded, CaseOpened, CaseReopened
from casenet.domain.client import ClientErased, ClientRegistered
from casenet.infrastructure.projections.base import ReadModel, Row, as_json, values
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
                cases[fact.aggregate_id] = CaseRow(
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
            elif kind is ClientRegistered:
                clients[fact.aggregate_id] = ClientRow(
                    client_id=fact.aggregate_id,
                    registered_by_agency_id=s["registered_by_agency_id"],
                    name_ciphertext=s["name"],
                    erased=0,
                    created_at=fact.at,
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
