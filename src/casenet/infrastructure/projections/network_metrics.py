"""The network figures read model: one row per referral with the times of its answer
and outcome (no client, no case, no worker: nothing but agency, service and times);
and the queries that read it.

``GET /v1/network/metrics`` aggregates its rows at query time, within a period
(``application.network_metrics``); the deadline step asks it which referrals went
unanswered past their due time and were not announced yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from casenet.domain.referral import (
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralOverdueNoted,
    ReferralRejected,
    ReferralRequested,
    response_due,
)
from casenet.infrastructure.projections.base import ReadModel, Row, values
from casenet.infrastructure.projections.facts import StoredFact, normalise_time, parse_time
from casenet.infrastructure.sql import Database


class ReferralTimesRow(Row):
    """A row of ``rm_referral_times``: when a referral was requested, due, answered
    (accepted, rejected or cancelled: it left ``requested``), accepted, rejected,
    completed, and with what outcome; when its overdue notice was recorded."""

    referral_id: str
    to_agency_id: str
    service_type: str
    requested_at: str
    response_due_at: str
    answered_at: str | None = None
    accepted_at: str | None = None
    rejected_at: str | None = None
    completed_at: str | None = None
    outcome: str | None = None
    overdue_noted_at: str | None = None


#: The time column each event sets (once: each can happen at most once per referral).
_COLUMN_OF_EVENT: dict[type, str] = {
    ReferralAccepted: "accepted_at",
    ReferralRejected: "rejected_at",
    ReferralCompleted: "completed_at",
    ReferralOverdueNoted: "overdue_noted_at",
}
#: The events that take a referral out of ``requested``.
_ANSWERS = (ReferralAccepted, ReferralRejected, ReferralCancelled)
_SET_ONCE = ("answered_at", "accepted_at", "rejected_at", "completed_at", "outcome")


class NetworkMetricsModel(ReadModel):
    """Per referral: its receiving agency, service type, and the times of its answer
    and outcome; what the network's figures and the overdue notices are computed from."""

    name = "network_metrics"
    tables = ("rm_referral_times",)
    follows = (ReferralRequested, ReferralOverdueNoted, *_ANSWERS, ReferralCompleted)
    stateless = (ReferralAccepted, ReferralRejected, ReferralCancelled, ReferralOverdueNoted)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_referral_times (referral_id TEXT PRIMARY KEY, "
            "to_agency_id TEXT NOT NULL, service_type TEXT NOT NULL, requested_at TEXT NOT "
            "NULL, response_due_at TEXT NOT NULL, answered_at TEXT, accepted_at TEXT, "
            "rejected_at TEXT, completed_at TEXT, outcome TEXT, overdue_noted_at TEXT)",
            "CREATE INDEX IF NOT EXISTS rm_referral_times_requested ON rm_referral_times "
            "(requested_at)",
            # Only the referrals whose notice may still be due: the deadline step's query
            # every second reads none of the (ever more) answered or announced ones.
            "CREATE INDEX IF NOT EXISTS rm_referral_times_unanswered ON rm_referral_times "
            "(response_due_at) WHERE answered_at IS NULL AND overdue_noted_at IS NULL",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_referral_times": "referral_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        created: dict[str, ReferralTimesRow] = {}  # requested in this batch
        changed: dict[str, dict[str, str]] = {}  # columns set on rows of earlier batches
        for fact in facts:
            kind = fact.event_type
            if kind is ReferralRequested:
                created[fact.aggregate_id] = _requested(fact)
                continue
            change: dict[str, str] = {}
            if kind in _ANSWERS:
                change["answered_at"] = fact.at
            if (column := _COLUMN_OF_EVENT.get(kind)) is not None:
                change[column] = fact.at
            if kind is ReferralCompleted:
                change["outcome"] = fact.state["outcome"]
            if (row := created.get(fact.aggregate_id)) is not None:
                for column, value in change.items():
                    setattr(row, column, value)
            else:
                changed.setdefault(fact.aggregate_id, {}).update(change)
        columns = (*_SET_ONCE, "overdue_noted_at")
        db.write_many(
            cursor,
            "UPDATE rm_referral_times SET "
            + ", ".join(f"{c} = COALESCE(%s, {c})" for c in columns)
            + " WHERE referral_id = %s",
            [(*(c.get(name) for name in columns), id_) for id_, c in changed.items()],
        )
        db.insert_rows(cursor, "rm_referral_times", values(created.values()))


def _requested(fact: StoredFact) -> ReferralTimesRow:
    s = fact.state
    requested_at = parse_time(fact.at)
    assert requested_at is not None
    return ReferralTimesRow(
        referral_id=fact.aggregate_id,
        to_agency_id=s["to_agency_id"],
        service_type=s["service_type"],
        requested_at=fact.at,
        response_due_at=normalise_time(response_due(requested_at, s["urgency"])),
    )


# --- the queries that read it --------------------------------------------------------


def referral_times(
    db: Database, since: datetime | None, until: datetime | None, service_type: str | None
) -> list[ReferralTimesRow]:
    """The rows of the referrals requested at or after ``since`` and before ``until``
    (either open), of ``service_type`` if given."""
    query = "SELECT * FROM rm_referral_times WHERE requested_at >= %s"
    params: tuple[Any, ...] = (normalise_time(since) if since else "",)
    if until is not None:
        query += " AND requested_at < %s"
        params += (normalise_time(until),)
    if service_type is not None:
        query += " AND service_type = %s"
        params += (service_type,)
    query += " ORDER BY requested_at, referral_id"
    return [ReferralTimesRow(*row) for row in db.read(query, params, tuples=True)]


def unanswered_unannounced(db: Database, now: datetime, *, limit: int) -> list[UUID]:
    """Up to ``limit`` referrals still unanswered past their due time at ``now`` whose
    overdue notice is not recorded yet (the longest overdue first)."""
    query = (
        "SELECT referral_id FROM rm_referral_times WHERE response_due_at < %s AND "
        "answered_at IS NULL AND overdue_noted_at IS NULL "
        "ORDER BY response_due_at, referral_id LIMIT %s"
    )
    rows = db.read(query, (normalise_time(now), limit), tuples=True)
    return [UUID(str(row[0])) for row in rows]
