"""Organization (FHIR R5) from an agency of the directory: public, like its entry in
``GET /v1/agencies/{id}``. casenet keeps no agency's address (a refuge's whereabouts
are never in it); ``restricted`` is said in the description."""

from __future__ import annotations

from uuid import UUID

from casenet.fhir import Resource
from casenet.fhir.codes import (
    AGENCY_KIND_SYSTEM,
    ORGANIZATION_KIND,
    ORGANIZATION_TYPE,
    OTHER_ORGANIZATION,
    coding,
    concept,
)

RESTRICTED = (
    "A restricted agency: it never receives a client's identifying sections, whatever a "
    "consent says."
)


def organization_resource(agency_id: UUID, name: str, kind: str, restricted: bool) -> Resource:
    """An agency as an Organization (its id the agency's)."""
    kind_code = ORGANIZATION_KIND.get(kind, OTHER_ORGANIZATION)
    resource: Resource = {
        "resourceType": "Organization",
        "id": str(agency_id),
        "active": True,
        "type": [concept(coding(ORGANIZATION_TYPE, *kind_code), coding(AGENCY_KIND_SYSTEM, kind))],
        "name": name,
    }
    if restricted:
        resource["description"] = RESTRICTED
    return resource
