"""A feed an agency system can follow (API.md, "Feed you can follow"), in process, on
SQLite and on PostgreSQL: ``next`` is never null, so a client resumes from the last
page's cursor for ever and gets only what arrived since; ``after`` also takes the
``position`` of the last item seen, with the same answer as the cursor; ``wait`` holds
an empty answer open for at most its seconds (0-30, else 422); and an agency never sees
another's items. Waiting for an item written by another server process is in
tests/e2e/test_feed_follow.py.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from casenet.application.feed_queries import DEFAULT_WAITERS


@pytest.fixture(scope="module")
def net(operator: Any) -> SimpleNamespace:
    """An NGO that grants consents to a hospital; a school that is granted nothing."""
    ngo = operator.agency("Feed NGO", "ngo")
    hospital = operator.agency("Feed Hospital", "hospital")
    school = operator.agency("Feed School", "school")
    return SimpleNamespace(
        hospital=hospital,
        ana=operator.worker(ngo, "caseworker", "Ana Feed"),
        hal=operator.worker(hospital, "caseworker", "Hal Feed"),
        sue=operator.worker(school, "caseworker", "Sue Feed"),
    )


def grant(net: SimpleNamespace) -> str:
    """A new case of the NGO, with a consent for the hospital: one item in both feeds."""
    case = net.ana.post("/v1/cases", {"client": {"name": "Ida Feed"}, "summary": "Feed"})
    consent = net.ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": net.hospital["id"],
            "sections": ["identity"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    return str(consent["id"])


def consent_ids(page: dict[str, Any]) -> list[str]:
    return [item["consent_id"] for item in page["items"]]


def test_the_last_page_gives_the_cursor_to_resume_from(net: SimpleNamespace) -> None:
    first = [grant(net), grant(net)]
    page = net.hal.get("/v1/feed?limit=500")
    assert consent_ids(page)[-2:] == first
    assert page["next"] is not None  # the last page
    empty = net.hal.get(f"/v1/feed?after={page['next']}")
    assert empty["items"] == []
    assert empty["next"] == page["next"]  # an empty page: resume from the same place

    later = grant(net)
    resumed = net.hal.get(f"/v1/feed?after={empty['next']}")
    assert consent_ids(resumed) == [later]  # only what is new, from a cursor past the end
    assert resumed["next"] not in (None, page["next"])
    assert net.hal.get(f"/v1/feed?after={resumed['next']}")["items"] == []


def test_a_page_in_the_middle_resumes_after_its_last_item(net: SimpleNamespace) -> None:
    ids = [grant(net), grant(net), grant(net)]
    whole = net.hal.get("/v1/feed?limit=500")["items"]
    start = whole[-4]["position"]
    first = net.hal.get(f"/v1/feed?after={start}&limit=2")
    assert consent_ids(first) == ids[:2]
    assert consent_ids(net.hal.get(f"/v1/feed?after={first['next']}&limit=2")) == ids[2:]


def test_after_takes_the_position_of_the_last_item_seen(net: SimpleNamespace) -> None:
    grant(net)
    grant(net)
    whole = net.hal.get("/v1/feed?limit=500")
    middle = whole["items"][-2]
    by_cursor = net.hal.get(f"/v1/feed?after={whole['next']}")
    assert by_cursor == net.hal.get(f"/v1/feed?after={whole['items'][-1]['position']}")

    one = net.hal.get(f"/v1/feed?after={whole['items'][-3]['position']}&limit=1")
    assert one["items"] == [middle]
    by_position = net.hal.get(f"/v1/feed?after={middle['position']}")
    assert by_position == net.hal.get(f"/v1/feed?after={one['next']}")
    assert by_position["items"] == whole["items"][-1:]
    assert net.hal.get("/v1/feed?after=0&limit=500") == whole


@pytest.mark.parametrize(
    "query",
    [
        "after=-1",
        "after=1.5",
        "after=" + "9" * 20,
        "after=9223372036854775808",
        "after=not-a-cursor",
        "after=WyJ4Il0",  # a cursor of ["x"]: not a position
        "wait=-1",
        "wait=31",
        "wait=x",
    ],
)
def test_bad_values_are_refused_as_problems(net: SimpleNamespace, query: str) -> None:
    response = net.hal.request("GET", f"/v1/feed?{query}")
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if query.startswith("wait=") and query != "wait=x":
        assert response.status_code == 422
        assert "wait" in response.text


def test_wait_answers_empty_when_the_time_is_up(net: SimpleNamespace) -> None:
    grant(net)
    head = net.hal.get("/v1/feed?limit=500")["next"]
    started = time.monotonic()
    page = net.hal.get(f"/v1/feed?after={head}&wait=1")
    waited = time.monotonic() - started
    assert page == {"items": [], "next": head}
    assert 0.9 <= waited < 5, waited


def test_wait_does_not_hold_an_answer_that_has_items(net: SimpleNamespace) -> None:
    grant(net)
    started = time.monotonic()
    assert net.hal.get("/v1/feed?wait=30")["items"]
    assert time.monotonic() - started < 5
    assert net.hal.get("/v1/feed?wait=0&limit=1")["items"]


def test_an_agency_sees_only_its_own_items(net: SimpleNamespace) -> None:
    consent = grant(net)
    assert consent in consent_ids(net.ana.get("/v1/feed?limit=500"))
    assert consent in consent_ids(net.hal.get("/v1/feed?limit=500"))
    school = net.sue.get("/v1/feed?limit=500")
    assert school["items"] == []
    assert school["next"] is not None
    assert net.sue.get("/v1/feed?after=0&wait=1")["items"] == []  # nothing comes to it
    hospital_head = net.hal.get("/v1/feed?limit=500")["next"]
    assert net.sue.get(f"/v1/feed?after={hospital_head}")["items"] == []


def test_over_the_cap_of_waiters_an_empty_answer_comes_at_once(
    net: SimpleNamespace, app_server: Any
) -> None:
    """Each waiting request reads the feed once a look: past the cap, one answers at once."""
    feed = app_server.casenet.feed
    head = net.sue.get("/v1/feed")["next"]
    feed.limit_waiters(1)
    try:
        waited: dict[str, float] = {}

        def wait_for_it() -> None:
            started = time.monotonic()
            net.sue.get(f"/v1/feed?after={head}&wait=3")
            waited["first"] = time.monotonic() - started

        first = threading.Thread(target=wait_for_it)
        first.start()
        time.sleep(0.5)  # the first request is waiting: it holds the only place
        started = time.monotonic()
        assert net.sue.get(f"/v1/feed?after={head}&wait=3") == {"items": [], "next": head}
        assert time.monotonic() - started < 1.5
        first.join(timeout=10)
        assert waited["first"] >= 2.9
    finally:
        feed.limit_waiters(DEFAULT_WAITERS)
    started = time.monotonic()
    net.sue.get(f"/v1/feed?after={head}&wait=1")  # a place again: it waits
    assert time.monotonic() - started >= 0.9
