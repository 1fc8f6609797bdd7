"""Task (FHIR R5) from a :class:`~casenet.application.views.ReferralView`: the
receiving agency's work on the referral, whose status it moves (``PUT /fhir/Task``).

``status`` is the referral's in FHIR's words (:data:`casenet.fhir.codes.TASK_STATUS`);
a completed referral's outcome is the Task's ``output`` and its ``statusReason``, the
outcome note its ``note``. ``meta.versionId`` is the referral's version (the ETag an
``If-Match`` names).
"""

from __future__ import annotations

from casenet.application.views import ReferralView
from casenet.fhir import Resource
from casenet.fhir.codes import (
    FULFILL,
    OUTCOME_DISPLAY,
    OUTCOME_OUTPUT,
    OUTCOME_SYSTEM,
    PRIORITY,
    TASK_CODE_SYSTEM,
    TASK_OUTPUT_SYSTEM,
    coding,
    concept,
    reference,
    task_status,
)


def task_resource(view: ReferralView) -> Resource:
    """The referral's Task (its id the referral's, its focus the ServiceRequest)."""
    resource: Resource = {
        "resourceType": "Task",
        "id": str(view.id),
        "meta": {"versionId": str(view.version), "lastUpdated": view.updated_at},
        "basedOn": [reference("ServiceRequest", view.id)],
        "status": task_status(view.status),
        "intent": "order",
        "priority": PRIORITY.get(view.urgency, "routine"),
        "code": concept(coding(TASK_CODE_SYSTEM, *FULFILL)),
        "focus": reference("ServiceRequest", view.id),
        "for": reference("Patient", view.client_id),
        "authoredOn": view.created_at,
        "lastModified": view.updated_at,
        "requester": reference("Organization", view.from_agency_id),
        "owner": reference("Organization", view.to_agency_id),
    }
    if view.outcome is not None:
        outcome = coding(OUTCOME_SYSTEM, view.outcome, OUTCOME_DISPLAY.get(view.outcome))
        resource["statusReason"] = {"concept": concept(outcome)}
        resource["output"] = [
            {
                "type": concept(coding(TASK_OUTPUT_SYSTEM, *OUTCOME_OUTPUT)),
                "valueCodeableConcept": concept(outcome),
            }
        ]
    if view.outcome_note is not None:
        resource["note"] = [{"text": view.outcome_note}]
    return resource
