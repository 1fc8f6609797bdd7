"""A server stopped while requests wait on the feed (``wait=30``) answers them at once
with their empty page and the cursor to resume from, and exits within seconds, not
after the longest wait. On SQLite and on PostgreSQL.

Only a real process has a SIGTERM and a shutdown; the in-process side of it (a wait
released by the lifespan's exit) is in tests/api/test_api_feed.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

#: The e2e fixtures' classes (tests/e2e/conftest.py): the test folders are not packages.
LiveServer = Api = Any
WAITERS = 3
#: What "at once" allows: the shutdown itself, and a slow shared machine.
PROMPTLY = 5.0


def test_sigterm_answers_open_waits_at_once_and_exits(
    new_server: Callable[[], LiveServer], connect: Callable[..., Api]
) -> None:
    server = new_server()
    server.start()
    operator = connect(server)
    hal = operator.worker(operator.agency("Stopping Hospital", "hospital"), "caseworker", "Hal")
    head = hal.get("/v1/feed")["next"]

    answers: list[httpx.Response | BaseException] = []

    def wait_for_the_feed() -> None:
        try:
            answers.append(
                httpx.get(
                    f"{server.url}/v1/feed?after={head}&wait=30",
                    headers={"Authorization": f"Bearer {hal.token}"},
                    timeout=40,
                )
            )
        except BaseException as error:  # noqa: BLE001  (reported by the assertion below)
            answers.append(error)

    waiting = [threading.Thread(target=wait_for_the_feed) for _ in range(WAITERS)]
    for thread in waiting:
        thread.start()
    time.sleep(1.0)  # every request is in the server, waiting
    assert answers == []

    stopping = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)  # as a supervisor does: granian passes it on
    for thread in waiting:
        thread.join(timeout=PROMPTLY * 2)
    answered = time.monotonic() - stopping
    server.process.wait(timeout=PROMPTLY * 4)
    exited = time.monotonic() - stopping
    server.stop()  # reaps the process group (it has exited already)

    assert all(isinstance(a, httpx.Response) for a in answers), answers
    assert [a.status_code for a in answers] == [200] * WAITERS, server.log()
    assert [a.json() for a in answers] == [{"items": [], "next": head}] * WAITERS
    assert answered < PROMPTLY, f"the waits were answered {answered:.1f} s after SIGTERM"
    assert exited < PROMPTLY, f"the server exited {exited:.1f} s after SIGTERM"
