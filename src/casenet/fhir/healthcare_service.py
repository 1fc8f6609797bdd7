"""HealthcareService (FHIR R5) from a service of the directory
(:class:`~casenet.application.directory.ListedService`): public, any worker's to
search, as in ``GET /v1/services``."""

from __future__ import annotations

from casenet.application.directory import ListedService
from casenet.fhir import Resource
from casenet.fhir.codes import (
    CAPACITY_SYSTEM,
    LANGUAGE,
    NEED_SYSTEM,
    coding,
    concept,
    reference,
)


def healthcare_service_resource(listed: ListedService) -> Resource:
    """A service as a HealthcareService (its id the service's): needs as its types,
    languages as BCP 47 codes, areas as coverage, capacity as a characteristic."""
    service = listed.service
    resource: Resource = {
        "resourceType": "HealthcareService",
        "id": str(listed.id),
        "active": True,
        "providedBy": reference("Organization", listed.agency_id, listed.agency_name),
        "type": [concept(coding(NEED_SYSTEM, need)) for need in service.needs],
        "name": service.name,
        "comment": service.description,
        "characteristic": [concept(coding(CAPACITY_SYSTEM, service.capacity))],
    }
    if service.languages:
        resource["communication"] = [concept(coding(LANGUAGE, lang)) for lang in service.languages]
    if service.areas:
        resource["coverageArea"] = [{"display": area} for area in service.areas]
    if service.eligibility is not None:
        resource["eligibility"] = [{"comment": service.eligibility}]
    return resource
