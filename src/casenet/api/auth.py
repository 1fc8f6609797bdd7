"""Bearer tokens to actors: the operator's token from settings, workers' by hash."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request

from casenet.api.errors import Unauthenticated
from casenet.api.http import Services
from casenet.api.throttling import AuthFailures
from casenet.application import OPERATOR_ACTOR, Actor
from casenet.settings import Settings


def resolve_actor(request: Request[Any, Any, Any], casenet: Services) -> Actor:
    """The caller, from ``Authorization: Bearer <token>``; 401 for anything else, 429
    from an address that failed too often (see :mod:`casenet.api.throttling`).

    It reads the store (one statement, see ``DirectoryQueries.authenticate``), so the
    app provides it in a worker thread, off the event loop. It takes ``casenet``
    (another dependency) so that Litestar resolves the two one after the other:
    independent dependencies are resolved concurrently, in an anyio task group per
    request, which cost more than both.
    """
    header = request.headers.get("authorization")
    failures: AuthFailures = request.app.state.auth_failures
    if header is None:  # guesses nothing: neither counted nor throttled
        failures.failed(request, "no Authorization header", count=False)
        raise Unauthenticated("send Authorization: Bearer <token>")
    failures.check(request)  # a throttled address is refused before its token is looked at
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        failures.failed(request, "not a bearer token")
        raise Unauthenticated("send Authorization: Bearer <token>")
    settings: Settings = request.app.state.settings
    if hmac.compare_digest(token.encode(), settings.operator_token.encode()):
        return OPERATOR_ACTOR
    actor = casenet.directory.authenticate(token)
    if actor is None:
        failures.failed(request, "unknown or revoked token")
        raise Unauthenticated("the token is unknown or was revoked")
    return actor
