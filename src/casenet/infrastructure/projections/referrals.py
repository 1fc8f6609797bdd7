"""The referrals read model: each agency's referral inbox and outbox, with every
referral's status history; and the queries that read it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from casenet.domain.referral import (
    STATUS_OF_EVENT,
    ReferralCompleted,
    ReferralMessagePosted,
    ReferralOverdueNoted,
    ReferralRequested,
)
from casenet.infrastructure.projections.base import ReadModel, Row, values
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import Database


class ReferralRow(Row):
    """A row of ``rm_referrals``."""

    referral_id: str
    case_id: str
    client_id: str
    from_agency_id: str
    to_agency_id: str
    service_type: str
    urgency: str
    status: str
    consent_id: str | None
    outcome: str | None
    message_count: int
    version: int
    created_at: str
    updated_at: str


class ReferralChange(Row):
    """What a batch did to a referral of an earlier batch (None: unchanged)."""

    messages: int
    status: str | None
    outcome: str | None
    version: int
    updated_at: str


class StatusRow(Row):
    """A row of ``rm_referral_history``: one change of a referral's status."""

    referral_id: str
    version: int
    status: str
    at: str
    agency_id: str
    worker_id: str
    outcome: str | None


class ReferralsModel(ReadModel):
    """Each agency's referral inbox and outbox, with every referral's status history."""

    name = "referrals"
    tables = ("rm_referrals", "rm_referral_history")
    #: The overdue notice changes only a row's version and time (so that a list's
    #: ``version`` stays the referral's, for If-Match); ``response_due_at`` and
    #: ``overdue`` are computed when read, from ``created_at`` and ``urgency``.
    follows = (ReferralRequested, ReferralMessagePosted, ReferralOverdueNoted, *STATUS_OF_EVENT)
    stateless = (ReferralOverdueNoted,)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_referrals (referral_id TEXT PRIMARY KEY, case_id TEXT "
            "NOT NULL, client_id TEXT NOT NULL, from_agency_id TEXT NOT NULL, to_agency_id TEXT "
            "NOT NULL, service_type TEXT NOT NULL, urgency TEXT NOT NULL, status TEXT NOT NULL, "
            "consent_id TEXT, outcome TEXT, message_count INTEGER NOT NULL, version INTEGER "
            "NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_referrals_to ON rm_referrals "
            "(to_agency_id, created_at, referral_id)",
            "CREATE INDEX IF NOT EXISTS rm_referrals_from ON rm_referrals "
            "(from_agency_id, created_at, referral_id)",
            "CREATE INDEX IF NOT EXISTS rm_referrals_case ON rm_referrals (case_id, created_at)",
            "CREATE TABLE IF NOT EXISTS rm_referral_history (referral_id TEXT NOT NULL, "
            "version INTEGER NOT NULL, status TEXT NOT NULL, at TEXT NOT NULL, agency_id TEXT "
            "NOT NULL, worker_id TEXT NOT NULL, outcome TEXT, PRIMARY KEY (referral_id, version))",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_referrals": "referral_id", "rm_referral_history": "referral_id, version"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        referrals: dict[str, ReferralRow] = {}  # requested in this batch
        changed: dict[str, ReferralChange] = {}  # of earlier batches
        history: list[StatusRow] = []  # only ever added to
        for fact in facts:
            s, kind = fact.state, fact.event_type
            if kind is ReferralRequested:
                referrals[fact.aggregate_id] = _requested(fact)
                history.append(_status(fact, "requested", s["from_agency_id"], None))
                continue
            messages = 1 if kind is ReferralMessagePosted else 0
            status = STATUS_OF_EVENT.get(kind)  # type: ignore[arg-type]
            outcome = s.get("outcome") if kind is ReferralCompleted else None
            if (referral := referrals.get(fact.aggregate_id)) is not None:
                referral.message_count += messages
                if status is not None:
                    referral.status = status
                if outcome is not None:
                    referral.outcome = outcome
                referral.version, referral.updated_at = fact.version, fact.at
            elif (change := changed.get(fact.aggregate_id)) is not None:
                change.messages += messages
                if status is not None:
                    change.status = status
                if outcome is not None:
                    change.outcome = outcome
                change.version, change.updated_at = fact.version, fact.at
            else:
                changed[fact.aggregate_id] = ReferralChange(
                    messages, status, outcome, fact.version, fact.at
                )
            if status is not None:
                history.append(_status(fact, status, s["agency_id"], outcome))
        db.write_many(
            cursor,
            "UPDATE rm_referrals SET message_count = message_count + %s, "
            "status = COALESCE(%s, status), outcome = COALESCE(%s, outcome), version = %s, "
            "updated_at = %s WHERE referral_id = %s",
            [
                (c.messages, c.status, c.outcome, c.version, c.updated_at, id_)
                for id_, c in changed.items()
            ],
        )
        db.insert_rows(cursor, "rm_referrals", values(referrals.values()))
        db.insert_rows(cursor, "rm_referral_history", values(history))


def _requested(fact: StoredFact) -> ReferralRow:
    """The row of a referral as its request makes it."""
    s = fact.state
    return ReferralRow(
        referral_id=fact.aggregate_id,
        case_id=s["case_id"],
        client_id=s["client_id"],
        from_agency_id=s["from_agency_id"],
        to_agency_id=s["to_agency_id"],
        service_type=s["service_type"],
        urgency=s["urgency"],
        status="requested",
        consent_id=s["consent_id"],
        outcome=None,
        message_count=0,
        version=fact.version,
        created_at=fact.at,
        updated_at=fact.at,
    )


def _status(fact: StoredFact, status: str, agency_id: str, outcome: str | None) -> StatusRow:
    """The history row of a change of status."""
    return StatusRow(
        referral_id=fact.aggregate_id,
        version=fact.version,
        status=status,
        at=fact.at,
        agency_id=agency_id,
        worker_id=fact.state["worker_id"],
        outcome=outcome,
    )


# --- the queries that read it --------------------------------------------------------


def is_party(db: Database, referral_id: UUID, agency_id: UUID) -> bool:
    """Whether ``agency_id`` is one of the referral's two parties."""
    query = (
        "SELECT 1 FROM rm_referrals WHERE referral_id = %s "
        "AND (from_agency_id = %s OR to_agency_id = %s)"
    )
    return bool(db.read(query, (str(referral_id), str(agency_id), str(agency_id))))


def agency_referrals(
    db: Database,
    agency_id: UUID,
    *,
    incoming: bool,
    status: str | None,
    after: tuple[str, ...] | None,
    limit: int,
) -> list[ReferralRow]:
    """Up to ``limit`` referrals to (``incoming``) or from the agency, oldest first, after
    the cursor's ``(created_at, referral_id)``; with ``status``, those in it only."""
    column = "to_agency_id" if incoming else "from_agency_id"
    query = f"SELECT * FROM rm_referrals WHERE {column} = %s"
    params: tuple[Any, ...] = (str(agency_id),)
    if status is not None:
        query += " AND status = %s"
        params += (status,)
    if after is not None:
        query += " AND (created_at > %s OR (created_at = %s AND referral_id > %s))"
        params += (after[0], after[0], after[1])
    query += " ORDER BY created_at, referral_id LIMIT %s"
    return [ReferralRow(*row) for row in db.read(query, (*params, limit), tuples=True)]


def referral_ids_of_case(db: Database, case_id: UUID) -> list[UUID]:
    """The ids of the case's referrals, oldest first."""
    query = (
        "SELECT referral_id FROM rm_referrals WHERE case_id = %s ORDER BY created_at, referral_id"
    )
    return [UUID(row[0]) for row in db.read(query, (str(case_id),), tuples=True)]
