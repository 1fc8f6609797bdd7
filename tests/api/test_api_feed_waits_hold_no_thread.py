"""A feed request that waits holds no handler thread, in process, on SQLite and on
PostgreSQL. A server's handlers run on a few threads (``CASENET_HANDLER_THREADS``, 3 on
SQLite): were a ``wait`` to sleep in one, as many waiting followers as threads would
stop every other request of the process until their time was up. Here the app's
handlers get ONE thread; three followers wait 3 s each, and meanwhile another agency's
requests, reads and a write, answer at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from litestar.concurrency import set_asyncio_executor
from litestar.testing import TestClient
from tests.support.http import Api

from casenet.api.app import create_app
from casenet.bootstrap import build_casenet

WAIT = 3
#: What "at once" allows on a shared machine, well under WAIT.
PROMPTLY = 1.5


@pytest.fixture
def one_thread_app(app_server: Any) -> Iterator[TestClient[Any]]:
    """A second app over the module's store, whose handlers share one thread."""
    casenet = build_casenet(app_server.settings)
    set_asyncio_executor(ThreadPoolExecutor(1, thread_name_prefix="one-handler"))
    try:
        with TestClient(create_app(app_server.settings, casenet)) as client:
            yield client
    finally:
        set_asyncio_executor(None)
        casenet.close()


def test_waiting_followers_leave_the_handler_thread_to_other_requests(
    operator: Api, one_thread_app: TestClient[Any]
) -> None:
    client = one_thread_app
    hal = operator.worker(operator.agency("Waiting Hospital", "hospital"), "caseworker", "Hal")
    ana = operator.worker(operator.agency("Busy NGO"), "caseworker", "Ana")
    as_hal = {"Authorization": f"Bearer {hal.token}"}
    as_ana = {"Authorization": f"Bearer {ana.token}"}
    head = client.get("/v1/feed", headers=as_hal).json()["next"]
    took: list[float] = []

    def follow() -> None:
        started = time.monotonic()
        answer = client.get(f"/v1/feed?after={head}&wait={WAIT}", headers=as_hal)
        assert answer.json() == {"items": [], "next": head}
        took.append(time.monotonic() - started)

    followers = [threading.Thread(target=follow) for _ in range(3)]
    for follower in followers:
        follower.start()
    time.sleep(0.5)  # all three are waiting
    started = time.monotonic()
    for _ in range(5):
        assert client.get("/v1/cases", headers=as_ana).status_code == 200
    case = client.post(
        "/v1/cases", json={"client": {"name": "Wanda Waits"}, "summary": "s"}, headers=as_ana
    )
    assert case.status_code == 201
    assert time.monotonic() - started < PROMPTLY  # six requests, not stuck behind waits
    for follower in followers:
        follower.join(timeout=WAIT * 4)
    assert len(took) == 3
    assert all(seconds >= WAIT - 0.2 for seconds in took)  # they did wait their time
