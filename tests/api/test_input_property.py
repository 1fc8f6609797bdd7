"""Generated input through the API on both stores: refused at the edge, or stored,
projected and read back exactly.

Hypothesis sends agency, worker and client names, case summaries and note texts,
consent ``valid_until`` values and list cursors, drawn from every Unicode character
(control characters included), from the whole range of RFC 3339 instants with offsets
and from forged cursors (NUL, numbers past 63 bits, garbage base64). Each answer is
2xx, 400 or 422, never a 5xx; after each accepted write every read model reaches the
log's head, the value reads back as it was sent (an instant as the same instant, in
UTC) and another agency's reads answer 200.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from casenet.api.app import create_app
from casenet.application import Casenet
from casenet.domain.values import EARLIEST, LATEST, forbidden_character
from casenet.settings import load_settings

#: Mostly control characters and brackets, the classes that once broke the network.
texts = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\x00", "\x01", "\x1b", "\x7f", "\x85", "\t", "\n", "\r", "[", "{"]),
    ),
    min_size=0,
    max_size=30,
)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets),
    st.datetimes(  # near the ends of 1900-2200
        min_value=datetime(1899, 12, 30), max_value=datetime(1900, 1, 2), timezones=offsets
    ),
    st.datetimes(
        min_value=datetime(2199, 12, 30), max_value=datetime(2200, 1, 2), timezones=offsets
    ),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=offsets),
    st.datetimes(max_value=datetime(1, 1, 2), timezones=offsets),
)


def acceptable_text(text: str) -> bool:
    return bool(text.strip()) and forbidden_character(text) is None


class Network:
    """An in-process API over one store, with two agencies and the operator."""

    def __init__(self, client: TestClient[Any], casenet: Casenet, operator_token: str) -> None:
        self.client = client
        self.casenet = casenet
        self.operator = {"Authorization": f"Bearer {operator_token}"}
        ngo = self.post(self.operator, "/v1/agencies", {"name": "Eastside", "kind": "ngo"})
        other = self.post(self.operator, "/v1/agencies", {"name": "Westside", "kind": "ngo"})
        self.ngo_id, self.other_id = ngo["id"], other["id"]
        self.ana = self.worker(self.ngo_id, "caseworker")
        self.bystander = self.worker(self.other_id, "caseworker")
        self.case = self.post(self.ana, "/v1/cases", {"client": {"name": "n"}, "summary": "s"})

    def post(self, headers: dict[str, str], path: str, body: Any) -> Any:
        response = self.client.post(path, json=body, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()

    def worker(self, agency_id: str, role: str) -> dict[str, str]:
        created = self.post(
            self.operator, f"/v1/agencies/{agency_id}/workers", {"name": role, "role": role}
        )
        return {"Authorization": f"Bearer {created['token']}"}

    def send(self, headers: dict[str, str], path: str, body: Any) -> Any:
        """201 and the body, or None for a refusal (400 or 422 problem)."""
        response = self.client.post(path, json=body, headers=headers)
        assert response.status_code in (201, 400, 422), (response.status_code, response.text)
        if response.status_code != 201:
            assert response.headers["content-type"].startswith("application/problem+json")
            return None
        return response.json()

    def get(self, headers: dict[str, str], path: str) -> Any:
        response = self.client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def still_works(self) -> None:
        """Every read model at the log's head; the other agency's reads answer 200."""
        projections = self.casenet.app.projections
        projections.ensure_current()
        behind = [
            s.name
            for s in projections.status()
            if projections.has_pending(s.name, s.position, s.head)
        ]
        assert behind == []
        for path in ("/v1/me", "/v1/cases", "/v1/shared-cases", "/v1/feed", "/v1/agencies"):
            self.get(self.bystander, path)


@pytest.fixture
def network(casenet: Casenet, casenet_environ: dict[str, str]) -> Iterator[Network]:
    settings = load_settings(casenet_environ)
    with TestClient(create_app(settings, casenet)) as client:
        yield Network(client, casenet, settings.operator_token)


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(name=texts, summary=texts, note=texts)
def test_texts_are_refused_or_read_back_exactly(
    network: Network, name: str, summary: str, note: str
) -> None:
    agency = network.send(network.operator, "/v1/agencies", {"name": name, "kind": "ngo"})
    assert (agency is not None) == acceptable_text(name)
    if agency is not None:
        assert network.get(network.bystander, f"/v1/agencies/{agency['id']}")["name"] == name
        worker = network.send(
            network.operator,
            f"/v1/agencies/{network.ngo_id}/workers",
            {"name": name, "role": "auditor"},
        )
        assert worker is not None
        assert worker["name"] == name
    case = network.send(network.ana, "/v1/cases", {"client": {"name": name}, "summary": summary})
    assert (case is not None) == (acceptable_text(name) and acceptable_text(summary))
    if case is not None:
        read = network.get(network.ana, f"/v1/cases/{case['id']}")
        assert (read["client"]["name"], read["summary"]) == (name, summary)
    added = network.send(
        network.ana,
        f"/v1/cases/{network.case['id']}/notes",
        {"text": note, "category": "general"},
    )
    assert (added is not None) == acceptable_text(note)
    if added is not None:
        notes = network.get(network.ana, f"/v1/cases/{network.case['id']}")["notes"]
        assert notes[-1]["text"] == note
    network.still_works()


@PROPERTY
@given(valid_until=instants)
def test_valid_until_is_refused_or_the_same_instant_in_utc(
    network: Network, valid_until: datetime
) -> None:
    consent = network.send(
        network.ana,
        f"/v1/cases/{network.case['id']}/consents",
        {
            "grantee_agency_id": network.other_id,
            "sections": ["summary"],
            "purpose": "referral",
            "method": "verbal",
            "valid_until": valid_until.isoformat(),
        },
    )
    try:
        utc: datetime | None = valid_until.astimezone(UTC)
    except OverflowError:  # its UTC form is past datetime's range
        utc = None
    future = utc is not None and EARLIEST <= utc < LATEST and utc > datetime.now(UTC)
    assert (consent is not None) == future, valid_until.isoformat()
    if consent is not None:
        recorded = datetime.fromisoformat(consent["valid_until"])
        assert recorded == valid_until
        assert recorded.utcoffset() == timedelta(0)
        assert network.get(network.bystander, f"/v1/cases/{network.case['id']}")["summary"]
    network.still_works()
    network.get(network.bystander, "/v1/shared-cases")


cursor_parts = st.one_of(
    texts,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=2**63 - 2, max_value=2**63 + 2).map(str),
    st.sampled_from(["2026-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z", "\x00"]),
)
cursors = st.one_of(
    st.lists(cursor_parts, min_size=1, max_size=2).map(
        lambda parts: base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")
    ),
    st.text(max_size=40),
)


@PROPERTY
@given(after=cursors, limit=st.one_of(st.none(), st.integers(min_value=1, max_value=3)))
def test_any_cursor_is_a_page_or_a_400_or_422_on_every_list(
    network: Network, after: str, limit: int | None
) -> None:
    case_id = network.case["id"]
    query = {"after": after} if limit is None else {"after": after, "limit": str(limit)}
    for headers, path in (
        (network.ana, "/v1/cases"),
        (network.ana, f"/v1/cases/{case_id}/consents"),
        (network.ana, "/v1/referrals?direction=outgoing"),
        (network.bystander, "/v1/shared-cases"),
        (network.bystander, "/v1/feed"),
        (network.bystander, "/v1/agencies"),
    ):
        response = network.client.get(path, params=query, headers=headers)
        assert response.status_code in (200, 400, 422), (path, query, response.text)
    network.still_works()
