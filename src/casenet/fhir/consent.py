"""Consent (FHIR R5) from a :class:`~casenet.application.views.ConsentView`.

The client (``subject``, ``grantor``) permits the owning agency (``manager``,
``controller``) to disclose the sections (``provision.securityLabel``) to the grantee
(``grantee``, and the provision's information recipient) for the purpose
(``provision.purpose``) over ``period``. ``verification`` says how it was recorded.
The evidence text and a representative's name (personal data) are never in it.
"""

from __future__ import annotations

from uuid import UUID

from casenet.application.views import ConsentView
from casenet.fhir import Resource
from casenet.fhir.codes import (
    CONSENT_ACTION,
    CONSENT_CATEGORY,
    CONSENT_STATE,
    DISCLOSE,
    LOINC,
    PARTICIPATION_TYPE,
    RECIPIENT_ROLE,
    RECORDING_METHOD_DISPLAY,
    RECORDING_METHOD_SYSTEM,
    coding,
    concept,
    purpose_coding,
    reference,
    section_label,
)


def consent_resource(view: ConsentView, owner_agency_id: UUID) -> Resource:
    """The consent (of a case ``owner_agency_id`` owns) as a FHIR Consent; ``inactive``
    once withdrawn or expired."""
    end = view.withdrawn_at or view.valid_until
    period: dict[str, object] = {"start": view.granted_at}
    if end is not None:
        period["end"] = end
    owner = reference("Organization", owner_agency_id)
    grantee = reference("Organization", view.grantee_agency_id)
    patient = reference("Patient", view.client_id)
    method = view.method
    return {
        "resourceType": "Consent",
        "id": str(view.id),
        "meta": {"versionId": str(view.version)},
        "status": CONSENT_STATE[view.status],
        "category": [concept(coding(LOINC, *CONSENT_CATEGORY))],
        "subject": patient,
        "date": view.granted_at.date().isoformat(),
        "period": period,
        "grantor": [patient],
        "grantee": [grantee],
        "manager": [owner],
        "controller": [owner],
        "verification": [
            {
                "verified": True,
                "verificationType": concept(
                    coding(RECORDING_METHOD_SYSTEM, method, RECORDING_METHOD_DISPLAY.get(method))
                ),
                "verifiedBy": owner,
                "verifiedWith": patient,
                "verificationDate": [view.granted_at],
            }
        ],
        "decision": "permit",
        "provision": [
            {
                "period": period,
                "actor": [
                    {
                        "role": concept(coding(PARTICIPATION_TYPE, *RECIPIENT_ROLE)),
                        "reference": grantee,
                    }
                ],
                "action": [concept(coding(CONSENT_ACTION, *DISCLOSE))],
                "purpose": [purpose_coding(view.purpose)],
                "securityLabel": [section_label(s) for s in view.sections],
            }
        ],
    }
