"""Referrals: the closed loop from request to outcome, and the conversation."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from casenet.api.docs import ACTION, DIRECTIONS, READ, WRITE, problems
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
from casenet.api.structs import (
    Complete,
    MessageCreate,
    MessagePage,
    Reason,
    ReferralCreate,
    ReferralPage,
)
from casenet.application.pages import page_in_memory
from casenet.application.views import MessageView, ReferralView
from casenet.domain.referral import STATUSES, Message
from casenet.domain.values import check_choice


def message_view(message: Message) -> MessageView:
    return MessageView(
        id=message.id,
        agency_id=message.agency_id,
        worker_id=message.worker_id,
        text=message.text,
        created_at=message.created_at,
    )


class ReferralController(Controller):
    """From the referring agency (the case owner) to the receiving agency."""

    path = "/v1/referrals"
    tags = ["referrals"]

    @post(
        "/",
        operation_id="request_referral",
        summary="Refer the client to another agency",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def request_referral(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ReferralCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReferralView]:
        """Caseworkers and supervisors of the case owner."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            referral = casenet.referrals.request(
                actor,
                case_id=data.case_id,
                to_agency_id=data.to_agency_id,
                service_type=data.service_type,
                reason=data.reason,
                urgency=data.urgency,
                consent_id=data.consent_id,
                new_id=new_id,
            )
            view = casenet.referral_queries.read(actor, referral.id)
            location = f"/v1/referrals/{referral.id}"
            return with_etag(view, referral.version, 201, Location=location), referral.client_id

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/",
        operation_id="list_referrals",
        summary="The agency's referral inbox or outbox",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def list_referrals(
        self,
        actor: CallerActor,
        casenet: Services,
        direction: Annotated[
            str,
            QueryParameter(
                name="direction",
                description="incoming or outgoing",
                schema_extra={"enum": list(DIRECTIONS)},
            ),
        ] = "incoming",
        status: Annotated[
            str | None,
            QueryParameter(name="status", required=False, schema_extra={"enum": list(STATUSES)}),
        ] = None,
        limit: Limit = None,
        after: After = None,
    ) -> ReferralPage:
        """Oldest first."""
        if status is not None:
            check_choice(status, STATUSES, "status")
        page = casenet.referral_queries.list(
            actor, direction=direction, status=status, limit=limit, after=after
        )
        return ReferralPage(items=page.items, next=page.next)

    @get(
        "/{referral_id:uuid}",
        operation_id="get_referral",
        summary="A referral, as either party sees it",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def get_referral(
        self, referral_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> Response[ReferralView]:
        """The receiving agency sees client sections only as its consents grant."""
        view = casenet.referral_queries.read(actor, referral_id)
        return with_etag(view, view.version)

    def _move(
        self,
        casenet: Services,
        actor: CallerActor,
        referral_id: FromPath[UUID],
        action: str,
        if_match: str | None,
        **details: str | None,
    ) -> Response[ReferralView]:
        casenet.referrals.move(
            actor, referral_id, action, expected_version=expected_version(if_match), **details
        )
        view = casenet.referral_queries.read(actor, referral_id)
        return with_etag(view, view.version)

    @post(
        "/{referral_id:uuid}/accept",
        operation_id="accept_referral",
        summary="Accept",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def accept(
        self,
        referral_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[ReferralView]:
        """The receiving agency: requested → accepted."""
        return self._move(casenet, actor, referral_id, "accept", if_match)

    @post(
        "/{referral_id:uuid}/reject",
        operation_id="reject_referral",
        summary="Reject",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def reject(
        self,
        referral_id: FromPath[UUID],
        data: JSONBody[Reason],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[ReferralView]:
        """The receiving agency: requested → rejected."""
        return self._move(casenet, actor, referral_id, "reject", if_match, reason=data.reason)

    @post(
        "/{referral_id:uuid}/start",
        operation_id="start_referral",
        summary="Start work",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def start(
        self,
        referral_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[ReferralView]:
        """The receiving agency: accepted or on_hold → in_progress."""
        return self._move(casenet, actor, referral_id, "start", if_match)

    @post(
        "/{referral_id:uuid}/hold",
        operation_id="hold_referral",
        summary="Put on hold",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def hold(
        self,
        referral_id: FromPath[UUID],
        data: JSONBody[Reason],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[ReferralView]:
        """The receiving agency: accepted or in_progress → on_hold."""
        return self._move(casenet, actor, referral_id, "hold", if_match, reason=data.reason)

    @post(
        "/{referral_id:uuid}/complete",
        operation_id="complete_referral",
        summary="Complete with an outcome",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def complete(
        self,
        referral_id: FromPath[UUID],
        data: JSONBody[Complete],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[ReferralView]:
        """The receiving agency: in_progress → completed; an unknown outcome is 409."""
        return self._move(
            casenet, actor, referral_id, "complete", if_match, outcome=data.outcome, note=data.note
        )

    @post(
        "/{referral_id:uuid}/fail",
        operation_id="fail_referral",
        summary="Record failure",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def fail(
        self,
        referral_id: FromPath[UUID],
        data: JSONBody[Reason],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[ReferralView]:
        """The receiving agency: in_progress → failed."""
        return self._move(casenet, actor, referral_id, "fail", if_match, reason=data.reason)

    @post(
        "/{referral_id:uuid}/cancel",
        operation_id="cancel_referral",
        summary="Cancel",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def cancel(
        self,
        referral_id: FromPath[UUID],
        data: JSONBody[Reason],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[ReferralView]:
        """The referring agency: requested, accepted or in_progress → cancelled."""
        return self._move(casenet, actor, referral_id, "cancel", if_match, reason=data.reason)

    @post(
        "/{referral_id:uuid}/messages",
        operation_id="post_referral_message",
        summary="Write to the other agency about the referral",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def post_message(
        self,
        request: Request[Any, Any, Any],
        referral_id: FromPath[UUID],
        data: JSONBody[MessageCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MessageView]:
        """Either party, in every status."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            referral, message = casenet.referrals.post_message(
                actor, referral_id, text=data.text, new_id=new_id
            )
            return Response(message_view(message), status_code=201), referral.client_id

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/{referral_id:uuid}/messages",
        operation_id="list_referral_messages",
        summary="The conversation between the two agencies",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def list_messages(
        self,
        referral_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        limit: Limit = None,
        after: After = None,
    ) -> MessagePage:
        """Either party; oldest first."""
        messages = casenet.referral_queries.party_referral(actor, referral_id).messages
        page = page_in_memory([message_view(m) for m in messages], limit, after)
        return MessagePage(items=page.items, next=page.next)
