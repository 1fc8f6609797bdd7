"""Example bodies of the second round's operations on a client's behalf (emergency
grants, subject access) and of webhooks, for the OpenAPI document;
:mod:`casenet.api.examples` adds them to its tables with its story's ids (``ids``).

The story goes on: Maria arrives unconscious at St Mary's, and Eastside shares her
history at once under vital interests; a supervisor reviews it the next day.
"""

from __future__ import annotations

from typing import Any


def _emergency(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "id": ids["GRANT"],
        "version": 2,
        "case_id": ids["CASE"],
        "client_id": ids["CLIENT"],
        "grantee_agency_id": ids["ST_MARYS"],
        "sections": ["identity", "summary"],
        "basis": "vital_interests",
        "justification": "Unconscious on arrival; the hospital needs her history now.",
        "minutes": 1440,
        "status": "active",
        "created_at": ids["AT"],
        "expires_at": "2026-12-07T09:30:00Z",
        "review_due_at": "2026-12-09T09:30:00Z",
        "created_by": ids["ANA"],
        "revoked_at": None,
        "review": {
            "finding": "justified",
            "note": "No time to ask; the right call.",
            "reviewer_worker_id": ids["SUE"],
            "reviewed_at": ids["LATER"],
        },
    }


def _webhook(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "id": ids["WEBHOOK"],
        "url": "https://intake.stmarys.example/casenet",
        "types": ["referral_requested", "referral_status_changed"],
        "created_at": ids["AT"],
    }


def rights_requests(ids: dict[str, str]) -> dict[str, Any]:
    """Request bodies, by schema name."""
    emergency, webhook = _emergency(ids), _webhook(ids)
    return {
        "EmergencyGrantCreate": {
            "grantee_agency_id": ids["ST_MARYS"],
            "sections": ["identity", "summary"],
            "basis": "vital_interests",
            "justification": emergency["justification"],
            "minutes": 1440,
        },
        "EmergencyGrantReview": {"finding": "justified", "note": "No time to ask; the right call."},
        "EmergencyRevoke": {"reason": "She is awake and can decide herself."},
        "WebhookCreate": {"url": webhook["url"], "types": webhook["types"]},
    }


def rights_responses(
    ids: dict[str, str], *, client: dict[str, Any], case: dict[str, Any], note: dict[str, Any]
) -> dict[str, Any]:
    """Response bodies, by schema name.

    Long because it is one table of data, read as the bodies it shows."""
    emergency, webhook = _emergency(ids), _webhook(ids)
    return {
        "EmergencyGrantView": emergency,
        "EmergencyGrantPage": {"items": [emergency], "next": None},
        "WebhookCreated": {**webhook, "secret": "whsec_MfKQ9r8GKYqXTwjWPfaLS0+M0W9aKjGQ"},
        "WebhookView": webhook,
        "WebhookList": {"items": [webhook], "next": None},
        "DeliveryPage": {
            "items": [
                {
                    "item_id": ids["FEED_ITEM"],
                    "position": 41,
                    "type": "referral_requested",
                    "attempt": 2,
                    "outcome": "delivered",
                    "status_code": 204,
                    "error": None,
                    "attempted_at": ids["LATER"],
                    "next_attempt_at": None,
                }
            ],
            "next": None,
        },
        "SubjectAccess": {
            "client_id": ids["CLIENT"],
            "produced_at": ids["LATER"],
            "registered_by": {"id": ids["EASTSIDE"], "name": "Eastside Welfare"},
            "erased": False,
            "erased_at": None,
            "client": {**client, "address": "14 Harbour Road, Eastside"},
            "cases": [
                {
                    "id": ids["CASE"],
                    "owner_agency": {"id": ids["EASTSIDE"], "name": "Eastside Welfare"},
                    "status": "open",
                    "created_at": ids["AT"],
                    "summary": case["summary"],
                    "needs": ["housing", "income"],
                    "notes": [
                        {
                            "id": ids["NOTE"],
                            "category": "health",
                            "text": note["text"],
                            "created_at": ids["AT"],
                        }
                    ],
                    "history": [],
                }
            ],
            "consents": [],
            "emergency_grants": [
                {
                    "id": ids["GRANT"],
                    "case_id": ids["CASE"],
                    "agency": {"id": ids["ST_MARYS"], "name": "St Mary's Hospital"},
                    "sections": ["identity", "summary"],
                    "section_descriptions": ["name and date of birth", "summary of the situation"],
                    "basis": "vital_interests",
                    "basis_description": "to protect someone's life or health",
                    "justification": "Unconscious on arrival; the hospital needs her history now.",
                    "status": "expired",
                    "created_at": ids["AT"],
                    "expires_at": "2026-12-07T09:30:00Z",
                    "revoked_at": None,
                    "revocation_reason": None,
                    "review": {
                        "finding": "justified",
                        "finding_description": "sharing without consent was justified",
                        "note": "No time to ask; the right call.",
                        "reviewed_at": ids["LATER"],
                    },
                }
            ],
            "disclosures": [
                {
                    "at": "2026-12-06T09:42:00Z",  # under the grant, while it lasted
                    "case_id": ids["CASE"],
                    "agency": {"id": ids["ST_MARYS"], "name": "St Mary's Hospital"},
                    "sections": ["identity", "summary"],
                    "section_descriptions": ["name and date of birth", "summary of the situation"],
                    "basis": "vital_interests",
                    "purposes": [],
                    "consent_ids": [],
                    "emergency_grant_ids": [ids["GRANT"]],
                }
            ],
            "referrals": [],
            "requests": [
                {"at": ids["LATER"], "agency_id": ids["EASTSIDE"], "worker_id": ids["ANA"]}
            ],
        },
    }
