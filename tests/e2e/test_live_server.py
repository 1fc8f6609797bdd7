"""What only a real ``casenet serve`` shows: its connections and its log, on both stores.

The API's behaviour is tested in process (tests/api); these are the two things the
in-process client cannot see:

* a body over 1 MiB is 413 however large, and the connection it came on stays usable
  (the server must read or drop the rest of the body, not leave it in the socket);
* the server's log (the process's own output, the HTTP server's included) holds no
  personal value and no traceback, after writes, reads and refusals that carried them.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

MIB = 1024 * 1024
CLIENT = {
    "name": "Noor Haddad",
    "date_of_birth": "1990-01-01",
    "phone": "+1 555 0199",
    "address": "7 Quay Street, Westside",
}
SUMMARY = "Lost her job after an injury; two children at the primary school."
NOTE = "Asthma, uses an inhaler; afraid of losing the flat."


@pytest.fixture(scope="module")
def net(operator: Any) -> SimpleNamespace:
    ngo = operator.agency("Westside Welfare", "ngo")
    hospital = operator.agency("Westside Hospital", "hospital")
    return SimpleNamespace(
        ana=operator.worker(ngo, "caseworker", "Ana"),
        hal=operator.worker(hospital, "caseworker", "Hal"),
        hospital=hospital,
    )


def huge_body(size: int) -> bytes:
    return b'{"client": {"name": "' + b"x" * size + b'"}, "summary": "s"}'


def is_problem(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.fixture
def one_connection(live_server: Any) -> Iterator[httpx.Client]:
    """A client that has one connection, so every request reuses the one before it."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=live_server.url, timeout=60, limits=limits) as client:
        yield client


def test_a_body_over_1_mib_is_413_and_the_connection_survives(
    net: SimpleNamespace, one_connection: httpx.Client
) -> None:
    auth = {"Authorization": f"Bearer {net.ana.token}", "Content-Type": "application/json"}
    for size in (MIB + 1, 8 * MIB, 8 * MIB, 32 * MIB, 8 * MIB):
        is_problem(one_connection.post("/v1/cases", content=huge_body(size), headers=auth), 413)
        assert one_connection.get("/v1/me", headers=auth).status_code == 200

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size shows as it is read
        yield b'{"client": {"name": "'
        for _ in range(8 * 16):
            yield b"x" * (MIB // 16)
        yield b'"}, "summary": "s"}'

    is_problem(one_connection.post("/v1/cases", content=chunks(), headers=auth), 413)
    assert one_connection.get("/v1/me", headers=auth).status_code == 200
    # Answers given before the body is read leave the connection usable too.
    unknown = one_connection.post("/v1/nowhere", content=huge_body(8 * MIB), headers=auth)
    is_problem(unknown, 404)
    anonymous = one_connection.post(
        "/v1/cases", content=huge_body(8 * MIB), headers={"Content-Type": "application/json"}
    )
    is_problem(anonymous, 401, 413)
    assert one_connection.get("/v1/me", headers=auth).status_code == 200


def test_the_servers_log_holds_no_personal_data(net: SimpleNamespace, live_server: Any) -> None:
    ana, hal = net.ana, net.hal
    case = ana.post("/v1/cases", {"client": CLIENT, "summary": SUMMARY, "needs": ["housing"]})
    ana.post(f"/v1/cases/{case['id']}/notes", {"text": NOTE, "category": "health"})
    ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": net.hospital["id"],
            "sections": ["identity", "contact", "notes.health"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    assert hal.get(f"/v1/cases/{case['id']}")["client"]["name"] == CLIENT["name"]
    assert ana.get(f"/v1/cases/{case['id']}")["summary"] == SUMMARY
    # Refusals that carry personal values: a control character, a stale If-Match.
    refused = ana.request(
        "POST", "/v1/cases", json_body={"client": {**CLIENT, "name": CLIENT["name"] + "\x00"}}
    )
    is_problem(refused, 422)
    stale = ana.request(
        "POST",
        f"/v1/cases/{case['id']}/close",
        json_body={"reason": SUMMARY},
        headers={"If-Match": '"999"'},
    )
    is_problem(stale, 412)
    # Only an admin erases: a caseworker's attempt is a refusal, with the client's id.
    is_problem(ana.request("POST", f"/v1/clients/{case['client_id']}/erasure"), 403, 404)

    log = live_server.log_path.read_text(errors="replace")
    for value in (*CLIENT.values(), SUMMARY, NOTE, ana.token, hal.token):
        assert value not in log
    assert "Traceback" not in log
