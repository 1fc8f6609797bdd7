"""The emergency grants' part of the consents read model (``rm_emergency_grants``) and
the queries that read it. ``ConsentsModel`` owns the table and applies these events
beside consents, in the same batch (so access at an instant sees both at once)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from casenet.domain.emergency import (
    EmergencyGrantCreated,
    EmergencyGrantReviewed,
    EmergencyGrantRevoked,
    EmergencyReviewDueNoted,
)
from casenet.infrastructure.projections.base import Row, as_json, values
from casenet.infrastructure.projections.facts import StoredFact, normalise_time
from casenet.infrastructure.sql import Database


class EmergencyGrantRow(Row):
    """A row of ``rm_emergency_grants``."""

    grant_id: str
    case_id: str
    client_id: str
    owner_agency_id: str
    grantee_agency_id: str
    sections: str  # JSON
    basis: str
    created_at: str
    expires_at: str
    review_due_at: str
    revoked_at: str | None
    reviewed_at: str | None
    finding: str | None
    created_by_worker_id: str
    version: int


class GrantChange(Row):
    """What a batch did to an emergency grant of an earlier batch (None: unchanged)."""

    version: int
    revoked_at: str | None
    reviewed_at: str | None
    finding: str | None


EMERGENCY_EVENTS = frozenset(
    {EmergencyGrantCreated, EmergencyGrantRevoked, EmergencyGrantReviewed, EmergencyReviewDueNoted}
)

#: The tables of emergency grants, which ``ConsentsModel`` creates. The notices of
#: overdue reviews have a table of their own: a store made before them gains it as is.
EMERGENCY_TABLES = ("rm_emergency_grants", "rm_emergency_review_notices")
EMERGENCY_REVIEW_NOTICES = [
    "CREATE TABLE IF NOT EXISTS rm_emergency_review_notices (grant_id TEXT PRIMARY KEY, "
    "noted_at TEXT NOT NULL)",
    # Only the grants whose review may still fall due: the deadline step's query every
    # second reads none of the (ever more) reviewed ones.
    "CREATE INDEX IF NOT EXISTS rm_emergency_grants_unreviewed ON rm_emergency_grants "
    "(review_due_at) WHERE reviewed_at IS NULL",
]


class ReviewNoticeRow(Row):
    """A row of ``rm_emergency_review_notices``: when a grant's overdue review was told."""

    grant_id: str
    noted_at: str


def apply_emergency_grants(db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
    """Emergency grants' events, by the batching rule (``base.ReadModel``)."""
    grants: dict[str, EmergencyGrantRow] = {}  # created in this batch
    changed: dict[str, GrantChange] = {}  # of earlier batches
    notices: list[ReviewNoticeRow] = []
    for fact in facts:
        s = fact.state
        if fact.event_type is EmergencyGrantCreated:
            grants[fact.aggregate_id] = EmergencyGrantRow(
                grant_id=fact.aggregate_id,
                case_id=s["case_id"],
                client_id=s["client_id"],
                owner_agency_id=s["owner_agency_id"],
                grantee_agency_id=s["grantee_agency_id"],
                sections=as_json(s["sections"]),
                basis=s["basis"],
                created_at=fact.at,
                expires_at=normalise_time(s["expires_at"]),
                review_due_at=normalise_time(s["review_due_at"]),
                revoked_at=None,
                reviewed_at=None,
                finding=None,
                created_by_worker_id=s["created_by_worker_id"],
                version=fact.version,
            )
            continue
        row: EmergencyGrantRow | GrantChange | None = grants.get(fact.aggregate_id)
        if row is None:
            row = changed.setdefault(fact.aggregate_id, GrantChange(fact.version, None, None, None))
        row.version = fact.version
        if fact.event_type is EmergencyGrantRevoked:
            row.revoked_at = fact.at
        elif fact.event_type is EmergencyReviewDueNoted:
            notices.append(ReviewNoticeRow(fact.aggregate_id, fact.at))
        else:
            row.reviewed_at, row.finding = fact.at, s["finding"]
    db.write_many(
        cursor,
        "UPDATE rm_emergency_grants SET version = %s, revoked_at = COALESCE(%s, revoked_at), "
        "reviewed_at = COALESCE(%s, reviewed_at), finding = COALESCE(%s, finding) "
        "WHERE grant_id = %s",
        [(c.version, c.revoked_at, c.reviewed_at, c.finding, id_) for id_, c in changed.items()],
    )
    db.insert_rows(cursor, "rm_emergency_grants", values(grants.values()))
    db.insert_rows(cursor, "rm_emergency_review_notices", values(notices))


class EmergencyTermsRow(Row):
    """What the visibility policy needs of one emergency grant (some of
    ``rm_emergency_grants``)."""

    grant_id: str
    grantee_agency_id: str
    sections: str  # JSON
    basis: str
    created_at: str
    revoked_at: str | None
    expires_at: str


_EMERGENCY_TERMS = (
    "SELECT grant_id, grantee_agency_id, sections, basis, created_at, revoked_at, expires_at "
    "FROM rm_emergency_grants WHERE case_id = %s"
)


def emergency_terms(
    db: Database, case_id: UUID, grantee_agency_id: UUID | None = None
) -> list[EmergencyTermsRow]:
    """The terms of every emergency grant of the case (to ``grantee_agency_id`` only, if
    given), active or not."""
    if grantee_agency_id is None:
        rows = db.read(_EMERGENCY_TERMS, (str(case_id),), tuples=True)
    else:
        query = _EMERGENCY_TERMS + " AND grantee_agency_id = %s"
        rows = db.read(query, (str(case_id), str(grantee_agency_id)), tuples=True)
    return [EmergencyTermsRow(*row) for row in rows]


def emergency_grant_ids_of_case(db: Database, case_id: UUID) -> list[UUID]:
    """The ids of the case's emergency grants, in the order they were created."""
    query = (
        "SELECT grant_id FROM rm_emergency_grants WHERE case_id = %s ORDER BY created_at, grant_id"
    )
    return [UUID(row[0]) for row in db.read(query, (str(case_id),), tuples=True)]


def emergency_grant_owned_by(db: Database, grant_id: UUID, agency_id: UUID) -> bool:
    """Whether ``agency_id`` owns the emergency grant's case."""
    query = "SELECT 1 FROM rm_emergency_grants WHERE grant_id = %s AND owner_agency_id = %s"
    return bool(db.read(query, (str(grant_id), str(agency_id))))


def grants_awaiting_review(
    db: Database,
    owner_agency_id: UUID,
    *,
    due_by: datetime | None,
    after: tuple[str, ...] | None,
    limit: int,
) -> list[tuple[str, str]]:
    """Up to ``limit`` ``(created_at, grant_id)`` of the agency's emergency grants not yet
    reviewed (whose review was due by ``due_by``, if given), oldest first, after the
    cursor's ``(created_at, grant_id)``."""
    query = (
        "SELECT created_at, grant_id FROM rm_emergency_grants WHERE owner_agency_id = %s "
        "AND reviewed_at IS NULL"
    )
    params: tuple[Any, ...] = (str(owner_agency_id),)
    if due_by is not None:
        query += " AND review_due_at <= %s"
        params += (normalise_time(due_by),)
    if after is not None:
        query += " AND (created_at > %s OR (created_at = %s AND grant_id > %s))"
        params += (after[0], after[0], after[1])
    query += " ORDER BY created_at, grant_id LIMIT %s"
    return [(str(a), str(b)) for a, b in db.read(query, (*params, limit), tuples=True)]


def reviews_due_unannounced(db: Database, now: datetime, *, limit: int) -> list[UUID]:
    """Up to ``limit`` emergency grants whose review was due by ``now``, not made, and
    not announced yet (the earliest due first)."""
    query = (
        "SELECT grant_id FROM rm_emergency_grants AS g WHERE reviewed_at IS NULL AND "
        "review_due_at <= %s AND NOT EXISTS (SELECT 1 FROM rm_emergency_review_notices AS n "
        "WHERE n.grant_id = g.grant_id) ORDER BY review_due_at, grant_id LIMIT %s"
    )
    rows = db.read(query, (normalise_time(now), limit), tuples=True)
    return [UUID(str(row[0])) for row in rows]
