"""Emergency grants: disclosure without consent under a legal basis, reviewed after the
fact (API.md "Emergency grants", DESIGN.md rule 2b). Only the owning agency may know
of them: to any other agency every route answers as for a random id (404)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from casenet.api.docs import ACTION, READ, WRITE, problems
from casenet.api.http import (
    After,
    CallerActor,
    IdempotencyKey,
    IfMatch,
    Limit,
    Services,
    expected_version,
    idempotent,
    with_etag,
)
from casenet.api.structs import Body, Section, ShortText
from casenet.application.emergency_grants import (
    REVIEW_FILTERS,
    EmergencyGrantView,
    render_emergency_grant,
)
from casenet.application.pages import page_in_memory
from casenet.domain.emergency import FINDINGS, LEGAL_BASES, MAX_MINUTES, MIN_MINUTES
from casenet.domain.vocabulary import word_of


class EmergencyGrantCreate(Body):
    grantee_agency_id: UUID
    sections: Annotated[
        list[Section], msgspec.Meta(min_length=1, examples=[["identity", "contact", "summary"]])
    ]
    basis: Annotated[str, word_of(LEGAL_BASES, "safeguarding")]
    justification: ShortText
    minutes: Annotated[
        int,
        msgspec.Meta(
            examples=[1440],
            description=f"How long it lasts: {MIN_MINUTES} to {MAX_MINUTES} (else 422).",
        ),
    ]


class EmergencyGrantReview(Body):
    finding: Annotated[str, word_of(FINDINGS, "justified")]
    note: ShortText


class EmergencyRevoke(Body):
    reason: ShortText


class EmergencyGrantPage(msgspec.Struct, kw_only=True):
    items: list[EmergencyGrantView]
    next: str | None


ReviewFilter = Annotated[
    str,
    QueryParameter(
        name="review",
        required=True,
        max_length=64,
        description=f"One of {', '.join(REVIEW_FILTERS)} (else 422).",
        schema_extra={"enum": list(REVIEW_FILTERS)},
    ),
]


class CaseEmergencyGrantController(Controller):
    """A case's emergency grants, for its owner."""

    path = "/v1/cases/{case_id:uuid}/emergency-grants"
    tags = ["emergency grants"]

    @post(
        "/",
        operation_id="create_emergency_grant",
        summary="Share sections without the client's consent, under a legal basis",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def create(
        self,
        request: Request[Any, Any, Any],
        case_id: FromPath[UUID],
        data: JSONBody[EmergencyGrantCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EmergencyGrantView]:
        """Caseworkers and supervisors of the owner. Active at once for ``minutes``; a
        supervisor other than its creator is to review it within 72 hours."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            grant = casenet.emergency_grants.create(
                actor,
                case_id,
                grantee_agency_id=data.grantee_agency_id,
                sections=list(data.sections),
                basis=data.basis,
                justification=data.justification,
                minutes=data.minutes,
                new_id=new_id,
            )
            view = render_emergency_grant(grant)
            location = f"/v1/emergency-grants/{grant.id}"
            return with_etag(view, grant.version, 201, Location=location), grant.client_id

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/",
        operation_id="list_case_emergency_grants",
        summary="Every emergency grant of the case, any status",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def list_grants(
        self,
        case_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        limit: Limit = None,
        after: After = None,
    ) -> EmergencyGrantPage:
        """Workers of the owner; ``status`` is computed now (active, revoked, expired)."""
        grants = casenet.emergency_grants.of_case(actor, case_id)
        page = page_in_memory([render_emergency_grant(g) for g in grants], limit, after)
        return EmergencyGrantPage(items=page.items, next=page.next)


class EmergencyGrantController(Controller):
    """One emergency grant, and the grants awaiting review."""

    path = "/v1/emergency-grants"
    tags = ["emergency grants"]

    @get(
        "/",
        operation_id="list_emergency_grants_awaiting_review",
        summary="The agency's emergency grants awaiting review (pending or overdue)",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def awaiting_review(
        self,
        actor: CallerActor,
        casenet: Services,
        review: ReviewFilter,
        limit: Limit = None,
        after: After = None,
    ) -> EmergencyGrantPage:
        """Supervisors and auditors: ``pending`` not yet reviewed, ``overdue`` not
        reviewed and past ``review_due_at`` (72 hours after creation); oldest first."""
        page = casenet.emergency_grants.awaiting_review(
            actor, review=review, limit=limit, after=after
        )
        return EmergencyGrantPage(items=page.items, next=page.next)

    @get(
        "/{grant_id:uuid}",
        operation_id="get_emergency_grant",
        summary="An emergency grant",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def get_grant(
        self, grant_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> Response[EmergencyGrantView]:
        """Workers of the agency that owns the case."""
        grant = casenet.emergency_grants.owned_grant(actor, grant_id)
        return with_etag(render_emergency_grant(grant), grant.version)

    @post(
        "/{grant_id:uuid}/revoke",
        operation_id="revoke_emergency_grant",
        summary="End an emergency grant before it expires",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def revoke(
        self,
        grant_id: FromPath[UUID],
        data: JSONBody[EmergencyRevoke],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[EmergencyGrantView]:
        """Caseworkers and supervisors of the owner; effective for every read that starts
        after this answer. A revoked or expired grant: 409."""
        grant = casenet.emergency_grants.revoke(
            actor, grant_id, reason=data.reason, expected_version=expected_version(if_match)
        )
        return with_etag(render_emergency_grant(grant), grant.version)

    @post(
        "/{grant_id:uuid}/review",
        operation_id="review_emergency_grant",
        summary="Review an emergency grant after the fact",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def review(
        self,
        grant_id: FromPath[UUID],
        data: JSONBody[EmergencyGrantReview],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[EmergencyGrantView]:
        """A supervisor of the owner who did not create it (else 403); once (else 409)."""
        grant = casenet.emergency_grants.review(
            actor,
            grant_id,
            finding=data.finding,
            note=data.note,
            expected_version=expected_version(if_match),
        )
        return with_etag(render_emergency_grant(grant), grant.version)
