"""Where each webhook's delivery stands: a cursor and the attempts it made.

The outbox itself is the event log: the events are written in one transaction by
construction, and the feed read model derives every item from them, so what is to be
delivered is "the agency's feed after the webhook's cursor". This module keeps the
rest, operational tables like the projections' positions (never emptied by a rebuild):

- ``casenet_webhook_cursors``: per webhook, the last feed position acknowledged (a 2xx,
  or given up), the current item's attempt count, when it first failed, when it is due
  again, and a lease (owner, until) that a worker takes by compare-and-swap before it
  delivers, so two workers never deliver the same webhook's items at once;
- ``casenet_webhook_attempts``: every attempt (its item, status code or one safe line of
  error, outcome, next retry), what ``GET /v1/webhooks/{id}/deliveries`` lists.

Every write by a worker is fenced by its lease (``WHERE lease_owner = me``): a worker
whose lease expired while it waited on a slow receiver records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from casenet.infrastructure.projections.webhooks import WebhookRow
from casenet.infrastructure.sql import Database

CURSORS = "casenet_webhook_cursors"
ATTEMPTS = "casenet_webhook_attempts"

_CURSOR_COLUMNS = "webhook_id, position, attempt, first_failed_at, next_attempt_at, attempts_made"
_WEBHOOK_COLUMNS = ", ".join(
    f"w.{name}"
    for name in (
        "webhook_id",
        "agency_id",
        "url",
        "types",
        "created_at",
        "registered_position",
        "removed",
    )
)
_ATTEMPT_COLUMNS = (
    "webhook_id, seq, position, item_id, type, attempt, outcome, status_code, error, "
    "attempted_at, next_attempt_at"
)


class LeaseLost(Exception):
    """Another worker holds the webhook now: what this one did is not recorded."""


@dataclass(frozen=True)
class DeliveryCursor:
    """A webhook's delivery state; times are POSIX seconds."""

    webhook_id: str
    #: The last feed position acknowledged (delivered, skipped by type, or given up).
    position: int
    #: Attempts made at the item after ``position`` (0: none yet).
    attempt: int
    first_failed_at: float | None
    next_attempt_at: float | None
    #: Attempts recorded for this webhook so far (the attempts' sequence).
    attempts_made: int


@dataclass(frozen=True)
class AttemptRow:
    """A row of ``casenet_webhook_attempts``."""

    webhook_id: str
    seq: int
    position: int
    item_id: str
    type: str
    attempt: int
    #: ``delivered``, ``failed`` (retried), ``refused`` (SSRF rule; retried) or ``given_up``.
    outcome: str
    status_code: int | None
    error: str | None
    attempted_at: float
    next_attempt_at: float | None


class WebhookOutbox:
    """The statements on the delivery tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_tables(self) -> None:
        with self.db.cursor(commit=True) as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {CURSORS} (webhook_id TEXT PRIMARY KEY, "
                "position BIGINT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, "
                "first_failed_at DOUBLE PRECISION, next_attempt_at DOUBLE PRECISION, "
                "attempts_made BIGINT NOT NULL DEFAULT 0, lease_owner TEXT, "
                "lease_until DOUBLE PRECISION)"
            )
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {ATTEMPTS} (webhook_id TEXT NOT NULL, "
                "seq BIGINT NOT NULL, position BIGINT NOT NULL, item_id TEXT NOT NULL, "
                "type TEXT NOT NULL, attempt INTEGER NOT NULL, outcome TEXT NOT NULL, "
                "status_code INTEGER, error TEXT, attempted_at DOUBLE PRECISION NOT NULL, "
                "next_attempt_at DOUBLE PRECISION, PRIMARY KEY (webhook_id, seq))"
            )

    def ensure_cursor(self, webhook_id: str, position: int) -> None:
        """A cursor for a webhook first seen, at its registration's position."""
        with self.db.cursor(commit=True) as cursor:
            cursor.execute(
                self.db.sql(
                    f"INSERT INTO {CURSORS} (webhook_id, position) VALUES (%s, %s) "
                    "ON CONFLICT (webhook_id) DO NOTHING"
                ),
                (webhook_id, position),
            )

    def claim(self, webhook_id: str, owner: str, now: float, lease: float) -> DeliveryCursor | None:
        """Take the webhook's lease if it is free (or expired) and the webhook is due;
        its cursor, or None when another worker holds it or nothing is due."""
        with self.db.cursor(commit=True) as cursor:
            cursor.execute(
                self.db.sql(
                    f"UPDATE {CURSORS} SET lease_owner = %s, lease_until = %s "
                    "WHERE webhook_id = %s AND (lease_until IS NULL OR lease_until < %s) "
                    "AND (next_attempt_at IS NULL OR next_attempt_at <= %s)"
                ),
                (owner, now + lease, webhook_id, now, now),
            )
            if cursor.rowcount != 1:
                return None
        return self.cursor_of(webhook_id)  # ours now: nobody else moves it

    def release(self, webhook_id: str, owner: str) -> None:
        with self.db.cursor(commit=True) as cursor:
            cursor.execute(
                self.db.sql(
                    f"UPDATE {CURSORS} SET lease_owner = NULL, lease_until = NULL "
                    "WHERE webhook_id = %s AND lease_owner = %s"
                ),
                (webhook_id, owner),
            )

    def advance(
        self, owner: str, cursor_now: DeliveryCursor, position: int, lease_until: float
    ) -> DeliveryCursor:
        """Move the cursor past items the webhook does not take (by type)."""
        after = replace(
            cursor_now, position=position, attempt=0, first_failed_at=None, next_attempt_at=None
        )
        with self.db.cursor(commit=True) as cursor:
            self._move(cursor, owner, after, lease_until)
        return after

    def record(
        self, owner: str, after: DeliveryCursor, attempt: AttemptRow, lease_until: float
    ) -> None:
        """An attempt and the cursor it leaves, in one transaction, under the lease."""
        with self.db.cursor(commit=True) as cursor:
            self._move(cursor, owner, after, lease_until)
            marks = ", ".join(["%s"] * 11)
            cursor.execute(
                self.db.sql(f"INSERT INTO {ATTEMPTS} ({_ATTEMPT_COLUMNS}) VALUES ({marks})"),
                (
                    attempt.webhook_id,
                    attempt.seq,
                    attempt.position,
                    attempt.item_id,
                    attempt.type,
                    attempt.attempt,
                    attempt.outcome,
                    attempt.status_code,
                    attempt.error,
                    attempt.attempted_at,
                    attempt.next_attempt_at,
                ),
            )

    def _move(self, cursor: Any, owner: str, after: DeliveryCursor, lease_until: float) -> None:
        cursor.execute(
            self.db.sql(
                f"UPDATE {CURSORS} SET position = %s, attempt = %s, first_failed_at = %s, "
                "next_attempt_at = %s, attempts_made = %s, lease_until = %s "
                "WHERE webhook_id = %s AND lease_owner = %s"
            ),
            (
                after.position,
                after.attempt,
                after.first_failed_at,
                after.next_attempt_at,
                after.attempts_made,
                lease_until,
                after.webhook_id,
                owner,
            ),
        )
        if cursor.rowcount != 1:
            raise LeaseLost(after.webhook_id)

    def cursor_of(self, webhook_id: UUID | str) -> DeliveryCursor | None:
        rows = self.db.read(
            f"SELECT {_CURSOR_COLUMNS} FROM {CURSORS} WHERE webhook_id = %s",
            (str(webhook_id),),
            tuples=True,
        )
        return _cursor(rows[0]) if rows else None

    def attempts(self, webhook_id: UUID, *, after: int, limit: int) -> list[AttemptRow]:
        """Up to ``limit`` attempts of the webhook after sequence number ``after``."""
        rows = self.db.read(
            f"SELECT {_ATTEMPT_COLUMNS} FROM {ATTEMPTS} WHERE webhook_id = %s AND seq > %s "
            "ORDER BY seq LIMIT %s",
            (str(webhook_id), after, limit),
            tuples=True,
        )
        return [AttemptRow(*row) for row in rows]

    def due(self, now: float) -> list[tuple[WebhookRow, bool]]:
        """The active webhooks with feed items after their cursor (or registration) that
        are due and not leased, each with whether it has a cursor row yet: one read, so
        an idle webhook costs no write."""
        query = (
            f"SELECT {_WEBHOOK_COLUMNS}, c.webhook_id FROM rm_webhooks w "
            f"LEFT JOIN {CURSORS} c ON c.webhook_id = w.webhook_id "
            "WHERE w.removed = 0 "
            "AND (c.next_attempt_at IS NULL OR c.next_attempt_at <= %s) "
            "AND (c.lease_until IS NULL OR c.lease_until < %s) "
            "AND EXISTS (SELECT 1 FROM rm_feed f WHERE f.agency_id = w.agency_id "
            "AND f.position > COALESCE(c.position, w.registered_position)) "
            "ORDER BY w.registered_position"
        )
        rows = self.db.read(query, (now, now), tuples=True)
        return [(WebhookRow(*row[:-1]), row[-1] is not None) for row in rows]

    def backlog(self) -> list[tuple[str, str, int]]:
        """(the webhook's types as JSON, an item type, how many items of it) for every
        active webhook: the agency's feed items after the webhook's cursor (or its
        registration), which the caller filters by the webhook's types. Reads the feed
        and webhooks read models beside the cursors, one statement."""
        query = (
            "SELECT w.types, f.type, COUNT(*) FROM rm_webhooks w "
            f"LEFT JOIN {CURSORS} c ON c.webhook_id = w.webhook_id "
            "JOIN rm_feed f ON f.agency_id = w.agency_id "
            "AND f.position > COALESCE(c.position, w.registered_position) "
            "WHERE w.removed = 0 GROUP BY w.webhook_id, w.types, f.type"
        )
        return [(str(t), str(k), int(n)) for t, k, n in self.db.read(query, tuples=True)]


def _cursor(row: Any) -> DeliveryCursor:
    webhook_id, position, attempt, first_failed_at, next_attempt_at, made = row
    return DeliveryCursor(
        str(webhook_id),
        int(position),
        int(attempt),
        None if first_failed_at is None else float(first_failed_at),
        None if next_attempt_at is None else float(next_attempt_at),
        int(made),
    )
