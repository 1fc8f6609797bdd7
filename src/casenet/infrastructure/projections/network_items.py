"""The feed items of the network (rule 7): partnerships and appeals, and who gets each.

Kept apart from ``feed`` (which maps them in its table and writes them): each of these
events names every agency its item goes to, so the feed needs no parties recorded for
them. Bodies hold ids, statuses and the need, never an appeal's or an answer's text.

- ``partnership_requested`` / ``partnership_accepted``: both agencies;
- ``appeal_posted``: the author and every agency reached, and later every agency a
  relay newly reached (``hop``, ``relayed_by_agency_id``);
- ``appeal_response``: the author and the responding agency.
"""

from __future__ import annotations

from typing import Any

from casenet.domain.aggregate import DomainEvent
from casenet.domain.appeal import AppealAnswered, AppealPosted, AppealRelayed
from casenet.domain.partnership import PartnershipAccepted, PartnershipRequested
from casenet.infrastructure.projections.facts import StoredFact

NETWORK_ITEM_TYPES: dict[type[DomainEvent], str] = {
    PartnershipRequested: "partnership_requested",
    PartnershipAccepted: "partnership_accepted",
    AppealPosted: "appeal_posted",
    AppealRelayed: "appeal_posted",
    AppealAnswered: "appeal_response",
}


def network_item(fact: StoredFact) -> tuple[list[str], dict[str, Any]]:
    """The agencies that get the item of ``fact``, and its body but ``id`` (which the
    feed gives every item alike)."""
    s, kind = fact.state, fact.event_type
    if kind is PartnershipRequested or kind is PartnershipAccepted:
        pair = [s["requester_agency_id"], s["partner_agency_id"]]
        body = {
            "partnership_id": fact.aggregate_id,
            "requester_agency_id": pair[0],
            "partner_agency_id": pair[1],
            "status": "requested" if kind is PartnershipRequested else "active",
        }
        return pair, body
    body = {"appeal_id": fact.aggregate_id, "need": s["need"]}
    if kind is AppealPosted:
        body |= {"author_agency_id": s["agency_id"], "hop": 1, "status": "open"}
        return [s["agency_id"], *s["reached"]], body
    if kind is AppealRelayed:
        body |= {
            "author_agency_id": s["author_agency_id"],
            "relayed_by_agency_id": s["agency_id"],
            "hop": s["hop"],
            "status": "open",
        }
        return list(s["reached"]), body
    body |= {
        "author_agency_id": s["author_agency_id"],
        "response_id": s["response_id"],
        "responder_agency_id": s["agency_id"],
        "answer": s["answer"],
    }
    return [s["author_agency_id"], s["agency_id"]], body
