"""ServiceRequest (FHIR R5) from a :class:`~casenet.application.views.ReferralView`:
the referral as the SDOH Clinical Care pattern has it, the request the Task fulfils.

The referring agency requests, the receiving agency performs, the client is the
subject; the need is the requested service; the reason is the referring worker's text
(disclosed to the receiving agency when the referral was made); the consent it names is
supporting information. The client's details are never in it (see the Bundle).
"""

from __future__ import annotations

from casenet.application.views import ReferralView
from casenet.fhir import Resource
from casenet.fhir.codes import (
    NEED_SYSTEM,
    PRIORITY,
    REQUEST_STATUS,
    coding,
    concept,
    reference,
)


def service_request_resource(view: ReferralView) -> Resource:
    """The referral as a ServiceRequest (its id the referral's)."""
    resource: Resource = {
        "resourceType": "ServiceRequest",
        "id": str(view.id),
        "meta": {"versionId": str(view.version), "lastUpdated": view.updated_at},
        "status": REQUEST_STATUS[view.status],
        "intent": "order",
        "priority": PRIORITY.get(view.urgency, "routine"),
        "code": {"concept": concept(coding(NEED_SYSTEM, view.service_type))},
        "subject": reference("Patient", view.client_id),
        "authoredOn": view.created_at,
        "requester": reference("Organization", view.from_agency_id),
        "performer": [reference("Organization", view.to_agency_id)],
    }
    if view.reason is not None:  # null after erasure
        resource["reason"] = [{"concept": concept(text=view.reason)}]
    if view.consent_id is not None:
        resource["supportingInfo"] = [{"reference": reference("Consent", view.consent_id)}]
    return resource
