"""OpenAPI details: the problem responses each route can give, closed request bodies,
the closed vocabularies as ``enum``s."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

# Litestar's own msgspec plugin (not re-exported); litestar is pinned below 3.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, Schema

from casenet.api.errors import PROBLEM_JSON, TITLES, Problem
from casenet.api.structs import Me, vocabulary_of
from casenet.application import referral_queries
from casenet.application.views import (
    AccessGrant,
    CaseListItem,
    CaseView,
    ConsentView,
    DisclosureView,
    NoteView,
    ReferralListItem,
    ReferralView,
    SharedCase,
    StatusChangeView,
)
from casenet.domain.agency import ROLES
from casenet.domain.case import CLOSED, OPEN
from casenet.domain.consent import METHODS, PURPOSES
from casenet.domain.referral import OUTCOMES, STATUSES, URGENCIES
from casenet.domain.sections import DISCLOSED_SECTIONS, NOTE_CATEGORIES, SECTIONS
from casenet.domain.visibility import ACTIVE, EXPIRED, WITHDRAWN

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Reference
    from litestar.typing import FieldDefinition

CASE_STATUSES = (OPEN, CLOSED)
CONSENT_STATUSES = (ACTIVE, WITHDRAWN, EXPIRED)
#: ``GET /v1/referrals?direction=``
DIRECTIONS = tuple(referral_queries.DIRECTIONS)

#: The vocabularies of response fields whose types are the application's views (request
#: bodies name theirs in their types: ``structs.word_of``). Needs and service types are
#: no ``enum`` in answers: records made before the vocabulary keep their codes.
#: FeedItem's ``type`` joins this table (``FEED_ITEM_TYPES``) once the feed serves those
#: types; today it serves event class names, and an enum must say what is served.
RESPONSE_VOCABULARIES: dict[type[msgspec.Struct], dict[str, tuple[str, ...]]] = {
    CaseView: {"status": CASE_STATUSES, "sections": SECTIONS},
    CaseListItem: {"status": CASE_STATUSES},
    NoteView: {"category": NOTE_CATEGORIES},
    SharedCase: {"sections": SECTIONS},
    AccessGrant: {"sections": SECTIONS},
    ConsentView: {
        "status": CONSENT_STATUSES,
        "sections": SECTIONS,
        "purpose": PURPOSES,
        "method": METHODS,
    },
    ReferralView: {"status": STATUSES, "urgency": URGENCIES, "outcome": OUTCOMES},
    ReferralListItem: {"status": STATUSES, "urgency": URGENCIES, "outcome": OUTCOMES},
    StatusChangeView: {"status": STATUSES, "outcome": OUTCOMES},
    DisclosureView: {"sections": DISCLOSED_SECTIONS},
    Me: {"role": (*ROLES, "operator")},
}

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


def why(code: int) -> str:
    """When an operation answers with error status ``code``, in a sentence."""
    return _WHY.get(code, TITLES.get(code, "Error"))


def error_statuses(codes: tuple[int, ...]) -> list[int]:
    """The error statuses to document, in order: 429 wherever 401 is possible."""
    return sorted({*codes, 429} if 401 in codes else set(codes))


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """Response specs for the given problem statuses (429 wherever 401 is possible)."""
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=why(code),
            media_type=PROBLEM_JSON,
            # A fixed example: generated ones are random, and the checked-in copy of
            # the document must be reproducible.
            generate_examples=False,
            examples=[Example(summary=TITLES.get(code, "Error"), value=_example(code))],
        )
        for code in error_statuses(codes)
    }


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's msgspec schemas, with what they leave out.

    * ``forbid_unknown_fields`` as ``additionalProperties: false``: a request body
      (``structs.Body``) with an unknown field is a 400; Litestar's schema leaves the
      object open, so without this the document would call such a body valid.
    * every closed vocabulary as an ``enum`` (on the string, on a list's items, on the
      string arm of ``| None``): a request field's from its type (``word_of``), a view's
      from :data:`RESPONSE_VOCABULARIES`.
    """

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.type_
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        words = dict(RESPONSE_VOCABULARIES.get(struct, {}))
        for field in info.fields:
            found = vocabulary_of(field.type)
            if found is not None:
                words[field.name] = found
        for name, vocabulary in words.items():
            prop = (schema.properties or {}).get(name)
            if prop is not None:
                _set_enum(prop, vocabulary)
        return schema


def _set_enum(schema: Schema | Reference, words: tuple[str, ...]) -> None:
    if not isinstance(schema, Schema):
        return  # a reference: not a string
    if schema.one_of:
        for arm in schema.one_of:
            if getattr(arm, "type", None) != "null":
                _set_enum(arm, words)
    elif schema.items is not None:
        _set_enum(schema.items, words)
    else:
        schema.enum = list(words)
