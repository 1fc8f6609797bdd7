"""No request can break the network: generated requests against the API, on both stores.

Hypothesis drives the in-process API (Litestar's ``TestClient`` over a real SQLite or
PostgreSQL store) with bodies, headers, cursors and timestamps drawn from the classes
that once broke it: NUL and other control characters in every text field, vocabularies
with a trailing newline or in another case, timestamps at the ends of the representable
range with an offset, forged cursors (huge integers, NUL, garbage), 5,000-digit
``If-Match`` values and JSON nested a thousand deep.

After every request: no answer is 5xx, and every error is ``application/problem+json``.
After every accepted write: every read model reaches the log's head (none stopped), and
the other agency's reads (its shared cases, its feed, its inbox, the shared case itself)
still answer 2xx, as do the owner's.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from casenet.api.app import create_app
from casenet.application import Casenet
from casenet.bootstrap import build_casenet
from casenet.settings import Settings, load_settings

OPERATOR = "poison-operator-" + secrets.token_urlsafe(32)
#: Generated batches per store (CASENET_FUZZ_EXAMPLES for a longer run).
EXAMPLES = int(os.environ.get("CASENET_FUZZ_EXAMPLES", "200"))
#: Answers by status class, over the module's run (printed at its end, with -s).
ANSWERS: Counter[str] = Counter()

# --- what the generated requests are made of ---------------------------------------------

#: Characters that broke stores and read models, mixed with ordinary ones.
NASTY = ["\x00", "\x01", "\x1b", "\x1f", "\x7f", "\x85", "\u2028", "\ufeff", "\t", "\n", "\r"]
PLAIN = ["a", "Z", " ", "é", "ß", "字", "-", "'", '"', "\\", "%", "0"]

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(NASTY + PLAIN), min_size=1, max_size=20),
    st.sampled_from(["", " ", "ok", "a\x00b", "\x00", "x" * 2_001, "name\n"]),
)


def vocabulary(*words: str) -> st.SearchStrategy[Any]:
    """The valid words, the same words bent (newline, case, spaces), and anything else."""
    valid = st.sampled_from(words)
    bent = valid.flatmap(
        lambda w: st.sampled_from([w + "\n", w.upper(), f" {w}", f"{w} ", w + "\x00", w + "\r\n"])
    )
    return st.one_of(valid, valid, bent, texts, st.integers(), st.none())


ROLES = vocabulary("caseworker", "supervisor", "admin", "auditor")
KINDS = vocabulary("ngo", "hospital", "school", "welfare")
SECTIONS = ["identity", "contact", "needs", "summary", "notes.general", "notes.health"]
CATEGORIES = vocabulary("general", "health", "mental_health", "legal")
PURPOSES = vocabulary("referral", "care_coordination")
METHODS = vocabulary("verbal", "written", "electronic")
URGENCIES = vocabulary("routine", "urgent")
CODES = vocabulary("housing", "food", "health_care")

EDGE_TIMES = [
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59+01:00",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00-01:00",
    "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "2200-01-01T00:00:01Z",
    "2030-01-01T00:00:00",  # no offset
    "2030-01-01",
    "2030-13-45T99:99:99Z",
    "now",
    "",
]
offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23))
timestamps = st.one_of(
    st.sampled_from(EDGE_TIMES),
    st.builds(
        lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        offsets.map(lambda d: timedelta(minutes=int(d.total_seconds() // 60))),
    ),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda moment: moment.replace(tzinfo=UTC).isoformat()
    ),
    texts,
)
cursors = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**60).map(str),
    st.binary(max_size=40).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.sampled_from(
        ["\x00", "%00", "AAAA", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA", "-1", "1e309", "9" * 400]
    ),
    texts,
)
limits = st.one_of(st.integers(min_value=-5, max_value=10**20).map(str), texts)
if_matches = st.one_of(
    st.just("9" * 5_000),
    st.integers(min_value=-(10**20), max_value=10**20).map(lambda n: f'"{n}"'),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(['W/"1"', "*", '"', "\x00", "", '"abc"']),
)


def nested(depth: int) -> bytes:
    """A JSON body ``depth`` levels deep."""
    return ("[" * depth + "]" * depth).encode()


# --- the network the requests land in -------------------------------------------------


@dataclass
class Network:
    """Two agencies on one store: A owns a case it shares with B under a consent."""

    client: TestClient[Any]
    casenet: Casenet
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def call(
        self,
        who: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        token = OPERATOR if who == "operator" else self.tokens[who]
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        if content is not None:
            all_headers.setdefault("Content-Type", "application/json")
            return self.client.request(
                method, path, content=content, params=params, headers=all_headers
            )
        return self.client.request(method, path, json=json_body, params=params, headers=all_headers)

    def ok(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.call(who, method, path, **kwargs)
        assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
        return answer.json()


def build_network(client: TestClient[Any], casenet: Casenet) -> Network:
    network = Network(client, casenet)
    for name in ("a", "b"):
        agency = network.ok(
            "operator", "POST", "/v1/agencies", json_body={"name": f"Agency {name}", "kind": "ngo"}
        )
        network.ids[name] = agency["id"]
        for role in ("caseworker", "admin", "supervisor", "auditor"):
            worker = network.ok(
                "operator",
                "POST",
                f"/v1/agencies/{agency['id']}/workers",
                json_body={"name": f"{name} {role}", "role": role},
            )
            network.tokens[f"{name}_{role}"] = worker["token"]
    case = network.ok(
        "a_caseworker",
        "POST",
        "/v1/cases",
        json_body={
            "client": {"name": "Client One", "phone": "555"},
            "summary": "needs a flat",
            "needs": ["housing"],
        },
    )
    network.ids["case"] = case["id"]
    network.ids["client"] = case["client_id"]
    consent = network.ok(
        "a_caseworker",
        "POST",
        f"/v1/cases/{case['id']}/consents",
        json_body={
            "grantee_agency_id": network.ids["b"],
            "sections": ["identity", "summary", "notes.general"],
            "purpose": "referral",
            "method": "written",
        },
    )
    network.ids["consent"] = consent["id"]
    referral = network.ok(
        "a_caseworker",
        "POST",
        "/v1/referrals",
        json_body={
            "case_id": case["id"],
            "to_agency_id": network.ids["b"],
            "service_type": "housing",
            "reason": "a flat",
            "urgency": "routine",
            "consent_id": consent["id"],
        },
    )
    network.ids["referral"] = referral["id"]
    return network


# --- one generated request -----------------------------------------------------------


@dataclass(frozen=True)
class Request:
    who: str
    method: str
    path: str
    json_body: Any = None
    content: bytes | None = None
    params: dict[str, str] | None = None
    headers: dict[str, str] | None = None

    def send(self, network: Network) -> Any:
        path = self.path.format(**network.ids)
        return network.call(
            self.who,
            self.method,
            path,
            json_body=self.json_body,
            content=self.content,
            params=self.params,
            headers=self.headers,
        )


def post(who: str, path: str, body: st.SearchStrategy[Any]) -> st.SearchStrategy[Request]:
    return body.map(lambda b: Request(who, "POST", path, json_body=b))


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


services = st.lists(
    st.fixed_dictionaries({"type": CODES, "description": texts}, optional={"area": texts}),
    max_size=2,
)
writes = st.one_of(
    post(
        "operator",
        "/v1/agencies",
        st.fixed_dictionaries(
            {"name": texts, "kind": KINDS},
            optional={"restricted": st.booleans(), "services": services},
        ),
    ),
    post(
        "a_admin", "/v1/agencies/{a}/workers", st.fixed_dictionaries({"name": texts, "role": ROLES})
    ),
    st.builds(
        lambda body: Request("a_admin", "PUT", "/v1/agencies/{a}/services", json_body=body),
        st.fixed_dictionaries({"services": services}),
    ),
    post(
        "a_caseworker",
        "/v1/cases",
        st.fixed_dictionaries(
            {
                "client": st.fixed_dictionaries(
                    {"name": texts},
                    optional={"date_of_birth": texts, "phone": texts, "address": texts},
                ),
                "summary": texts,
            },
            optional={"needs": st.lists(CODES, max_size=3)},
        ),
    ),
    post(
        "a_caseworker",
        "/v1/cases/{case}/notes",
        st.fixed_dictionaries({"text": texts, "category": CATEGORIES}),
    ),
    post(
        "a_caseworker",
        "/v1/cases/{case}/consents",
        st.fixed_dictionaries(
            {
                "grantee_agency_id": st.just("{b}"),
                "sections": st.lists(
                    st.one_of(st.sampled_from(SECTIONS), texts), min_size=1, max_size=3
                ),
                "purpose": PURPOSES,
                "method": METHODS,
            },
            optional={"valid_until": timestamps, "evidence": texts},
        ),
    ),
    post(
        "a_caseworker",
        "/v1/referrals",
        st.fixed_dictionaries(
            {
                "case_id": st.just("{case}"),
                "to_agency_id": st.just("{b}"),
                "service_type": CODES,
                "reason": texts,
                "urgency": URGENCIES,
            },
            optional={"consent_id": st.sampled_from(["{consent}", str(uuid4())])},
        ),
    ),
    post(
        "a_caseworker", "/v1/referrals/{referral}/messages", st.fixed_dictionaries({"text": texts})
    ),
    post(
        "b_caseworker", "/v1/referrals/{referral}/messages", st.fixed_dictionaries({"text": texts})
    ),
    st.builds(
        lambda text, tag: Request(
            "a_caseworker",
            "POST",
            "/v1/cases/{case}/notes",
            json_body={"text": text, "category": "general"},
            headers={"If-Match": tag},
        ),
        texts,
        if_matches,
    ),
    st.integers(min_value=30, max_value=1_200).map(
        lambda depth: Request("a_caseworker", "POST", "/v1/cases", content=nested(depth))
    ),
)
reads = st.one_of(
    st.builds(
        lambda after, limit: Request(
            "a_caseworker", "GET", "/v1/cases", params={"after": after, "limit": limit}
        ),
        cursors,
        limits,
    ),
    st.builds(
        lambda after, limit: Request(
            "b_caseworker", "GET", "/v1/feed", params={"after": after, "limit": limit}
        ),
        cursors,
        limits,
    ),
    st.builds(
        lambda after: Request("b_caseworker", "GET", "/v1/shared-cases", params={"after": after}),
        cursors,
    ),
    st.builds(
        lambda after, status: Request(
            "b_caseworker",
            "GET",
            "/v1/referrals",
            params={"direction": "incoming", "after": after, "status": status},
        ),
        cursors,
        vocabulary("requested", "accepted"),
    ),
    st.builds(
        lambda start, end: Request(
            "a_supervisor",
            "GET",
            "/v1/disclosures",
            params={"case_id": "{case}", "from": start, "to": end},
        ),
        timestamps,
        timestamps,
    ),
    st.builds(
        lambda at: Request("a_supervisor", "GET", "/v1/cases/{case}/access", params={"at": at}),
        timestamps,
    ),
    st.builds(
        lambda start, end: Request(
            "a_auditor",
            "GET",
            "/v1/audit/export",
            params={"case_id": "{case}", "from": start, "to": end},
        ),
        timestamps,
        timestamps,
    ),
    st.builds(
        lambda after: Request(
            "a_caseworker", "GET", "/v1/referrals/{referral}/messages", params={"after": after}
        ),
        cursors,
    ),
)
requests = st.lists(st.one_of(writes, reads), min_size=1, max_size=4)


def formatted(value: Any, ids: dict[str, str]) -> Any:
    """The body with the network's ids put in place of ``{name}``."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids.get(value[1:-1], value)
    if isinstance(value, dict):
        return {key: formatted(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [formatted(item, ids) for item in value]
    return value


# --- the invariants -------------------------------------------------------------------


def assert_safe_answer(request: Request, answer: Any) -> None:
    assert answer.status_code < 500, (request, answer.status_code, answer.text[:500])
    if answer.status_code >= 400:
        assert answer.headers["content-type"].startswith("application/problem+json"), (
            request,
            answer.status_code,
            answer.headers["content-type"],
        )
        assert "Traceback" not in answer.text


def assert_network_still_works(network: Network) -> None:
    projections = network.casenet.app.projections
    projections.catch_up(projections.names())
    stopped = projections.stopped()
    assert not stopped, f"read models stopped: {stopped}"
    behind = [(s.name, s.lag) for s in projections.status() if s.lag]
    assert not behind, f"read models behind the log's head: {behind}"
    for who, path in [
        ("b_caseworker", "/v1/shared-cases"),
        ("b_caseworker", "/v1/feed"),
        ("b_caseworker", "/v1/referrals?direction=incoming"),
        ("b_caseworker", "/v1/cases/{case}"),
        ("b_caseworker", "/v1/referrals/{referral}"),
        ("a_caseworker", "/v1/cases/{case}"),
        ("a_caseworker", "/v1/cases"),
        ("a_supervisor", "/v1/cases/{case}/access"),
        ("a_supervisor", "/v1/disclosures?case_id={case}"),
        ("a_caseworker", "/v1/agencies"),
    ]:
        answer = network.call(who, "GET", path.format(**network.ids))
        assert answer.status_code == 200, (who, path, answer.status_code, answer.text[:300])


# --- the test ----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def answers_tally() -> Iterator[None]:
    yield
    print(f"\ngenerated requests by answer: {dict(sorted(ANSWERS.items()))}")


@pytest.fixture
def network(casenet_environ: dict[str, str]) -> Iterator[Network]:
    environ = {**casenet_environ, "CASENET_OPERATOR_TOKEN": OPERATOR}
    app_settings: Settings = load_settings(environ)
    services = build_casenet(app_settings)
    try:
        with TestClient(create_app(app_settings, services)) as client:
            yield build_network(client, services)
    finally:
        services.close()


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=requests)
def test_no_generated_request_breaks_the_network(network: Network, batch: list[Request]) -> None:
    for request in batch:
        concrete = Request(
            request.who,
            request.method,
            request.path,
            json_body=formatted(request.json_body, network.ids),
            content=request.content,
            params=formatted(request.params, network.ids),
            headers=request.headers,
        )
        answer = concrete.send(network)
        ANSWERS[f"{answer.status_code // 100}xx"] += 1
        assert_safe_answer(concrete, answer)
        if request.method != "GET" and answer.status_code < 300:
            assert_network_still_works(network)


def test_the_poison_classes_are_refused(network: Network) -> None:
    """The inputs that took the network down before, one each, named."""
    nul_name = network.call(
        "a_admin",
        "POST",
        f"/v1/agencies/{network.ids['a']}/workers",
        json_body={"name": "Eve\x00", "role": "caseworker"},
    )
    assert nul_name.status_code == 422, nul_name.text
    edge = network.call(
        "a_caseworker",
        "POST",
        f"/v1/cases/{network.ids['case']}/consents",
        json_body={
            "grantee_agency_id": network.ids["b"],
            "sections": ["identity"],
            "purpose": "referral",
            "method": "written",
            "valid_until": "9999-12-31T23:59:59-01:00",
        },
    )
    assert edge.status_code == 422, edge.text
    newline = network.call(
        "a_admin",
        "POST",
        f"/v1/agencies/{network.ids['a']}/workers",
        json_body={"name": "Eve", "role": "caseworker\n"},
    )
    assert newline.status_code in (400, 422), newline.text
    deep = network.call("a_caseworker", "POST", "/v1/cases", content=nested(1_000))
    assert deep.status_code == 400, deep.text
    long_tag = network.call(
        "a_caseworker",
        "POST",
        f"/v1/cases/{network.ids['case']}/notes",
        json_body={"text": "x", "category": "general"},
        headers={"If-Match": "9" * 5_000},
    )
    assert long_tag.status_code in (400, 412, 422), long_tag.text
    huge_cursor = network.call("b_caseworker", "GET", "/v1/feed", params={"after": "9" * 400})
    assert huge_cursor.status_code in (400, 422), huge_cursor.text
    assert_network_still_works(network)
