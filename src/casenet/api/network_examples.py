"""Example bodies of the network's operations (partnerships, appeals), for the OpenAPI
document; :mod:`casenet.api.examples` adds them to its tables with its story's ids.

The story goes on: St Mary's Hospital asks Eastside Welfare to work together; later the
hospital needs blood donors and appeals to its partners; Eastside answers that it can
help and relays the appeal to its own partners.
"""

from __future__ import annotations

from typing import Any

PARTNERSHIP = "5e6f7a8b-eeee-4b2c-9d3e-4f5a6b7c8d9e"
APPEAL = "6f7a8b9c-ffff-4c3d-8e4f-5a6b7c8d9eaf"
RESPONSE = "7a8b9c0d-1212-4d4e-9f50-6b7c8d9eafb0"
AT = "2026-12-06T09:30:00Z"
LATER = "2026-12-07T14:05:00Z"
EXPIRES = "2030-12-13T18:00:00Z"


def network_requests(eastside: str, st_marys: str) -> dict[str, Any]:
    """Request bodies, by schema name (Eastside asks St Mary's, St Mary's appeals)."""
    return {
        "PartnershipCreate": {"agency_id": st_marys},
        "AppealCreate": {
            "need": "health",
            "title": "Blood donors needed (O negative)",
            "text": "A child on our ward needs O negative blood this week. Donors can "
            "come to the blood bank any afternoon; call the ward's social worker.",
            "area": "Eastside",
            "expires_at": EXPIRES,
            "reach": "partners",
        },
        "AnswerCreate": {"answer": "can_help", "text": "Two of our volunteers are O negative."},
        "CloseAppeal": {"reason": "Enough donors came forward."},
    }


def network_responses(eastside: str, st_marys: str) -> dict[str, Any]:
    """Response bodies, by schema name."""
    partnership = {
        "id": PARTNERSHIP,
        "version": 2,
        "requester_agency_id": st_marys,
        "partner_agency_id": eastside,
        "status": "active",
        "requested_at": AT,
        "changed_at": LATER,
    }
    requests = network_requests(eastside, st_marys)
    answer = {
        "id": RESPONSE,
        "appeal_id": APPEAL,
        "agency_id": eastside,
        **requests["AnswerCreate"],
        "at": LATER,
    }
    appeal = {
        "id": APPEAL,
        "version": 2,
        "agency_id": st_marys,
        **requests["AppealCreate"],
        "status": "open",
        "created_at": AT,
    }
    return {
        "PartnershipView": partnership,
        "PartnershipList": {"items": [partnership], "next": None},
        "AppealView": {**appeal, "responses": [answer]},
        "AppealSummary": appeal,
        "AppealPage": {"items": [appeal], "next": None},
        "AppealResponseView": answer,
        "Relayed": {"appeal_id": APPEAL, "newly_reached": 3},
    }
