"""The feed's items (API.md, "Feed you can follow"), in process, on SQLite and on
PostgreSQL: every type the events give has exactly its documented fields and no
personal value (every personal value of the story is a canary the feed must not hold);
an item's ``id`` is the same in both agencies' feeds and after a rebuild; and a consent
that runs out is told to both agencies once (``consent_expired``), by the deadline step
the projection runner calls, whoever else runs it at the same time, never for a
withdrawn consent.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from casenet.application.views import FEED_ITEM_TYPES

BASE = {"id", "type", "at", "position"}
#: The fields of each item type besides ``BASE`` (``FeedItem``'s docstring); optional
#: ones in the second set.
FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "referral_requested": (
        {
            "referral_id",
            "case_id",
            "from_agency_id",
            "to_agency_id",
            "service_type",
            "urgency",
            "status",
        },
        set(),
    ),
    "referral_status_changed": (
        {"referral_id", "from_agency_id", "to_agency_id", "status"},
        {"outcome"},
    ),
    "referral_message": (
        {"referral_id", "from_agency_id", "to_agency_id", "message_id", "author_agency_id"},
        set(),
    ),
    "consent_granted": (
        {
            "consent_id",
            "case_id",
            "owner_agency_id",
            "grantee_agency_id",
            "sections",
            "purpose",
            "status",
        },
        {"valid_until"},
    ),
    "consent_withdrawn": (
        {"consent_id", "owner_agency_id", "grantee_agency_id", "status"},
        set(),
    ),
    "consent_expired": (
        {"consent_id", "owner_agency_id", "grantee_agency_id", "status", "valid_until"},
        set(),
    ),
    "referral_overdue": (
        {"referral_id", "from_agency_id", "to_agency_id", "status", "response_due_at"},
        set(),
    ),
}


def canary(label: str) -> str:
    return f"canary-{label}-{uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def net(operator: Any) -> SimpleNamespace:
    """An NGO that refers to a hospital under consent."""
    ngo = operator.agency("Items NGO", "ngo")
    hospital = operator.agency("Items Hospital", "hospital")
    return SimpleNamespace(
        ngo=ngo,
        hospital=hospital,
        ana=operator.worker(ngo, "caseworker", "Ana Items"),
        hal=operator.worker(hospital, "caseworker", "Hal Items"),
    )


def open_case(net: SimpleNamespace, canaries: list[str]) -> str:
    name, summary = canary("name"), canary("summary")
    canaries += [name, summary]
    case = net.ana.post("/v1/cases", {"client": {"name": name}, "summary": summary})
    return str(case["id"])


def grant(
    net: SimpleNamespace, case_id: str, canaries: list[str], valid_until: str | None = None
) -> str:
    evidence = canary("evidence")
    canaries.append(evidence)
    body: dict[str, Any] = {
        "grantee_agency_id": net.hospital["id"],
        "sections": ["identity", "contact"],
        "purpose": "referral",
        "method": "written",
        "evidence": evidence,
    }
    if valid_until is not None:
        body["valid_until"] = valid_until
    return str(net.ana.post(f"/v1/cases/{case_id}/consents", body)["id"])


def items_after(api: Any, position: int) -> list[dict[str, Any]]:
    return [i for i in api.get("/v1/feed?limit=500")["items"] if i["position"] > position]


def head(api: Any) -> int:
    items = api.get("/v1/feed?limit=500")["items"]
    return int(items[-1]["position"]) if items else 0


def story(net: SimpleNamespace) -> tuple[list[str], int]:
    """A referral from request to outcome, with messages, and a consent withdrawn;
    every personal value a canary. Returns the canaries and the feed's head before."""
    canaries: list[str] = []
    start = max(head(net.ana), head(net.hal))
    case_id = open_case(net, canaries)
    consent_id = grant(net, case_id, canaries)
    reason, message, note = canary("reason"), canary("message"), canary("note")
    canaries += [reason, message, note]
    referral = net.ana.post(
        "/v1/referrals",
        {
            "case_id": case_id,
            "to_agency_id": net.hospital["id"],
            "service_type": "health",
            "reason": reason,
            "urgency": "urgent",
            "consent_id": consent_id,
        },
    )
    net.hal.post(f"/v1/referrals/{referral['id']}/messages", {"text": message})
    for action, body in (("accept", None), ("start", None)):
        net.hal.post(f"/v1/referrals/{referral['id']}/{action}", body, status=200)
    net.hal.post(
        f"/v1/referrals/{referral['id']}/complete",
        {"outcome": "got_help", "note": note},
        status=200,
    )
    withdrawal = canary("withdrawal")
    canaries.append(withdrawal)
    net.ana.post(f"/v1/consents/{consent_id}/withdraw", {"reason": withdrawal}, status=200)
    return canaries, start


def check_shape(item: dict[str, Any]) -> None:
    required, optional = FIELDS[item["type"]]
    assert item["type"] in FEED_ITEM_TYPES
    assert BASE | required <= item.keys() <= BASE | required | optional, item
    assert all(value is not None for value in item.values()), item


def test_every_item_has_its_documented_fields_and_no_personal_value(
    net: SimpleNamespace, app_server: Any
) -> None:
    canaries, start = story(net)
    ngo, hospital = items_after(net.ana, start), items_after(net.hal, start)

    assert [i["type"] for i in ngo] == [
        "consent_granted",
        "referral_requested",
        "referral_message",
        "referral_status_changed",
        "referral_status_changed",
        "referral_status_changed",
        "consent_withdrawn",
    ]
    for item in ngo:
        check_shape(item)
    statuses = [(i.get("status"), i.get("outcome")) for i in ngo]
    assert statuses[3:] == [
        ("accepted", None),
        ("in_progress", None),
        ("completed", "got_help"),
        ("withdrawn", None),
    ]
    assert ngo[2]["author_agency_id"] == net.hospital["id"]
    assert ngo[2]["from_agency_id"] == net.ngo["id"]
    # Both agencies get the same items, with the same ids, all distinct.
    assert hospital == ngo
    assert len({i["id"] for i in ngo}) == len(ngo)

    raw = net.hal.request("GET", "/v1/feed?limit=500").text
    raw += net.ana.request("GET", "/v1/feed?limit=500").text
    rows = app_server.casenet.app.database.run("SELECT * FROM rm_feed", commit=False)
    stored = repr([dict(row) for row in rows])
    assert [c for c in canaries if c in raw or c in stored] == []
    assert "canary-" not in raw + stored


def test_ids_stay_the_same_after_a_rebuild(net: SimpleNamespace, app_server: Any) -> None:
    story(net)
    before = net.ana.get("/v1/feed?limit=500")["items"]
    app_server.casenet.projections.rebuild(["feed"])
    assert net.ana.get("/v1/feed?limit=500")["items"] == before


def test_an_expired_consent_is_told_to_both_agencies_once(
    net: SimpleNamespace, app_server: Any
) -> None:
    canaries: list[str] = []
    case_id = open_case(net, canaries)
    soon = datetime.now(UTC) + timedelta(hours=1)
    lasting = grant(net, case_id, canaries, soon.isoformat())
    withdrawn = grant(net, case_id, canaries, soon.isoformat())
    net.ana.post(f"/v1/consents/{withdrawn}/withdraw", {"reason": "r"}, status=200)
    never = grant(net, case_id, canaries)
    start = max(head(net.ana), head(net.hal))
    deadlines = app_server.casenet.projections.deadlines

    deadlines.run(now=soon - timedelta(seconds=1))  # not yet
    assert items_after(net.hal, start) == []

    later = soon + timedelta(minutes=1)
    # Two runners at the same instant (two server processes): one notice.
    runners = [threading.Thread(target=deadlines.run, args=(later,)) for _ in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert deadlines.run(now=later) == 0  # and again later: nothing new

    told = items_after(net.hal, start)
    assert [(i["type"], i["consent_id"]) for i in told] == [("consent_expired", lasting)]
    check_shape(told[0])
    assert told[0]["status"] == "expired"
    assert datetime.fromisoformat(told[0]["valid_until"]) == soon
    assert (told[0]["owner_agency_id"], told[0]["grantee_agency_id"]) == (
        net.ngo["id"],
        net.hospital["id"],
    )
    assert items_after(net.ana, start) == told
    assert never not in {i.get("consent_id") for i in told}


def test_the_projection_runner_tells_a_consent_that_runs_out_in_seconds(
    net: SimpleNamespace,
) -> None:
    """No request, no clock of the test's: the server's runner thread notices."""
    canaries: list[str] = []
    case_id = open_case(net, canaries)
    consent_id = grant(
        net, case_id, canaries, (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    )
    start = max(head(net.ana), head(net.hal))
    page = net.hal.get(f"/v1/feed?after={start}&wait=10")
    assert [(i["type"], i["consent_id"]) for i in page["items"]] == [
        ("consent_expired", consent_id)
    ]


def test_a_referral_left_unanswered_is_told_to_both_agencies_once(
    net: SimpleNamespace, app_server: Any
) -> None:
    canaries: list[str] = []
    case_id = open_case(net, canaries)
    body = {"case_id": case_id, "to_agency_id": net.hospital["id"], "reason": canary("reason")}
    body |= {"service_type": "health", "urgency": "urgent"}
    waiting = net.ana.post("/v1/referrals", body)
    answered = net.ana.post("/v1/referrals", body)
    net.hal.post(f"/v1/referrals/{answered['id']}/accept", status=200)
    assert (waiting["overdue"], waiting["status"]) == (False, "requested")
    due = datetime.fromisoformat(waiting["response_due_at"])
    assert due == datetime.fromisoformat(waiting["created_at"]) + timedelta(hours=24)
    start = max(head(net.ana), head(net.hal))
    deadlines = app_server.casenet.projections.deadlines
    runners = [threading.Thread(target=deadlines.run, args=(due + timedelta(minutes=1),))]
    runners.append(threading.Thread(target=deadlines.run, args=(due + timedelta(minutes=1),)))
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()

    told = items_after(net.hal, start)
    assert [(i["type"], i["referral_id"]) for i in told] == [("referral_overdue", waiting["id"])]
    check_shape(told[0])
    assert datetime.fromisoformat(told[0]["response_due_at"]) == due
    assert items_after(net.ana, start) == told
    # The notice moved the referral's version: the list still says the referral's own.
    listed = net.hal.get("/v1/referrals?direction=incoming&limit=500")["items"]
    (row,) = [r for r in listed if r["id"] == waiting["id"]]
    assert row["version"] == net.hal.get(f"/v1/referrals/{waiting['id']}")["version"] == 2
