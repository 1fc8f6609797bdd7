"""401 throttling in a real ``casenet serve``: the 429, and a log with no token in it.

The server is started with ``CASENET_AUTH_FAILURES_PER_MINUTE=5`` and this host as its
trusted proxy, so that each test names the client it plays in ``X-Forwarded-For``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

LIMIT = 5


@pytest.fixture(scope="module")
def server(new_server: Callable[[], Any]) -> Any:
    made = new_server()
    environ = made.environ
    made.environ = lambda: {
        **environ(),
        "CASENET_AUTH_FAILURES_PER_MINUTE": str(LIMIT),
        "CASENET_TRUSTED_PROXIES": "127.0.0.1, ::1",
    }
    made.start()
    return made


def get(server: Any, token: str, client: str, path: str = "/v1/me") -> Any:
    return server.http.get(
        server.url + path,
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": client},
    )


def test_guessing_tokens_is_throttled_and_logged_without_the_token(
    server: Any, connect: Callable[..., Any]
) -> None:
    operator = connect(server)
    canary = f"canary{secrets.token_hex(16)}"
    guesser, bystander = "198.51.100.23", "198.51.100.24"

    for _ in range(LIMIT):
        assert get(server, canary, guesser, f"/v1/me?q={canary}").status_code == 401
    throttled = get(server, operator.token, guesser)
    bystanders = get(server, operator.token, bystander)

    assert throttled.status_code == 429, throttled.text
    assert throttled.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert bystanders.status_code == 200, bystanders.text
    deadline = time.monotonic() + 10
    while "throttling 198.51.100.23" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log()
    assert log.count(f"authentication failed from {guesser} on GET /v1/me") == LIMIT, log
    assert "throttling 198.51.100.23" in log
    assert canary[:10] not in log, "a token reached the log"
    assert canary[-10:] not in log, "a token reached the log"
    assert operator.token[:10] not in log
