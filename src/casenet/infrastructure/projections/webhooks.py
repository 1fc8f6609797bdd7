"""The webhooks read model: each agency's webhooks (never their secrets), and the
queries that read it (an agency's list, one webhook, every active one for delivery)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from casenet.domain.webhook import WebhookRegistered, WebhookRemoved
from casenet.infrastructure.projections.base import ReadModel, Row, as_json, values
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import Database

_COLUMNS = "webhook_id, agency_id, url, types, created_at, registered_position, removed"


class WebhookRow(Row):
    """A row of ``rm_webhooks``. ``registered_position``: the log position of its
    registration; it is sent the agency's feed items after it."""

    webhook_id: str
    agency_id: str
    url: str
    types: str  # JSON list; empty: every type
    created_at: str
    registered_position: int
    removed: int


class WebhooksModel(ReadModel):
    """Each agency's webhooks, removed ones marked (their deliveries stop)."""

    name = "webhooks"
    tables = ("rm_webhooks",)
    follows = (WebhookRegistered, WebhookRemoved)
    stateless = (WebhookRemoved,)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_webhooks (webhook_id TEXT PRIMARY KEY, agency_id "
            "TEXT NOT NULL, url TEXT NOT NULL, types TEXT NOT NULL, created_at TEXT NOT NULL, "
            "registered_position BIGINT NOT NULL, removed INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_webhooks_agency ON rm_webhooks (agency_id)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_webhooks": "webhook_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        created: dict[str, WebhookRow] = {}
        removed: list[tuple[str]] = []
        for fact in facts:
            if fact.event_type is WebhookRegistered:
                s = fact.state
                created[fact.aggregate_id] = WebhookRow(
                    fact.aggregate_id,
                    s["agency_id"],
                    s["url"],
                    as_json(list(s["types"])),
                    fact.at,
                    fact.position,
                    0,
                )
            elif fact.aggregate_id in created:
                created[fact.aggregate_id].removed = 1
            else:
                removed.append((fact.aggregate_id,))
        db.write_many(cursor, "UPDATE rm_webhooks SET removed = 1 WHERE webhook_id = %s", removed)
        db.insert_rows(cursor, "rm_webhooks", values(created.values()))


def agency_webhooks(db: Database, agency_id: UUID) -> list[WebhookRow]:
    """The agency's webhooks not removed, oldest first."""
    query = (
        f"SELECT {_COLUMNS} FROM rm_webhooks WHERE agency_id = %s AND removed = 0 "
        "ORDER BY registered_position"
    )
    return [WebhookRow(*row) for row in db.read(query, (str(agency_id),), tuples=True)]


def webhook(db: Database, webhook_id: UUID) -> WebhookRow | None:
    """One webhook, removed or not; None for an unknown id."""
    query = f"SELECT {_COLUMNS} FROM rm_webhooks WHERE webhook_id = %s"
    rows = db.read(query, (str(webhook_id),), tuples=True)
    return WebhookRow(*rows[0]) if rows else None


def active_webhooks(db: Database) -> list[WebhookRow]:
    """Every webhook not removed (what the delivery worker goes through)."""
    query = f"SELECT {_COLUMNS} FROM rm_webhooks WHERE removed = 0 ORDER BY registered_position"
    return [WebhookRow(*row) for row in db.read(query, tuples=True)]
