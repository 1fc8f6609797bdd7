"""Example bodies for the OpenAPI document: one per request and response type, by the
name its schema has in the document (``#/components/schemas/<name>``).

One story runs through them: Eastside Welfare (an NGO) opens a case for Maria, records
her written consent for St Mary's Hospital to see her identity and health notes, and
refers her there; the hospital completes the referral. Every id is fixed, so the
checked-in document is reproducible. ``tests/api/test_operation_docs.py`` decodes each
request example into its type (and through the vocabulary checks) and each response
example into its view, so an example cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from casenet.api.directory_examples import directory_examples
from casenet.api.network_examples import network_requests, network_responses
from casenet.api.rights_examples import rights_requests, rights_responses

EASTSIDE = "2b1c0f54-6c1e-4a0e-9a59-0d6f7f1f3a10"
ST_MARYS = "7d4e8a12-93b5-4f6c-8e0a-5b2d1c3e4f50"
ANA = "a1f3c2d4-1111-4e5f-8a9b-0c1d2e3f4a51"  # caseworker at Eastside
HAL = "b2e4d3c5-2222-4f60-9bac-1d2e3f4a5b62"  # caseworker at St Mary's
CASE = "c3d5e4f6-3333-4071-8cbd-2e3f4a5b6c73"
CLIENT = "d4e6f5a7-4444-4182-9dce-3f4a5b6c7d84"
NOTE = "e5f7a6b8-5555-4293-8edf-4a5b6c7d8e95"
CONSENT = "f6a8b7c9-6666-43a4-9fe0-5b6c7d8e9fa6"
REFERRAL = "0718c9da-7777-44b5-80f1-6c7d8e9fa0b7"
MESSAGE = "1829daeb-8888-45c6-9102-7d8e9fa0b1c8"
DISCLOSURE = "293aebfc-9999-46d7-a213-8e9fa0b1c2d9"
GRANT = "3a4bfc0d-aaaa-47e8-b324-9fa0b1c2d3ea"
WEBHOOK = "4b5c0d1e-bbbb-48f9-8435-a0b1c2d3e4fb"
FEED_ITEM = "5c6d1e2f-cccc-490a-9546-b1c2d3e4f50c"
SUE = "6d7e2f30-dddd-4a1b-a657-c2d3e4f5061d"  # supervisor at Eastside
AT = "2026-12-06T09:30:00Z"
LATER = "2026-12-07T14:05:00Z"
DUE = "2026-12-13T09:30:00Z"  # a routine referral: 7 days after AT

#: A cursor as the API hands it out (opaque to clients).
NEXT = "eyJwIjpbMTIsIjIwMjYtMTItMDYifX0"

_CLIENT = {"name": "Maria Lopez", "date_of_birth": "1984-03-02", "phone": "+254 700 123456"}
_SERVICE = {"type": "housing", "description": "Emergency rent support", "area": "Eastside"}
_SERVICE_IN, _SERVICE_VIEW, DIRECTORY_RESPONSES = directory_examples(EASTSIDE, "Eastside Welfare")
_AGENCY = {
    "id": EASTSIDE,
    "version": 1,
    "name": "Eastside Welfare",
    "kind": "ngo",
    "restricted": False,
    "services": [_SERVICE_VIEW],
}
_WORKER = {
    "id": ANA,
    "name": "Ana Otieno",
    "role": "caseworker",
    "agency_id": EASTSIDE,
    "active": True,
}
_NOTE = {
    "id": NOTE,
    "category": "health",
    "text": "Dialysis on Tuesdays and Fridays; cannot attend morning appointments.",
    "author_worker_id": ANA,
    "created_at": AT,
}
_CASE = {
    "id": CASE,
    "version": 2,
    "status": "open",
    "owner_agency_id": EASTSIDE,
    "client_id": CLIENT,
    "erased": False,
    "created_at": AT,
    "updated_at": AT,
    "sections": ["identity", "contact", "needs", "summary", "notes.health"],
    "shared_under": [],
    "client": _CLIENT,
    "summary": "Facing eviction at the end of the month; two children.",
    "needs": ["housing", "income"],
    "notes": [_NOTE],
}
_CONSENT = {
    "id": CONSENT,
    "version": 1,
    "case_id": CASE,
    "client_id": CLIENT,
    "grantee_agency_id": ST_MARYS,
    "sections": ["identity", "notes.health"],
    "purpose": "referral",
    "method": "written",
    "evidence": "Signed form 12, scanned to the client file",
    "valid_until": "2027-06-30T23:59:59Z",
    "status": "active",
    "granted_at": AT,
    "withdrawn_at": None,
    "recorded_by_worker_id": ANA,
}
_REFERRAL = {
    "id": REFERRAL,
    "version": 3,
    "case_id": CASE,
    "client_id": CLIENT,
    "from_agency_id": EASTSIDE,
    "to_agency_id": ST_MARYS,
    "service_type": "health",
    "reason": "Needs her dialysis slots moved to afternoons.",
    "urgency": "routine",
    "consent_id": CONSENT,
    "status": "in_progress",
    "created_at": AT,
    "updated_at": LATER,
    "history": [
        {"status": "requested", "at": AT, "agency_id": EASTSIDE, "worker_id": ANA},
        {"status": "accepted", "at": LATER, "agency_id": ST_MARYS, "worker_id": HAL},
        {"status": "in_progress", "at": LATER, "agency_id": ST_MARYS, "worker_id": HAL},
    ],
    "response_due_at": DUE,
    "overdue": False,
}
_FIGURES = ("received", "accepted", "rejected", "completed", "got_help", "overdue")


def _figures(agency: str, service: str, values: tuple[Any, ...], *, suppressed: bool) -> Any:
    """A row of the network's figures (the caller is Eastside: its own row is whole)."""
    names = (*_FIGURES, "median_hours_to_accept", "median_hours_to_complete")
    row = {"agency_id": agency, "service_type": service, **dict(zip(names, values, strict=True))}
    return row | {"suppressed": suppressed}


_MESSAGE = {
    "id": MESSAGE,
    "agency_id": ST_MARYS,
    "worker_id": HAL,
    "text": "We can offer Tuesday and Friday at 14:00 from next week.",
    "created_at": LATER,
}


#: Request bodies, by schema name.
REQUESTS: dict[str, dict[str, Any]] = {
    "AgencyCreate": {
        "name": "Eastside Welfare",
        "kind": "ngo",
        "restricted": False,
        "services": [_SERVICE],
    },
    "ServicesReplace": {"services": [_SERVICE_IN]},
    "WorkerCreate": {"name": "Ana Otieno", "role": "caseworker"},
    "CaseCreate": {
        "client": _CLIENT,
        "summary": "Facing eviction at the end of the month; two children.",
        "needs": ["housing", "income"],
    },
    "NoteCreate": {"category": "health", "text": _NOTE["text"]},
    "Reason": {"reason": "The client asked for it."},
    "ConsentCreate": {
        "grantee_agency_id": ST_MARYS,
        "sections": ["identity", "notes.health"],
        "purpose": "referral",
        "method": "written",
        "valid_until": "2027-06-30T23:59:59Z",
        "evidence": "Signed form 12, scanned to the client file",
    },
    "ReferralCreate": {
        "case_id": CASE,
        "to_agency_id": ST_MARYS,
        "service_type": "health",
        "reason": "Needs her dialysis slots moved to afternoons.",
        "urgency": "routine",
        "consent_id": CONSENT,
    },
    "Complete": {"outcome": "got_help", "note": "Slots moved to Tuesday and Friday 14:00."},
    "MessageCreate": {"text": _MESSAGE["text"]},
}

#: Response bodies, by schema name.
RESPONSES: dict[str, Any] = {
    "Health": {"status": "ok"},
    "AgencyView": _AGENCY,
    "AgencyPage": {"items": [_AGENCY], "next": None},
    "WorkerCreated": {
        "id": ANA,
        "name": "Ana Otieno",
        "role": "caseworker",
        "agency_id": EASTSIDE,
        "token": "tok_3q2-7wEj8bXkzq9v0X1yLQ5mZrT4uS6a",
    },
    "WorkerView": _WORKER,
    "WorkerList": {"items": [_WORKER]},
    "Me": {"role": "caseworker", "worker": _WORKER, "agency": _AGENCY},
    "CaseView": _CASE,
    "CasePage": {
        "items": [
            {
                "id": CASE,
                "version": 2,
                "status": "open",
                "client_id": CLIENT,
                "client_name": "Maria Lopez",
                "erased": False,
                "needs": ["housing", "income"],
                "note_count": 1,
                "created_at": AT,
                "updated_at": AT,
            }
        ],
        "next": NEXT,
    },
    "SharedCasePage": {
        "items": [
            {
                "case_id": CASE,
                "owner_agency_id": EASTSIDE,
                "sections": ["identity", "notes.health"],
                "shared_under": [CONSENT],
            }
        ],
        "next": None,
    },
    "NoteView": _NOTE,
    "Access": {
        "at": AT,
        "case_id": CASE,
        "grants": [
            {"agency_id": EASTSIDE, "sections": _CASE["sections"], "basis": "owner"},
            {
                "agency_id": ST_MARYS,
                "sections": ["identity", "notes.health"],
                "basis": "consent",
                "consent_id": CONSENT,
                "consent_ids": [CONSENT],
            },
        ],
    },
    "ConsentView": _CONSENT,
    "ConsentPage": {"items": [_CONSENT], "next": None},
    "ConsentReceipt": {
        "consent_id": CONSENT,
        "case_id": CASE,
        "status": "active",
        "sections": ["identity", "notes.health"],
        "section_descriptions": [
            "Your name and date of birth",
            "Notes about your physical health",
        ],
        "grantee_agency_id": ST_MARYS,
        "grantee_agency_name": "St Mary's Hospital",
        "purpose": "referral",
        "purpose_description": "So that St Mary's Hospital can take up a referral for you.",
        "valid_until": "2027-06-30T23:59:59Z",
        "method": "written",
        "recorded_at": AT,
        "recorded_by_worker_id": ANA,
        "withdrawn_at": None,
        "how_to_withdraw": "Tell Eastside Welfare at any time; it stops the sharing at once.",
    },
    "ReferralView": _REFERRAL,
    "ReferralPage": {
        "items": [
            {
                "id": REFERRAL,
                "version": 3,
                "case_id": CASE,
                "from_agency_id": EASTSIDE,
                "to_agency_id": ST_MARYS,
                "service_type": "health",
                "urgency": "routine",
                "status": "in_progress",
                "message_count": 1,
                "created_at": AT,
                "updated_at": LATER,
                "response_due_at": DUE,
                "overdue": False,
            }
        ],
        "next": None,
    },
    "MessageView": _MESSAGE,
    "MessagePage": {"items": [_MESSAGE], "next": None},
    "Erasure": {"client_id": CLIENT, "erased": True},
    "DisclosurePage": {
        "items": [
            {
                "id": DISCLOSURE,
                "case_id": CASE,
                "at": LATER,
                "recipient_agency_id": ST_MARYS,
                "worker_id": HAL,
                "sections": ["identity", "notes.health"],
                "purposes": ["referral"],
                "consent_ids": [CONSENT],
                "basis": "consent",
            }
        ],
        "next": None,
    },
    "FeedPage": {
        "items": [
            {
                "id": FEED_ITEM,
                "type": "referral_requested",
                "at": AT,
                "position": 41,
                "referral_id": REFERRAL,
                "case_id": CASE,
                "from_agency_id": EASTSIDE,
                "to_agency_id": ST_MARYS,
                "service_type": "health",
                "urgency": "routine",
                "status": "requested",
            }
        ],
        "next": "41",
    },
    "NetworkFigures": {
        "from": "2026-10-01T00:00:00Z",
        "to": "2027-01-01T00:00:00Z",
        "service_type": None,
        "at": LATER,
        "items": [
            _figures(EASTSIDE, "housing", (3, 3, 0, 2, 2, 0, 5.5, 212.0), suppressed=False),
            _figures(ST_MARYS, "health", (41, 35, None, 28, 22, 6, 19.25, 163.5), suppressed=True),
        ],
    },
    **DIRECTORY_RESPONSES,
}

# The network's (issue 19), in their own module, with this story's agencies.
STORY_IDS = {
    "EASTSIDE": EASTSIDE,
    "ST_MARYS": ST_MARYS,
    "ANA": ANA,
    "SUE": SUE,
    "CASE": CASE,
    "CLIENT": CLIENT,
    "NOTE": NOTE,
    "GRANT": GRANT,
    "WEBHOOK": WEBHOOK,
    "FEED_ITEM": FEED_ITEM,
    "AT": AT,
    "LATER": LATER,
}
REQUESTS |= network_requests(EASTSIDE, ST_MARYS)
REQUESTS |= rights_requests(STORY_IDS)
RESPONSES |= network_responses(EASTSIDE, ST_MARYS)
RESPONSES |= rights_responses(STORY_IDS, client=_CLIENT, case=_CASE, note=_NOTE)

#: Bodies that are not JSON, by media type: what the example shows instead.
OTHER_MEDIA: dict[str, str] = {
    "application/x-tar": "(a tar archive: manifest.json, manifest.sig, events.jsonl, "
    "public_key.pem, ... ; check it with `casenet audit verify`)",
    "text/html": "<!doctype html>... (a self-contained page for the client, in plain words)",
}
