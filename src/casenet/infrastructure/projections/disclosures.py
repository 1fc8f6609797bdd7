"""The disclosures read model: the accounting of disclosures, every read of a case's
sections by another agency (a disclosure is recorded once and never changes), with the
emergency grants and legal bases of those made under emergency grants; and the query
that reads it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from casenet.domain.disclosure import DisclosureRecorded
from casenet.infrastructure.projections.base import ReadModel, Row, as_json, values
from casenet.infrastructure.projections.facts import StoredFact, normalise_time
from casenet.infrastructure.sql import Database


class DisclosureRow(Row):
    """A row of ``rm_disclosures``."""

    disclosure_id: str
    case_id: str
    owner_agency_id: str
    recipient_agency_id: str
    worker_id: str
    sections: str  # JSON
    consent_ids: str  # JSON
    purposes: str  # JSON
    at: str


class EmergencyDisclosureRow(Row):
    """A row of ``rm_emergency_disclosures``: a disclosure under emergency grants."""

    disclosure_id: str
    emergency_grant_ids: str  # JSON
    legal_bases: str  # JSON


class DisclosureListRow(Row):
    """A disclosure as the accounting lists it (empty JSON lists: no emergency grant)."""

    disclosure_id: str
    case_id: str
    owner_agency_id: str
    recipient_agency_id: str
    worker_id: str
    sections: str  # JSON
    consent_ids: str  # JSON
    purposes: str  # JSON
    at: str
    emergency_grant_ids: str  # JSON
    legal_bases: str  # JSON


class DisclosuresModel(ReadModel):
    """The accounting of disclosures: every read of a case's sections by another agency."""

    name = "disclosures"
    tables = ("rm_disclosures", "rm_emergency_disclosures")
    follows = (DisclosureRecorded,)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_disclosures (disclosure_id TEXT PRIMARY KEY, "
            "case_id TEXT NOT NULL, owner_agency_id TEXT NOT NULL, recipient_agency_id TEXT "
            "NOT NULL, worker_id TEXT NOT NULL, sections TEXT NOT NULL, consent_ids TEXT NOT "
            "NULL, purposes TEXT NOT NULL, at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_disclosures_owner ON rm_disclosures "
            "(owner_agency_id, at, disclosure_id)",
            "CREATE INDEX IF NOT EXISTS rm_disclosures_case ON rm_disclosures (case_id, at)",
            # A table of its own: a store made before emergency grants gains it as is.
            "CREATE TABLE IF NOT EXISTS rm_emergency_disclosures (disclosure_id TEXT PRIMARY "
            "KEY, emergency_grant_ids TEXT NOT NULL, legal_bases TEXT NOT NULL)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_disclosures": "disclosure_id", "rm_emergency_disclosures": "disclosure_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        rows = (
            DisclosureRow(
                disclosure_id=fact.aggregate_id,
                case_id=fact.state["case_id"],
                owner_agency_id=fact.state["owner_agency_id"],
                recipient_agency_id=fact.state["recipient_agency_id"],
                worker_id=fact.state["worker_id"],
                sections=as_json(fact.state["sections"]),
                consent_ids=as_json(fact.state["consent_ids"]),
                purposes=as_json(fact.state["purposes"]),
                at=fact.at,
            )
            for fact in facts
        )
        db.insert_rows(cursor, "rm_disclosures", values(rows))
        emergency = (
            EmergencyDisclosureRow(
                disclosure_id=fact.aggregate_id,
                emergency_grant_ids=as_json(fact.state["emergency_grant_ids"]),
                legal_bases=as_json(fact.state["legal_bases"]),
            )
            for fact in facts
            if fact.state.get("emergency_grant_ids")
        )
        db.insert_rows(cursor, "rm_emergency_disclosures", values(emergency))


# --- the queries that read it --------------------------------------------------------


def agency_disclosures(
    db: Database,
    owner_agency_id: UUID,
    *,
    case_id: UUID | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[str, ...] | None,
    limit: int,
) -> list[DisclosureListRow]:
    """Up to ``limit`` disclosures of the agency's cases (of ``case_id`` only, if given),
    in ``[since, until)``, oldest first, after the cursor's ``(at, disclosure_id)``."""
    query = (
        "SELECT d.disclosure_id, d.case_id, d.owner_agency_id, d.recipient_agency_id, "
        "d.worker_id, d.sections, d.consent_ids, d.purposes, d.at, "
        "COALESCE(e.emergency_grant_ids, '[]'), COALESCE(e.legal_bases, '[]') "
        "FROM rm_disclosures d LEFT JOIN rm_emergency_disclosures e "
        "ON e.disclosure_id = d.disclosure_id WHERE d.owner_agency_id = %s"
    )
    params: tuple[Any, ...] = (str(owner_agency_id),)
    if case_id is not None:
        query += " AND d.case_id = %s"
        params += (str(case_id),)
    if since is not None:
        query += " AND d.at >= %s"
        params += (normalise_time(since),)
    if until is not None:
        query += " AND d.at < %s"
        params += (normalise_time(until),)
    if after is not None:
        query += " AND (d.at > %s OR (d.at = %s AND d.disclosure_id > %s))"
        params += (after[0], after[0], after[1])
    query += " ORDER BY d.at, d.disclosure_id LIMIT %s"
    return [DisclosureListRow(*row) for row in db.read(query, (*params, limit), tuples=True)]
