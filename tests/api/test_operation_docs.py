"""Every operation of the served document says who may call it, with an example request
(where it takes a body) and response; what it says is true; every closed vocabulary is
an ``enum``, and a word outside one is a 422 that lists the allowed words.

The checks read the served document, so an operation added later (a new controller)
fails here until it has its row in ``operation_docs.WHO`` and examples for its bodies.
The role statement is checked against behaviour: each operation is called by every role
of the agency it names (and by the operator), and exactly the roles it does not name get
403.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from casenet.api import examples, structs
from casenet.api.operation_docs import WHO, WHO_MAY_CALL
from casenet.application import views
from casenet.application.views import FEED_ITEM_TYPES
from casenet.domain.agency import ROLES
from casenet.domain.emergency import FINDINGS, LEGAL_BASES
from casenet.domain.service import CAPACITIES
from casenet.domain.vocabulary import NEEDS

METHODS = ("get", "put", "post", "delete", "patch")


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def schema_name(content: dict[str, Any]) -> str:
    return str(content.get("schema", {}).get("$ref", "")).rsplit("/", 1)[-1]


# --- the document --------------------------------------------------------------------------


def test_every_operation_says_who_may_call_it(openapi: dict[str, Any]) -> None:
    lacking = [
        (method, path)
        for method, path, op in operations(openapi)
        if WHO_MAY_CALL not in op.get("description", "")
        or "not documented" in op.get("description", "")
    ]
    assert lacking == []
    # And the table names no operation that does not exist (a renamed one).
    ids = {op["operationId"] for _, _, op in operations(openapi)}
    assert set(WHO) <= ids


def test_every_body_has_an_example_and_every_success_too(openapi: dict[str, Any]) -> None:
    lacking = []
    for method, path, op in operations(openapi):
        for media_type, content in op.get("requestBody", {}).get("content", {}).items():
            if not content.get("examples"):
                lacking.append((method, path, "request", media_type))
        successes = {c: r for c, r in op["responses"].items() if c.startswith("2")}
        assert successes, (method, path)
        for code, response in successes.items():
            for media_type, content in (response.get("content") or {}).items():
                if not content.get("examples"):
                    lacking.append((method, path, code, media_type))
    assert lacking == []


def test_the_examples_are_valid_bodies_of_their_types() -> None:
    """Request examples decode into their structs, vocabulary checks and all; response
    examples into their views: an example cannot drift from the code."""
    for name, body in examples.REQUESTS.items():
        msgspec.json.decode(json.dumps(body).encode(), type=_struct_named(name))
    for name, body in examples.RESPONSES.items():
        msgspec.convert(body, _struct_named(name), strict=False)


def _struct_named(name: str) -> Any:
    """The body type the document names ``name`` (the modules that define them)."""
    from casenet.api import health, service_structs
    from casenet.api.controllers import appeals, emergency, partnerships, webhooks
    from casenet.application import emergency_grants, hsds_shapes, network_metrics

    modules = (structs, views, health, emergency, webhooks, emergency_grants, network_metrics)
    for module in (*modules, partnerships, appeals, service_structs, hsds_shapes):
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"no body type named {name}")


#: Every closed vocabulary, where the document must show it as an enum.
ENUMS = {
    ("WorkerCreate", "role"): ROLES,
    ("CaseCreate", "needs"): tuple(NEEDS),
    ("ServiceIn", "type"): tuple(NEEDS),
    ("ReferralCreate", "service_type"): tuple(NEEDS),
    ("NoteCreate", "category"): None,
    ("ConsentCreate", "sections"): None,
    ("ConsentCreate", "purpose"): ("referral", "care_coordination"),
    ("ConsentCreate", "method"): ("verbal", "written", "electronic"),
    ("ReferralCreate", "urgency"): ("routine", "urgent"),
    ("Complete", "outcome"): None,
    ("CaseView", "status"): ("open", "closed"),
    ("ConsentView", "status"): ("active", "withdrawn", "expired"),
    ("ReferralView", "status"): None,
    ("EmergencyGrantCreate", "basis"): LEGAL_BASES,
    ("EmergencyGrantReview", "finding"): FINDINGS,
    ("WebhookCreate", "types"): FEED_ITEM_TYPES,
    ("FeedItem", "type"): FEED_ITEM_TYPES,
    ("PartnershipView", "status"): ("requested", "active", "declined", "ended"),
    ("AppealCreate", "need"): tuple(NEEDS),
    ("AppealCreate", "reach"): ("partners", "network"),
    ("AppealView", "status"): ("open", "closed"),
    ("AnswerCreate", "answer"): ("can_help", "waitlist", "cannot_help"),
    ("ServiceIn", "needs"): tuple(NEEDS),
    ("ServiceIn", "capacity"): CAPACITIES,
    ("ServiceView", "capacity"): CAPACITIES,
    ("ServiceView", "needs"): tuple(NEEDS),
}


def enum_of(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    if "items" in schema:
        return enum_of(document, schema["items"])
    for arm in schema.get("oneOf", []):
        if arm.get("type") != "null":
            return enum_of(document, arm)
    return list(schema.get("enum", []))


@pytest.mark.parametrize(("struct", "field"), sorted(ENUMS))
def test_every_closed_vocabulary_is_an_enum(
    openapi: dict[str, Any], struct: str, field: str
) -> None:
    words = enum_of(openapi, openapi["components"]["schemas"][struct]["properties"][field])
    assert words
    expected = ENUMS[(struct, field)]
    if expected is not None:
        assert tuple(words) == tuple(expected)


def test_the_query_vocabularies_are_enums(openapi: dict[str, Any]) -> None:
    def query(path: str, name: str) -> dict[str, Any]:
        params = openapi["paths"][path]["get"]["parameters"]
        return next(p for p in params if p["name"] == name)

    assert query("/v1/referrals", "direction")["schema"]["enum"] == ["incoming", "outgoing"]
    assert "in_progress" in json.dumps(query("/v1/referrals", "status")["schema"])
    assert "closed" in json.dumps(query("/v1/cases", "status")["schema"])
    assert query("/v1/emergency-grants", "review")["schema"]["enum"] == ["pending", "overdue"]
    assert query("/v1/appeals", "status")["schema"]["enum"] == ["open", "closed"]
    assert query("/v1/services", "need")["schema"]["enum"] == list(NEEDS)
    assert query("/v1/services", "capacity")["schema"]["enum"] == list(CAPACITIES)


def test_the_needs_are_described_in_the_document(openapi: dict[str, Any]) -> None:
    described = openapi["info"]["description"]
    for code, words in NEEDS.items():
        assert f"`{code}`: {words}" in described
