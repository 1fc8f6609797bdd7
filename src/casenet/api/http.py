"""HTTP details shared by the controllers: ETags, If-Match, Idempotency-Key, JSON only."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar, cast
from uuid import UUID, uuid5

import msgspec
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import HeaderParameter, QueryParameter
from litestar.response.base import ASGIResponse
from litestar.types import TypeEncodersMap

from casenet.api.errors import problem
from casenet.application import Actor, Casenet
from casenet.domain.errors import InvalidInput
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

_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')
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
    if _VIEW_ETAG.match(if_match.strip()):
        return VIEW_DIGEST
    match = _ETAG.match(if_match.strip())
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


class EncodedWithEtag(Response[S]):
    """``with_etag(view, version)``, built without Litestar's response machinery.

    For the owner's read, the hottest route: Litestar turns a Response into an
    ASGIResponse through typing.Mapping instance checks (Python code), a header
    multi-dict, ``setdefault`` calls that raise KeyError and a serialiser lookup,
    measured at 54k instructions a request. This one encodes its view with msgspec
    (the view must hold only types msgspec encodes natively, as Litestar then does
    without its hook) and hands Litestar an :class:`ASGIResponse` whose headers are
    encoded already, the same bytes in the same order; sending it, a HEAD request and
    background tasks stay Litestar's. Should a layer add headers, cookies or a
    background task, it becomes the plain ``with_etag`` response.
    """

    __slots__ = ("version",)

    def __init__(self, content: S, version: int) -> None:
        # Not Response.__init__: its checks are what this class saves.
        self.content = content
        self.version = version

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: Any = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        if (
            background is not None
            or cookies
            or encoded_headers
            or headers
            or is_head_response
            or not ENCODED_RESPONSE_FITS
        ):
            return with_etag(self.content, self.version).to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
        body = _ENCODER.encode(self.content)
        return _EncodedResponse(
            body,
            [
                (b"etag", b'"%d"' % self.version),
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        )


class _EncodedResponse(ASGIResponse):
    """A 200 whose body and headers are encoded already (see :class:`EncodedWithEtag`)."""

    __slots__ = ("_headers",)

    def __init__(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        # Not ASGIResponse.__init__: it would parse the headers into a multi-dict only
        # for encode_headers() to encode them again.
        self.body = body
        self._headers = headers
        self.status_code = 200
        self.background = None
        self.is_head_response = False
        self.content_length = len(body)
        self.encoding = "utf-8"
        self._encoded_cookies = ()

    def encode_headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers


#: Whether :class:`_EncodedResponse` sets every attribute of the installed Litestar's
#: ``ASGIResponse`` but ``headers`` (which its ``encode_headers`` replaces). A Litestar
#: whose response holds anything else makes every ``EncodedWithEtag`` the plain
#: ``with_etag`` response: slower, never broken (a test fails, to say so).
ENCODED_RESPONSE_FITS = set(ASGIResponse.__slots__) == {
    "_encoded_cookies",
    "background",
    "body",
    "content_length",
    "encoding",
    "headers",
    "is_head_response",
    "status_code",
}


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
