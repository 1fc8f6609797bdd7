"""The consents read model: consents and emergency grants (rule 2b) per case and per
grantee, and the queries that read it (a case's consent and grant terms, the cases
shared with an agency, scope checks, the grants awaiting review)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from casenet.domain.consent import ConsentExpiryNoted, ConsentGranted, ConsentWithdrawn
from casenet.domain.emergency import (
    EmergencyGrantCreated,
    EmergencyGrantReviewed,
    EmergencyGrantRevoked,
    EmergencyReviewDueNoted,
)
from casenet.infrastructure.projections.base import ReadModel, Row, as_json, values
from casenet.infrastructure.projections.emergency_grants import (
    EMERGENCY_EVENTS,
    EMERGENCY_REVIEW_NOTICES,
    EMERGENCY_TABLES,
    EmergencyGrantRow,
    EmergencyTermsRow,
    apply_emergency_grants,
    emergency_grant_ids_of_case,
    emergency_grant_owned_by,
    emergency_terms,
    grants_awaiting_review,
    reviews_due_unannounced,
)
from casenet.infrastructure.projections.facts import StoredFact, normalise_time
from casenet.infrastructure.sql import Database


class ConsentRow(Row):
    """A row of ``rm_consents``."""

    consent_id: str
    case_id: str
    client_id: str
    owner_agency_id: str
    grantee_agency_id: str
    sections: str  # JSON
    purpose: str
    method: str
    valid_until: str | None
    granted_at: str
    withdrawn_at: str | None
    recorded_by_worker_id: str
    version: int
    expiry_noted_at: str | None = None


class ConsentsModel(ReadModel):
    """Consents and emergency grants per case and per grantee: shared cases and
    point-in-time access.

    Consents change only by withdrawal and emergency grants by revocation (a review
    changes no one's access), so their start, end and expiry answer "who could see
    what at instant T" exactly, from events alone. The notice of a consent's expiry
    (``expiry_noted_at``) changes nothing of that; it tells the deadline step
    (``application.deadlines``) which expired consents were announced.
    """

    name = "consents"
    #: 2: ``expiry_noted_at`` (issue 17).
    version = 2
    tables = ("rm_consents", *EMERGENCY_TABLES)
    follows = (
        ConsentGranted,
        ConsentWithdrawn,
        ConsentExpiryNoted,
        EmergencyGrantCreated,
        EmergencyGrantRevoked,
        EmergencyGrantReviewed,
        EmergencyReviewDueNoted,
    )

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_consents (consent_id TEXT PRIMARY KEY, case_id TEXT "
            "NOT NULL, client_id TEXT NOT NULL, owner_agency_id TEXT NOT NULL, grantee_agency_id "
            "TEXT NOT NULL, sections TEXT NOT NULL, purpose TEXT NOT NULL, method TEXT NOT NULL, "
            "valid_until TEXT, granted_at TEXT NOT NULL, withdrawn_at TEXT, "
            "recorded_by_worker_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "expiry_noted_at TEXT)",
            "CREATE INDEX IF NOT EXISTS rm_consents_case ON rm_consents (case_id, granted_at)",
            # Only the consents whose expiry may still be due: the deadline step's
            # query every second reads none of the (ever more) expired and noted ones.
            "CREATE INDEX IF NOT EXISTS rm_consents_expiring ON rm_consents (valid_until) "
            "WHERE valid_until IS NOT NULL AND withdrawn_at IS NULL AND expiry_noted_at IS NULL",
            "CREATE INDEX IF NOT EXISTS rm_consents_grantee ON rm_consents "
            "(grantee_agency_id, case_id)",
            # A table of its own: a store made before emergency grants gains it as is.
            "CREATE TABLE IF NOT EXISTS rm_emergency_grants (grant_id TEXT PRIMARY KEY, "
            "case_id TEXT NOT NULL, client_id TEXT NOT NULL, owner_agency_id TEXT NOT NULL, "
            "grantee_agency_id TEXT NOT NULL, sections TEXT NOT NULL, basis TEXT NOT NULL, "
            "created_at TEXT NOT NULL, expires_at TEXT NOT NULL, review_due_at TEXT NOT NULL, "
            "revoked_at TEXT, reviewed_at TEXT, finding TEXT, created_by_worker_id TEXT NOT "
            "NULL, version INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_emergency_grants_case ON rm_emergency_grants "
            "(case_id, created_at)",
            "CREATE INDEX IF NOT EXISTS rm_emergency_grants_grantee ON rm_emergency_grants "
            "(grantee_agency_id, case_id)",
            "CREATE INDEX IF NOT EXISTS rm_emergency_grants_owner ON rm_emergency_grants "
            "(owner_agency_id, created_at, grant_id)",
            *EMERGENCY_REVIEW_NOTICES,
        ]

    def primary_keys(self) -> dict[str, str]:
        return {
            "rm_consents": "consent_id",
            "rm_emergency_grants": "grant_id",
            "rm_emergency_review_notices": "grant_id",
        }

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        emergency = [f for f in facts if f.event_type in EMERGENCY_EVENTS]
        if emergency:
            apply_emergency_grants(db, cursor, emergency)
        consents: dict[str, ConsentRow] = {}  # granted in this batch
        # Of earlier batches: (at, version) of a withdrawal, and of an expiry's notice.
        withdrawn: dict[str, tuple[str, int]] = {}
        noted: dict[str, tuple[str, int]] = {}
        for fact in facts:
            if fact.event_type in EMERGENCY_EVENTS:
                continue
            kind = fact.event_type
            if kind is ConsentGranted:
                consents[fact.aggregate_id] = _granted(fact)
            elif (consent := consents.get(fact.aggregate_id)) is not None:
                consent.version = fact.version
                if kind is ConsentWithdrawn:
                    consent.withdrawn_at = fact.at
                else:
                    consent.expiry_noted_at = fact.at
            else:
                (withdrawn if kind is ConsentWithdrawn else noted)[fact.aggregate_id] = (
                    fact.at,
                    fact.version,
                )
        db.write_many(
            cursor,
            "UPDATE rm_consents SET withdrawn_at = %s, version = %s WHERE consent_id = %s",
            [(at, version, id_) for id_, (at, version) in withdrawn.items()],
        )
        db.write_many(
            cursor,
            "UPDATE rm_consents SET expiry_noted_at = %s, version = %s WHERE consent_id = %s",
            [(at, version, id_) for id_, (at, version) in noted.items()],
        )
        db.insert_rows(cursor, "rm_consents", values(consents.values()))


def _granted(fact: StoredFact) -> ConsentRow:
    s = fact.state
    valid_until = s["valid_until"]
    return ConsentRow(
        consent_id=fact.aggregate_id,
        case_id=s["case_id"],
        client_id=s["client_id"],
        owner_agency_id=s["owner_agency_id"],
        grantee_agency_id=s["grantee_agency_id"],
        sections=as_json(s["sections"]),
        purpose=s["purpose"],
        method=s["method"],
        valid_until=None if valid_until is None else normalise_time(valid_until),
        granted_at=fact.at,
        withdrawn_at=None,
        recorded_by_worker_id=s["recorded_by_worker_id"],
        version=fact.version,
    )


# --- the queries that read it --------------------------------------------------------


class ConsentTermsRow(Row):
    """What the visibility policy needs of one consent (some of ``rm_consents``)."""

    consent_id: str
    grantee_agency_id: str
    sections: str  # JSON
    granted_at: str
    withdrawn_at: str | None
    valid_until: str | None


class SharedCaseRow(Row):
    """A case shared with an agency, and its owner."""

    case_id: str
    owner_agency_id: str


_TERMS = (
    "SELECT consent_id, grantee_agency_id, sections, granted_at, withdrawn_at, valid_until "
    "FROM rm_consents WHERE case_id = %s"
)


def consent_terms(
    db: Database, case_id: UUID, grantee_agency_id: UUID | None = None
) -> list[ConsentTermsRow]:
    """The terms of every consent of the case (to ``grantee_agency_id`` only, if given),
    active or not."""
    if grantee_agency_id is None:
        rows = db.read(_TERMS, (str(case_id),), tuples=True)
    else:
        query = _TERMS + " AND grantee_agency_id = %s"
        rows = db.read(query, (str(case_id), str(grantee_agency_id)), tuples=True)
    return [ConsentTermsRow(*row) for row in rows]


def consent_ids_of_case(db: Database, case_id: UUID) -> list[UUID]:
    """The ids of the case's consents, in the order they were granted."""
    query = "SELECT consent_id FROM rm_consents WHERE case_id = %s ORDER BY granted_at, consent_id"
    return [UUID(row[0]) for row in db.read(query, (str(case_id),), tuples=True)]


def consent_owned_by(db: Database, consent_id: UUID, agency_id: UUID) -> bool:
    """Whether ``agency_id`` owns the consent's case."""
    query = "SELECT 1 FROM rm_consents WHERE consent_id = %s AND owner_agency_id = %s"
    return bool(db.read(query, (str(consent_id), str(agency_id))))


def covering_purpose(
    db: Database, consent_id: UUID, case_id: UUID, grantee_agency_id: UUID
) -> str | None:
    """The consent's purpose if it is one of the case's, granted to ``grantee_agency_id``
    (active or not); None for any other consent, and for an id that does not exist."""
    query = (
        "SELECT purpose FROM rm_consents WHERE consent_id = %s AND case_id = %s "
        "AND grantee_agency_id = %s"
    )
    rows = db.read(query, (str(consent_id), str(case_id), str(grantee_agency_id)), tuples=True)
    return str(rows[0][0]) if rows else None


def purposes_of(db: Database, consent_ids: Sequence[UUID]) -> list[str]:
    """The distinct purposes of the consents ``consent_ids``."""
    if not consent_ids:
        return []
    marks = ", ".join(["%s"] * len(consent_ids))
    query = f"SELECT DISTINCT purpose FROM rm_consents WHERE consent_id IN ({marks})"
    return [str(row[0]) for row in db.read(query, tuple(map(str, consent_ids)), tuples=True)]


def shared_with(
    db: Database, agency_id: UUID, at: datetime, *, after: str | None, limit: int
) -> list[SharedCaseRow]:
    """Up to ``limit`` cases (by id, after ``after``) with a consent or an emergency grant
    to ``agency_id`` neither withdrawn (revoked) nor expired at ``at``; the policy still
    has the last word."""
    now = normalise_time(at)
    query = (
        "SELECT case_id, owner_agency_id FROM rm_consents WHERE grantee_agency_id = %s "
        "AND withdrawn_at IS NULL AND (valid_until IS NULL OR valid_until > %s) UNION "
        "SELECT case_id, owner_agency_id FROM rm_emergency_grants WHERE grantee_agency_id "
        "= %s AND revoked_at IS NULL AND expires_at > %s"
    )
    params: tuple[Any, ...] = (str(agency_id), now, str(agency_id), now)
    if after is not None:
        query = f"SELECT case_id, owner_agency_id FROM ({query}) s WHERE case_id > %s"
        params += (after,)
    query += " ORDER BY case_id LIMIT %s"
    return [SharedCaseRow(*row) for row in db.read(query, (*params, limit), tuples=True)]


def expired_unannounced(db: Database, now: datetime, *, limit: int) -> list[UUID]:
    """Up to ``limit`` consents past ``valid_until`` at ``now``, never withdrawn, whose
    expiry no notice announced yet (oldest expiry first)."""
    query = (
        "SELECT consent_id FROM rm_consents WHERE valid_until IS NOT NULL AND valid_until "
        "<= %s AND withdrawn_at IS NULL AND expiry_noted_at IS NULL "
        "ORDER BY valid_until, consent_id LIMIT %s"
    )
    rows = db.read(query, (normalise_time(now), limit), tuples=True)
    return [UUID(str(row[0])) for row in rows]


__all__ = [
    "EmergencyGrantRow",
    "EmergencyTermsRow",
    "emergency_grant_ids_of_case",
    "emergency_grant_owned_by",
    "emergency_terms",
    "grants_awaiting_review",
    "reviews_due_unannounced",
]
