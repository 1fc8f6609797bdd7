"""The parties of each client, for the feed: who must hear of the client's erasure.

GDPR Art. 19: every agency that had the client's data through one of their cases (a
consent, an emergency grant or a referral, on either side) and the agency that
registered the client is told of the erasure (a ``client_erased`` item), and no one
else. ``rm_feed_client_parties`` holds one row per client and agency, added as those
events are projected; the feed reads it when the client is erased.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from casenet.domain.aggregate import DomainEvent
from casenet.domain.client import ClientErased, ClientRegistered
from casenet.domain.consent import ConsentGranted
from casenet.domain.emergency import EmergencyGrantCreated
from casenet.domain.referral import ReferralRequested
from casenet.infrastructure.projections.base import Row, lookup, values
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import Database

#: The events that make agencies parties of a client, and its erasure.
CLIENT_EVENTS: frozenset[type[DomainEvent]] = frozenset(
    {ClientRegistered, ConsentGranted, EmergencyGrantCreated, ReferralRequested, ClientErased}
)

TABLE = "rm_feed_client_parties"
CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (client_id TEXT NOT NULL, agency_id TEXT NOT NULL, "
    "PRIMARY KEY (client_id, agency_id))"
)


class ClientPartyRow(Row):
    """A row of ``rm_feed_client_parties``: an agency that had the client's data."""

    client_id: str
    agency_id: str


def client_of(fact: StoredFact) -> str:
    """The client an event of :data:`CLIENT_EVENTS` is about."""
    if fact.event_type is ClientRegistered or fact.event_type is ClientErased:
        return fact.aggregate_id
    return str(fact.state["client_id"])


def agencies_named(fact: StoredFact) -> tuple[str, ...]:
    """The agencies an event makes parties of its client (none for the erasure)."""
    s, kind = fact.state, fact.event_type
    if kind is ClientRegistered:
        return (s["registered_by_agency_id"],)
    if kind is ConsentGranted or kind is EmergencyGrantCreated:
        return (s["owner_agency_id"], s["grantee_agency_id"])
    if kind is ReferralRequested:
        return (s["from_agency_id"], s["to_agency_id"])
    return ()


class ClientParties:
    """A batch's view of the clients' parties: those earlier batches recorded (read
    once, for the clients the batch names) and those it adds, in log order."""

    def __init__(self, known: dict[str, set[str]]) -> None:
        self.known = known
        self.added: list[ClientPartyRow] = []

    @classmethod
    def of_batch(cls, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> ClientParties:
        """The parties earlier batches recorded of the clients ``facts`` name (a client
        registered in this batch has none: its registration is its first event)."""
        mine = [f for f in facts if f.event_type in CLIENT_EVENTS]
        registered = {f.aggregate_id for f in mine if f.event_type is ClientRegistered}
        wanted = {client_of(f) for f in mine} - registered
        known: dict[str, set[str]] = {}
        if wanted:
            query = f"SELECT client_id, agency_id FROM {TABLE} WHERE client_id IN"
            for row in lookup(db, cursor, query, wanted):
                known.setdefault(str(row["client_id"]), set()).add(str(row["agency_id"]))
        return cls(known)

    def add(self, fact: StoredFact) -> None:
        """Record the agencies ``fact`` makes parties of its client."""
        named = agencies_named(fact)
        if not named:
            return
        client = client_of(fact)
        parties = self.known.setdefault(client, set())
        for agency in named:
            if agency not in parties:
                parties.add(agency)
                self.added.append(ClientPartyRow(client, agency))

    def of(self, client_id: str) -> list[str]:
        """The client's parties so far, in a stable order."""
        return sorted(self.known.get(client_id, ()))

    def write(self, db: Database, cursor: Any) -> None:
        db.insert_rows(cursor, TABLE, values(self.added))
