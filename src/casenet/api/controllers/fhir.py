"""FHIR R5 under ``/fhir``: the same tokens, the same visibility, the same services as
the REST API; bodies ``application/fhir+json``, errors OperationOutcomes (the app's
handlers, :mod:`casenet.api.fhir_errors`). Each handler asks the application for a view
and hands it to a mapping of :mod:`casenet.fhir`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, put
from litestar.params import Body, FromPath, QueryParameter

from casenet.api.docs import ACTION, READ
from casenet.api.fhir_errors import fhir_before_request, outcomes
from casenet.api.http import CallerActor, IfMatch, Services, expected_version
from casenet.application.fhir_exchange import CaseRecord
from casenet.application.views import ReferralView
from casenet.domain.aggregate import utcnow
from casenet.fhir import FHIR_JSON, Resource
from casenet.fhir.audit_event import audit_event_resource
from casenet.fhir.bundle import collection_bundle, searchset_bundle
from casenet.fhir.capability import capability_statement
from casenet.fhir.consent import consent_resource
from casenet.fhir.healthcare_service import healthcare_service_resource
from casenet.fhir.organization import organization_resource
from casenet.fhir.patient import patient_resource
from casenet.fhir.service_request import service_request_resource
from casenet.fhir.task import task_resource
from casenet.fhir.task_update import TaskUpdate, task_move

FhirResponse = Response[Resource]
#: ``PUT /fhir/Task/{id}``'s body: the Task, as ``application/fhir+json`` (or JSON).
TaskBody = Annotated[TaskUpdate, Body(media_type=FHIR_JSON)]


def fhir(resource: Resource, version: int | None = None) -> FhirResponse:
    """``resource`` as ``application/fhir+json``; with a version, its weak ETag (FHIR's
    ``W/"3"``, which ``If-Match`` may name as it is)."""
    headers = {"ETag": f'W/"{version}"'} if version is not None else None
    return Response(resource, media_type=FHIR_JSON, headers=headers)


def base_url(request: Request[Any, Any, Any]) -> str:
    """The ``/fhir/`` address the caller used (a Bundle's ``fullUrl``s start with it)."""
    return str(request.base_url).rstrip("/") + "/fhir/"


def _task(view: ReferralView) -> FhirResponse:
    return fhir(task_resource(view), view.version)


class FhirController(Controller):
    """FHIR R5: Consent, ServiceRequest, Task, Organization, HealthcareService,
    AuditEvent, Bundle and the CapabilityStatement."""

    path = "/fhir"
    tags = ["fhir"]
    # Litestar takes a hook set on the class unbound (Controller.__init__).
    before_request = fhir_before_request  # type: ignore[assignment]

    @get(
        "/metadata",
        operation_id="fhir_capabilities",
        summary="The CapabilityStatement",
        media_type=FHIR_JSON,
        sync_to_thread=True,  # touches nothing; in a thread as every casenet handler
    )
    def metadata(self) -> FhirResponse:
        """What this server serves, in FHIR's terms; no token needed."""
        return fhir(capability_statement(utcnow()))

    @get(
        "/Consent/{consent_id:uuid}",
        operation_id="fhir_read_consent",
        summary="A consent as a FHIR Consent",
        media_type=FHIR_JSON,
        sync_to_thread=True,
        responses=outcomes(*READ),
    )
    def consent(
        self, consent_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> FhirResponse:
        """Workers of the agency that owns the case; ``inactive`` once withdrawn or expired."""
        owned = casenet.fhir.consent(actor, consent_id)
        return fhir(consent_resource(owned.view, owned.owner_agency_id), owned.view.version)

    @get(
        "/ServiceRequest/{referral_id:uuid}",
        operation_id="fhir_read_service_request",
        summary="A referral as a FHIR ServiceRequest",
        media_type=FHIR_JSON,
        sync_to_thread=True,
        responses=outcomes(*READ),
    )
    def service_request(
        self, referral_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> FhirResponse:
        """Either agency of the referral."""
        view = casenet.fhir.referral(actor, referral_id)
        return fhir(service_request_resource(view), view.version)

    @get(
        "/Task/{referral_id:uuid}",
        operation_id="fhir_read_task",
        summary="A referral's Task (SDOH Clinical Care)",
        media_type=FHIR_JSON,
        sync_to_thread=True,
        responses=outcomes(*READ),
    )
    def read_task(
        self, referral_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> FhirResponse:
        """Either agency of the referral; ``meta.versionId`` is the ETag to send back."""
        return _task(casenet.fhir.referral(actor, referral_id))

    @put(
        "/Task/{referral_id:uuid}",
        operation_id="fhir_update_task",
        summary="Move the referral: the Task's new status",
        media_type=FHIR_JSON,
        status_code=200,
        sync_to_thread=True,
        responses=outcomes(*ACTION),
    )
    def update_task(
        self,
        referral_id: FromPath[UUID],
        data: TaskBody,
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> FhirResponse:
        """The receiving agency: ``status`` accepted, rejected, in-progress, on-hold,
        completed (the outcome a ``referral-outcome`` code in ``output``) or failed,
        ``statusReason.concept.text`` the reason a rejection, hold or failure needs; the
        referring agency: cancelled. The same move as ``POST /v1/referrals/{id}/accept``
        and the rest: an illegal one is 409, a stale ``If-Match`` 412. The status the
        referral already has is a no-op 200 (a retry)."""
        move = task_move(data)
        view = casenet.fhir.move_task(actor, referral_id, move, expected_version(if_match))
        return _task(view)

    @get(
        "/Organization/{agency_id:uuid}",
        operation_id="fhir_read_organization",
        summary="An agency as a FHIR Organization",
        media_type=FHIR_JSON,
        sync_to_thread=True,
        responses=outcomes(*READ),
    )
    def organization(
        self, agency_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> FhirResponse:
        """Any worker, as the directory."""
        agency = casenet.directory.agency(agency_id)
        resource = organization_resource(agency.id, agency.name, agency.kind, agency.restricted)
        return fhir(resource, agency.version)

    @get(
        "/HealthcareService/{service_id:uuid}",
        operation_id="fhir_read_healthcare_service",
        summary="A service of the directory as a FHIR HealthcareService",
        media_type=FHIR_JSON,
        sync_to_thread=True,
        responses=outcomes(*READ),
    )
    def healthcare_service(
        self, service_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> FhirResponse:
        """Any worker, as the directory."""
        return fhir(healthcare_service_resource(casenet.services.service(actor, service_id)))

    @get(
        "/AuditEvent",
        operation_id="fhir_search_audit_events",
        summary="A case's disclosures as FHIR AuditEvents",
        media_type=FHIR_JSON,
        sync_to_thread=True,
        responses=outcomes(*READ),
    )
    def audit_events(
        self,
        request: Request[Any, Any, Any],
        actor: CallerActor,
        casenet: Services,
        entity: Annotated[
            UUID, QueryParameter(name="entity", description="The case's id.", required=True)
        ],
        count: Annotated[
            int | None, QueryParameter(name="_count", required=False, ge=1, le=500)
        ] = None,
        after: Annotated[str | None, QueryParameter(name="after", required=False)] = None,
    ) -> FhirResponse:
        """Supervisors and auditors of the case's owner: a searchset Bundle, oldest first,
        ``_count`` a page (default 50), the ``next`` link to the following page."""
        page = casenet.case_queries.disclosures(
            actor, case_id=entity, since=None, until=None, limit=count, after=after
        )
        base = base_url(request)
        query = {"entity": str(entity), **({"_count": str(count)} if count else {})}
        self_url = f"{base}AuditEvent?{urlencode({**query, **({'after': after} if after else {})})}"
        next_url = None
        if page.next is not None:
            next_url = f"{base}AuditEvent?{urlencode({**query, 'after': page.next})}"
        resources = [audit_event_resource(d) for d in page.items]
        return fhir(searchset_bundle(resources, utcnow(), base, self_url, next_url))

    @get(
        "/Bundle/{case_id:uuid}",
        operation_id="fhir_read_bundle",
        summary="A case's resources the caller may see, as a FHIR Bundle",
        media_type=FHIR_JSON,
        sync_to_thread=True,
        responses=outcomes(*READ),
    )
    def bundle(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
    ) -> FhirResponse:
        """The owner: the client, every consent and referral of the case. Another agency:
        the client as its consents grant (recorded as a disclosure, as a read of the case
        is), the consents it reads under and the referrals made to it; nothing else (404
        when it may see nothing of the case)."""
        record = casenet.fhir.case_record(actor, case_id)
        resources = _case_resources(record)
        for agency_id in _agencies_of(record):  # public: the directory's entries
            agency = casenet.directory.agency(agency_id)
            resources.append(
                organization_resource(agency.id, agency.name, agency.kind, agency.restricted)
            )
        return fhir(collection_bundle(str(case_id), utcnow(), resources, base_url(request)))


def _case_resources(record: CaseRecord) -> list[Resource]:
    case = record.case
    resources = [patient_resource(case.client_id, case.client)]
    resources += [consent_resource(c.view, c.owner_agency_id) for c in record.consents]
    for referral in record.referrals:
        resources += [service_request_resource(referral), task_resource(referral)]
    return resources


def _agencies_of(record: CaseRecord) -> list[UUID]:
    """The agencies the record's resources refer to, the owner first, each once."""
    found = [record.case.owner_agency_id]
    found += [c.view.grantee_agency_id for c in record.consents]
    for referral in record.referrals:
        found += [referral.from_agency_id, referral.to_agency_id]
    return list(dict.fromkeys(found))
