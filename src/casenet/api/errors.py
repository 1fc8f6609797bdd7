"""Every error as ``application/problem+json`` (RFC 9457), mapped in this one place.

Details name ids, statuses and sections only: never personal data, never a trace.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from casenet.api.throttling import TooManyFailedAuthentications
from casenet.domain.errors import (
    DomainError,
    IllegalTransition,
    InvalidInput,
    NotFound,
    NotPermitted,
    StaleVersion,
    VersionConflict,
)
from casenet.infrastructure.projections import ReadModelUnavailable

logger = logging.getLogger("casenet.api")

PROBLEM_JSON = "application/problem+json"

TITLES = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Not permitted",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class FieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = msgspec.field(default_factory=list)


class Unauthenticated(Exception):
    """No bearer token, or one that belongs to nobody (or to a revoked worker)."""


class UnsupportedMediaType(Exception):
    """A body that is not JSON."""


def problem(status: int, detail: str, errors: list[FieldError] | None = None) -> Response[Problem]:
    slug = TITLES.get(status, "Error").lower().replace(" ", "-")
    headers = {"WWW-Authenticate": 'Bearer realm="casenet"'} if status == 401 else None
    return Response(
        Problem(
            type=f"urn:casenet:problem:{slug}",
            title=TITLES.get(status, "Error"),
            status=status,
            detail=detail,
            errors=errors or [],
        ),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _status_of(error: DomainError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, NotPermitted):
        return 403
    if isinstance(error, StaleVersion):
        return 412
    if isinstance(error, IllegalTransition | VersionConflict):
        return 409
    if isinstance(error, InvalidInput):
        return 422
    return 400


def on_domain_error(_: Request[Any, Any, Any], error: DomainError) -> Response[Problem]:
    if isinstance(error, InvalidInput):
        return problem(
            422, "the request has an invalid value", [FieldError(error.field, error.message)]
        )
    return problem(_status_of(error), str(error))


def on_validation_error(_: Request[Any, Any, Any], error: ValidationException) -> Response[Problem]:
    errors = []
    for item in error.extra if isinstance(error.extra, list) else []:
        if isinstance(item, dict):
            errors.append(FieldError(str(item.get("key", "body")), str(item.get("message", ""))))
    # msgspec's messages name the field and the expected type, never the value sent.
    return problem(400, "the request is malformed", errors)


def on_http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[Problem]:
    status = error.status_code
    if isinstance(error, NotFoundException):
        return problem(404, "no such resource")
    if isinstance(error, MethodNotAllowedException):
        return problem(405, "this resource does not support that method")
    if status == 413:
        return problem(413, "the request body is over 1 MiB")
    detail = error.detail if status < 500 and error.detail else TITLES.get(status, "Error")
    return problem(status, str(detail))


def on_unauthenticated(_: Request[Any, Any, Any], error: Unauthenticated) -> Response[Problem]:
    return problem(401, str(error))


def on_media_type(_: Request[Any, Any, Any], error: UnsupportedMediaType) -> Response[Problem]:
    return problem(415, "send the body as application/json")


def on_throttled(
    _: Request[Any, Any, Any], error: TooManyFailedAuthentications
) -> Response[Problem]:
    """An address that failed to authenticate too often: 429, and when to come back."""
    response = problem(
        429,
        f"too many failed authentications from this address; try again in {error.retry_after} s",
    )
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def on_read_model_unavailable(
    _: Request[Any, Any, Any], error: ReadModelUnavailable
) -> Response[Problem]:
    """A read that needs a stopped (or rebuilding) read model: 503, never stale data.
    The detail names the model; why it stopped is the operator's to see (``casenet
    projections status``, ``/health/ready``, the logs)."""
    response = problem(503, f"the {error.name} read model is not available; retry later")
    response.headers["Retry-After"] = "5"
    return response


def on_unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    """The one catch-all: log the type and route (no data, no message), answer 500."""
    logger.error(
        "unexpected %s on %s %s", type(error).__name__, request.method, request.scope["path"]
    )
    return problem(500, "something went wrong on our side; it has been logged")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: on_domain_error,
    ValidationException: on_validation_error,
    HTTPException: on_http_error,
    Unauthenticated: on_unauthenticated,
    UnsupportedMediaType: on_media_type,
    TooManyFailedAuthentications: on_throttled,
    ReadModelUnavailable: on_read_model_unavailable,
    Exception: on_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "Problem", "problem"]
