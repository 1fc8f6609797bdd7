"""The partnerships read model: each pair of agencies that asked to work together, and
the queries that read it (an agency's partners and pending requests, one partnership,
whether a pair has a live one, an agency's active partners for an appeal's reach)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from casenet.domain.aggregate import DomainEvent
from casenet.domain.partnership import (
    ACTIVE,
    DECLINED,
    ENDED,
    REQUESTED,
    PartnershipAccepted,
    PartnershipDeclined,
    PartnershipEnded,
    PartnershipRequested,
)
from casenet.infrastructure.projections.base import ReadModel, Row, values
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import Database

_COLUMNS = (
    "partnership_id, requester_agency_id, partner_agency_id, status, requested_at, "
    "changed_at, version, position"
)
_STATUS_OF_EVENT: dict[type[DomainEvent], str] = {
    PartnershipAccepted: ACTIVE,
    PartnershipDeclined: DECLINED,
    PartnershipEnded: ENDED,
}


class PartnershipRow(Row):
    """A row of ``rm_partnerships``; ``position``: the log position of its request."""

    partnership_id: str
    requester_agency_id: str
    partner_agency_id: str
    status: str
    requested_at: str
    changed_at: str
    version: int
    position: int


class PartnershipsModel(ReadModel):
    """Every partnership, its two agencies and its status."""

    name = "partnerships"
    tables = ("rm_partnerships",)
    follows = (PartnershipRequested, *_STATUS_OF_EVENT)
    stateless = tuple(_STATUS_OF_EVENT)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_partnerships (partnership_id TEXT PRIMARY KEY, "
            "requester_agency_id TEXT NOT NULL, partner_agency_id TEXT NOT NULL, status TEXT "
            "NOT NULL, requested_at TEXT NOT NULL, changed_at TEXT NOT NULL, version INTEGER "
            "NOT NULL, position BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_partnerships_requester "
            "ON rm_partnerships (requester_agency_id)",
            "CREATE INDEX IF NOT EXISTS rm_partnerships_partner "
            "ON rm_partnerships (partner_agency_id)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_partnerships": "partnership_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        created: dict[str, PartnershipRow] = {}
        changed: dict[str, tuple[str, str, int]] = {}  # earlier rows: the last change wins
        for fact in facts:
            if fact.event_type is PartnershipRequested:
                s = fact.state
                created[fact.aggregate_id] = PartnershipRow(
                    fact.aggregate_id,
                    s["requester_agency_id"],
                    s["partner_agency_id"],
                    REQUESTED,
                    fact.at,
                    fact.at,
                    fact.version,
                    fact.position,
                )
                continue
            status = _STATUS_OF_EVENT[fact.event_type]
            row = created.get(fact.aggregate_id)
            if row is not None:
                row.status, row.changed_at, row.version = status, fact.at, fact.version
            else:
                changed[fact.aggregate_id] = (status, fact.at, fact.version)
        db.write_many(
            cursor,
            "UPDATE rm_partnerships SET status = %s, changed_at = %s, version = %s "
            "WHERE partnership_id = %s",
            [(*change, key) for key, change in changed.items()],
        )
        db.insert_rows(cursor, "rm_partnerships", values(created.values()))


def agency_partnerships(
    db: Database, agency_id: UUID, *, after: int, limit: int
) -> list[PartnershipRow]:
    """Up to ``limit`` of the agency's partnerships that are requested or active, asked
    after log position ``after``, oldest first."""
    query = (
        f"SELECT {_COLUMNS} FROM rm_partnerships WHERE (requester_agency_id = %s OR "
        "partner_agency_id = %s) AND status IN (%s, %s) AND position > %s "
        "ORDER BY position LIMIT %s"
    )
    agency = str(agency_id)
    rows = db.read(query, (agency, agency, REQUESTED, ACTIVE, after, limit), tuples=True)
    return [PartnershipRow(*row) for row in rows]


def partnership(db: Database, partnership_id: UUID) -> PartnershipRow | None:
    query = f"SELECT {_COLUMNS} FROM rm_partnerships WHERE partnership_id = %s"
    rows = db.read(query, (str(partnership_id),), tuples=True)
    return PartnershipRow(*rows[0]) if rows else None


def pair_partnerships(db: Database, first: UUID, second: UUID) -> list[PartnershipRow]:
    """Every partnership of the two agencies, whoever asked, oldest first."""
    query = (
        f"SELECT {_COLUMNS} FROM rm_partnerships WHERE (requester_agency_id = %s AND "
        "partner_agency_id = %s) OR (requester_agency_id = %s AND partner_agency_id = %s) "
        "ORDER BY position"
    )
    a, b = str(first), str(second)
    return [PartnershipRow(*row) for row in db.read(query, (a, b, b, a), tuples=True)]


def active_partners(db: Database, agency_id: UUID) -> list[UUID]:
    """The agencies ``agency_id`` has an active partnership with, in the order they
    became partners' requests."""
    query = (
        "SELECT CASE WHEN requester_agency_id = %s THEN partner_agency_id ELSE "
        "requester_agency_id END FROM rm_partnerships WHERE (requester_agency_id = %s OR "
        "partner_agency_id = %s) AND status = %s ORDER BY position"
    )
    agency = str(agency_id)
    rows = db.read(query, (agency, agency, agency, ACTIVE), tuples=True)
    return [UUID(str(row[0])) for row in rows]
