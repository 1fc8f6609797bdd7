"""The disclosures read model: the accounting of disclosures, every read of a case's
sections by another agency (a disclosure is recorded once and never changes); and the
query that reads it."""

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


class DisclosuresModel(ReadModel):
    """The accounting of disclosures: every read of a case's sections by another agency."""

    name = "disclosures"
    tables = ("rm_disclosures",)
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
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_disclosures": "disclosure_id"}

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
) -> list[DisclosureRow]:
    """Up to ``limit`` disclosures of the agency's cases (of ``case_id`` only, if given),
    in ``[since, until)``, oldest first, after the cursor's ``(at, disclosure_id)``."""
    query = "SELECT * FROM rm_disclosures WHERE owner_agency_id = %s"
    params: tuple[Any, ...] = (str(owner_agency_id),)
    if case_id is not None:
        query += " AND case_id = %s"
        params += (str(case_id),)
    if since is not None:
        query += " AND at >= %s"
        params += (normalise_time(since),)
    if until is not None:
        query += " AND at < %s"
        params += (normalise_time(until),)
    if after is not None:
        query += " AND (at > %s OR (at = %s AND disclosure_id > %s))"
        params += (after[0], after[0], after[1])
    query += " ORDER BY at, disclosure_id LIMIT %s"
    return [DisclosureRow(*row) for row in db.read(query, (*params, limit), tuples=True)]
