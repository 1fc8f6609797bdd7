"""Webhooks: push delivery of the agency's feed (Standard Webhooks), for its admins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from casenet.api.docs import READ, WRITE, problems
from casenet.api.http import After, CallerActor, IdempotencyKey, Limit, Services, idempotent
from casenet.api.structs import Body
from casenet.application.views import FEED_ITEM_TYPES
from casenet.domain.vocabulary import word_of
from casenet.infrastructure.projections.webhooks import WebhookRow
from casenet.infrastructure.webhook_outbox import AttemptRow

_TYPES = (
    "Feed item types to deliver (see GET /v1/feed); absent or empty: every type. "
    "Another value is 422, listing the types."
)


class WebhookCreate(Body):
    url: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=2_000,
            description="Where to POST each feed item. In production: https, and a host "
            "that resolves to a public address (unless CASENET_WEBHOOK_ALLOW_HOSTS lists it).",
            examples=["https://intake.example.org/casenet/webhook"],
        ),
    ]
    types: (
        Annotated[
            list[Annotated[str, word_of(FEED_ITEM_TYPES, "referral_requested")]],
            msgspec.Meta(max_length=50, description=_TYPES, examples=[["referral_requested"]]),
        ]
        | None
    ) = None


class WebhookView(msgspec.Struct, kw_only=True):
    """A webhook (never its secret)."""

    id: UUID
    url: str
    types: list[str]
    created_at: datetime


class WebhookCreated(msgspec.Struct, kw_only=True):
    """The new webhook; ``secret`` (``whsec_`` + base64) is shown this once: verify
    each delivery's ``webhook-signature`` with it (any Standard Webhooks library)."""

    id: UUID
    url: str
    types: list[str]
    secret: str
    created_at: datetime


class WebhookList(msgspec.Struct, kw_only=True):
    items: list[WebhookView]
    next: str | None


class DeliveryAttempt(msgspec.Struct, kw_only=True):
    """One attempt at one feed item. ``outcome``: ``delivered`` (2xx), ``failed`` (a
    status or an error: retried at ``next_attempt_at``), ``refused`` (the target broke
    the production address rule at delivery time: retried), ``given_up`` (failing for
    over 24 hours: the next item goes)."""

    item_id: str
    position: int
    type: str
    attempt: int
    outcome: str
    status_code: int | None
    error: str | None
    attempted_at: datetime
    next_attempt_at: datetime | None


class DeliveryPage(msgspec.Struct, kw_only=True):
    items: list[DeliveryAttempt]
    next: str | None


def _instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def webhook_view(row: WebhookRow) -> WebhookView:
    return WebhookView(
        id=UUID(row.webhook_id),
        url=row.url,
        types=msgspec.json.decode(row.types, type=list[str]),
        created_at=datetime.fromisoformat(row.created_at),
    )


def attempt_view(row: AttemptRow) -> DeliveryAttempt:
    return DeliveryAttempt(
        item_id=row.item_id,
        position=row.position,
        type=row.type,
        attempt=row.attempt,
        outcome=row.outcome,
        status_code=row.status_code,
        error=row.error,
        attempted_at=_instant(row.attempted_at),
        next_attempt_at=None if row.next_attempt_at is None else _instant(row.next_attempt_at),
    )


class WebhookController(Controller):
    """An agency's webhooks; only its admins see them (to anyone else: 404)."""

    path = "/v1/webhooks"
    tags = ["webhooks"]

    @post(
        "/",
        operation_id="register_webhook",
        summary="Register a webhook; the secret is shown once (admin)",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[WebhookCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[WebhookCreated]:
        """An admin of an agency: its feed items (after now) are POSTed to ``url``, in
        order, signed per Standard Webhooks with the returned secret."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            hook, secret = casenet.webhooks.register(
                actor, url=data.url, types=data.types, new_id=new_id
            )
            created = WebhookCreated(
                id=hook.id,
                url=hook.url,
                types=list(hook.types),
                secret=secret,
                created_at=hook.created_on,
            )
            # Stored under the webhook's own key: its removal shreds the copy too.
            location = {"Location": f"/v1/webhooks/{hook.id}"}
            return Response(created, status_code=201, headers=location), hook.id

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/",
        operation_id="list_webhooks",
        summary="The agency's webhooks, never their secrets (admin)",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def list_webhooks(
        self, actor: CallerActor, casenet: Services, limit: Limit = None, after: After = None
    ) -> WebhookList:
        """An admin of an agency: its webhooks, oldest first."""
        page = casenet.webhooks.webhooks(actor, limit=limit, after=after)
        return WebhookList(items=[webhook_view(r) for r in page.items], next=page.next)

    @delete(
        "/{webhook_id:uuid}",
        operation_id="remove_webhook",
        summary="Remove a webhook: deliveries stop, its secret is destroyed (admin)",
        status_code=200,
        sync_to_thread=True,
        responses=problems(400, 401, 403, 404, 409),
    )
    def remove(
        self, webhook_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> WebhookView:
        """An admin of the webhook's agency; anyone else: 404, as a random id. Answers
        the webhook as it was."""
        return webhook_view(casenet.webhooks.remove(actor, webhook_id))

    @get(
        "/{webhook_id:uuid}/deliveries",
        operation_id="list_webhook_deliveries",
        summary="The webhook's delivery attempts, oldest first (admin)",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def deliveries(
        self,
        webhook_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        limit: Limit = None,
        after: After = None,
    ) -> DeliveryPage:
        """An admin of the webhook's agency: each attempt, its status code or error (one
        line, never the receiver's body), and when the next one is due."""
        page = casenet.webhooks.deliveries(actor, webhook_id, limit=limit, after=after)
        return DeliveryPage(items=[attempt_view(r) for r in page.items], next=page.next)
