"""OpenAPI details: the problem responses each route can give."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec

from casenet.api.errors import PROBLEM_JSON, TITLES, Problem

_WHY = {
    400: "Malformed request: not JSON, wrong types, unknown fields.",
    401: "No bearer token, or an unknown or revoked one.",
    403: "The caller's agency sees the resource, but its role may not do this.",
    404: "No such resource, or one the caller's agency may not see (never disclosed).",
    409: "An illegal state transition, a conflicting write, or a reused Idempotency-Key.",
    412: "If-Match does not name the current version.",
    413: "The body is over 1 MiB.",
    415: "The body is not application/json.",
    422: "A value the domain does not accept; `errors` names the field.",
}

READ = (401, 403, 404, 422)
WRITE = (400, 401, 403, 404, 409, 413, 415, 422)
ACTION = (*WRITE, 412)


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """Response specs for the given problem statuses."""
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=_WHY.get(code, TITLES.get(code, "Error")),
            media_type=PROBLEM_JSON,
        )
        for code in sorted(set(codes))
    }
