"""AuditEvent (FHIR R5) from a :class:`~casenet.application.views.DisclosureView`: one
disclosure of a case's sections to another agency (the accounting of disclosures).

The recipient agency and its worker are the agents; the case is the entity, labelled
with the sections disclosed (a referral's reason or message: casenet's ``referral``);
the consents' purposes (v3 ActReason) or the emergency grants' legal bases (casenet's)
are the authorization.
"""

from __future__ import annotations

from casenet.application.views import DisclosureView
from casenet.domain.sections import REFERRAL
from casenet.fhir import Resource
from casenet.fhir.codes import (
    CASE_IDENTIFIER,
    DISCLOSE,
    LEGAL_BASIS_SYSTEM,
    LIFECYCLE_EVENT,
    PARTICIPATION_TYPE,
    RECIPIENT_ROLE,
    WORKER_IDENTIFIER,
    coding,
    concept,
    purpose_coding,
    reference,
    section_label,
)


def audit_event_resource(view: DisclosureView) -> Resource:
    """The disclosure as an AuditEvent (its id the disclosure's)."""
    recipient_role = concept(coding(PARTICIPATION_TYPE, *RECIPIENT_ROLE))
    authorization = [concept(purpose_coding(p)) for p in view.purposes]
    authorization += [concept(coding(LEGAL_BASIS_SYSTEM, b)) for b in view.legal_bases]
    resource: Resource = {
        "resourceType": "AuditEvent",
        "id": str(view.id),
        "code": concept(coding(LIFECYCLE_EVENT, *DISCLOSE)),
        # The referral's reason or message is written (created) for the recipient; a
        # case's sections are read by it.
        "action": "C" if REFERRAL in view.sections else "R",
        "recorded": view.at,
        "agent": [
            {
                "type": recipient_role,
                "who": reference("Organization", view.recipient_agency_id),
                "requestor": True,
            },
            {"who": {"identifier": {"system": WORKER_IDENTIFIER, "value": str(view.worker_id)}}},
        ],
        "source": {"observer": {"display": "casenet"}},
        "entity": [
            {
                "what": {"identifier": {"system": CASE_IDENTIFIER, "value": str(view.case_id)}},
                "securityLabel": [concept(section_label(s)) for s in view.sections],
            }
        ],
    }
    if authorization:
        resource["authorization"] = authorization
    return resource
