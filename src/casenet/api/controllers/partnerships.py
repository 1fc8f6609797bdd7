"""Partnerships (rule 7: which agencies work together, no client data): admins ask,
accept, decline and end them; any worker lists its agency's. Only the two agencies ever
see one: to anyone else it answers as a random id."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

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
from casenet.api.structs import Body
from casenet.domain.partnership import STATUSES, Partnership
from casenet.domain.vocabulary import word_of
from casenet.infrastructure.projections.partnerships import PartnershipRow

PartnershipStatus = Annotated[str, word_of(STATUSES, "active")]


class PartnershipCreate(Body):
    agency_id: UUID


class PartnershipView(msgspec.Struct, kw_only=True):
    """A partnership: ``requester_agency_id`` asked, ``partner_agency_id`` answers."""

    id: UUID
    version: int
    requester_agency_id: UUID
    partner_agency_id: UUID
    status: PartnershipStatus
    requested_at: datetime
    changed_at: datetime


class PartnershipList(msgspec.Struct, kw_only=True):
    """The caller's agency's partnerships: active ones and requests not yet answered
    (asked by it or of it), oldest first."""

    items: list[PartnershipView]
    next: str | None


def partnership_view(partnership: Partnership) -> PartnershipView:
    return PartnershipView(
        id=partnership.id,
        version=partnership.version,
        requester_agency_id=partnership.requester_agency_id,
        partner_agency_id=partnership.partner_agency_id,
        status=partnership.status,
        requested_at=partnership.created_on,
        changed_at=partnership.modified_on,
    )


def row_view(row: PartnershipRow) -> PartnershipView:
    return PartnershipView(
        id=UUID(row.partnership_id),
        version=row.version,
        requester_agency_id=UUID(row.requester_agency_id),
        partner_agency_id=UUID(row.partner_agency_id),
        status=row.status,
        requested_at=datetime.fromisoformat(row.requested_at),
        changed_at=datetime.fromisoformat(row.changed_at),
    )


class PartnershipController(Controller):
    """Partnerships between agencies; each is seen by its two agencies only."""

    path = "/v1/partnerships"
    tags = ["network"]

    @post(
        "/",
        operation_id="request_partnership",
        summary="Ask another agency to work together (admin)",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def request_partnership(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PartnershipCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PartnershipView]:
        """422 for the caller's own agency or an unknown one; 409 while the two agencies
        have a partnership requested or active."""

        def create(_: UUID | None) -> tuple[Response[Any], UUID | None]:
            # The id is the pair's own (a racing request is a 409), not the key's.
            partnership = casenet.partnerships.request(actor, data.agency_id)
            location = {"Location": f"/v1/partnerships/{partnership.id}"}
            view = partnership_view(partnership)
            return with_etag(view, view.version, 201, **location), None

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/",
        operation_id="list_partnerships",
        summary="The agency's partners and pending requests",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def list_partnerships(
        self, actor: CallerActor, casenet: Services, limit: Limit = None, after: After = None
    ) -> PartnershipList:
        """Active partnerships and requests either way; declined and ended ones are not
        listed (a partnership's own URL still answers its two agencies)."""
        page = casenet.partnerships.of_agency(actor, limit=limit, after=after)
        return PartnershipList(items=[row_view(r) for r in page.items], next=page.next)

    @get(
        "/{partnership_id:uuid}",
        operation_id="get_partnership",
        summary="A partnership, to its two agencies",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def get_partnership(
        self, partnership_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> Response[PartnershipView]:
        """Any worker of either agency; anyone else: 404, as a random id."""
        view = partnership_view(casenet.partnerships.visible(actor, partnership_id))
        return with_etag(view, view.version)

    def _answer(
        self,
        casenet: Services,
        actor: CallerActor,
        partnership_id: UUID,
        action: str,
        if_match: str | None,
    ) -> Response[PartnershipView]:
        partnership = casenet.partnerships.answer(
            actor, partnership_id, action, expected_version=expected_version(if_match)
        )
        view = partnership_view(partnership)
        return with_etag(view, view.version)

    @post(
        "/{partnership_id:uuid}/accept",
        operation_id="accept_partnership",
        summary="Accept a partnership asked of the agency (admin)",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def accept(
        self,
        partnership_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[PartnershipView]:
        """An admin of the asked agency; 409 unless it is ``requested``."""
        return self._answer(casenet, actor, partnership_id, "accept", if_match)

    @post(
        "/{partnership_id:uuid}/decline",
        operation_id="decline_partnership",
        summary="Decline a partnership asked of the agency (admin)",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def decline(
        self,
        partnership_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[PartnershipView]:
        """An admin of the asked agency; 409 unless it is ``requested``."""
        return self._answer(casenet, actor, partnership_id, "decline", if_match)

    @post(
        "/{partnership_id:uuid}/end",
        operation_id="end_partnership",
        summary="End a partnership, or withdraw a request (admin of either agency)",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def end(
        self,
        partnership_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[PartnershipView]:
        """An admin of either agency; 409 once declined or ended. Appeals it carried
        stay where they reached."""
        return self._answer(casenet, actor, partnership_id, "end", if_match)
