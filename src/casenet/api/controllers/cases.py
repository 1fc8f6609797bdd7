"""Cases: open, read (as consent allows), notes, close and reopen, sharing, access."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from casenet.api.docs import ACTION, CASE_STATUSES, READ, WRITE, problems
from casenet.api.http import (
    After,
    CallerActor,
    IdempotencyKey,
    IfMatch,
    Limit,
    Services,
    expected_version,
    idempotent,
    query_instant,
    with_etag,
    with_view_etag,
)
from casenet.api.structs import (
    CaseCreate,
    CasePage,
    ConsentCreate,
    ConsentPage,
    NoteCreate,
    Reason,
    SharedCasePage,
)
from casenet.application import ClientDetails
from casenet.application.pages import page_in_memory
from casenet.application.rendering import render_consent
from casenet.application.views import Access, CaseView, ConsentView, NoteView
from casenet.domain.case import Case


def owner_view(casenet: Services, case: Case) -> CaseView:
    """The case as its owner sees it: every section."""
    return casenet.case_queries.owner_view(case)


class CaseController(Controller):
    """A client's case, owned by the agency that opened it."""

    path = "/v1/cases"
    tags = ["cases"]

    @post(
        "/",
        operation_id="open_case",
        summary="Open a case for a client",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def open_case(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CaseCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        """Caseworkers and supervisors register the client and open the case at once."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            case = casenet.cases.open_case(
                actor,
                client=ClientDetails(
                    name=data.client.name,
                    date_of_birth=data.client.date_of_birth,
                    phone=data.client.phone,
                    address=data.client.address,
                ),
                summary=data.summary,
                needs=list(data.needs),
                new_id=new_id,
            )
            view = owner_view(casenet, case)
            response = with_etag(view, case.version, 201, Location=f"/v1/cases/{case.id}")
            return response, case.client_id

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/",
        operation_id="list_cases",
        summary="The agency's own cases",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def list_cases(
        self,
        actor: CallerActor,
        casenet: Services,
        status: Annotated[
            str | None,
            QueryParameter(
                name="status", required=False, schema_extra={"enum": list(CASE_STATUSES)}
            ),
        ] = None,
        limit: Limit = None,
        after: After = None,
    ) -> CasePage:
        """Oldest first; ``status`` is ``open`` or ``closed``."""
        page = casenet.case_queries.list_cases(actor, status=status, limit=limit, after=after)
        return CasePage(items=page.items, next=page.next)

    @get(
        "/{case_id:uuid}",
        operation_id="get_case",
        summary="A case, as the caller's agency may see it",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def get_case(
        self, case_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> Response[CaseView]:
        """The owner sees everything; another agency only the sections its active consents
        grant (the others absent, ``shared_under`` naming the consents), and the read is
        recorded as a disclosure; with no active consent the case does not exist (404).
        For another agency, ``version`` and ``updated_at`` are those of the last change
        it can see, and the ``ETag`` a digest of the view it gets."""
        view = casenet.case_queries.read_case(actor, case_id)
        if view.owner_agency_id != actor.agency_id:
            # A grantee's ETag describes what it sees, not the whole case.
            return with_view_etag(view)
        return with_etag(view, view.version)

    @post(
        "/{case_id:uuid}/notes",
        operation_id="add_note",
        summary="Write a note on the case",
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def add_note(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[UUID],
        data: JSONBody[NoteCreate],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[NoteView]:
        """Caseworkers and supervisors of the owner; the category decides the section."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            case, note = casenet.cases.add_note(
                actor,
                case_id,
                category=data.category,
                text=data.text,
                expected_version=expected_version(if_match),
                new_id=new_id,
            )
            view = NoteView(
                id=note.id,
                category=note.category,
                text=note.text,
                author_worker_id=note.author_worker_id,
                created_at=note.created_at,
            )
            return with_etag(view, case.version, 201), case.client_id

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @post(
        "/{case_id:uuid}/close",
        operation_id="close_case",
        summary="Close the case",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def close_case(
        self,
        case_id: FromPath[UUID],
        data: JSONBody[Reason],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[CaseView]:
        """Caseworkers and supervisors of the owner."""
        case = casenet.cases.close_case(
            actor, case_id, reason=data.reason, expected_version=expected_version(if_match)
        )
        return with_etag(owner_view(casenet, case), case.version)

    @post(
        "/{case_id:uuid}/reopen",
        operation_id="reopen_case",
        summary="Reopen a closed case",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def reopen_case(
        self,
        case_id: FromPath[UUID],
        data: JSONBody[Reason],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[CaseView]:
        """Caseworkers and supervisors of the owner."""
        case = casenet.cases.reopen_case(
            actor, case_id, reason=data.reason, expected_version=expected_version(if_match)
        )
        return with_etag(owner_view(casenet, case), case.version)

    @get(
        "/{case_id:uuid}/access",
        operation_id="get_case_access",
        summary="Who could see which sections at an instant",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def access(
        self,
        case_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        at: Annotated[datetime | None, QueryParameter(name="at", required=False)] = None,
    ) -> Access:
        """Supervisors and auditors of the owner; ``at`` defaults to now."""
        return casenet.case_queries.access(actor, case_id, query_instant(at, "at"))

    @post(
        "/{case_id:uuid}/consents",
        operation_id="grant_consent",
        summary="Record the client's consent to disclose sections to an agency",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def grant_consent(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[UUID],
        data: JSONBody[ConsentCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ConsentView]:
        """Caseworkers and supervisors of the owner (no re-disclosure by a grantee)."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            consent = casenet.consents.grant(
                actor,
                case_id,
                grantee_agency_id=data.grantee_agency_id,
                sections=list(data.sections),
                purpose=data.purpose,
                method=data.method,
                valid_until=data.valid_until,
                evidence=data.evidence,
                given_by=data.given_by,
                representative_name=data.representative_name,
                new_id=new_id,
            )
            view = render_consent(consent)
            location = f"/v1/consents/{consent.id}"
            return with_etag(view, consent.version, 201, Location=location), consent.client_id

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/{case_id:uuid}/consents",
        operation_id="list_case_consents",
        summary="Every consent of the case, active or not",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def list_consents(
        self,
        case_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        limit: Limit = None,
        after: After = None,
    ) -> ConsentPage:
        """Workers of the owner; ``status`` is computed now (active, withdrawn, expired)."""
        consents = casenet.case_queries.consents_of_case(actor, case_id)
        page = page_in_memory(consents, limit, after)
        return ConsentPage(items=page.items, next=page.next)


class SharedCaseController(Controller):
    """Cases other agencies share with the caller's agency."""

    path = "/v1/shared-cases"
    tags = ["cases"]

    @get(
        "/",
        operation_id="list_shared_cases",
        summary="Cases shared with the caller's agency, with the sections granted now",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def shared_cases(
        self, actor: CallerActor, casenet: Services, limit: Limit = None, after: After = None
    ) -> SharedCasePage:
        """Any worker; only consents active now count."""
        page = casenet.case_queries.shared_cases(actor, limit=limit, after=after)
        return SharedCasePage(items=page.items, next=page.next)
