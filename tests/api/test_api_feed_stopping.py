"""A stopping server does not hold feed requests open (API.md, "Feed you can follow"),
in process, on SQLite and on PostgreSQL: once the feed is told to stop waiting (what
SIGTERM does in a server, api/shutdown.py), an open ``wait=30`` answers within a look
at the read model with its empty page and the cursor to resume from, and a new wait
answers at once. The signal itself, in a real server process, is in
tests/e2e/test_graceful_shutdown.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from tests.support.http import Api

from casenet.api.app import create_app
from casenet.application import Casenet
from casenet.bootstrap import build_casenet

#: What "at once" allows on a shared machine (a wait polls every 0.15 s).
PROMPTLY = 2.0


@pytest.fixture
def stopping_app(app_server: Any) -> Iterator[tuple[Casenet, TestClient[Any]]]:
    """A second app over the module's store, with services of its own to stop (the
    module's app keeps waiting for the other tests)."""
    casenet = build_casenet(app_server.settings)
    try:
        with TestClient(create_app(app_server.settings, casenet)) as client:
            yield casenet, client
    finally:
        casenet.close()


def test_open_and_new_waits_answer_at_once_when_the_feed_stops_waiting(
    operator: Api, stopping_app: tuple[Casenet, TestClient[Any]]
) -> None:
    casenet, client = stopping_app
    hal = operator.worker(operator.agency("Stopping Hospital", "hospital"), "caseworker", "Hal")
    headers = {"Authorization": f"Bearer {hal.token}"}
    head = client.get("/v1/feed", headers=headers).json()["next"]
    answers: list[Any] = []

    def wait() -> None:
        answers.append(client.get(f"/v1/feed?after={head}&wait=30", headers=headers))

    waiting = threading.Thread(target=wait)
    waiting.start()
    time.sleep(0.5)  # the request is waiting
    assert answers == []
    stopped = time.monotonic()
    casenet.feed.stop_waiting()
    waiting.join(timeout=PROMPTLY * 5)
    assert time.monotonic() - stopped < PROMPTLY
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"items": [], "next": head})]

    started = time.monotonic()
    again = client.get(f"/v1/feed?after={head}&wait=30", headers=headers)
    assert (again.status_code, again.json()) == (200, {"items": [], "next": head})
    assert time.monotonic() - started < PROMPTLY
