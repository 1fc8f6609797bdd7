"""A server delivering webhooks is killed (SIGKILL, mid-delivery: the receiver answers
slowly, so a request is in flight) and started again on the same store: every feed
item reaches the receiver, in feed order, none lost; the one in flight at the kill may
arrive twice (at least once). On SQLite and on PostgreSQL.

The figures (deliveries, duplicates, losses) are printed for the record (``-s``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import standardwebhooks
from tests.e2e.conftest import LiveServer
from tests.support.receiver import Receiver

ITEMS = 30
#: Seconds the receiver takes to answer: deliveries are under way when the kill comes.
SLOW = 0.08


def grant(ana: Any, hospital_id: str) -> None:
    case = ana.post("/v1/cases", {"client": {"name": "Ida Kill"}, "summary": "Kill"})
    ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": hospital_id,
            "sections": ["identity"],
            "purpose": "referral",
            "method": "verbal",
        },
    )


def test_kill_9_mid_delivery_loses_no_webhook_delivery(
    new_server: Callable[[], LiveServer], connect: Callable[..., Any]
) -> None:
    server = new_server()
    server.start()
    operator = connect(server)
    ngo, hospital = operator.agency("Kill NGO"), operator.agency("Kill Hospital", "hospital")
    ana = operator.worker(ngo, "caseworker")
    admin = operator.worker(hospital, "admin")
    hal = operator.worker(hospital, "caseworker")
    start = hal.get("/v1/feed?limit=500")["next"]
    with Receiver(delay=SLOW) as receiver:
        hook = admin.post("/v1/webhooks", {"url": receiver.url})
        for _ in range(ITEMS):
            grant(ana, hospital["id"])
        receiver.wait_for(ITEMS // 3, timeout=60)
        server.kill()
        at_kill = len(receiver.delivered())
        assert at_kill < ITEMS, "all delivered before the kill: the test proves nothing"

        server.start()  # a new port; the receiver and the store are the same
        hal, admin = connect(server, hal.token), connect(server, admin.token)
        got = receiver.wait_for(ITEMS, timeout=90)  # a killed worker's lease runs out first
        time.sleep(1)  # nothing more should come
        got = receiver.delivered()

    feed = hal.get(f"/v1/feed?after={start}&limit=500")["items"]
    assert len(feed) == ITEMS
    verifier = standardwebhooks.Webhook(hook["secret"])
    bodies = [verifier.verify(r.body, r.headers) for r in got]
    firsts: list[Any] = []
    for body in bodies:
        if body not in firsts:
            firsts.append(body)
    assert firsts == feed  # every item, in feed order, none lost
    # At least once: a repeat is only of what was in flight at the kill, re-sent first.
    duplicates = len(bodies) - len(firsts)
    assert duplicates <= 1, duplicates
    positions = [b["position"] for b in bodies]
    # In order: a repeat is the item the killed worker had sent, sent again next.
    assert all(later >= earlier for earlier, later in itertools.pairwise(positions))
    attempts = admin.walk(f"/v1/webhooks/{hook['id']}/deliveries", limit=500)
    print(
        f"\nwebhooks after kill -9 ({server.database_url.split(':')[0]}): {ITEMS} items, "
        f"{len(receiver.received)} requests, {at_kill} delivered before the kill, "
        f"{duplicates} duplicate(s), {ITEMS - len(firsts)} lost, "
        f"{sum(a['outcome'] != 'delivered' for a in attempts)} failed attempt(s) recorded"
    )
