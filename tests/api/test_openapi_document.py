"""The OpenAPI document the server serves describes all of API.md, precisely enough to use.

The expected routes are written out here by hand from API.md (the contract), not read
from the code: a route the code loses, renames or moves fails here. The code may offer
more (``GET /v1/agencies/{agency_id}``, ``GET /v1/consents/{consent_id}``); it may not
offer less.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"

#: Every (method, path) of API.md, with the query parameters it names there. Lists take
#: ``limit`` and ``after`` as well (the pagination convention).
CONTRACT: dict[tuple[str, str], set[str]] = {
    # Agencies, workers, directory
    ("POST", "/v1/agencies"): set(),
    ("POST", "/v1/agencies/{agency_id}/workers"): set(),
    ("DELETE", "/v1/agencies/{agency_id}/workers/{worker_id}"): set(),
    ("GET", "/v1/agencies"): {"service_type", "area", "limit", "after"},
    ("PUT", "/v1/agencies/{agency_id}/services"): set(),
    ("GET", "/v1/me"): set(),
    # Cases
    ("POST", "/v1/cases"): set(),
    ("GET", "/v1/cases"): {"status", "limit", "after"},
    ("GET", "/v1/cases/{case_id}"): set(),
    ("POST", "/v1/cases/{case_id}/notes"): set(),
    ("POST", "/v1/cases/{case_id}/close"): set(),
    ("POST", "/v1/cases/{case_id}/reopen"): set(),
    ("GET", "/v1/shared-cases"): {"limit", "after"},
    ("GET", "/v1/cases/{case_id}/access"): {"at"},
    # Consents
    ("POST", "/v1/cases/{case_id}/consents"): set(),
    ("GET", "/v1/cases/{case_id}/consents"): {"limit", "after"},
    ("POST", "/v1/consents/{consent_id}/withdraw"): set(),
    ("GET", "/v1/consents/{consent_id}/receipt"): set(),
    # Referrals
    ("POST", "/v1/referrals"): set(),
    ("GET", "/v1/referrals"): {"direction", "status", "limit", "after"},
    ("GET", "/v1/referrals/{referral_id}"): set(),
    ("POST", "/v1/referrals/{referral_id}/accept"): set(),
    ("POST", "/v1/referrals/{referral_id}/reject"): set(),
    ("POST", "/v1/referrals/{referral_id}/start"): set(),
    ("POST", "/v1/referrals/{referral_id}/hold"): set(),
    ("POST", "/v1/referrals/{referral_id}/complete"): set(),
    ("POST", "/v1/referrals/{referral_id}/fail"): set(),
    ("POST", "/v1/referrals/{referral_id}/cancel"): set(),
    ("POST", "/v1/referrals/{referral_id}/messages"): set(),
    ("GET", "/v1/referrals/{referral_id}/messages"): {"limit", "after"},
    # Clients, disclosures, audit, feed
    ("POST", "/v1/clients/{client_id}/erasure"): set(),
    ("GET", "/v1/disclosures"): {"case_id", "from", "to", "limit", "after"},
    ("GET", "/v1/audit/export"): {"case_id", "client_id", "from", "to"},
    ("GET", "/v1/feed"): {"after", "limit", "wait"},
    ("GET", "/health/live"): set(),
    ("GET", "/health/ready"): set(),
}
#: Anyone may call these: no token.
PUBLIC = {("GET", "/health/live"), ("GET", "/health/ready")}
#: Creates that honour Idempotency-Key (every POST that creates something).
CREATES = {
    ("POST", "/v1/agencies"),
    ("POST", "/v1/agencies/{agency_id}/workers"),
    ("POST", "/v1/cases"),
    ("POST", "/v1/cases/{case_id}/notes"),
    ("POST", "/v1/cases/{case_id}/consents"),
    ("POST", "/v1/referrals"),
    ("POST", "/v1/referrals/{referral_id}/messages"),
}
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def client(app_server: Any) -> TestClient[Any]:
    """The application in process, over each store (tests/api/conftest.py)."""
    http: TestClient[Any] = app_server.http
    return http


@pytest.fixture(scope="module")
def document(client: TestClient[Any]) -> dict[str, Any]:
    """The document as a client downloads it."""
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = document["paths"][path][method.lower()]
    return op


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def test_the_document_is_served_as_json_at_schema_openapi_json(client: TestClient[Any]) -> None:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in ("application/json", "application/vnd.oai.openapi+json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "casenet"
    assert document["info"]["version"]


def test_the_document_needs_no_token(client: TestClient[Any]) -> None:
    """Integrators read the contract before they have a token."""
    assert "authorization" not in {k.lower() for k in client.headers}
    assert client.get("/schema/openapi.json").status_code == 200


def test_every_route_of_the_contract_is_documented(document: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(document)}
    missing = sorted(set(CONTRACT) - documented, key=lambda route: (route[1], route[0]))
    assert missing == [], f"API.md routes absent from the OpenAPI document: {missing}"


def test_every_operation_has_a_unique_operation_id(document: dict[str, Any]) -> None:
    ids = [(op.get("operationId"), method, path) for method, path, op in operations(document)]
    without = [(method, path) for op_id, method, path in ids if not op_id]
    assert without == []
    names = [op_id for op_id, _, _ in ids]
    assert len(names) == len(set(names)), "operation ids must be unique"
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in names if name)


def test_every_operation_has_a_summary_and_a_tag(document: dict[str, Any]) -> None:
    lacking = [
        (method, path)
        for method, path, op in operations(document)
        if not op.get("summary") or not op.get("tags")
    ]
    assert lacking == []


@pytest.mark.parametrize(("method", "path"), sorted(CONTRACT, key=lambda r: (r[1], r[0])))
def test_the_query_parameters_of_the_contract_are_documented(
    document: dict[str, Any], method: str, path: str
) -> None:
    op = operation(document, method, path)
    documented = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    assert CONTRACT[(method, path)] <= documented


def test_the_path_parameters_are_documented_as_required_uuids(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        names = re.findall(r"\{(\w+)\}", path)
        params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "path"}
        assert sorted(params) == sorted(names), (method, path)
        for name in names:
            assert params[name]["required"] is True, (method, path, name)
            assert params[name]["schema"].get("format") == "uuid", (method, path, name)


def test_the_bearer_scheme_is_declared(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"].lower() == "bearer"


def test_the_bearer_scheme_applies_to_every_v1_operation(document: dict[str, Any]) -> None:
    default = document.get("security")
    unprotected = []
    for method, path, op in operations(document):
        security = op.get("security", default) or []
        requires_bearer = bool(security) and all("bearer" in req for req in security)
        if (method, path) in PUBLIC:
            assert not requires_bearer, f"{method} {path} is for anyone (API.md)"
        elif path.startswith("/v1/") and not requires_bearer:
            unprotected.append((method, path))
    assert unprotected == []


def test_every_v1_operation_documents_401_as_a_problem(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        if path.startswith("/v1/"):
            assert_problem(document, op, 401, method, path)


def test_every_operation_with_a_path_id_documents_404(document: dict[str, Any]) -> None:
    with_ids = [(m, p, op) for m, p, op in operations(document) if "{" in p]
    assert len(with_ids) >= 20
    for method, path, op in with_ids:
        assert_problem(document, op, 404, method, path)


@pytest.mark.parametrize("status", [400, 401, 413, 415, 422])
def test_every_post_and_put_documents_the_input_problems(
    document: dict[str, Any], status: int
) -> None:
    writes = [(m, p, op) for m, p, op in operations(document) if m in ("POST", "PUT")]
    assert {r for r in CONTRACT if r[0] in ("POST", "PUT")} <= {(m, p) for m, p, _ in writes}
    for method, path, op in writes:
        assert_problem(document, op, status, method, path)


def test_every_mutation_of_a_versioned_resource_documents_412_and_if_match(
    document: dict[str, Any],
) -> None:
    """Every action (close, reopen, withdraw, transitions, services) may send If-Match."""
    for method, path, op in operations(document):
        headers = {p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"}
        if "if-match" in headers:
            assert_problem(document, op, 412, method, path)
    actions = [r for r in CONTRACT if r[0] in ("POST", "PUT") and r not in CREATES]
    for method, path in actions:
        if path.endswith(("/erasure", "/messages")):
            continue
        op = operation(document, method, path)
        headers = {p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"}
        assert "if-match" in headers, (method, path)


def test_every_create_takes_an_idempotency_key_and_documents_409(
    document: dict[str, Any],
) -> None:
    for method, path in CREATES:
        op = operation(document, method, path)
        headers = {p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"}
        assert "idempotency-key" in headers, (method, path)
        assert "201" in op["responses"], (method, path)
        assert_problem(document, op, 409, method, path)


def test_every_2xx_response_has_a_schema(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        successes = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert successes, f"{method} {path} documents no success"
        for code, response in successes.items():
            content = response.get("content") or {}
            assert content, f"{method} {path} {code}: no content"
            for media_type, body in content.items():
                assert body.get("schema"), f"{method} {path} {code} {media_type}: no schema"


def test_every_json_body_is_a_closed_object(document: dict[str, Any]) -> None:
    """An unknown field is a 400, so the document must not call it valid. FHIR's bodies
    are the exception: a FHIR client sends back the whole resource it read, and casenet
    reads the elements it acts on (``PUT /fhir/Task``), so they are open objects."""
    for method, path, op in operations(document):
        body = op.get("requestBody")
        if not body:
            continue
        if "application/fhir+json" in body["content"]:
            schema = resolve(document, body["content"]["application/fhir+json"]["schema"])
            assert schema.get("additionalProperties") is not False, (method, path)
            continue
        schema = resolve(document, body["content"]["application/json"]["schema"])
        assert schema.get("additionalProperties") is False, (method, path)


def test_the_problem_schema_is_rfc_9457(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    assert {"type", "title", "status", "detail", "errors"} <= set(problem["properties"])
    errors = resolve(document, problem["properties"]["errors"]["items"])
    assert {"field", "message"} <= set(errors["properties"])


def test_no_error_response_is_documented_as_plain_json(document: dict[str, Any]) -> None:
    """Errors are application/problem+json (under /fhir: OperationOutcomes,
    application/fhir+json), whatever Litestar would default to."""
    for method, path, op in operations(document):
        for code, response in op["responses"].items():
            if code[0] in "45":
                expected = {FHIR_JSON} if path.startswith("/fhir/") else {PROBLEM_JSON}
                assert set(response.get("content", {})) == expected, (method, path, code)


def assert_problem(
    document: dict[str, Any], op: dict[str, Any], status: int, method: str, path: str
) -> None:
    response = op["responses"].get(str(status))
    assert response is not None, f"{method} {path} does not document {status}"
    content = response.get("content", {})
    media, name = (
        (FHIR_JSON, "OperationOutcome")
        if path.startswith("/fhir/")
        else (
            PROBLEM_JSON,
            "Problem",
        )
    )
    assert media in content, f"{method} {path} {status} is not {media}"
    schema = content[media]["schema"]
    assert schema.get("$ref") == f"#/components/schemas/{name}", (method, path, status)
