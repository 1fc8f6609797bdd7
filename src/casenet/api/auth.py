"""Bearer tokens to actors: the operator's token from settings, workers' by hash."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request
from litestar.datastructures import State

from casenet.api.errors import Unauthenticated
from casenet.application import OPERATOR_ACTOR, Actor, Casenet
from casenet.settings import Settings


def resolve_actor(request: Request[Any, Any, Any], state: State) -> Actor:
    """The caller, from ``Authorization: Bearer <token>``; 401 for anything else."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send Authorization: Bearer <token>")
    settings: Settings = state.settings
    if hmac.compare_digest(token.encode(), settings.operator_token.encode()):
        return OPERATOR_ACTOR
    casenet: Casenet = state.casenet
    actor = casenet.directory.authenticate(token)
    if actor is None:
        raise Unauthenticated("the token is unknown or was revoked")
    return actor
