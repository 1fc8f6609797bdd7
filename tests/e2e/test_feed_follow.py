"""Following the feed across processes, on SQLite and on PostgreSQL: a request to server
B with ``wait`` answers as soon as an item for its agency is written through server A
(B's read model is polled, not told), well before the wait is up; with nothing for it,
it answers empty after the wait, with the same cursor to resume from. The other cases
of the feed (cursors, positions, bad values, authorization) are in tests/api.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

#: The e2e fixtures' classes (tests/e2e/conftest.py): the test folders are not packages.
LiveServer = Api = Any
LONG_WAIT = 10



def test_a_waiting_request_answers_when_another_process_writes_an_item(
    servers: tuple[LiveServer, LiveServer], connect: Callable[..., Api]
) -> None:
    a, b = servers
    operator_a = connect(a)
    ngo = operator_a.agency("Waiting NGO", "ngo")
    hospital = operator_a.agency("Waiting Hospital", "hospital")
    ana_on_a = operator_a.worker(ngo, "caseworker", "Ana")
    hal_on_b = connect(b, operator_a.worker(hospital, "caseworker", "Hal").token)
    head = hal_on_b.get("/v1/feed")["next"]

    started = time.monotonic()
    nothing = hal_on_b.get(f"/v1/feed?after={head}&wait=1")
    assert nothing == {"items": [], "next": head}
    assert 0.9 <= time.monotonic() - started < LONG_WAIT / 2

    answer: dict[str, Any] = {}

    def wait_on_b() -> None:
        answer["page"] = hal_on_b.get(f"/v1/feed?after={head}&wait={LONG_WAIT}")
        answer["at"] = time.monotonic()

    waiter = threading.Thread(target=wait_on_b)
    waiter.start()
    time.sleep(0.5)  # the request is waiting on B
    assert "page" not in answer
    written = time.monotonic()
    case = ana_on_a.post("/v1/cases", {"client": {"name": "Ida"}, "summary": "Waiting"})
    consent = ana_on_a.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": hospital["id"],
            "sections": ["identity"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    waiter.join(timeout=LONG_WAIT + 10)
    assert not waiter.is_alive()
    assert answer["at"] - written < LONG_WAIT / 2
    items = answer["page"]["items"]
    assert [item["consent_id"] for item in items] == [consent["id"]]
    assert answer["page"]["next"] != head
    assert hal_on_b.get(f"/v1/feed?after={answer['page']['next']}")["items"] == []

