"""A webhook: an agency's address that its feed is pushed to, signed with a secret."""

from __future__ import annotations

import urllib.parse
from typing import ClassVar
from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, PersonalText, when
from casenet.domain.errors import IllegalTransition, InvalidInput
from casenet.domain.values import check_text

MAX_URL_LENGTH = 2_000


class WebhookRegistered(DomainEvent, frozen=True, kw_only=True):
    """The secret is encrypted at rest under a data key of the webhook's own, which
    its removal destroys."""

    agency_id: UUID
    url: str
    types: tuple[str, ...]
    secret: PersonalText

    subject_field: ClassVar[str] = "originator_id"


class WebhookRemoved(DomainEvent, frozen=True, kw_only=True):
    pass


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host and no credentials in it."""
    check_text(url, "url", max_length=MAX_URL_LENGTH)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # a port out of range raises ValueError
    except ValueError:
        raise InvalidInput("url", "is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url", "must be an absolute http or https URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url", "must not carry credentials")
    if parts.fragment or (port is not None and port == 0):
        raise InvalidInput("url", "must have no fragment and a usable port")
    if any(c.isspace() for c in url):
        raise InvalidInput("url", "must not contain spaces")
    return url


class Webhook(Aggregate):
    """Where an agency wants its feed pushed; only an admin of it registers one."""

    agency_id: UUID
    url: str
    types: tuple[str, ...]
    secret: str | None
    removed: bool

    @classmethod
    def register(
        cls,
        *,
        agency_id: UUID,
        url: str,
        types: tuple[str, ...],
        secret: str,
        new_id: UUID | None = None,
    ) -> Webhook:
        return cls._start(
            new_id or uuid4(),
            WebhookRegistered,
            agency_id=agency_id,
            url=check_url(url),
            types=tuple(dict.fromkeys(types)),
            secret=secret,
        )

    def remove(self) -> None:
        if self.removed:
            raise IllegalTransition("webhook", "removed", "remove")
        self._record(WebhookRemoved)

    @when(WebhookRegistered)
    def _registered(self, event: WebhookRegistered) -> None:
        self.agency_id = event.agency_id
        self.url = event.url
        self.types = event.types
        self.secret = event.secret
        self.removed = False

    @when(WebhookRemoved)
    def _removed(self, event: WebhookRemoved) -> None:
        self.removed = True
