"""HTTP details shared by the controllers: ETags, If-Match, Idempotency-Key, JSON only."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast
from uuid import UUID, uuid5

import msgspec
from litestar import Litestar, Request, Response
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import HeaderParameter, QueryParameter
from litestar.types import Message, ReceiveMessage, Scope

from casenet.api.errors import FieldError, problem
from casenet.application import Actor, Casenet
from casenet.domain.errors import InvalidInput
from casenet.domain.values import check_characters, check_optional_instant, forbidden_character
from casenet.infrastructure.idempotency import KeyReused, ResponseGone, StoredResponse

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)

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

#: An ETag this API gives: a version of at most 18 digits (any version fits in 63 bits).
_ETAG = re.compile(r'(?:W/)?"([0-9]{1,18})"')
#: Longer If-Match values are refused before they are parsed.
MAX_IF_MATCH = 64
#: Query values longer than this are refused (no list takes more: a cursor is under 200).
MAX_QUERY_VALUE = 1_000
#: The methods whose requests carry a JSON body.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: JSON bodies may nest objects and arrays this deep, no deeper (400).
MAX_JSON_DEPTH = 32
_ENCODER = msgspec.json.Encoder()
#: Namespace of the ids that creates get from an Idempotency-Key.
_IDEMPOTENT_IDS = UUID("6f1d1f0e-3c1a-4d8e-9a51-2f8c5d2b7a10")


#: A grantee's ETag of a case: a digest of the view it was given.
_VIEW_ETAG = re.compile(r'^(?:W/)?"v\.[0-9a-f]{32}"$')
#: What a view's ETag stands for in a version check: no version of any aggregate.
VIEW_DIGEST = -1


def etag(version: int) -> str:
    return f'"{version}"'


def view_etag(body: bytes) -> str:
    """The ETag of a view that is not the whole aggregate (a grantee's case): a digest
    of the bytes the caller got, so it changes with what the caller sees and with
    nothing else (API.md, "What a grantee can tell")."""
    return f'"v.{hashlib.sha256(body).hexdigest()[:32]}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` names; None for absent or ``*``.

    A view's ETag (:func:`view_etag`) is accepted as an ETag this API gave and stands
    for no version (:data:`VIEW_DIGEST`): only the owner changes a case, and the
    owner's ETags are versions, so a change sent with a view's ETag is never applied.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    stripped = if_match.strip()
    if len(if_match) > MAX_IF_MATCH:
        raise InvalidInput("If-Match", 'must be an ETag this API gave, such as "3"')
    if _VIEW_ETAG.fullmatch(stripped):
        return VIEW_DIGEST
    match = _ETAG.fullmatch(stripped)
    if not match:
        raise InvalidInput("If-Match", 'must be an ETag this API gave, such as "3"')
    return int(match.group(1))


def with_etag(content: T, version: int, status: int = 200, **headers: str) -> Response[T]:
    return Response(content, status_code=status, headers={"ETag": etag(version), **headers})


def with_view_etag(view: S) -> Response[S]:
    """``view`` as JSON with :func:`view_etag` of exactly the bytes sent (encoded here,
    once, as Litestar would: the view holds only types msgspec encodes natively)."""
    body = _ENCODER.encode(view)
    response = Response(body, media_type=MediaType.JSON, headers={"ETag": view_etag(body)})
    return cast("Response[S]", response)


def query_instant(value: datetime | None, name: str) -> datetime | None:
    """A timestamp query parameter: with an offset and in range (else 422), in UTC."""
    return check_optional_instant(value, name)


def check_query(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Before any handler: 400 for a query value no list could mean (a control
    character, or longer than any cursor or filter), so none reaches a store."""
    if not request.scope["query_string"]:
        return None
    for name, value in request.query_params.multi_items():
        if len(value) > MAX_QUERY_VALUE or len(name) > MAX_QUERY_VALUE:
            message = f"must be at most {MAX_QUERY_VALUE} characters"
        elif (bad := forbidden_character(name + value)) is not None:
            message = f"must not contain the control character {bad}"
        else:
            continue
        field = name if len(name) <= 64 and forbidden_character(name) is None else "query"
        return problem(400, "a query parameter is malformed", [FieldError(field, message)])
    return None


_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


def nested_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON ``body`` nests arrays and objects deeper than ``limit``.

    Without parsing it (a parser recurses: 1,000 levels exhausted Python's stack), in a
    few passes of C-speed byte operations (this runs on the event loop): strings taken
    out, only brackets kept (objects' as arrays'), then each pass removes the innermost
    pairs, one level at a time. Mismatched brackets are left to the JSON parser.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(_ONE_KIND, _NOT_BRACKETS)
    too_deep = b"[" * (limit + 1)
    for _ in range(limit):
        if too_deep in brackets:
            return True
        reduced = brackets.replace(b"[]", b"")
        if not reduced or reduced == brackets:
            return False
        brackets = reduced
    # Each pass took exactly one level off the deepest nesting: brackets left after
    # ``limit`` passes nest deeper than ``limit`` (none left at all: no deeper).
    return bool(brackets)


async def check_body(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Before any handler: 415 for a body not declared JSON, 400 for JSON nested deeper
    than :data:`MAX_JSON_DEPTH` (a body over 1 MiB is 413 as it is read)."""
    refused = require_json(request)
    if refused is not None or request.method not in BODY_METHODS:
        return refused
    if nested_too_deep(await request.body()):
        return problem(
            400,
            "the request is malformed",
            [FieldError("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")],
        )
    return None


def require_json(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Before any parsing: 415 for a body that does not declare itself JSON."""
    if request.method not in BODY_METHODS:
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
    check_characters(key, "Idempotency-Key")
    scope = f"{actor.worker_id or 'operator'}"
    new_id = uuid5(_IDEMPOTENT_IDS, f"{scope}\n{key}\n{request.method} {request.url.path}")
    fingerprint = f"{request.method} {request.url.path}\n".encode() + (
        _ENCODER.encode(body) if body is not None else b""
    )
    records = casenet.idempotency
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


class ReadsWholeBody(Litestar):
    """Litestar that reads what is left of a request body before it answers.

    An answer given before the body is read (a 413 for a body over 1 MiB, a 401, a 404)
    would otherwise leave the rest of the body unread, and the server then closes a
    connection the client still writes to and may reuse: the client sees a reset, or
    "disconnected without a response", instead of the answer. The rest is read and
    dropped, however large: the client pays for sending it. GET and HEAD requests are
    taken to carry none (the API reads none, and the hottest route is a GET).
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # GET and HEAD first: the hottest routes, whose requests carry no body.
        if scope.get("method") in _NO_BODY or scope["type"] != "http" or not _has_body(scope):
            await super().__call__(scope, receive, send)
            return
        body_read = False

        async def tracked_receive() -> ReceiveMessage:
            nonlocal body_read
            message: ReceiveMessage = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read = True
            return message

        async def draining_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                while not body_read:
                    await tracked_receive()
            await send(message)

        await super().__call__(scope, tracked_receive, draining_send)


_NO_BODY = frozenset({"GET", "HEAD"})


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False
