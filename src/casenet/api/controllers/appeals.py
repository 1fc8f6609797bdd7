"""Appeals (rule 7): a call for help that carries no client data, passed along the
network. Posted by caseworkers and supervisors; read, answered and relayed by any worker
of an agency it reached; closed by the appealing agency. An appeal that never reached
the caller's agency answers as a random id."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter

from casenet.api.docs import ACTION, READ, WRITE, problems
from casenet.api.errors import FieldError, Problem, on_validation_error, problem
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
from casenet.api.structs import Body, Instant, Need, ShortText, Text
from casenet.domain.aggregate import utcnow
from casenet.domain.appeal import ANSWERS, REACHES, STATUSES, Appeal, AppealResponse
from casenet.domain.vocabulary import word_of
from casenet.infrastructure.projections.appeals import AppealRow
from casenet.infrastructure.projections.facts import normalise_time

Answer = Annotated[str, word_of(ANSWERS, "can_help")]
Reach = Annotated[str, word_of(REACHES, "partners")]
AppealStatus = Annotated[str, word_of(STATUSES, "open")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Area = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `([^`]+)`$")
_CLIENT_DATA = re.compile(r"case|client", re.IGNORECASE)


def on_appeal_body_error(
    request: Request[Any, Any, Any], error: ValidationException
) -> Response[Problem]:
    """A field an appeal does not have is a 422 naming it, not the API's generic 400 for
    an unknown field: an appeal with a ``case_id`` or ``client_id`` is a well-formed
    request that breaks a rule of the domain (rule 7: the network carries no client
    data), and the caller should be told which field and why."""
    extra = error.extra if isinstance(error.extra, list) else []
    unknown = [
        match.group(1)
        for item in extra
        if isinstance(item, dict)
        and (match := _UNKNOWN_FIELD.match(str(item.get("message", "")))) is not None
    ]
    if not unknown:
        return on_validation_error(request, error)
    errors = [
        FieldError(
            name,
            "an appeal carries no case or client data (rule 7)"
            if _CLIENT_DATA.search(name)
            else "is not a field of this request",
        )
        for name in unknown
    ]
    return problem(422, "the request has an invalid value", errors)


class AppealCreate(Body):
    need: Need
    title: Title
    text: Text
    expires_at: Instant
    reach: Reach
    area: Area | None = None


class AnswerCreate(Body):
    answer: Answer
    text: Text | None = None


class CloseAppeal(Body):
    reason: ShortText


class AppealResponseView(msgspec.Struct, kw_only=True):
    """One agency's answer to an appeal."""

    id: UUID
    appeal_id: UUID
    agency_id: UUID
    answer: Answer
    text: str | None
    at: datetime


class AppealView(msgspec.Struct, kw_only=True):
    """An appeal. ``status`` is ``closed`` once its agency closed it or past
    ``expires_at``. ``responses``: every answer for the appealing agency, the caller's
    agency's own for any other."""

    id: UUID
    version: int
    agency_id: UUID
    need: str
    title: str
    text: str
    area: str | None
    expires_at: datetime
    reach: Reach
    status: AppealStatus
    created_at: datetime
    responses: list[AppealResponseView]


class AppealSummary(msgspec.Struct, kw_only=True):
    """An appeal in a list (its answers are read on the appeal)."""

    id: UUID
    version: int
    agency_id: UUID
    need: str
    title: str
    text: str
    area: str | None
    expires_at: datetime
    reach: Reach
    status: AppealStatus
    created_at: datetime


class AppealPage(msgspec.Struct, kw_only=True):
    items: list[AppealSummary]
    next: str | None


class Relayed(msgspec.Struct, kw_only=True):
    """How many agencies the relay newly reached (0: all had it, or past three hops)."""

    appeal_id: UUID
    newly_reached: int


def response_view(appeal_id: UUID, response: AppealResponse) -> AppealResponseView:
    return AppealResponseView(
        id=response.id,
        appeal_id=appeal_id,
        agency_id=response.agency_id,
        answer=response.answer,
        text=response.text,
        at=response.at,
    )


def appeal_view(appeal: Appeal, agency_id: UUID) -> AppealView:
    return AppealView(
        id=appeal.id,
        version=appeal.version,
        agency_id=appeal.agency_id,
        need=appeal.need,
        title=appeal.title,
        text=appeal.text,
        area=appeal.area,
        expires_at=appeal.expires_at,
        reach=appeal.reach,
        status=appeal.status(utcnow()),
        created_at=appeal.created_on,
        responses=[response_view(appeal.id, r) for r in appeal.responses_for(agency_id)],
    )


def summary(row: AppealRow, now: str) -> AppealSummary:
    return AppealSummary(
        id=UUID(row.appeal_id),
        version=row.version,
        agency_id=UUID(row.author_agency_id),
        need=row.need,
        title=row.title,
        text=row.text,
        area=row.area,
        expires_at=datetime.fromisoformat(row.expires_at),
        reach=row.reach,
        status="closed" if row.closed or row.expires_at <= now else "open",
        created_at=datetime.fromisoformat(row.created_at),
    )


class AppealController(Controller):
    """Appeals; each is seen by its agency and the agencies it reached, no one else."""

    path = "/v1/appeals"
    tags = ["network"]
    exception_handlers = {ValidationException: on_appeal_body_error}

    @post(
        "/",
        operation_id="post_appeal",
        summary="Post an appeal for help, with no client data (caseworker, supervisor)",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def post_appeal(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[AppealCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AppealView]:
        """``reach``: ``partners`` (the agency's active partners now) or ``network``
        (every agency now). A field the body does not have, such as ``case_id`` or
        ``client_id``, is 422 naming it: an appeal carries no client data."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            appeal = casenet.appeals.post(
                actor,
                need=data.need,
                title=data.title,
                text=data.text,
                area=data.area,
                expires_at=data.expires_at,
                reach=data.reach,
                new_id=new_id,
            )
            view = appeal_view(appeal, appeal.agency_id)
            location = {"Location": f"/v1/appeals/{appeal.id}"}
            return with_etag(view, view.version, 201, **location), None

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/",
        operation_id="list_appeals",
        summary="The appeals that reached the agency, and its own",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def list_appeals(
        self,
        actor: CallerActor,
        casenet: Services,
        status: Annotated[
            str | None,
            QueryParameter(name="status", required=False, schema_extra={"enum": list(STATUSES)}),
        ] = None,
        limit: Limit = None,
        after: After = None,
    ) -> AppealPage:
        """Oldest first; ``status=open``: those still open (not closed, not expired)."""
        page = casenet.appeals.appeals(actor, status=status, limit=limit, after=after)
        now = normalise_time(utcnow())
        return AppealPage(items=[summary(r, now) for r in page.items], next=page.next)

    @get(
        "/{appeal_id:uuid}",
        operation_id="get_appeal",
        summary="An appeal, and the answers the caller may see",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def get_appeal(
        self, appeal_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> Response[AppealView]:
        """Any worker of its agency (every answer) or of one it reached (its own)."""
        appeal = casenet.appeals.visible(actor, appeal_id)
        view = appeal_view(appeal, actor.require_agency())
        return with_etag(view, view.version)

    @post(
        "/{appeal_id:uuid}/responses",
        operation_id="answer_appeal",
        summary="Answer an appeal that reached the agency",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def answer(
        self,
        request: Request[Any, Any, Any],
        appeal_id: FromPath[UUID],
        data: JSONBody[AnswerCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AppealResponseView]:
        """Any worker of an agency it reached; 409 once closed or expired; 403 to the
        appealing agency. An answer becomes a referral only through a case, under
        consent (rule 7)."""

        def create(_: UUID | None) -> tuple[Response[Any], UUID | None]:
            appeal, response = casenet.appeals.respond(
                actor, appeal_id, answer=data.answer, text=data.text
            )
            view = response_view(appeal.id, response)
            return Response(view, status_code=201), None

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @post(
        "/{appeal_id:uuid}/relay",
        operation_id="relay_appeal",
        summary="Pass an appeal on to the agency's partners (at most 3 hops)",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def relay(self, appeal_id: FromPath[UUID], actor: CallerActor, casenet: Services) -> Relayed:
        """Any worker of an agency it reached (or of its own); 409 once closed or
        expired. Partners it had reached, and any past three hops from the appealing
        agency, are not reached again: ``newly_reached`` counts the others."""
        appeal, reached = casenet.appeals.relay(actor, appeal_id)
        return Relayed(appeal_id=appeal.id, newly_reached=reached)

    @post(
        "/{appeal_id:uuid}/close",
        operation_id="close_appeal",
        summary="Close an appeal (the appealing agency)",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def close(
        self,
        appeal_id: FromPath[UUID],
        data: JSONBody[CloseAppeal],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[AppealView]:
        """Any worker of the appealing agency; 409 once closed or expired (an appeal
        past ``expires_at`` is closed without an event)."""
        appeal = casenet.appeals.close(
            actor, appeal_id, reason=data.reason, expected_version=expected_version(if_match)
        )
        view = appeal_view(appeal, appeal.agency_id)
        return with_etag(view, view.version)
