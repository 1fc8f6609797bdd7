"""The feed read model: per agency, the events that concern it, as the feed items of
API.md ("Feed you can follow"), redacted for it.

Referrals to or from it (never message texts or reasons), consents granted to or
withdrawn from it, and their expiry's notice; emergency grants of its cases or to it.
Each item goes to both parties of its referral, consent or emergency grant, which are
recorded when it is requested, granted or created (``rm_feed_parties``), for later
events; but an emergency grant's review and the notice that it is overdue go to the
owner alone (the grantee's access does not depend on them). A client's erasure goes
to every agency that had the client's data (``feed_parties``, GDPR Art. 19). An
item's body is what API.md lists: its ``id`` (the same for every agency's copy, and
after any rebuild: a webhook's ``webhook-id``), ids and statuses, never a personal
value (an emergency grant's justification, reason and note stay out). ``agency_feed``
reads it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID, uuid5

from casenet.domain.aggregate import DomainEvent
from casenet.domain.client import ClientErased, ClientRegistered
from casenet.domain.consent import ConsentExpiryNoted, ConsentGranted, ConsentWithdrawn
from casenet.domain.emergency import (
    EmergencyGrantCreated,
    EmergencyGrantReviewed,
    EmergencyGrantRevoked,
    EmergencyReviewDueNoted,
)
from casenet.domain.referral import (
    STATUS_OF_EVENT,
    ReferralMessagePosted,
    ReferralOverdueNoted,
    ReferralRequested,
)
from casenet.infrastructure.projections import feed_parties
from casenet.infrastructure.projections.base import ReadModel, Row, as_json, lookup, values
from casenet.infrastructure.projections.facts import StoredFact, normalise_time
from casenet.infrastructure.projections.feed_parties import ClientParties
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
    EmergencyGrantCreated: "emergency_grant",
    EmergencyGrantRevoked: "emergency_grant",
    EmergencyGrantReviewed: "emergency_grant",
    EmergencyReviewDueNoted: "emergency_review_due",
    ClientErased: "client_erased",
    ReferralOverdueNoted: "referral_overdue",
    **NETWORK_ITEM_TYPES,  # partnerships and appeals: they name their own recipients
}

#: Events told to the first party (the owner) alone: an emergency grant's review and
#: the notice that it is overdue are the owner's business, not the grantee's.
OWNER_ONLY: frozenset[type[DomainEvent]] = frozenset(
    {EmergencyGrantReviewed, EmergencyReviewDueNoted}
)
#: The events whose aggregate has two parties, recorded when it begins (first: the
#: referring agency or the owner).
_BEGINS: frozenset[type[DomainEvent]] = frozenset(
    {ReferralRequested, ConsentGranted, EmergencyGrantCreated}
)

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
    """A row of ``rm_feed_parties``: the two agencies of a referral, a consent or an
    emergency grant."""

    aggregate_id: str
    first_agency_id: str
    second_agency_id: str


class FeedModel(ReadModel):
    """Per agency, the events that concern it, redacted for it: referrals to or from
    it (never message texts or reasons), consents granted to or withdrawn from it,
    emergency grants, and the erasure of a client whose data it had."""

    name = "feed"
    #: 2: API.md's item types and flat item bodies with an ``id`` (issue 17).
    #: 3: emergency grants, their overdue reviews, and clients' erasures (issue 18).
    #: 4: partnership and appeal items (issue 19).
    version = 4
    tables = ("rm_feed", "rm_feed_parties", feed_parties.TABLE)
    follows = (*ITEM_TYPE_OF_EVENT, ClientRegistered)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_feed (agency_id TEXT NOT NULL, position BIGINT NOT "
            "NULL, type TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL, "
            "PRIMARY KEY (agency_id, position))",
            "CREATE TABLE IF NOT EXISTS rm_feed_parties (aggregate_id TEXT PRIMARY KEY, "
            "first_agency_id TEXT NOT NULL, second_agency_id TEXT NOT NULL)",
            feed_parties.CREATE,
        ]

    def primary_keys(self) -> dict[str, str]:
        return {
            "rm_feed": "agency_id, position",
            "rm_feed_parties": "aggregate_id",
            feed_parties.TABLE: "client_id, agency_id",
        }

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        parties: dict[str, PartiesRow] = {}  # referrals, consents and grants of this batch
        earlier: set[str] = set()  # those of earlier batches that this batch's events touch
        for fact in facts:
            if fact.event_type in NETWORK_ITEM_TYPES:
                continue  # partnerships and appeals: their items name their recipients
            if fact.event_type in _BEGINS:
                parties[fact.aggregate_id] = _parties_of(fact)
            elif fact.event_type in feed_parties.CLIENT_EVENTS:
                continue  # a client's events: their parties are the clients'
            elif fact.aggregate_id not in parties:
                earlier.add(fact.aggregate_id)
        created = list(parties.values())
        if earlier:
            parties.update(self._parties(db, cursor, earlier))
        clients = ClientParties.of_batch(db, cursor, facts)
        rows = []
        for fact in facts:
            kind = fact.event_type
            if kind in NETWORK_ITEM_TYPES:
                rows += _network_rows(fact)
                continue
            if kind in feed_parties.CLIENT_EVENTS:
                clients.add(fact)
                if kind is ClientRegistered:
                    continue
            if kind is ClientErased:
                body = {
                    "id": item_id(fact.aggregate_id, fact.version),
                    "client_id": fact.aggregate_id,
                }
                agencies = clients.of(fact.aggregate_id)
            else:
                pair = parties[fact.aggregate_id]
                body = _body(fact, pair)
                agencies = [pair.first_agency_id]
                if kind not in OWNER_ONLY and pair.second_agency_id != pair.first_agency_id:
                    agencies.append(pair.second_agency_id)
            entry = (fact.position, ITEM_TYPE_OF_EVENT[kind], fact.at, as_json(body))
            rows += [FeedRow(agency, *entry) for agency in agencies]
        db.insert_rows(cursor, "rm_feed_parties", values(created))
        clients.write(db, cursor)
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


def _parties_of(fact: StoredFact) -> PartiesRow:
    """The two agencies of the referral, consent or emergency grant ``fact`` begins."""
    s = fact.state
    if fact.event_type is ReferralRequested:
        return PartiesRow(fact.aggregate_id, s["from_agency_id"], s["to_agency_id"])
    return PartiesRow(fact.aggregate_id, s["owner_agency_id"], s["grantee_agency_id"])


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
    if kind in _EMERGENCY:
        return body | _emergency_body(fact, pair)
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
    elif kind is ReferralOverdueNoted:
        body["status"] = "requested"
        body["response_due_at"] = normalise_time(s["response_due_at"])
    elif kind in STATUS_OF_EVENT:
        body["status"] = STATUS_OF_EVENT[kind]
        if s.get("outcome") is not None:
            body["outcome"] = s["outcome"]
    return body


_EMERGENCY = (
    EmergencyGrantCreated,
    EmergencyGrantRevoked,
    EmergencyGrantReviewed,
    EmergencyReviewDueNoted,
)


def _emergency_body(fact: StoredFact, pair: PartiesRow) -> dict[str, Any]:
    """An emergency grant's item: its terms when created (never its justification);
    then ``revoked``, or ``reviewed`` with the finding (never the note), or the notice
    that its review is overdue."""
    s, kind = fact.state, fact.event_type
    body: dict[str, Any] = {
        "emergency_grant_id": fact.aggregate_id,
        "owner_agency_id": pair.first_agency_id,
        "grantee_agency_id": pair.second_agency_id,
    }
    if kind is EmergencyGrantCreated:
        return body | {
            "case_id": s["case_id"],
            "basis": s["basis"],
            "sections": s["sections"],
            "expires_at": normalise_time(s["expires_at"]),
            "review_due_at": normalise_time(s["review_due_at"]),
            "status": "active",
        }
    if kind is EmergencyGrantRevoked:
        return body | {"status": "revoked"}
    if kind is EmergencyGrantReviewed:
        return body | {"status": "reviewed", "finding": s["finding"]}
    return body | {"review_due_at": normalise_time(s["review_due_at"])}


def agency_feed(db: Database, agency_id: UUID, *, after: int, limit: int) -> list[FeedRow]:
    """Up to ``limit`` entries of the agency's feed after log position ``after``."""
    query = (
        "SELECT agency_id, position, type, at, body FROM rm_feed WHERE agency_id = %s "
        "AND position > %s ORDER BY position LIMIT %s"
    )
    return [FeedRow(*row) for row in db.read(query, (str(agency_id), after, limit), tuples=True)]
