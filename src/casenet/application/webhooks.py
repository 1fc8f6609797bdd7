"""Webhooks: an agency's admin registers, lists and removes them, and reads their
deliveries; the delivery worker (``webhook_delivery``) pushes the feed to them."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

import msgspec

from casenet.application.actor import ADMIN, Actor
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.store import CasenetApplication
from casenet.application.views import FEED_ITEM_TYPES
from casenet.domain.errors import InvalidInput, NotFound, TokenLost
from casenet.domain.webhook import Webhook
from casenet.infrastructure.projections import webhooks as webhooks_model
from casenet.infrastructure.projections.webhooks import WebhookRow
from casenet.infrastructure.webhook_http import TargetRefused, TargetRule
from casenet.infrastructure.webhook_outbox import AttemptRow, WebhookOutbox

T = TypeVar("T")

#: Random bytes in a secret (Standard Webhooks: 24 to 64).
SECRET_BYTES = 32


def new_secret() -> str:
    """``whsec_`` and base64 of random bytes, as the Standard Webhooks libraries read it."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_types(types: list[str] | None) -> tuple[str, ...]:
    """Feed item types to deliver (none: every type), each one of :data:`FEED_ITEM_TYPES`."""
    for kind in types or ():
        if kind not in FEED_ITEM_TYPES:
            raise InvalidInput("types", f"must be among: {', '.join(FEED_ITEM_TYPES)}")
    return tuple(types or ())


def types_of(row: WebhookRow) -> tuple[str, ...]:
    return tuple(msgspec.json.decode(row.types, type=list[str]))


class WebhookService:
    """The admin's side of webhooks: register, list, remove, read deliveries."""

    def __init__(self, app: CasenetApplication, rule: TargetRule) -> None:
        self.app = app
        self.rule = rule
        self.outbox = WebhookOutbox(app.database)

    def register(
        self, actor: Actor, *, url: str, types: list[str] | None, new_id: UUID | None = None
    ) -> tuple[Webhook, str]:
        """A new webhook and its secret (shown only this once: it is stored encrypted)."""
        agency_id = _admin_agency(actor, "register a webhook")
        if new_id is not None and self._exists(new_id):
            # The first answer was lost: its secret cannot be shown again.
            raise TokenLost("webhook", "registered", "show its secret again")
        checked = check_types(types)
        hook_url = url.strip()
        try:
            self.rule.check(hook_url)
        except TargetRefused as refused:
            raise InvalidInput("url", str(refused)) from None
        secret = new_secret()
        hook = Webhook.register(
            agency_id=agency_id, url=hook_url, types=checked, secret=secret, new_id=new_id
        )
        self.app.save(hook)
        self.app.projections.ensure_current(["webhooks"])
        return hook, secret

    def webhooks(self, actor: Actor, *, limit: int | None, after: str | None) -> Page[WebhookRow]:
        """The caller's agency's webhooks, oldest first (never their secrets)."""
        agency_id = _admin_agency(actor, "list webhooks")
        limit = check_limit(limit)
        position = _position(after)
        rows = self._read(lambda: webhooks_model.agency_webhooks(self.app.database, agency_id))
        rows = [r for r in rows if r.registered_position > position]
        return page_of(rows[: limit + 1], limit, lambda r: (str(r.registered_position),))

    def owned(self, actor: Actor, webhook_id: UUID) -> WebhookRow:
        """The webhook, for an admin of its agency; as for a random id to anyone whose
        agency it is not (whatever their role), 403 to its agency's other roles."""
        row = self._read(lambda: webhooks_model.webhook(self.app.database, webhook_id))
        if row is None or row.removed or actor.agency_id is None:
            raise NotFound("webhook not found")
        if row.agency_id != str(actor.agency_id):
            raise NotFound("webhook not found")
        actor.require_role({ADMIN}, "manage webhooks")
        return row

    def remove(self, actor: Actor, webhook_id: UUID) -> WebhookRow:
        """Stop deliveries for good; the secret's key is destroyed (crypto-shredded)."""
        row = self.owned(actor, webhook_id)
        hook = self.app.get(Webhook, webhook_id, personal=False)
        hook.remove()
        self.app.save(hook)
        if self.app.keyring is not None:
            self.app.keyring.erase(hook.id)
        self.app.projections.ensure_current(["webhooks"])
        return row

    def deliveries(
        self, actor: Actor, webhook_id: UUID, *, limit: int | None, after: str | None
    ) -> Page[AttemptRow]:
        """The webhook's delivery attempts, oldest first."""
        self.owned(actor, webhook_id)
        limit = check_limit(limit)
        rows = self.outbox.attempts(webhook_id, after=_position(after), limit=limit + 1)
        return page_of(rows, limit, lambda r: (str(r.seq),))

    def backlog(self) -> int:
        """Feed items not yet delivered (nor given up), over every active webhook."""
        total = 0
        counts = self.app.projections.current(["feed", "webhooks"], self.outbox.backlog)
        for types_json, kind, count in counts:
            types = msgspec.json.decode(types_json, type=list[str])
            if not types or kind in types:
                total += count
        return total

    def _exists(self, webhook_id: UUID) -> bool:
        try:
            self.app.get(Webhook, webhook_id, personal=False)  # sealed: nothing decrypted
        except NotFound:
            return False
        return True

    def _read(self, read: Callable[[], T]) -> T:
        return self.app.projections.current(["webhooks"], read)


def _position(after: str | None) -> int:
    """The number a cursor of these lists names (a position, a sequence number)."""
    cursor = decode_cursor(after, 1)
    if cursor is None:
        return 0
    if not cursor[0].isdigit():
        raise InvalidInput("after", "is not a cursor this list gave")
    return int(cursor[0])


def _admin_agency(actor: Actor, action: str) -> UUID:
    agency_id = actor.require_agency()
    actor.require_role({ADMIN}, action)
    return agency_id
