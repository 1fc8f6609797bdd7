"""PUT /fhir/Task/{id}: the receiving agency moves the referral through the same
service as POST /v1/referrals/{id}/accept and the rest, on each store.

A hypothesis walk takes random legal sequences of moves, each through PUT /fhir/Task or
the REST API, with repeats (a no-op 200), illegal moves (409) and stale If-Match (412)
mixed in, and validates the Task and ServiceRequest after every step. The story plays a
hospital's EHR closing the loop; the rest pins each error to its status.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.fhir import check_fhir
from tests.support.http import Api

OUTCOMES_SYSTEM = "urn:casenet:fhir:CodeSystem:referral-outcome"
#: The lifecycle of API.md: action -> (from, to, side), and the Task status of each status.
MOVES = {
    "accept": ({"requested"}, "accepted", "receiving"),
    "reject": ({"requested"}, "rejected", "receiving"),
    "start": ({"accepted", "on_hold"}, "in_progress", "receiving"),
    "hold": ({"accepted", "in_progress"}, "on_hold", "receiving"),
    "complete": ({"in_progress"}, "completed", "receiving"),
    "fail": ({"in_progress"}, "failed", "receiving"),
    "cancel": ({"requested", "accepted", "in_progress"}, "cancelled", "referring"),
}
TASK_STATUS = {
    "requested": "requested",
    "accepted": "accepted",
    "rejected": "rejected",
    "in_progress": "in-progress",
    "on_hold": "on-hold",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}
OUTCOMES = ("got_help", "not_eligible", "no_capacity", "referred_elsewhere")


@pytest.fixture(scope="module")
def world(operator: Api) -> SimpleNamespace:
    eastside = operator.agency("Eastside Welfare", "ngo")
    st_marys = operator.agency("St Mary's Hospital", "hospital")
    ana = operator.worker(eastside, "caseworker")
    case = ana.post("/v1/cases", {"client": {"name": "Maria"}, "summary": "s", "needs": ["health"]})
    return SimpleNamespace(
        eastside=eastside,
        st_marys=st_marys,
        ana=ana,
        doctor=operator.worker(st_marys, "caseworker"),
        auditor=operator.worker(st_marys, "auditor"),
        case=case,
    )


def new_referral(world: SimpleNamespace) -> str:
    referral = world.ana.post(
        "/v1/referrals",
        {
            "case_id": world.case["id"],
            "to_agency_id": world.st_marys["id"],
            "service_type": "health",
            "reason": "Asthma review",
            "urgency": "routine",
        },
    )
    return str(referral["id"])


def task_body(status: str, *, reason: str | None = None, outcome: str | None = None) -> Any:
    """A Task as an EHR sends it back: the new status, a reason, an outcome."""
    body: dict[str, Any] = {"resourceType": "Task", "status": status, "intent": "order"}
    if reason is not None:
        body["statusReason"] = {"concept": {"text": reason}}
    if outcome is not None:
        coding = {"system": OUTCOMES_SYSTEM, "code": outcome}
        body["output"] = [
            {"type": {"text": "outcome"}, "valueCodeableConcept": {"coding": [coding]}}
        ]
    return body


def put_task(api: Api, rid: str, body: Any, if_match: str | None = None) -> Any:
    headers = {"Content-Type": "application/fhir+json"}
    if if_match is not None:
        headers["If-Match"] = if_match
    return api.request("PUT", f"/fhir/Task/{rid}", content=json.dumps(body), headers=headers)


def rest_move(api: Api, rid: str, action: str, outcome: str) -> Any:
    body: dict[str, Any] | None = None
    if action in ("reject", "hold", "fail", "cancel"):
        body = {"reason": "Because."}
    elif action == "complete":
        body = {"outcome": outcome}
    return api.request("POST", f"/v1/referrals/{rid}/{action}", json_body=body)


def fhir_move(api: Api, rid: str, action: str, outcome: str, if_match: str | None) -> Any:
    status = TASK_STATUS[MOVES[action][1]]
    reason = "Because." if action in ("reject", "hold", "fail", "cancel") else None
    body = task_body(status, reason=reason, outcome=outcome if action == "complete" else None)
    return put_task(api, rid, body, if_match)


def read_both(world: SimpleNamespace, rid: str) -> dict[str, Any]:
    """The Task and ServiceRequest, valid and bound, as each party reads them; the Task."""
    for api in (world.ana, world.doctor):
        check_fhir(api.get(f"/fhir/ServiceRequest/{rid}"))
        task = check_fhir(api.get(f"/fhir/Task/{rid}"))
    return task


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_walks_through_the_lifecycle(world: SimpleNamespace, data: st.DataObject) -> None:
    rid = new_referral(world)
    status, outcome = "requested", None
    task = read_both(world, rid)
    for _ in range(7):
        legal = sorted(a for a, (sources, _, _) in MOVES.items() if status in sources)
        if not legal:
            break
        illegal = sorted(a for a in MOVES if a not in legal and MOVES[a][1] != status)
        kind = data.draw(st.sampled_from(["move", "move", "repeat", "illegal", "stale"]))
        action = data.draw(st.sampled_from(legal if kind != "illegal" else illegal))
        party = world.ana if MOVES[action][2] == "referring" else world.doctor
        version = task["meta"]["versionId"]
        if kind == "repeat" and status != "requested":
            repeat(world.doctor, rid, task, outcome)
        elif kind == "illegal":
            refused = fhir_move(party, rid, action, "got_help", None)
            assert refused.status_code == 409, refused.text
            assert check_fhir(refused.json())["resourceType"] == "OperationOutcome"
        elif kind == "stale":
            refused = fhir_move(party, rid, action, "got_help", f'W/"{int(version) - 1}"')
            assert refused.status_code == 412, refused.text
        else:
            chosen = data.draw(st.sampled_from(OUTCOMES))
            channel = data.draw(st.sampled_from(["fhir", "rest"]))
            if channel == "fhir":
                moved = fhir_move(party, rid, action, chosen, f'W/"{version}"')
            else:
                moved = rest_move(party, rid, action, chosen)
            assert moved.status_code == 200, moved.text
            status = MOVES[action][1]
            outcome = chosen if action == "complete" else outcome
        task = read_both(world, rid)
        assert task["status"] == TASK_STATUS[status]
        assert world.ana.get(f"/v1/referrals/{rid}")["status"] == status
        if outcome is not None:
            assert task["output"][0]["valueCodeableConcept"]["coding"][0]["code"] == outcome
    if status != "requested":  # the last move again, as a retry: nothing changes
        repeat(world.ana if status == "cancelled" else world.doctor, rid, task, outcome)


def repeat(api: Api, rid: str, task: dict[str, Any], outcome: str | None) -> None:
    """PUT the status the Task has (a retry, with an old If-Match even): 200, unchanged."""
    stale = f'W/"{int(task["meta"]["versionId"]) - 1}"'
    again = put_task(api, rid, task_body(task["status"], outcome=outcome), stale)
    assert again.status_code == 200, again.text
    assert check_fhir(again.json()) == {**task, "meta": again.json()["meta"]}
    assert again.json()["meta"]["versionId"] == task["meta"]["versionId"]


def test_an_ehr_closes_the_loop(world: SimpleNamespace) -> None:
    """St Mary's EHR reads the Task, accepts, starts and completes it with ``got_help``
    through PUT /fhir/Task (If-Match the version it read each time); Eastside sees the
    referral completed in /v1/referrals/{id} and in its feed."""
    rid = new_referral(world)
    ehr = world.doctor
    task = check_fhir(ehr.get(f"/fhir/Task/{rid}"))
    assert task["status"] == "requested"
    assert task["owner"]["reference"] == f"Organization/{world.st_marys['id']}"
    for status, outcome in (("accepted", None), ("in-progress", None), ("completed", "got_help")):
        answer = put_task(
            ehr,
            rid,
            {**task, **task_body(status, outcome=outcome)},
            f'W/"{task["meta"]["versionId"]}"',
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/fhir+json")
        task = check_fhir(answer.json())
        assert task["status"] == status
        assert answer.headers["etag"] == f'W/"{task["meta"]["versionId"]}"'
    assert task["statusReason"]["concept"]["coding"][0]["code"] == "got_help"

    referral = world.ana.get(f"/v1/referrals/{rid}")
    assert (referral["status"], referral["outcome"]) == ("completed", "got_help")
    assert [h["status"] for h in referral["history"]][-3:] == [
        "accepted",
        "in_progress",
        "completed",
    ]
    feed = [
        item
        for item in world.ana.walk("/v1/feed", limit=100, follow=True)
        if item.get("referral_id") == rid and item["type"] == "referral_status_changed"
    ]
    assert [(i["status"], i.get("outcome")) for i in feed] == [
        ("accepted", None),
        ("in_progress", None),
        ("completed", "got_help"),
    ]


def test_each_refusal_has_the_rest_apis_status(world: SimpleNamespace) -> None:
    rid = new_referral(world)
    cases = [
        # an illegal move: requested -> in-progress
        (world.doctor, task_body("in-progress"), None, 409, "conflict"),
        # a status no referral has, another Task's id
        (world.doctor, task_body("ready"), None, 422, "invalid"),
        (world.doctor, {**task_body("accepted"), "id": "other"}, None, 422, "invalid"),
        # the auditor may not move it; the referring agency may not accept it
        (world.auditor, task_body("accepted"), None, 403, "forbidden"),
        (world.ana, task_body("accepted"), None, 403, "forbidden"),
        # a stale version
        (world.doctor, task_body("accepted"), 'W/"7"', 412, "conflict"),
        # not a Task
        (world.doctor, {"resourceType": "Patient", "status": "accepted"}, None, 400, "structure"),
        # a rejection needs its reason
        (world.doctor, task_body("rejected"), None, 422, "invalid"),
    ]
    for api, body, if_match, status, code in cases:
        answer = put_task(api, rid, body, if_match)
        assert answer.status_code == status, (body, answer.text)
        outcome = check_fhir(answer.json())
        assert outcome["issue"][0]["code"] == code
    assert check_fhir(world.doctor.get(f"/fhir/Task/{rid}"))["status"] == "requested"
    # Accepted, it cannot go back to requested, nor be completed with another outcome later.
    assert put_task(world.doctor, rid, task_body("accepted")).status_code == 200
    assert put_task(world.doctor, rid, task_body("requested")).status_code == 409
    assert put_task(world.doctor, rid, task_body("in-progress")).status_code == 200
    done = put_task(world.doctor, rid, task_body("completed", outcome="not_eligible"))
    assert done.status_code == 200
    again = put_task(world.doctor, rid, task_body("completed", outcome="got_help"))
    assert again.status_code == 409
