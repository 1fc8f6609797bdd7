"""The appeals read model: each appeal, whom it reached at which hop (and through whom),
and the answers to it; the queries that read them (what reached an agency, whether an
appeal reached it). Appeals carry no client data (rule 7): their texts are kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from casenet.domain.appeal import (
    CLOSED,
    OPEN,
    AppealAnswered,
    AppealClosed,
    AppealPosted,
    AppealRelayed,
)
from casenet.infrastructure.projections.base import ReadModel, Row, values
from casenet.infrastructure.projections.facts import StoredFact, normalise_time
from casenet.infrastructure.sql import Database

_COLUMNS = (
    "appeal_id, author_agency_id, need, title, text, area, expires_at, reach, closed, "
    "created_at, version, position"
)


class AppealRow(Row):
    """A row of ``rm_appeals``; ``closed``: 1 once closed by its author (expiry is
    computed from ``expires_at`` by the query); ``position``: that of its posting."""

    appeal_id: str
    author_agency_id: str
    need: str
    title: str
    text: str
    area: str | None
    expires_at: str
    reach: str
    closed: int
    created_at: str
    version: int
    position: int


class ReachRow(Row):
    """A row of ``rm_appeal_reach``: ``agency_id`` was reached at ``hop`` by ``by_agency_id``."""

    appeal_id: str
    agency_id: str
    hop: int
    by_agency_id: str
    position: int


class AnswerRow(Row):
    """A row of ``rm_appeal_responses`` (the answer, never its text)."""

    response_id: str
    appeal_id: str
    agency_id: str
    answer: str
    at: str
    position: int


class AppealsModel(ReadModel):
    """Appeals, their reach and their answers."""

    name = "appeals"
    tables = ("rm_appeals", "rm_appeal_reach", "rm_appeal_responses")
    follows = (AppealPosted, AppealRelayed, AppealAnswered, AppealClosed)
    stateless = (AppealClosed,)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_appeals (appeal_id TEXT PRIMARY KEY, "
            "author_agency_id TEXT NOT NULL, need TEXT NOT NULL, title TEXT NOT NULL, text "
            "TEXT NOT NULL, area TEXT, expires_at TEXT NOT NULL, reach TEXT NOT NULL, closed "
            "INTEGER NOT NULL, created_at TEXT NOT NULL, version INTEGER NOT NULL, "
            "position BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_appeals_author ON rm_appeals (author_agency_id)",
            "CREATE TABLE IF NOT EXISTS rm_appeal_reach (appeal_id TEXT NOT NULL, agency_id "
            "TEXT NOT NULL, hop INTEGER NOT NULL, by_agency_id TEXT NOT NULL, position BIGINT "
            "NOT NULL, PRIMARY KEY (appeal_id, agency_id))",
            "CREATE INDEX IF NOT EXISTS rm_appeal_reach_agency ON rm_appeal_reach (agency_id)",
            "CREATE TABLE IF NOT EXISTS rm_appeal_responses (response_id TEXT PRIMARY KEY, "
            "appeal_id TEXT NOT NULL, agency_id TEXT NOT NULL, answer TEXT NOT NULL, at TEXT "
            "NOT NULL, position BIGINT NOT NULL)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {
            "rm_appeals": "appeal_id",
            "rm_appeal_reach": "appeal_id, agency_id",
            "rm_appeal_responses": "response_id",
        }

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        created: dict[str, AppealRow] = {}
        changed: dict[str, tuple[int, int | None]] = {}  # earlier rows: version, closed
        reach: list[ReachRow] = []
        answers: list[AnswerRow] = []
        for fact in facts:
            s, kind, key = fact.state, fact.event_type, fact.aggregate_id
            if kind is AppealPosted:
                created[key] = _appeal_row(fact)
                reach += [ReachRow(key, a, 1, s["agency_id"], fact.position) for a in s["reached"]]
                continue
            if kind is AppealRelayed:
                hop, by = s["hop"], s["agency_id"]
                reach += [ReachRow(key, a, hop, by, fact.position) for a in s["reached"]]
            elif kind is AppealAnswered:
                answers.append(
                    AnswerRow(
                        s["response_id"], key, s["agency_id"], s["answer"], fact.at, fact.position
                    )
                )
            row = created.get(key)
            closes = kind is AppealClosed
            if row is not None:
                row.version, row.closed = fact.version, row.closed or int(closes)
            else:
                closed = 1 if closes else changed.get(key, (0, None))[1]
                changed[key] = (fact.version, closed)
        db.write_many(
            cursor,
            "UPDATE rm_appeals SET version = %s, closed = COALESCE(%s, closed) "
            "WHERE appeal_id = %s",
            [(version, closed, key) for key, (version, closed) in changed.items()],
        )
        db.insert_rows(cursor, "rm_appeals", values(created.values()))
        db.insert_rows(cursor, "rm_appeal_reach", values(reach))
        db.insert_rows(cursor, "rm_appeal_responses", values(answers))


def _appeal_row(fact: StoredFact) -> AppealRow:
    s = fact.state
    return AppealRow(
        fact.aggregate_id,
        s["agency_id"],
        s["need"],
        s["title"],
        s["text"],
        s["area"],
        normalise_time(s["expires_at"]),
        s["reach"],
        0,
        fact.at,
        fact.version,
        fact.position,
    )


_VISIBLE = (
    "(author_agency_id = %s OR appeal_id IN "
    "(SELECT appeal_id FROM rm_appeal_reach WHERE agency_id = %s))"
)


def agency_appeals(
    db: Database, agency_id: UUID, *, status: str | None, now: str, after: int, limit: int
) -> list[AppealRow]:
    """The appeals that reached the agency, and its own, after log position ``after``,
    oldest first; ``status`` ``open`` or ``closed`` (by its author, or expired at
    ``now``, a normalised time): only those."""
    agency = str(agency_id)
    query = f"SELECT {_COLUMNS} FROM rm_appeals WHERE {_VISIBLE} AND position > %s"
    params: tuple[Any, ...] = (agency, agency, after)
    if status == OPEN:
        query += " AND closed = 0 AND expires_at > %s"
        params += (now,)
    elif status == CLOSED:
        query += " AND (closed = 1 OR expires_at <= %s)"
        params += (now,)
    query += " ORDER BY position LIMIT %s"
    return [AppealRow(*row) for row in db.read(query, (*params, limit), tuples=True)]


def reached(db: Database, appeal_id: UUID, agency_id: UUID) -> bool:
    """Whether the appeal is the agency's own or reached it (else: as a random id)."""
    agency = str(agency_id)
    query = f"SELECT 1 FROM rm_appeals WHERE appeal_id = %s AND {_VISIBLE}"
    return bool(db.read(query, (str(appeal_id), agency, agency), tuples=True))


def reach_of(db: Database, appeal_id: UUID) -> list[ReachRow]:
    """Whom the appeal reached, in the order it reached them."""
    query = (
        "SELECT appeal_id, agency_id, hop, by_agency_id, position FROM rm_appeal_reach "
        "WHERE appeal_id = %s ORDER BY position, agency_id"
    )
    return [ReachRow(*row) for row in db.read(query, (str(appeal_id),), tuples=True)]
