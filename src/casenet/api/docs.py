"""OpenAPI details: the problem responses each route can give, closed request bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

# Litestar's own msgspec plugin (not re-exported); litestar is pinned below 3.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from casenet.api.errors import PROBLEM_JSON, TITLES, Problem

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition

_WHY = {
    400: "Malformed request: not JSON, wrong types, unknown fields, or a query parameter "
    "of the wrong type.",
    401: "No bearer token, or an unknown or revoked one.",
    403: "The caller's agency sees the resource, but its role may not do this.",
    404: "No such resource, or one the caller's agency may not see (never disclosed).",
    409: "An illegal state transition, a conflicting write, or a reused Idempotency-Key.",
    412: "If-Match does not name the current version.",
    413: "The body is over 1 MiB.",
    415: "The body is not application/json.",
    422: "A value the domain does not accept; `errors` names the field.",
    429: "Too many failed authentications from this client address "
    "(CASENET_AUTH_FAILURES_PER_MINUTE): any request with a token waits `Retry-After` "
    "seconds.",
    503: "The event store does not answer (readiness).",
}

READ = (400, 401, 403, 404, 422)
WRITE = (400, 401, 403, 404, 409, 413, 415, 422)
ACTION = (*WRITE, 412)


def _example(code: int) -> dict[str, object]:
    title = TITLES.get(code, "Error")
    example: dict[str, object] = {
        "type": f"urn:casenet:problem:{title.lower().replace(' ', '-')}",
        "title": title,
        "status": code,
        "detail": _WHY.get(code, title),
    }
    if code in (400, 422):
        example["errors"] = [{"field": "sections", "message": "unknown section 'notes.x'"}]
    return example


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """Response specs for the given problem statuses (429 wherever 401 is possible)."""
    if 401 in codes:
        codes = (*codes, 429)
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=_WHY.get(code, TITLES.get(code, "Error")),
            media_type=PROBLEM_JSON,
            # A fixed example: generated ones are random, and the checked-in copy of
            # the document must be reproducible.
            generate_examples=False,
            examples=[Example(summary=TITLES.get(code, "Error"), value=_example(code))],
        )
        for code in sorted(set(codes))
    }


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """Document ``forbid_unknown_fields`` as ``additionalProperties: false``.

    A request body (``structs.Body``) with an unknown field is a 400; Litestar's schema
    for a msgspec Struct leaves the object open, so without this the document would call
    such a body valid.
    """

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return super().is_plugin_supported_field(field_definition) and bool(
            getattr(
                msgspec.inspect.type_info(field_definition.type_), "forbid_unknown_fields", False
            )
        )

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema
