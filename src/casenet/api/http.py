"""HTTP details shared by the controllers: ETags, If-Match, Idempotency-Key, JSON only."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid5

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, QueryParameter

from casenet.api.errors import problem
from casenet.application import Actor, Casenet
from casenet.domain.errors import InvalidInput
from casenet.infrastructure.idempotency import KeyReused, ResponseGone, StoredResponse

T = TypeVar("T")

#: The caller, resolved from the bearer token by the app's ``actor`` dependency.
CallerActor = NamedDependency[Actor]
#: The application services, the app's ``casenet`` dependency.
Services = NamedDependency[Casenet]

IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description='The ETag of the resource (its version, e.g. "3"): the change applies only '
        "to that version, else 412.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=200,
        description="A retry with the same key and body returns the first response and "
        "writes nothing new; the same key with another body is 409.",
    ),
]
Limit = Annotated[
    int | None,
    QueryParameter(
        name="limit", required=False, ge=1, le=500, description="Page size (default 50)."
    ),
]
After = Annotated[
    str | None,
    QueryParameter(name="after", required=False, max_length=500, description="The `next` cursor."),
]

_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')
_ENCODER = msgspec.json.Encoder()
#: Namespace of the ids that creates get from an Idempotency-Key.
_IDEMPOTENT_IDS = UUID("6f1d1f0e-3c1a-4d8e-9a51-2f8c5d2b7a10")


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` names; None for absent or ``*``."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match.strip())
    if not match:
        raise InvalidInput("If-Match", 'must be an ETag this API gave, such as "3"')
    return int(match.group(1))


def with_etag(content: T, version: int, status: int = 200, **headers: str) -> Response[T]:
    return Response(content, status_code=status, headers={"ETag": etag(version), **headers})


def require_json(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Before any parsing: 415 for a body that does not declare itself JSON."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    has_body = request.headers.get("content-length", "0") not in ("", "0") or (
        "transfer-encoding" in request.headers
    )
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if has_body and media != "application/json" and not media.endswith("+json"):
        return problem(415, "send the body as application/json")
    return None


def idempotent(
    casenet: Casenet,
    actor: Actor,
    key: str | None,
    request: Request[Any, Any, Any],
    body: msgspec.Struct | None,
    create: Callable[[UUID | None], tuple[Response[Any], UUID | None]],
) -> Response[Any]:
    """Run ``create`` once per (caller, Idempotency-Key); replay its response after.

    ``create`` takes the id to give what it creates (derived from the key, so a retry
    after a crash finds what the first attempt wrote instead of writing it twice), and
    returns the response and the client it concerns (whose data key seals the stored
    copy), or None when it concerns no client.
    """
    if key is None:
        return create(None)[0]
    scope = f"{actor.worker_id or 'operator'}"
    new_id = uuid5(_IDEMPOTENT_IDS, f"{scope}\n{key}\n{request.method} {request.url.path}")
    fingerprint = f"{request.method} {request.url.path}\n".encode() + (
        _ENCODER.encode(body) if body is not None else b""
    )
    records = casenet.app.idempotency
    try:
        replay = records.reserve(scope, key, fingerprint)
    except KeyReused as error:
        return problem(409, str(error))
    except ResponseGone as error:
        return problem(409, str(error))
    if replay is not None:
        return Response(
            content=replay.body,
            status_code=replay.status,
            headers={**replay.headers, "Idempotent-Replayed": "true"},
            media_type="application/json",
        )
    try:
        response, subject = create(new_id)
    except BaseException:
        records.release(scope, key)
        raise
    content = response.content
    body_bytes = content if isinstance(content, bytes) else _ENCODER.encode(content)
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("etag", "location")}
    stored = StoredResponse(response.status_code or 200, body_bytes, headers)
    records.complete(scope, key, stored, subject)
    return response
