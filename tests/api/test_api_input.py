"""Input that can always be stored, projected and read, through the API (in process) on
both stores.

API.md, "Input that can always be stored, projected and read": text with NUL or another
control character is 422 naming the field; closed vocabularies match exactly; every
timestamp a client sends carries an offset and lies in 1900-2200 UTC; a forged cursor,
If-Match or query value is 400/422; JSON nested deeper than 32 levels is 400; a body
over 1 MiB is 413 however large (that the connection it came on stays usable is a real
server's matter: tests/e2e/test_live_server.py). After every refusal the network still
works: another agency's reads answer 200.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest

PROBLEM_FIELDS = {"type", "title", "status", "detail"}
#: The poison values of issue 15 and their kin.
CONTROL = ["\x00", "\x01", "\x1b", "\x7f", "\x85"]
OUT_OF_RANGE = [
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59+01:00",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00-01:00",
    "2200-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "2100-01-01T00:00:00",  # no offset
]


def problem_of(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """An RFC 9457 problem with one of ``statuses``, no trace and no echo of the input."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_FIELDS, body
    for trace in ("Traceback", 'File "', "site-packages", "Exception"):
        assert trace not in response.text
    return body


def fields_of(response: httpx.Response) -> list[str]:
    return [e["field"] for e in problem_of(response, 422)["errors"]]


@pytest.fixture(scope="module")
def net(operator: Any) -> SimpleNamespace:
    """Two agencies with a case, a consent, a referral between them, and a third agency
    whose reads must keep working whatever the others send."""
    ngo = operator.agency("Eastside Welfare", "ngo")
    hospital = operator.agency("City Hospital", "hospital")
    bystander = operator.agency("Riverside School", "school")
    ana = operator.worker(ngo, "caseworker", "Ana")
    hal = operator.worker(hospital, "caseworker", "Hal")
    case = ana.post(
        "/v1/cases", {"client": {"name": "Maria"}, "summary": "s", "needs": ["housing"]}
    )
    consent = ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": hospital["id"],
            "sections": ["identity", "notes.health"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    referral = ana.post(
        "/v1/referrals",
        {
            "case_id": case["id"],
            "to_agency_id": hospital["id"],
            "service_type": "housing",
            "reason": "r",
            "urgency": "routine",
            "consent_id": consent["id"],
        },
    )
    return SimpleNamespace(
        ngo=ngo,
        hospital=hospital,
        ana=ana,
        hal=hal,
        sam=operator.worker(ngo, "supervisor", "Sam"),
        aud=operator.worker(ngo, "auditor", "Aud"),
        admin=operator.worker(ngo, "admin", "Ada"),
        school=operator.worker(bystander, "caseworker", "Sid"),
        case=case,
        consent=consent,
        referral=referral,
    )


def network_still_works(net: SimpleNamespace) -> None:
    """Every agency's reads, on every read model, still answer 200."""
    for path in ("/v1/me", "/v1/cases", "/v1/shared-cases", "/v1/feed", "/v1/agencies"):
        net.school.get(path)
        net.hal.get(path)
    net.hal.get(f"/v1/cases/{net.case['id']}")  # a grantee's read: consents, directory
    net.hal.get("/v1/referrals?direction=incoming")
    net.sam.get(f"/v1/cases/{net.case['id']}/access")
    net.sam.get("/v1/disclosures")
    response = net.aud.request("GET", f"/v1/audit/export?case_id={net.case['id']}")
    assert response.status_code == 200, response.text[:300]


# --- text -------------------------------------------------------------------------------


@pytest.mark.parametrize("character", CONTROL, ids=lambda c: f"U+{ord(c):04X}")
def test_a_control_character_in_any_text_is_422_naming_the_field(
    net: SimpleNamespace, operator: Any, character: str
) -> None:
    def bad(text: str = "Ana") -> str:
        return f"{text}{character}Lima"

    case_id, referral_id = net.case["id"], net.referral["id"]
    attempts: list[tuple[Any, str, dict[str, Any], str]] = [
        (operator, "/v1/agencies", {"name": bad(), "kind": "ngo"}, "name"),
        (
            operator,
            "/v1/agencies",
            {"name": "a", "kind": "ngo", "services": [{"type": "housing", "description": bad()}]},
            "services.description",
        ),
        (
            operator,
            "/v1/agencies",
            {
                "name": "a",
                "kind": "ngo",
                "services": [{"type": "housing", "description": "d", "area": bad()}],
            },
            "services.area",
        ),
        (
            operator,
            f"/v1/agencies/{net.ngo['id']}/workers",
            {"name": bad(), "role": "admin"},
            "name",
        ),
        (
            net.admin,
            f"/v1/agencies/{net.ngo['id']}/workers",
            {"name": bad(), "role": "admin"},
            "name",
        ),
        (net.ana, "/v1/cases", {"client": {"name": bad()}, "summary": "s"}, "client.name"),
        (
            net.ana,
            "/v1/cases",
            {"client": {"name": "n", "phone": bad()}, "summary": "s"},
            "client.phone",
        ),
        (
            net.ana,
            "/v1/cases",
            {"client": {"name": "n", "address": bad()}, "summary": "s"},
            "client.address",
        ),
        (net.ana, "/v1/cases", {"client": {"name": "n"}, "summary": bad()}, "summary"),
        (net.ana, f"/v1/cases/{case_id}/notes", {"text": bad(), "category": "health"}, "text"),
        (
            net.ana,
            f"/v1/cases/{case_id}/consents",
            {
                "grantee_agency_id": net.hospital["id"],
                "sections": ["identity"],
                "purpose": "referral",
                "method": "verbal",
                "evidence": bad(),
            },
            "evidence",
        ),
        (
            net.ana,
            "/v1/referrals",
            {
                "case_id": case_id,
                "to_agency_id": net.hospital["id"],
                "service_type": "housing",
                "reason": bad(),
                "urgency": "routine",
            },
            "reason",
        ),
        (net.hal, f"/v1/referrals/{referral_id}/messages", {"text": bad()}, "text"),
        (net.hal, f"/v1/referrals/{referral_id}/hold", {"reason": bad()}, "reason"),
        (net.ana, f"/v1/cases/{case_id}/close", {"reason": bad()}, "reason"),
        (net.ana, f"/v1/consents/{net.consent['id']}/withdraw", {"reason": bad()}, "reason"),
    ]
    for api, path, body, field in attempts:
        response = api.request("POST", path, json_body=body)
        assert fields_of(response) == [field], (path, response.text)
        assert "Lima" not in response.text  # no personal value in a problem
    replaced = net.admin.request(
        "PUT",
        f"/v1/agencies/{net.ngo['id']}/services",
        json_body={"services": [{"type": "housing", "description": bad()}]},
    )
    assert fields_of(replaced) == ["services.description"]
    assert all("Lima" not in a["name"] for a in operator.walk("/v1/agencies", limit=500))
    network_still_works(net)


def test_tab_newline_and_carriage_return_are_kept_exactly(
    net: SimpleNamespace, operator: Any
) -> None:
    name = "Ana\tLima\r\nof the\nNorth"
    agency = operator.agency(name, "ngo")
    assert agency["name"] == name
    assert operator.get(f"/v1/agencies/{agency['id']}")["name"] == name
    worker = operator.worker(agency, "caseworker", name)
    assert worker.get("/v1/me")["worker"]["name"] == name
    case = worker.post("/v1/cases", {"client": {"name": name}, "summary": name})
    assert worker.get(f"/v1/cases/{case['id']}")["client"]["name"] == name
    listed = worker.get("/v1/cases")["items"]
    assert [item["client_name"] for item in listed] == [name]
    network_still_works(net)


# --- vocabularies -------------------------------------------------------------------------


@pytest.mark.parametrize("spoil", ["{}\n", "{}\r\n", "{} ", "{}\x00", "{}\x0b"], ids=repr)
def test_closed_vocabularies_and_codes_match_exactly(
    net: SimpleNamespace, operator: Any, spoil: str
) -> None:
    case_id, ngo_id = net.case["id"], net.ngo["id"]

    def consent(**change: Any) -> dict[str, Any]:
        body = {
            "grantee_agency_id": net.hospital["id"],
            "sections": ["identity"],
            "purpose": "referral",
            "method": "verbal",
        }
        return {**body, **change}

    def referral(**change: Any) -> dict[str, Any]:
        body = {
            "case_id": case_id,
            "to_agency_id": net.hospital["id"],
            "service_type": "housing",
            "reason": "r",
            "urgency": "routine",
        }
        return {**body, **change}

    attempts: list[tuple[Any, str, Callable[[str], dict[str, Any]], str, str]] = [
        (operator, "/v1/agencies", lambda v: {"name": "a", "kind": v}, "kind", "ngo"),
        (
            operator,
            "/v1/agencies",
            lambda v: {"name": "a", "kind": "ngo", "services": [{"type": v, "description": "d"}]},
            "services.type",
            "shelter",
        ),
        (
            operator,
            f"/v1/agencies/{ngo_id}/workers",
            lambda v: {"name": "n", "role": v},
            "role",
            "admin",
        ),
        (
            net.ana,
            "/v1/cases",
            lambda v: {"client": {"name": "n"}, "summary": "s", "needs": [v]},
            "needs",
            "housing",
        ),
        (
            net.ana,
            "/v1/cases",
            lambda v: {"client": {"name": "n", "date_of_birth": v}, "summary": "s"},
            "client.date_of_birth",
            "1984-03-02",
        ),
        (
            net.ana,
            f"/v1/cases/{case_id}/notes",
            lambda v: {"text": "t", "category": v},
            "category",
            "health",
        ),
        (
            net.ana,
            f"/v1/cases/{case_id}/consents",
            lambda v: consent(sections=[v]),
            "sections",
            "identity",
        ),
        (
            net.ana,
            f"/v1/cases/{case_id}/consents",
            lambda v: consent(purpose=v),
            "purpose",
            "referral",
        ),
        (net.ana, f"/v1/cases/{case_id}/consents", lambda v: consent(method=v), "method", "verbal"),
        (net.ana, "/v1/referrals", lambda v: referral(urgency=v), "urgency", "routine"),
        (net.ana, "/v1/referrals", lambda v: referral(service_type=v), "service_type", "housing"),
    ]
    for api, path, body, field, word in attempts:
        response = api.request("POST", path, json_body=body(spoil.format(word)))
        # 400 where the documented pattern already refuses it, else 422 naming the field.
        problem = problem_of(response, 400, 422)
        if response.status_code == 422:
            assert [e["field"] for e in problem["errors"]] == [field], response.text
    network_still_works(net)


def test_an_outcome_with_a_trailing_newline_is_no_outcome(net: SimpleNamespace) -> None:
    ana, hal = net.ana, net.hal
    referral = ana.post(
        "/v1/referrals",
        {
            "case_id": net.case["id"],
            "to_agency_id": net.hospital["id"],
            "service_type": "housing",
            "reason": "r",
            "urgency": "urgent",
        },
    )
    hal.post(f"/v1/referrals/{referral['id']}/accept", status=200)
    hal.post(f"/v1/referrals/{referral['id']}/start", status=200)
    response = hal.request(
        "POST", f"/v1/referrals/{referral['id']}/complete", json_body={"outcome": "got_help\n"}
    )
    problem = problem_of(response, 422)  # issue 17: outside a vocabulary is 422, not 409
    assert problem["errors"][0]["field"] == "outcome"
    assert "got_help, not_eligible" in problem["errors"][0]["message"]
    assert hal.get(f"/v1/referrals/{referral['id']}")["status"] == "in_progress"


# --- timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
def test_a_valid_until_out_of_range_or_without_offset_is_422(
    net: SimpleNamespace, instant: str
) -> None:
    response = net.ana.request(
        "POST",
        f"/v1/cases/{net.case['id']}/consents",
        json_body={
            "grantee_agency_id": net.hospital["id"],
            "sections": ["identity"],
            "purpose": "referral",
            "method": "verbal",
            "valid_until": instant,
        },
    )
    assert fields_of(response) == ["valid_until"]
    network_still_works(net)


def test_an_accepted_valid_until_is_recorded_in_utc(net: SimpleNamespace) -> None:
    consent = net.ana.post(
        f"/v1/cases/{net.case['id']}/consents",
        {
            "grantee_agency_id": net.hospital["id"],
            "sections": ["summary"],
            "purpose": "care_coordination",
            "method": "written",
            "valid_until": "2199-12-31T22:00:00-01:00",
        },
    )
    assert consent["valid_until"] == "2199-12-31T23:00:00Z"
    assert net.ana.get(f"/v1/consents/{consent['id']}")["valid_until"] == "2199-12-31T23:00:00Z"
    assert "summary" in net.hal.get(f"/v1/cases/{net.case['id']}")
    network_still_works(net)


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
def test_a_timestamp_query_out_of_range_or_without_offset_is_422(
    net: SimpleNamespace, instant: str
) -> None:
    encoded = quote(instant, safe="")
    case_id = net.case["id"]
    for api, path, name in (
        (net.sam, f"/v1/cases/{case_id}/access?at={encoded}", "at"),
        (net.sam, f"/v1/disclosures?from={encoded}", "from"),
        (net.sam, f"/v1/disclosures?to={encoded}", "to"),
        (net.aud, f"/v1/audit/export?case_id={case_id}&from={encoded}", "from"),
        (net.aud, f"/v1/audit/export?case_id={case_id}&to={encoded}", "to"),
    ):
        response = api.request("GET", path)
        assert fields_of(response) == [name], (path, response.text)


# --- cursors, If-Match, query values --------------------------------------------------------


def cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


FORGED_CURSORS = [
    cursor("9" * 30),
    cursor("9" * 5000),
    cursor(str(2**63)),
    cursor("\x00"),
    cursor("2026-01-01T00:00:00.000000Z", "\x00"),
    cursor("\x00", "\x00"),
    cursor("a" * 400),
    cursor(10**30),
    cursor(),
    "!!!!",
    "%00",
    "A" * 499,
    "W10",
]


def test_forged_cursors_are_400_or_422_on_every_list(net: SimpleNamespace) -> None:
    case_id, referral_id = net.case["id"], net.referral["id"]
    lists = [
        (net.ana, "/v1/cases"),
        (net.ana, f"/v1/cases/{case_id}/consents"),
        (net.ana, "/v1/referrals?direction=outgoing"),
        (net.hal, "/v1/referrals?direction=incoming"),
        (net.hal, f"/v1/referrals/{referral_id}/messages"),
        (net.hal, "/v1/shared-cases"),
        (net.sam, "/v1/disclosures"),
        (net.hal, "/v1/feed"),
        (net.hal, "/v1/agencies"),
    ]
    for api, path in lists:
        separator = "&" if "?" in path else "?"
        for forged in FORGED_CURSORS:
            response = api.request("GET", f"{path}{separator}after={forged}")
            problem_of(response, 400, 422)
    network_still_works(net)


@pytest.mark.parametrize(
    "if_match",
    [
        '"' + "9" * 5000 + '"',
        '"' + "9" * 19 + '"',
        "9" * 5000,
        '"-1"',
        '"1 "',
        '"\u0661"',
        "W/" * 2000,
    ],
    ids=[
        "5000-digit-etag",
        "19-digits",
        "bare-digits",
        "negative",
        "space",
        "arabic-digit",
        "long",
    ],
)
def test_malformed_if_match_is_422(net: SimpleNamespace, if_match: str) -> None:
    response = net.ana.request(
        "POST",
        f"/v1/cases/{net.case['id']}/notes",
        json_body={"text": "t", "category": "general"},
        headers={"If-Match": if_match.encode()},
    )
    assert fields_of(response) == ["If-Match"]


@pytest.mark.parametrize(
    "query", ["status=%00", "x=%1B", "%00=1", "limit=" + "9" * 5000, "after=" + "A" * 1200]
)
def test_malformed_query_values_are_400_or_422(net: SimpleNamespace, query: str) -> None:
    for api, path in (
        (net.ana, "/v1/cases"),
        (net.hal, "/v1/referrals"),
        (net.hal, "/v1/agencies"),
        (net.hal, "/v1/feed"),
        (net.hal, "/v1/shared-cases"),
        (net.sam, "/v1/disclosures"),
        (net.aud, f"/v1/audit/export?case_id={net.case['id']}"),
    ):
        separator = "&" if "?" in path else "?"
        problem_of(api.request("GET", f"{path}{separator}{query}"), 400, 422)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/cases?status=open%0A",
        "/v1/cases?status=OPEN",
        "/v1/referrals?status=accepted%0A",
        "/v1/referrals?status=nonsense",
        "/v1/referrals?direction=incoming%0A",
        "/v1/agencies?area=%00",
        "/v1/agencies?service_type=housing%00",
    ],
)
def test_query_filters_match_exactly(net: SimpleNamespace, path: str) -> None:
    problem_of(net.hal.request("GET", path), 400, 422)


# --- nesting and size ------------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_json_nested_deeper_than_32_levels_is_400(net: SimpleNamespace, depth: int) -> None:
    for field in ("name", "colour"):
        body = f'{{"client": {{"{field}": {nested(depth)}}}, "summary": "s"}}'
        response = net.ana.request(
            "POST", "/v1/cases", content=body.encode(), headers={"Content-Type": "application/json"}
        )
        problem_of(response, 400)
    network_still_works(net)


def test_brackets_inside_strings_do_not_count_as_nesting(net: SimpleNamespace) -> None:
    text = nested(1_000) + '{"[\\"' * 50
    case = net.ana.post("/v1/cases", {"client": {"name": "n"}, "summary": text})
    assert net.ana.get(f"/v1/cases/{case['id']}")["summary"] == text


MIB = 1024 * 1024


def huge_body(size: int) -> bytes:
    return b'{"client": {"name": "' + b"x" * size + b'"}, "summary": "s"}'


def test_a_body_over_1_mib_is_413_however_large(net: SimpleNamespace) -> None:
    auth = {"Content-Type": "application/json"}
    for size in (MIB + 1, 8 * MIB, 32 * MIB):
        response = net.ana.request("POST", "/v1/cases", content=huge_body(size), headers=auth)
        assert problem_of(response, 413)["status"] == 413
        net.ana.get("/v1/me")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size shows as it is read
        yield b'{"client": {"name": "'
        for _ in range(8 * 16):
            yield b"x" * (MIB // 16)
        yield b'"}, "summary": "s"}'

    problem_of(net.ana.request("POST", "/v1/cases", content=chunks(), headers=auth), 413)
    # Answers given before the body is read: an unknown route, a caller without a token.
    unknown = net.ana.request("POST", "/v1/nowhere", content=huge_body(8 * MIB), headers=auth)
    problem_of(unknown, 404)
    anonymous = type(net.ana)(net.ana.server, None)
    problem_of(
        anonymous.request("POST", "/v1/cases", content=huge_body(8 * MIB), headers=auth), 401, 413
    )
    network_still_works(net)


def test_idempotency_key_with_a_control_character_is_refused(net: SimpleNamespace) -> None:
    response = net.ana.request(
        "POST",
        "/v1/cases",
        json_body={"client": {"name": "n"}, "summary": "s"},
        headers={"Idempotency-Key": f"key\x85{uuid4()}".encode("latin-1")},
    )
    assert fields_of(response) == ["Idempotency-Key"]
