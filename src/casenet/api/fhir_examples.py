"""Example bodies of the FHIR operations (``/fhir``), by operation id, for the OpenAPI
document: made by the FHIR mappings themselves from the REST examples' views (the
story of :mod:`casenet.api.examples`), so an example cannot drift from what is served.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from casenet.api.examples import AT, CASE, EASTSIDE, LATER, RESPONSES, ST_MARYS
from casenet.application.directory import ListedService
from casenet.application.views import ConsentView, DisclosureView, ReferralView
from casenet.domain.service import Service
from casenet.fhir.audit_event import audit_event_resource
from casenet.fhir.bundle import collection_bundle, searchset_bundle
from casenet.fhir.capability import capability_statement
from casenet.fhir.codes import OUTCOME_SYSTEM
from casenet.fhir.consent import consent_resource
from casenet.fhir.healthcare_service import healthcare_service_resource
from casenet.fhir.organization import organization_resource
from casenet.fhir.patient import patient_resource
from casenet.fhir.service_request import service_request_resource
from casenet.fhir.task import task_resource

BASE = "https://casenet.example.org/fhir/"
SERVICE = "8b9cad1e-3434-4e6f-a172-8d9eafb0c1d2"


def _view(name: str, kind: type[Any]) -> Any:
    return msgspec.convert(RESPONSES[name], kind, strict=False)


def _service() -> ListedService:
    return ListedService(
        Service(
            id=UUID(SERVICE),
            name="Emergency rent support",
            description="Pays a month's rent for families facing eviction.",
            needs=("housing",),
            languages=("en", "es"),
            areas=("Eastside",),
        ),
        UUID(EASTSIDE),
        "Eastside Welfare",
        False,
    )


def _examples() -> tuple[dict[str, Any], dict[str, Any]]:
    """(request bodies, response bodies), by operation id."""
    consent = _view("ConsentView", ConsentView)
    referral: ReferralView = _view("ReferralView", ReferralView)
    completed = msgspec.structs.replace(
        referral, status="completed", version=referral.version + 1, outcome="got_help"
    )
    disclosure = _view("DisclosurePage", msgspec.defstruct("P", [("items", list[DisclosureView])]))
    at = datetime.fromisoformat(LATER)
    task_search = f"{BASE}AuditEvent?entity={CASE}"
    outcome = {"system": OUTCOME_SYSTEM, "code": "got_help"}
    requests = {
        "fhir_update_task": {
            "resourceType": "Task",
            "id": str(referral.id),
            "status": "completed",
            "intent": "order",
            "output": [
                {"type": {"text": "outcome"}, "valueCodeableConcept": {"coding": [outcome]}}
            ],
            "note": [{"text": "Dialysis moved to afternoons from next week."}],
        }
    }
    responses = {
        "fhir_capabilities": capability_statement(datetime.fromisoformat(AT)),
        "fhir_read_consent": consent_resource(consent, UUID(EASTSIDE)),
        "fhir_read_service_request": service_request_resource(referral),
        "fhir_read_task": task_resource(referral),
        "fhir_update_task": task_resource(completed),
        "fhir_read_organization": organization_resource(
            UUID(ST_MARYS), "St Mary's Hospital", "hospital", False
        ),
        "fhir_read_healthcare_service": healthcare_service_resource(_service()),
        "fhir_search_audit_events": searchset_bundle(
            [audit_event_resource(d) for d in disclosure.items], at, BASE, task_search, None
        ),
        "fhir_read_bundle": collection_bundle(
            CASE,
            at,
            [
                patient_resource(referral.client_id, msgspec.UNSET),
                consent_resource(consent, UUID(EASTSIDE)),
                service_request_resource(referral),
                task_resource(referral),
            ],
            BASE,
        ),
    }
    return requests, msgspec.to_builtins(responses)


#: Example bodies of the FHIR operations (``application/fhir+json``), by operation id.
FHIR_REQUESTS, FHIR_RESPONSES = _examples()
