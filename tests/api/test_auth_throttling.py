"""Guessing tokens is throttled per client address, and every failure is logged safely.

The API runs in process over each store, called through httpx's ASGI transport, which
lets each request come from the client address a test chooses (a proxy's, a client's).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import httpx
import pytest
from litestar import Litestar

from casenet.api import throttling
from casenet.api.app import create_app
from casenet.application import OPERATOR_ACTOR, Casenet
from casenet.settings import load_settings

LIMIT = 20
PROXY = "10.0.0.7"
ATTACKER = "198.51.100.66"
NEIGHBOUR = "203.0.113.9"


def app_for(casenet: Casenet, environ: dict[str, str], **settings: str) -> Litestar:
    return create_app(load_settings({**environ, **settings}), casenet)


def call(
    app: Litestar,
    token: str | None,
    client: str,
    path: str = "/v1/me",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request to ``app`` from the address ``client``."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://casenet") as http:
            return await http.get(path, headers=sent)

    return asyncio.run(go())


def worker_token(casenet: Casenet) -> str:
    agency = casenet.agencies.register(OPERATOR_ACTOR, name="Eastside Welfare", kind="ngo")
    _, token = casenet.agencies.add_worker(OPERATOR_ACTOR, agency.id, name="Ann", role="admin")
    return token


def fail(app: Litestar, client: str, times: int, **kwargs: Any) -> None:
    for attempt in range(times):
        answer = call(app, f"guess-{secrets.token_urlsafe(16)}", client, **kwargs)
        assert answer.status_code == 401, (attempt, answer.text)


def assert_throttled(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(answer.headers["retry-after"]) <= 60
    body = answer.json()
    assert body["status"] == 429
    assert body["title"] == "Too many requests"


def test_the_21st_failure_in_a_minute_is_429_with_retry_after_for_any_token(
    casenet: Casenet, casenet_environ: dict[str, str]
) -> None:
    app = app_for(casenet, casenet_environ)
    token = worker_token(casenet)
    assert call(app, token, ATTACKER).status_code == 200

    fail(app, ATTACKER, LIMIT)

    assert_throttled(call(app, "guess-21", ATTACKER))
    # Throttling stops guessing: a right guess looks like a wrong one until the window
    # passes, so the address learns nothing; the worker's own token waits too.
    assert_throttled(call(app, token, ATTACKER))
    assert_throttled(call(app, load_settings(casenet_environ).operator_token, ATTACKER))
    # Sending no token guesses nothing: still a plain 401.
    assert call(app, None, ATTACKER).status_code == 401


def test_another_address_is_unaffected(casenet: Casenet, casenet_environ: dict[str, str]) -> None:
    app = app_for(casenet, casenet_environ)
    token = worker_token(casenet)

    fail(app, ATTACKER, LIMIT)
    assert_throttled(call(app, "guess", ATTACKER))

    assert call(app, token, NEIGHBOUR).status_code == 200
    fail(app, NEIGHBOUR, LIMIT)  # its own 20 are all 401
    assert_throttled(call(app, "guess", NEIGHBOUR))


def test_the_limit_is_a_setting(casenet: Casenet, casenet_environ: dict[str, str]) -> None:
    three = app_for(casenet, casenet_environ, CASENET_AUTH_FAILURES_PER_MINUTE="3")
    fail(three, ATTACKER, 3)
    assert_throttled(call(three, "guess", ATTACKER))

    off = app_for(casenet, casenet_environ, CASENET_AUTH_FAILURES_PER_MINUTE="0")
    fail(off, ATTACKER, LIMIT * 2)


def test_x_forwarded_for_is_ignored_unless_from_a_trusted_proxy(
    casenet: Casenet, casenet_environ: dict[str, str]
) -> None:
    token = worker_token(casenet)
    untrusting = app_for(casenet, casenet_environ)
    # A client cannot dodge the count by naming a new address each time.
    for attempt in range(LIMIT):
        forged = {"X-Forwarded-For": f"192.0.2.{attempt}"}
        assert call(untrusting, "guess", ATTACKER, headers=forged).status_code == 401
    assert_throttled(call(untrusting, token, ATTACKER, headers={"X-Forwarded-For": "192.0.2.250"}))

    behind_proxy = app_for(casenet, casenet_environ, CASENET_TRUSTED_PROXIES="10.0.0.0/24")
    # From the proxy, the client is the right-most address that is not a trusted proxy:
    # what the client itself wrote to the left of it is ignored.
    for attempt in range(LIMIT):
        via = {"X-Forwarded-For": f"192.0.2.{attempt}, {ATTACKER}, 10.0.0.3"}
        assert call(behind_proxy, "guess", PROXY, headers=via).status_code == 401
    assert_throttled(call(behind_proxy, token, PROXY, headers={"X-Forwarded-For": ATTACKER}))
    # Another client behind the same proxy, and the proxy's own requests, go on.
    neighbour = {"X-Forwarded-For": NEIGHBOUR}
    assert call(behind_proxy, token, PROXY, headers=neighbour).status_code == 200
    assert call(behind_proxy, token, PROXY).status_code == 200
    # A header that is not an address leaves the proxy as the client, not the header.
    assert call(behind_proxy, token, PROXY, headers={"X-Forwarded-For": "bogus"}).status_code == 200


def test_ipv6_clients_are_counted_per_64(casenet: Casenet, casenet_environ: dict[str, str]) -> None:
    app = app_for(casenet, casenet_environ, CASENET_AUTH_FAILURES_PER_MINUTE="4")
    token = worker_token(casenet)
    for host in range(4):
        assert call(app, "guess", f"2001:db8:1:2::{host + 1}").status_code == 401
    assert_throttled(call(app, token, "2001:db8:1:2:ffff::9"))
    assert call(app, token, "2001:db8:1:3::1").status_code == 200


class Lines(logging.Handler):
    """Every record of the ``casenet`` loggers, as its message and its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.lines.append(repr(record.args))


def test_a_failed_authentication_is_logged_with_address_route_and_reason_never_the_token(
    casenet: Casenet, casenet_environ: dict[str, str]
) -> None:
    app = app_for(casenet, casenet_environ, CASENET_AUTH_FAILURES_PER_MINUTE="2")
    canary = f"canary{secrets.token_hex(16)}"
    handler = Lines()
    logging.getLogger("casenet").addHandler(handler)
    try:
        call(app, canary, ATTACKER, path="/v1/me")
        call(app, canary, ATTACKER, path=f"/v1/me?note={canary}")
        call(app, None, NEIGHBOUR, headers={"Authorization": f"Basic {canary}"})
        call(app, None, NEIGHBOUR)
        assert_throttled(call(app, canary, ATTACKER))
    finally:
        logging.getLogger("casenet").removeHandler(handler)

    lines = handler.lines
    failures = [line for line in lines if line.startswith("authentication failed")]
    assert failures == [
        f"authentication failed from {ATTACKER} on GET /v1/me: unknown or revoked token",
        f"authentication failed from {ATTACKER} on GET /v1/me: unknown or revoked token",
        f"authentication failed from {NEIGHBOUR} on GET /v1/me: not a bearer token",
        f"authentication failed from {NEIGHBOUR} on GET /v1/me: no Authorization header",
    ]
    assert f"throttling {ATTACKER}: 2 failed authentications within 60 s" in lines
    logged = "\n".join(lines)
    assert canary[:10] not in logged, "no token, not even a part of one, is logged"
    assert canary[-10:] not in logged


def test_the_window_slides_one_minute_after_each_failure(
    casenet: Casenet, casenet_environ: dict[str, str]
) -> None:
    app = app_for(casenet, casenet_environ, CASENET_AUTH_FAILURES_PER_MINUTE="3")
    token = worker_token(casenet)
    now = [1000.0]
    app.state.auth_failures.clock = lambda: now[0]
    for _ in range(3):
        fail(app, ATTACKER, 1)
        now[0] += 10.0  # failures at 1000, 1010, 1020; now 1030

    throttled = call(app, token, ATTACKER)
    assert_throttled(throttled)
    assert throttled.headers["retry-after"] == "30"  # the first failure ages out at 1060

    now[0] = 1060.5
    assert call(app, token, ATTACKER).status_code == 200
    fail(app, ATTACKER, 1)  # three in the last minute again
    assert_throttled(call(app, token, ATTACKER))


def test_addresses_whose_failures_aged_out_are_forgotten(
    casenet: Casenet, casenet_environ: dict[str, str]
) -> None:
    app = app_for(casenet, casenet_environ)
    token = worker_token(casenet)
    failures = app.state.auth_failures
    now = [1000.0]
    failures.clock = lambda: now[0]
    failures._swept = now[0]
    for host in range(50):
        fail(app, f"192.0.2.{host}", 1)
    assert len(failures._failures) == 50

    now[0] += 61.0
    assert call(app, token, NEIGHBOUR).status_code == 200

    assert failures._failures == {}, "the next check after a window forgets them all"


def test_at_most_max_addresses_are_tracked(
    casenet: Casenet, casenet_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttling, "MAX_ADDRESSES", 5)
    app = app_for(casenet, casenet_environ)
    for host in range(8):
        fail(app, f"192.0.2.{host}", 1)

    assert list(app.state.auth_failures._failures) == [f"192.0.2.{h}" for h in range(3, 8)]
