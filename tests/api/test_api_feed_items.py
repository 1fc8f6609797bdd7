"""The feed's items (API.md, "Feed you can follow"), in process, on SQLite and on
PostgreSQL: every type the events give has exactly its documented fields and no
personal value (every personal value of the story is a canary the feed must not hold);
an item's ``id`` is the same in both agencies' feeds and after a rebuild; and a consent
that runs out is told to both agencies once (``consent_expired``), by the deadline step
the projection runner calls, whoever else runs it at the same time, never for a
withdrawn consent. Emergency grants are told to both agencies when created and
revoked, their review and its overdue notice to the owner alone (once, whoever runs the
deadline step); a client's erasure to exactly the agencies that had their data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from tests.support.deadlines import run_at_once

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
    "emergency_grant": (
        {"emergency_grant_id", "owner_agency_id", "grantee_agency_id", "status"},
        {"case_id", "basis", "sections", "expires_at", "review_due_at", "finding"},
    ),
    "emergency_review_due": (
        {"emergency_grant_id", "owner_agency_id", "grantee_agency_id", "review_due_at"},
        set(),
    ),
    "client_erased": ({"client_id"}, set()),
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
    assert run_at_once([app_server.casenet] * 2, later) == 1
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


@pytest.fixture(scope="module")
def school(operator: Any) -> SimpleNamespace:
    """A school that shares a child's case in an emergency with a child-protection
    agency, under consent with a clinic, and by referral with a shelter; a youth club
    that has a referral for another child of the school; and an unrelated agency."""
    school = operator.agency("Items School", "school")
    agencies = {
        name: operator.agency(f"Items {name}", kind)
        for name, kind in (
            ("protection", "child_protection"),
            ("clinic", "clinic"),
            ("shelter", "shelter"),
            ("club", "ngo"),
            ("unrelated", "ngo"),
        )
    }
    return SimpleNamespace(
        school=school,
        teacher=operator.worker(school, "caseworker", "Tess Items"),
        head=operator.worker(school, "supervisor", "Hugo Items"),
        admin=operator.worker(school, "admin", "Ada Items"),
        **agencies,
        api={name: operator.worker(a, "caseworker") for name, a in agencies.items()},
    )


def emergency_grant(w: SimpleNamespace, case_id: str, canaries: list[str]) -> dict[str, Any]:
    justification = canary("justification")
    canaries.append(justification)
    body = {
        "grantee_agency_id": w.protection["id"],
        "sections": ["identity", "summary"],
        "basis": "safeguarding",
        "justification": justification,
        "minutes": 1440,
    }
    grant: dict[str, Any] = w.teacher.post(f"/v1/cases/{case_id}/emergency-grants", body)
    return grant


def school_case(w: SimpleNamespace, canaries: list[str]) -> dict[str, Any]:
    name, summary = canary("child"), canary("summary")
    canaries += [name, summary]
    case: dict[str, Any] = w.teacher.post(
        "/v1/cases", {"client": {"name": name}, "summary": summary}
    )
    return case


def heads(w: SimpleNamespace) -> dict[str, int]:
    return {name: head(api) for name, api in {"school": w.teacher, **w.api}.items()}


def new_items(w: SimpleNamespace, start: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    apis = {"school": w.teacher, **w.api}
    return {name: items_after(api, start[name]) for name, api in apis.items()}


def no_canary(app_server: Any, w: SimpleNamespace, canaries: list[str]) -> None:
    raw = "".join(
        api.request("GET", "/v1/feed?limit=500").text for api in (w.teacher, *w.api.values())
    )
    rows = app_server.casenet.app.database.run("SELECT * FROM rm_feed", commit=False)
    stored = repr([dict(row) for row in rows])
    assert [c for c in canaries if c in raw or c in stored] == []


def test_an_emergency_grant_is_told_to_both_agencies_and_its_review_to_the_owner(
    school: SimpleNamespace, app_server: Any
) -> None:
    w, canaries = school, []
    case = school_case(w, canaries)
    start = heads(w)
    grant = emergency_grant(w, case["id"], canaries)
    note, reason = canary("note"), canary("reason")
    canaries += [note, reason]
    w.head.post(
        f"/v1/emergency-grants/{grant['id']}/review",
        {"finding": "justified", "note": note},
        status=200,
    )
    w.teacher.post(f"/v1/emergency-grants/{grant['id']}/revoke", {"reason": reason}, status=200)

    got = new_items(w, start)
    ids = {"emergency_grant_id": grant["id"]}
    parties = {"owner_agency_id": w.school["id"], "grantee_agency_id": w.protection["id"]}
    created = {
        "type": "emergency_grant",
        **ids,
        **parties,
        "case_id": case["id"],
        "basis": "safeguarding",
        "sections": ["identity", "summary"],
        "status": "active",
    }
    reviewed = {"type": "emergency_grant", **ids, **parties, "status": "reviewed"}
    revoked = {"type": "emergency_grant", **ids, **parties, "status": "revoked"}
    unstable = ("id", "at", "position", "expires_at", "review_due_at", "finding")

    def stable(item: dict[str, Any]) -> dict[str, Any]:
        check_shape(item)
        return {k: v for k, v in item.items() if k not in unstable}

    assert [stable(i) for i in got["school"]] == [created, reviewed, revoked]
    assert got["school"][1]["finding"] == "justified"
    first = got["school"][0]
    assert datetime.fromisoformat(first["expires_at"]) == datetime.fromisoformat(
        grant["expires_at"]
    )
    assert datetime.fromisoformat(first["review_due_at"]) == datetime.fromisoformat(
        grant["review_due_at"]
    )
    # The grantee hears that it may read, and that it may no longer; not the review.
    assert got["protection"] == [got["school"][0], got["school"][2]]
    assert got["clinic"] == got["shelter"] == got["club"] == got["unrelated"] == []
    no_canary(app_server, w, canaries)


def test_an_overdue_review_is_told_to_the_owner_once_by_two_runners(
    school: SimpleNamespace, app_server: Any
) -> None:
    w, canaries = school, []
    case = school_case(w, canaries)
    overdue, reviewed = (emergency_grant(w, case["id"], canaries) for _ in range(2))
    w.head.post(
        f"/v1/emergency-grants/{reviewed['id']}/review",
        {"finding": "unjustified", "note": "n"},
        status=200,
    )
    due = datetime.fromisoformat(overdue["review_due_at"])
    start = heads(w)
    deadlines = app_server.casenet.projections.deadlines

    deadlines.run(now=due - timedelta(seconds=1))  # not yet
    assert new_items(w, start)["school"] == []
    later = due + timedelta(minutes=1)
    run_at_once([app_server.casenet] * 2, later)  # two runners at the same instant
    deadlines.run(now=later + timedelta(days=1))  # and again later: nothing new

    got = new_items(w, start)
    told = [
        i for i in got["school"] if i.get("emergency_grant_id") in (overdue["id"], reviewed["id"])
    ]
    assert [(i["type"], i["emergency_grant_id"]) for i in told] == [
        ("emergency_review_due", overdue["id"])
    ]
    check_shape(told[0])
    assert datetime.fromisoformat(told[0]["review_due_at"]) == due
    assert (told[0]["owner_agency_id"], told[0]["grantee_agency_id"]) == (
        w.school["id"],
        w.protection["id"],
    )
    assert all(i["type"] != "emergency_review_due" for i in got["protection"])
    pending = w.head.get("/v1/emergency-grants?review=pending&limit=500")["items"]
    assert overdue["id"] in {g["id"] for g in pending}  # the notice is no review


def test_an_erasure_is_told_to_every_agency_that_had_the_clients_data_and_no_other(
    school: SimpleNamespace, app_server: Any
) -> None:
    w, canaries = school, []
    case, other = school_case(w, canaries), school_case(w, canaries)
    emergency_grant(w, case["id"], canaries)
    w.teacher.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": w.clinic["id"],
            "sections": ["identity"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    for case_id, to in ((case["id"], w.shelter), (other["id"], w.club)):
        reason = canary("reason")
        canaries.append(reason)
        w.teacher.post(
            "/v1/referrals",
            {
                "case_id": case_id,
                "to_agency_id": to["id"],
                "service_type": "housing",
                "reason": reason,
                "urgency": "routine",
            },
        )
    start = heads(w)
    w.admin.post(f"/v1/clients/{case['client_id']}/erasure", None, status=200)

    got = new_items(w, start)
    erased = {"type": "client_erased", "client_id": case["client_id"]}
    told = {n for n, items in got.items() if items}
    assert told == {"school", "protection", "clinic", "shelter"}
    for name in told:
        assert len(got[name]) == 1
        check_shape(got[name][0])
        assert {k: got[name][0][k] for k in erased} == erased
    assert len({items[0]["id"] for items in got.values() if items}) == 1
    no_canary(app_server, w, canaries)
    app_server.casenet.projections.rebuild(["feed"])
    assert new_items(w, start) == got


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
    assert run_at_once([app_server.casenet] * 2, due + timedelta(minutes=1)) == 1

    told = items_after(net.hal, start)
    assert [(i["type"], i["referral_id"]) for i in told] == [("referral_overdue", waiting["id"])]
    check_shape(told[0])
    assert datetime.fromisoformat(told[0]["response_due_at"]) == due
    assert items_after(net.ana, start) == told
    # The notice moved the referral's version: the list still says the referral's own.
    listed = net.hal.get("/v1/referrals?direction=incoming&limit=500")["items"]
    (row,) = [r for r in listed if r["id"] == waiting["id"]]
    assert row["version"] == net.hal.get(f"/v1/referrals/{waiting['id']}")["version"] == 2
