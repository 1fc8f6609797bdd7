"""The feed read model: per agency, the events that concern it, as the feed items of
API.md ("Feed you can follow"), redacted for it.

Referrals to or from it (never message texts or reasons), consents granted to or
withdrawn from it, and their expiry's notice. Each item goes to both parties of its
referral or consent, which are recorded when it is requested or granted
(``rm_feed_parties``), for later events. An item's body is what API.md lists: its
``id`` (the same for both agencies' copies, and after any rebuild: a webhook's
``webhook-id``), ids and statuses, never a personal value. ``agency_feed`` reads it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID, uuid5

from casenet.domain.aggregate import DomainEvent
from casenet.domain.consent import ConsentExpiryNoted, ConsentGranted, ConsentWithdrawn
from casenet.domain.referral import STATUS_OF_EVENT, ReferralMessagePosted, ReferralRequested
from casenet.infrastructure.projections.base import ReadModel, Row, as_json, lookup, values
from casenet.infrastructure.projections.facts import StoredFact, normalise_time
from casenet.infrastructure.projections.network_items import NETWORK_ITEM_TYPES, network_item
from casenet.infrastructure.sql import Database

#: The feed item type of each event the feed follows (API.md's names): the one place
#: that says which event becomes which item.
ITEM_TYPE_OF_EVENT: dict[type[DomainEvent], str] = {
    ReferralRequested: "referral_requested",
    **dict.fromkeys(STATUS_OF_EVENT, "referral_status_changed"),
    ReferralMessagePosted: "referral_message",
    ConsentGranted: "consent_granted",
    ConsentWithdrawn: "consent_withdrawn",
    ConsentExpiryNoted: "consent_expired",
    **NETWORK_ITEM_TYPES,  # partnerships and appeals: they name their own recipients
}

#: The namespace of feed item ids: ``uuid5(ITEM_ID_NAMESPACE, "<aggregate id>/<version>")``.
ITEM_ID_NAMESPACE = UUID("6f0c5d1e-8d0b-4a53-9a55-0b6a1f7c2e17")


def item_id(aggregate_id: str, version: int) -> str:
    """The id of the feed item of an aggregate's event: one per event, the same for
    every agency that gets it, and for ever (it depends on nothing but the event)."""
    return str(uuid5(ITEM_ID_NAMESPACE, f"{aggregate_id}/{version}"))


class FeedRow(Row):
    """A row of ``rm_feed``: one event as one agency sees it (``type``: its item type)."""

    agency_id: str
    position: int
    type: str
    at: str
    body: str  # JSON


class PartiesRow(Row):
    """A row of ``rm_feed_parties``: the two agencies of a referral or a consent."""

    aggregate_id: str
    first_agency_id: str
    second_agency_id: str


class FeedModel(ReadModel):
    """Per agency, the events that concern it, redacted for it: referrals to or from
    it (never message texts or reasons), consents granted to or withdrawn from it."""

    name = "feed"
    #: 2: API.md's item types and flat item bodies with an ``id`` (issue 17).
    #: 3: partnership and appeal items (issue 19).
    version = 3
    tables = ("rm_feed", "rm_feed_parties")
    follows = tuple(ITEM_TYPE_OF_EVENT)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_feed (agency_id TEXT NOT NULL, position BIGINT NOT "
            "NULL, type TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL, "
            "PRIMARY KEY (agency_id, position))",
            "CREATE TABLE IF NOT EXISTS rm_feed_parties (aggregate_id TEXT PRIMARY KEY, "
            "first_agency_id TEXT NOT NULL, second_agency_id TEXT NOT NULL)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_feed": "agency_id, position", "rm_feed_parties": "aggregate_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        parties: dict[str, PartiesRow] = {}  # referrals and consents of this batch
        earlier: set[str] = set()  # those of earlier batches that this batch's events touch
        for fact in facts:
            s, kind = fact.state, fact.event_type
            if kind in NETWORK_ITEM_TYPES:
                continue
            if kind is ReferralRequested:
                parties[fact.aggregate_id] = PartiesRow(
                    fact.aggregate_id, s["from_agency_id"], s["to_agency_id"]
                )
            elif kind is ConsentGranted:
                parties[fact.aggregate_id] = PartiesRow(
                    fact.aggregate_id, s["owner_agency_id"], s["grantee_agency_id"]
                )
            elif fact.aggregate_id not in parties:
                earlier.add(fact.aggregate_id)
        created = list(parties.values())
        if earlier:
            parties.update(self._parties(db, cursor, earlier))
        rows = []
        for fact in facts:
            if fact.event_type in NETWORK_ITEM_TYPES:
                rows += _network_rows(fact)
                continue
            pair = parties[fact.aggregate_id]
            body = as_json(_body(fact, pair))
            entry = (fact.position, ITEM_TYPE_OF_EVENT[fact.event_type], fact.at, body)
            rows.append(FeedRow(pair.first_agency_id, *entry))
            if pair.second_agency_id != pair.first_agency_id:
                rows.append(FeedRow(pair.second_agency_id, *entry))
        db.insert_rows(cursor, "rm_feed_parties", values(created))
        db.insert_rows(cursor, "rm_feed", values(rows))

    def _parties(
        self, db: Database, cursor: Any, aggregate_ids: Collection[str]
    ) -> dict[str, PartiesRow]:
        """The parties recorded by earlier batches, of each of ``aggregate_ids``."""
        found = {
            str(row["aggregate_id"]): PartiesRow(
                str(row["aggregate_id"]),
                str(row["first_agency_id"]),
                str(row["second_agency_id"]),
            )
            for row in lookup(
                db,
                cursor,
                "SELECT aggregate_id, first_agency_id, second_agency_id FROM rm_feed_parties "
                "WHERE aggregate_id IN",
                aggregate_ids,
            )
        }
        missing = set(aggregate_ids) - found.keys()
        if missing:
            raise LookupError(f"no parties recorded for {min(missing)} (a log out of order?)")
        return found


def _network_rows(fact: StoredFact) -> list[FeedRow]:
    recipients, body = network_item(fact)
    body = {"id": item_id(fact.aggregate_id, fact.version), **body}
    entry = (fact.position, ITEM_TYPE_OF_EVENT[fact.event_type], fact.at, as_json(body))
    return [FeedRow(agency_id, *entry) for agency_id in dict.fromkeys(recipients)]


def _body(fact: StoredFact, pair: PartiesRow) -> dict[str, Any]:
    """The item of ``fact`` but its type, time and position: what both parties may see
    of it (ids and statuses; no texts, no reasons, no personal value)."""
    s, kind = fact.state, fact.event_type
    body: dict[str, Any] = {"id": item_id(fact.aggregate_id, fact.version)}
    if kind is ReferralRequested:
        return body | {
            "referral_id": fact.aggregate_id,
            "case_id": s["case_id"],
            "from_agency_id": s["from_agency_id"],
            "to_agency_id": s["to_agency_id"],
            "service_type": s["service_type"],
            "urgency": s["urgency"],
            "status": "requested",
        }
    if kind is ConsentGranted:
        body |= {
            "consent_id": fact.aggregate_id,
            "case_id": s["case_id"],
            "owner_agency_id": s["owner_agency_id"],
            "grantee_agency_id": s["grantee_agency_id"],
            "sections": s["sections"],
            "purpose": s["purpose"],
            "status": "active",
        }
        if s["valid_until"] is not None:
            body["valid_until"] = normalise_time(s["valid_until"])
        return body
    if kind is ConsentWithdrawn or kind is ConsentExpiryNoted:
        body |= {
            "consent_id": fact.aggregate_id,
            "owner_agency_id": pair.first_agency_id,
            "grantee_agency_id": pair.second_agency_id,
            "status": "withdrawn" if kind is ConsentWithdrawn else "expired",
        }
        if kind is ConsentExpiryNoted:
            body["valid_until"] = normalise_time(s["valid_until"])
        return body
    body |= {
        "referral_id": fact.aggregate_id,
        "from_agency_id": pair.first_agency_id,
        "to_agency_id": pair.second_agency_id,
    }
    if kind is ReferralMessagePosted:
        body["message_id"], body["author_agency_id"] = s["message_id"], s["agency_id"]
    elif kind in STATUS_OF_EVENT:
        body["status"] = STATUS_OF_EVENT[kind]
        if s.get("outcome") is not None:
            body["outcome"] = s["outcome"]
    return body


def agency_feed(db: Database, agency_id: UUID, *, after: int, limit: int) -> list[FeedRow]:
    """Up to ``limit`` entries of the agency's feed after log position ``after``."""
    query = (
        "SELECT agency_id, position, type, at, body FROM rm_feed WHERE agency_id = %s "
        "AND position > %s ORDER BY position LIMIT %s"
    )
    return [FeedRow(*row) for row in db.read(query, (str(agency_id), after, limit), tuples=True)]
