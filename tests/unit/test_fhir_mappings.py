"""Every FHIR resource the mappings can make from casenet's views validates with
fhir.resources (FHIR 5.0.0) and has only bound codes: for every referral status and
outcome, every consent status, purpose, method and section; and the OpenAPI document's
FHIR examples too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from tests.support.fhir import check_fhir

from casenet.api.fhir_examples import FHIR_REQUESTS, FHIR_RESPONSES
from casenet.application.views import ConsentView, DisclosureView, ReferralView
from casenet.domain.consent import METHODS, PURPOSES
from casenet.domain.emergency import LEGAL_BASES
from casenet.domain.referral import OUTCOMES, STATUSES, URGENCIES
from casenet.domain.sections import DISCLOSED_SECTIONS, SECTIONS
from casenet.fhir.audit_event import audit_event_resource
from casenet.fhir.codes import TASK_STATUS
from casenet.fhir.consent import consent_resource
from casenet.fhir.organization import organization_resource
from casenet.fhir.outcome import ISSUE_TYPE, operation_outcome
from casenet.fhir.service_request import service_request_resource
from casenet.fhir.task import task_resource

NOW = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def referral(status: str, urgency: str, outcome: str | None) -> ReferralView:
    return ReferralView(
        id=uuid4(),
        version=3,
        case_id=uuid4(),
        client_id=uuid4(),
        from_agency_id=uuid4(),
        to_agency_id=uuid4(),
        service_type="housing",
        reason=None if urgency == "urgent" else "Rent arrears.",  # null after erasure
        urgency=urgency,
        consent_id=uuid4() if outcome else None,
        status=status,
        created_at=NOW,
        updated_at=NOW + timedelta(days=1),
        history=[],
        response_due_at=NOW + timedelta(days=7),
        overdue=False,
        outcome=outcome,
        outcome_note="Housed." if outcome else None,
    )


@pytest.mark.parametrize(("status", "urgency"), list(product(STATUSES, URGENCIES)))
def test_every_referral_status_makes_a_valid_task_and_service_request(
    status: str, urgency: str
) -> None:
    for outcome in OUTCOMES if status == "completed" else (None,):
        view = referral(status, urgency, outcome)
        task = check_fhir(_json(task_resource(view)))
        assert task["status"] == TASK_STATUS[status]
        check_fhir(_json(service_request_resource(view)))


@pytest.mark.parametrize(
    ("status", "purpose", "method"),
    list(product(("active", "withdrawn", "expired"), PURPOSES, METHODS)),
)
def test_every_consent_makes_a_valid_consent(status: str, purpose: str, method: str) -> None:
    view = ConsentView(
        id=uuid4(),
        version=2,
        case_id=uuid4(),
        client_id=uuid4(),
        grantee_agency_id=uuid4(),
        sections=list(SECTIONS),
        purpose=purpose,
        method=method,
        evidence="Form 7, signed.",
        valid_until=NOW + timedelta(days=30) if status == "expired" else None,
        status=status,
        granted_at=NOW,
        withdrawn_at=NOW + timedelta(days=2) if status == "withdrawn" else None,
        recorded_by_worker_id=uuid4(),
        given_by="guardian",
        representative_name="Jo Lopez",
    )
    consent = check_fhir(_json(consent_resource(view, uuid4())))
    assert consent["status"] == ("active" if status == "active" else "inactive")
    text = msgspec.json.encode(consent)
    assert b"Form 7" not in text  # never personal data: not the evidence,
    assert b"Jo Lopez" not in text  # nor who consented for the client


@pytest.mark.parametrize("basis", ["consent", *LEGAL_BASES])
def test_every_disclosure_makes_a_valid_audit_event(basis: str) -> None:
    view = DisclosureView(
        id=uuid4(),
        case_id=uuid4(),
        at=NOW,
        recipient_agency_id=uuid4(),
        worker_id=uuid4(),
        sections=list(DISCLOSED_SECTIONS),
        purposes=list(PURPOSES) if basis == "consent" else [],
        consent_ids=[uuid4()],
        basis=basis,
        legal_bases=[] if basis == "consent" else [basis],
    )
    check_fhir(_json(audit_event_resource(view)))


@pytest.mark.parametrize("kind", ["ngo", "hospital", "school", "refuge", "council"])
def test_every_agency_makes_a_valid_organization(kind: str) -> None:
    check_fhir(_json(organization_resource(uuid4(), "An agency", kind, kind == "refuge")))


@pytest.mark.parametrize("status", sorted(ISSUE_TYPE))
def test_every_error_makes_a_valid_operation_outcome(status: int) -> None:
    check_fhir(_json(operation_outcome(status, "detail", [("status", "must be one of")])))


@pytest.mark.parametrize("operation_id", sorted(FHIR_RESPONSES))
def test_the_documents_fhir_examples_are_valid(operation_id: str) -> None:
    check_fhir(FHIR_RESPONSES[operation_id])
    if operation_id in FHIR_REQUESTS:
        check_fhir(FHIR_REQUESTS[operation_id])


def _json(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as a client receives it (msgspec's JSON, as the server encodes it)."""
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(resource))
    return decoded
