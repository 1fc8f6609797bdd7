"""The whole referral story through the API (in process), on SQLite and on PostgreSQL.

A welfare NGO opens a case, records the client's consent for a hospital's social-work
department to see identity, contact and health notes, and refers the client there. The
hospital sees exactly what the consent grants, and each of its reads is accounted for;
it takes the referral to an outcome; the two agencies talk; the client withdraws consent
and from the very next request the hospital sees nothing of the client. A school that
was never granted anything cannot tell the case, its consent or its referral from ids
that do not exist, at any step.

Then the HTTP conventions of API.md: ETag and If-Match, Idempotency-Key, cursor
pagination, and problem+json errors.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from tests.support.replicas import MODULE_STORES_WITH_REPLICA, assert_the_standby_served


@pytest.fixture(scope="module", params=MODULE_STORES_WITH_REPLICA)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, module_stores: Any
) -> Any:
    """SQLite, PostgreSQL, and PostgreSQL with the GET requests' reads on its hot standby."""
    yield from module_stores(request, tmp_path_factory)


CLIENT = {
    "name": "Maria Santos",
    "date_of_birth": "1984-03-02",
    "phone": "+1 555 0100",
    "address": "12 Harbour Lane, Eastside",
}
SUMMARY = "Domestic worker; her husband's dialysis appointments clash with her shifts."
NEEDS = ["employment", "health", "housing"]
NOTES = [
    ("general", "First visit at the drop-in centre."),
    ("health", "Husband needs dialysis three times a week."),
    ("legal", "Tenancy dispute with the landlord, hearing next month."),
    ("health", "Maria herself has type 2 diabetes, well controlled."),
    ("financial", "Rent arrears of two months."),
    ("mental_health", "Reports poor sleep and anxiety."),
]
GRANTED = ["identity", "contact", "notes.health"]
PROBLEM_FIELDS = {"type", "title", "status", "detail"}
ROUTE_PREFIXES = ("/v1/cases/", "/v1/consents/", "/v1/referrals/", "/v1/clients/")


@pytest.fixture(scope="module")
def net(operator: Any) -> SimpleNamespace:
    """The NGO, the hospital and the school, with their workers."""
    ngo = operator.agency(
        "Eastside Welfare NGO",
        "ngo",
        services=[{"type": "income", "description": "Benefits and housing advice"}],
    )
    hospital = operator.agency(
        "City Hospital Social Work",
        "hospital",
        services=[{"type": "health", "description": "Social workers", "area": "east"}],
    )
    school = operator.agency("Riverside Primary School", "school")
    return SimpleNamespace(
        ngo=ngo,
        hospital=hospital,
        school=school,
        ana=operator.worker(ngo, "caseworker", "Ana Welfare"),
        sam=operator.worker(ngo, "supervisor", "Sam Supervisor"),
        aud=operator.worker(ngo, "auditor", "Aud Itor"),
        ngo_admin=operator.worker(ngo, "admin", "Ada Admin"),
        hal=operator.worker(hospital, "caseworker", "Hal Hospital"),
        school_workers=[
            operator.worker(school, role)
            for role in ("caseworker", "supervisor", "admin", "auditor")
        ],
    )


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """An RFC 9457 problem of ``status``, with no trace in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert all(isinstance(body[k], str) and body[k] for k in ("type", "title", "detail"))
    for trace in ("Traceback", 'File "', "site-packages", ".py", "Exception"):
        assert trace not in response.text, response.text
    return body


def school_sees_nothing(net: SimpleNamespace, id_routes: list[Any], ids: dict[str, str]) -> None:
    """Every case, consent, referral and client route, for every role of the school:
    404, byte for byte the 404 of a random id on the same route."""
    routes = [r for r in id_routes if r.template.startswith(ROUTE_PREFIXES)]
    assert len(routes) >= 20, [str(r) for r in routes]
    failures = []
    for worker in net.school_workers:
        for route in routes:
            if not set(route.parameters) <= set(ids):
                continue
            real = route.call(worker, route.path(ids), worker.agency_id)
            random = route.call(worker, route.random_path(), worker.agency_id)
            if real.status_code != 404 or real.content != random.content:
                failures.append(
                    f"{worker!r} {route}: {real.status_code} {real.content[:200]!r} "
                    f"vs random {random.status_code} {random.content[:200]!r}"
                )
            if real.headers.get("content-type") != random.headers.get("content-type"):
                failures.append(f"{worker!r} {route}: content types differ")
        for name, query in (
            ("case_id", "/v1/disclosures?case_id="),
            ("case_id", "/v1/audit/export?case_id="),
            ("client_id", "/v1/audit/export?client_id="),
        ):
            real = worker.request("GET", query + ids[name])
            random = worker.request("GET", query + str(uuid4()))
            if real.status_code != 404 or real.content != random.content:
                failures.append(f"{worker!r} GET {query}: {real.status_code} {real.text[:200]}")
    assert not failures, "\n".join(failures)


def test_the_referral_story(net: SimpleNamespace, id_routes: list[Any], app_server: Any) -> None:
    ana, sam, hal = net.ana, net.sam, net.hal

    # --- the NGO opens the case ---------------------------------------------------------
    opened = ana.expect(
        201,
        "POST",
        "/v1/cases",
        json_body={"client": CLIENT, "summary": SUMMARY, "needs": NEEDS},
    )
    case = opened.json()
    case_id, client_id = case["id"], case["client_id"]
    assert opened.headers["location"] == f"/v1/cases/{case_id}"
    assert opened.headers["etag"] == f'"{case["version"]}"'
    assert case["status"] == "open"
    assert case["owner_agency_id"] == net.ngo["id"]
    assert case["client"] == CLIENT
    assert (case["summary"], case["needs"], case["erased"]) == (SUMMARY, NEEDS, False)
    ids = {"case_id": case_id, "client_id": client_id}
    school_sees_nothing(net, id_routes, ids)

    notes = [
        ana.post(f"/v1/cases/{case_id}/notes", {"text": text, "category": category})
        for category, text in NOTES
    ]
    assert [(n["category"], n["text"]) for n in notes] == NOTES
    owner_view = ana.get(f"/v1/cases/{case_id}")
    assert [n["id"] for n in owner_view["notes"]] == [n["id"] for n in notes]
    assert owner_view["shared_under"] == []

    # Before any consent the hospital cannot tell the case from nothing.
    hidden = hal.expect(404, "GET", f"/v1/cases/{case_id}")
    assert hidden.content == hal.expect(404, "GET", f"/v1/cases/{uuid4()}").content
    assert hal.get("/v1/shared-cases")["items"] == []

    # --- the client's consent ------------------------------------------------------------
    consent = ana.post(
        f"/v1/cases/{case_id}/consents",
        {
            "grantee_agency_id": net.hospital["id"],
            "sections": GRANTED,
            "purpose": "referral",
            "method": "written",
            "evidence": "Signed consent form, scanned to the NGO's file",
        },
    )
    consent_id = consent["id"]
    assert consent["status"] == "active"
    assert consent["sections"] == GRANTED
    assert consent["grantee_agency_id"] == net.hospital["id"]
    ids["consent_id"] = consent_id
    receipt = ana.get(f"/v1/consents/{consent_id}/receipt")
    assert receipt["grantee_agency_name"] == "City Hospital Social Work"
    assert receipt["sections"] == GRANTED
    assert receipt["purpose"] == "referral"
    assert receipt["status"] == "active"
    assert receipt["how_to_withdraw"]
    school_sees_nothing(net, id_routes, ids)

    # --- the referral ------------------------------------------------------------------------
    referral = ana.post(
        "/v1/referrals",
        {
            "case_id": case_id,
            "to_agency_id": net.hospital["id"],
            "service_type": "health",
            "reason": "Please help move the dialysis slots to evenings.",
            "urgency": "routine",
            "consent_id": consent_id,
        },
    )
    referral_id = referral["id"]
    assert referral["status"] == "requested"
    assert [h["status"] for h in referral["history"]] == ["requested"]
    ids["referral_id"] = referral_id
    school_sees_nothing(net, id_routes, ids)

    # --- what the hospital sees: exactly the granted sections ---------------------------
    inbox = hal.get("/v1/referrals?direction=incoming")["items"]
    assert [r["id"] for r in inbox] == [referral_id]
    seen = hal.get(f"/v1/cases/{case_id}")
    assert seen["id"] == case_id
    assert seen["client"] == CLIENT  # name, date of birth, phone, address
    assert "summary" not in seen
    assert "needs" not in seen
    health = [n for n in notes if n["category"] == "health"]
    assert seen["notes"] == health
    assert {n["category"] for n in seen["notes"]} == {"health"}
    assert seen["sections"] == GRANTED
    assert seen["shared_under"] == [consent_id]
    assert seen["shared_under_emergency"] == []
    seen_text = json.dumps(seen)
    for category, text in NOTES:
        assert (text in seen_text) == (category == "health")
    assert SUMMARY not in seen_text
    shared = hal.get("/v1/shared-cases")["items"]
    assert shared == [
        {
            "case_id": case_id,
            "owner_agency_id": net.ngo["id"],
            "sections": GRANTED,
            "shared_under": [consent_id],
            "shared_under_emergency": [],
        }
    ]
    seen_referral = hal.get(f"/v1/referrals/{referral_id}")
    assert seen_referral["client"] == CLIENT

    # Every read the hospital made is in the NGO's accounting of disclosures, and so is
    # the referral's reason, which Ana wrote for the hospital.
    disclosures = sam.get(f"/v1/disclosures?case_id={case_id}")["items"]
    assert [
        (d["recipient_agency_id"], d["worker_id"], d["sections"], d["consent_ids"], d["basis"])
        for d in disclosures
    ] == [
        (net.hospital["id"], ana.worker_id, ["referral"], [consent_id], "consent"),  # reason
        (net.hospital["id"], hal.worker_id, GRANTED, [consent_id], "consent"),  # the case
        (net.hospital["id"], hal.worker_id, ["identity", "contact"], [consent_id], "consent"),
    ]
    assert all(d["case_id"] == case_id and d["purposes"] == ["referral"] for d in disclosures)
    assert all(datetime.fromisoformat(d["at"]) for d in disclosures)
    assert net.aud.get(f"/v1/disclosures?case_id={case_id}")["items"] == disclosures
    assert sam.get("/v1/disclosures")["items"] == disclosures
    ana.expect(403, "GET", f"/v1/disclosures?case_id={case_id}")  # a caseworker's role
    hal.expect(403, "GET", "/v1/disclosures")  # a caseworker may not, whatever it owns

    # --- the closed loop ----------------------------------------------------------------------
    moves = [
        ("accept", None, "accepted"),
        ("start", None, "in_progress"),
        ("hold", {"reason": "Waiting for the renal unit's rota."}, "on_hold"),
        ("start", None, "in_progress"),
        ("complete", {"outcome": "got_help", "note": "Evening slots from next week."}, "completed"),
    ]
    for action, body, status in moves:
        moved = hal.post(f"/v1/referrals/{referral_id}/{action}", body, status=200)
        assert moved["status"] == status
        assert moved["client"] == CLIENT  # the answer shows the client: a disclosure
    final = ana.get(f"/v1/referrals/{referral_id}")
    assert final["status"] == "completed"
    assert final["outcome"] == "got_help"
    history = final["history"]
    assert [h["status"] for h in history] == [
        "requested",
        "accepted",
        "in_progress",
        "on_hold",
        "in_progress",
        "completed",
    ]
    assert [h["agency_id"] for h in history] == [net.ngo["id"]] + [net.hospital["id"]] * 5
    assert history[-1]["outcome"] == "got_help"
    outbox = ana.get("/v1/referrals?direction=outgoing&status=completed")["items"]
    assert [(r["id"], r["outcome"]) for r in outbox] == [(referral_id, "got_help")]
    school_sees_nothing(net, id_routes, ids)

    # --- the conversation, both ways ------------------------------------------------------------
    first = ana.post(f"/v1/referrals/{referral_id}/messages", {"text": "Thank you, Hal!"})
    second = hal.post(f"/v1/referrals/{referral_id}/messages", {"text": "Our pleasure."})
    for party in (ana, hal):
        conversation = party.get(f"/v1/referrals/{referral_id}/messages")["items"]
        assert [(m["id"], m["agency_id"], m["worker_id"], m["text"]) for m in conversation] == [
            (first["id"], net.ngo["id"], ana.worker_id, "Thank you, Hal!"),
            (second["id"], net.hospital["id"], hal.worker_id, "Our pleasure."),
        ]

    # Each answer to a move showed the client's identity and contact: each is accounted for.
    disclosures = sam.get(f"/v1/disclosures?case_id={case_id}")["items"]
    assert len(disclosures) == 3 + len(moves) + 2
    assert {
        (d["recipient_agency_id"], d["worker_id"], tuple(d["sections"]), tuple(d["consent_ids"]))
        for d in disclosures[3:-2]
    } == {(net.hospital["id"], hal.worker_id, ("identity", "contact"), (consent_id,))}
    # Each message is disclosed to the agency that did not write it.
    told = [(d["recipient_agency_id"], d["worker_id"], d["sections"]) for d in disclosures[-2:]]
    assert told == [
        (net.hospital["id"], ana.worker_id, ["referral"]),
        (net.ngo["id"], hal.worker_id, ["referral"]),
    ]

    # --- the client withdraws consent: from the very next request, nothing -------------------
    withdrawn = ana.post(
        f"/v1/consents/{consent_id}/withdraw", {"reason": "The client asked."}, status=200
    )
    assert withdrawn["status"] == "withdrawn"
    gone = hal.expect(404, "GET", f"/v1/cases/{case_id}")
    assert gone.content == hal.expect(404, "GET", f"/v1/cases/{uuid4()}").content
    after = hal.get(f"/v1/referrals/{referral_id}")
    assert "client" not in after
    assert CLIENT["name"] not in json.dumps(after)
    assert after["status"] == "completed"
    assert hal.get("/v1/shared-cases")["items"] == []
    assert hal.get(f"/v1/referrals/{referral_id}/messages")["items"][0]["id"] == first["id"]
    assert ana.get(f"/v1/consents/{consent_id}/receipt")["status"] == "withdrawn"
    assert [c["status"] for c in ana.get(f"/v1/cases/{case_id}/consents")["items"]] == ["withdrawn"]
    access = sam.get(f"/v1/cases/{case_id}/access")
    assert [g["agency_id"] for g in access["grants"]] == [net.ngo["id"]]
    # The reads after the withdrawal disclosed nothing.
    assert sam.get(f"/v1/disclosures?case_id={case_id}")["items"] == disclosures
    school_sees_nothing(net, id_routes, ids)

    # The NGO's auditor can export the case's consent audit bundle.
    bundle = net.aud.expect(200, "GET", f"/v1/audit/export?case_id={case_id}")
    assert bundle.headers["content-type"].startswith("application/x-tar")
    assert bundle.content

    # The school never saw anything anywhere.
    for worker in net.school_workers:
        assert worker.get("/v1/shared-cases")["items"] == []
        assert worker.get("/v1/referrals?direction=incoming")["items"] == []
        assert worker.get("/v1/cases")["items"] == []
        assert worker.get("/v1/feed")["items"] == []

    # Rule 6: no personal data in the server's log (every record the application wrote
    # while the module ran; tests/e2e/test_live_server.py reads a real server's log).
    wrong_token = type(ana)(ana.server, "not-a-token-" + CLIENT["name"])
    wrong_token.expect(401, "GET", f"/v1/cases/{case_id}")
    deadline = time.monotonic() + 5  # a served process writes its log from a thread
    while "authentication failed" not in (log := app_server.log()):
        assert time.monotonic() < deadline, "the 401 was not logged"
        time.sleep(0.02)
    for value in (*CLIENT.values(), SUMMARY, *(text for _, text in NOTES)):
        assert value not in log
    assert "Traceback" not in log


# --- ETag and If-Match -------------------------------------------------------------------


def test_etag_and_if_match(net: SimpleNamespace) -> None:
    ana, hal = net.ana, net.hal
    opened = ana.expect(
        201, "POST", "/v1/cases", json_body={"client": {"name": "Ida"}, "summary": "ETag"}
    )
    case_id = opened.json()["id"]
    etag = opened.headers["etag"]
    assert etag == f'"{opened.json()["version"]}"'
    assert ana.expect(200, "GET", f"/v1/cases/{case_id}").headers["etag"] == etag

    added = ana.expect(
        201,
        "POST",
        f"/v1/cases/{case_id}/notes",
        json_body={"text": "n", "category": "general"},
        headers={"If-Match": etag},
    )
    newer = added.headers["etag"]
    assert newer != etag
    current = ana.expect(200, "GET", f"/v1/cases/{case_id}")
    assert current.headers["etag"] == newer == f'"{current.json()["version"]}"'

    stale = ana.request(
        "POST", f"/v1/cases/{case_id}/close", json_body={"reason": "r"}, headers={"If-Match": etag}
    )
    assert_problem(stale, 412)
    assert ana.get(f"/v1/cases/{case_id}")["status"] == "open"  # nothing happened
    closed = ana.expect(
        200,
        "POST",
        f"/v1/cases/{case_id}/close",
        json_body={"reason": "r"},
        headers={"If-Match": newer},
    )
    assert closed.json()["status"] == "closed"
    assert closed.headers["etag"] == f'"{closed.json()["version"]}"' != newer
    reopened = ana.expect(
        200,
        "POST",
        f"/v1/cases/{case_id}/reopen",
        json_body={"reason": "r"},
        headers={"If-Match": closed.headers["etag"]},
    )
    assert reopened.json()["status"] == "open"

    consent = ana.expect(
        201,
        "POST",
        f"/v1/cases/{case_id}/consents",
        json_body={
            "grantee_agency_id": net.hospital["id"],
            "sections": ["identity"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    consent_id = consent.json()["id"]
    assert (
        ana.expect(200, "GET", f"/v1/consents/{consent_id}").headers["etag"]
        == (consent.headers["etag"])
    )
    referral = ana.expect(
        201,
        "POST",
        "/v1/referrals",
        json_body={
            "case_id": case_id,
            "to_agency_id": net.hospital["id"],
            "service_type": "health",
            "reason": "r",
            "urgency": "urgent",
        },
    )
    referral_id = referral.json()["id"]
    seen = hal.expect(200, "GET", f"/v1/referrals/{referral_id}")
    assert seen.headers["etag"] == referral.headers["etag"] == f'"{seen.json()["version"]}"'
    wrong = f'"{seen.json()["version"] + 1}"'
    assert_problem(
        hal.request("POST", f"/v1/referrals/{referral_id}/accept", headers={"If-Match": wrong}), 412
    )
    accepted = hal.expect(
        200,
        "POST",
        f"/v1/referrals/{referral_id}/accept",
        headers={"If-Match": seen.headers["etag"]},
    )
    assert accepted.json()["status"] == "accepted"
    assert accepted.headers["etag"] != seen.headers["etag"]
    # The old ETag is stale now.
    assert_problem(
        hal.request(
            "POST", f"/v1/referrals/{referral_id}/start", headers={"If-Match": seen.headers["etag"]}
        ),
        412,
    )

    assert_problem(
        ana.request(
            "POST",
            f"/v1/consents/{consent_id}/withdraw",
            json_body={"reason": "r"},
            headers={"If-Match": '"99"'},
        ),
        412,
    )
    assert ana.get(f"/v1/consents/{consent_id}")["status"] == "active"
    withdrawn = ana.expect(
        200,
        "POST",
        f"/v1/consents/{consent_id}/withdraw",
        json_body={"reason": "r"},
        headers={"If-Match": consent.headers["etag"]},
    )
    assert withdrawn.json()["status"] == "withdrawn"

    # An agency is an aggregate too: its directory entry and its service list.
    admin = net.ngo_admin
    entry = admin.expect(200, "GET", f"/v1/agencies/{net.ngo['id']}")
    assert entry.headers["etag"] == f'"{entry.json()["version"]}"'
    services = {"services": [{"type": "income", "description": "Advice and benefits"}]}
    stale = f'"{entry.json()["version"] - 1}"'
    replace = f"/v1/agencies/{net.ngo['id']}/services"
    assert_problem(
        admin.request("PUT", replace, json_body=services, headers={"If-Match": stale}), 412
    )
    replaced = admin.expect(
        200, "PUT", replace, json_body=services, headers={"If-Match": entry.headers["etag"]}
    )
    assert replaced.json()["services"][0]["description"] == "Advice and benefits"
    assert replaced.headers["etag"] == f'"{replaced.json()["version"]}"' != entry.headers["etag"]


# --- Idempotency-Key ----------------------------------------------------------------------


def test_idempotency_key(operator: Any, net: SimpleNamespace) -> None:
    agency = operator.agency("Idempotent Housing", "ngo")
    worker = operator.worker(agency, "caseworker")
    body = {"client": {"name": "Ola", "phone": "+1 555 0199"}, "summary": "s", "needs": ["food"]}
    key = {"Idempotency-Key": f"open-{uuid4()}"}

    def count_cases() -> int:
        return len(worker.walk("/v1/cases", limit=500))

    assert count_cases() == 0
    first = worker.expect(201, "POST", "/v1/cases", json_body=body, headers=key)
    assert "idempotent-replayed" not in first.headers
    again = worker.expect(201, "POST", "/v1/cases", json_body=body, headers=key)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["location"] == first.headers["location"]
    assert count_cases() == 1
    other = worker.request("POST", "/v1/cases", json_body={**body, "summary": "t"}, headers=key)
    assert_problem(other, 409)
    assert count_cases() == 1
    fresh = worker.expect(
        201, "POST", "/v1/cases", json_body=body, headers={"Idempotency-Key": f"k-{uuid4()}"}
    )
    assert fresh.json()["id"] != first.json()["id"]
    assert count_cases() == 2
    case_id = first.json()["id"]

    def twice(path: str, payload: dict[str, Any], api: Any = worker) -> dict[str, Any]:
        """POST the same create twice with one key: one write, the same answer."""
        headers = {"Idempotency-Key": f"k-{uuid4()}"}
        one = api.expect(201, "POST", path, json_body=payload, headers=headers)
        two = api.expect(201, "POST", path, json_body=payload, headers=headers)
        assert two.json() == one.json()
        assert two.headers["idempotent-replayed"] == "true"
        text = next(k for k in ("text", "reason", "name", "evidence") if k in payload)
        changed = {**payload, text: payload[text] + " (changed)"}
        assert_problem(api.request("POST", path, json_body=changed, headers=headers), 409)
        created: dict[str, Any] = one.json()
        return created

    note = twice(f"/v1/cases/{case_id}/notes", {"text": "once", "category": "general"})
    assert [n["id"] for n in worker.get(f"/v1/cases/{case_id}")["notes"]] == [note["id"]]
    consent = twice(
        f"/v1/cases/{case_id}/consents",
        {
            "grantee_agency_id": net.hospital["id"],
            "sections": ["needs"],
            "purpose": "care_coordination",
            "method": "electronic",
            "evidence": "Ticked the box in the app",
        },
    )
    consents = worker.get(f"/v1/cases/{case_id}/consents")["items"]
    assert [c["id"] for c in consents] == [consent["id"]]
    referral = twice(
        "/v1/referrals",
        {
            "case_id": case_id,
            "to_agency_id": net.hospital["id"],
            "service_type": "food",
            "reason": "once",
            "urgency": "routine",
        },
    )
    outbox = worker.get("/v1/referrals?direction=outgoing")["items"]
    assert [r["id"] for r in outbox] == [referral["id"]]
    message = twice(f"/v1/referrals/{referral['id']}/messages", {"text": "once"})
    messages = worker.get(f"/v1/referrals/{referral['id']}/messages")["items"]
    assert [m["id"] for m in messages] == [message["id"]]
    added = twice(
        f"/v1/agencies/{agency['id']}/workers", {"name": "Once", "role": "auditor"}, api=operator
    )
    me = operator.expect(
        200, "GET", "/v1/me", headers={"Authorization": f"Bearer {added['token']}"}
    )
    assert me.json()["worker"]["id"] == added["id"]
    registered = twice(
        "/v1/agencies", {"name": "Once Only Shelter", "kind": "shelter"}, api=operator
    )
    directory = operator.walk("/v1/agencies", limit=500)
    assert [a["id"] for a in directory if a["name"] == "Once Only Shelter"] == [registered["id"]]


# --- pagination ---------------------------------------------------------------------------


def test_every_list_walks_with_limit_1_to_the_end_without_duplicates(
    operator: Any, net: SimpleNamespace
) -> None:
    owner_agency = operator.agency("Paging Welfare", "ngo")
    owner = operator.worker(owner_agency, "supervisor")
    receivers = [operator.agency(f"Paging Receiver {i}", "clinic") for i in range(3)]
    receiver = operator.worker(receivers[0], "caseworker")
    cases = [
        owner.post("/v1/cases", {"client": {"name": f"P{i}"}, "summary": "s"})["id"]
        for i in range(3)
    ]
    for agency in receivers:
        owner.post(
            f"/v1/cases/{cases[0]}/consents",
            {
                "grantee_agency_id": agency["id"],
                "sections": ["identity"],
                "purpose": "referral",
                "method": "verbal",
            },
        )
    for case_id in cases[1:]:
        owner.post(
            f"/v1/cases/{case_id}/consents",
            {
                "grantee_agency_id": receivers[0]["id"],
                "sections": ["summary"],
                "purpose": "care_coordination",
                "method": "verbal",
            },
        )
    referrals = [
        owner.post(
            "/v1/referrals",
            {
                "case_id": case_id,
                "to_agency_id": receivers[0]["id"],
                "service_type": "health",
                "reason": "r",
                "urgency": "routine",
            },
        )["id"]
        for case_id in cases
    ]
    for i in range(3):
        (owner if i % 2 else receiver).post(
            f"/v1/referrals/{referrals[0]}/messages", {"text": f"m{i}"}
        )
    for case_id in cases:
        receiver.get(f"/v1/cases/{case_id}")  # three disclosures

    lists = {
        "/v1/cases": (owner, 3),
        "/v1/cases?status=open": (owner, 3),
        f"/v1/cases/{cases[0]}/consents": (owner, 3),
        "/v1/referrals?direction=outgoing": (owner, 3),
        "/v1/referrals?direction=incoming": (receiver, 3),
        f"/v1/referrals/{referrals[0]}/messages": (receiver, 3),
        "/v1/shared-cases": (receiver, 3),
        # Three reads, three referrals' reasons and three messages.
        "/v1/disclosures": (owner, 9),
        f"/v1/disclosures?case_id={cases[0]}": (owner, 5),
        "/v1/feed": (receiver, None),
        "/v1/agencies": (operator, None),
    }
    for path, (api, expected) in lists.items():
        follow = path == "/v1/feed"  # followed for ever: its last page has a next
        walked = api.walk(path, limit=1, follow=follow)
        whole = api.get(path + ("&" if "?" in path else "?") + "limit=500")
        assert (whole["next"] is not None) is follow
        key = "position" if path == "/v1/feed" else ("case_id" if "shared" in path else "id")
        walked_ids = [item[key] for item in walked]
        assert len(set(walked_ids)) == len(walked_ids), f"{path}: duplicates {walked_ids}"
        assert walked_ids == [item[key] for item in whole["items"]], path
        if expected is not None:
            assert len(walked) == expected, (path, walked)
        else:
            assert len(walked) >= 3, path
        two = api.walk(path, limit=2, follow=follow)
        assert [item[key] for item in two] == walked_ids, path

    for bad in ("limit=0", "limit=501", "limit=x", "after=not-a-cursor"):
        response = owner.request("GET", f"/v1/cases?{bad}")
        assert response.status_code in (400, 422), (bad, response.text)
        assert_problem(response, response.status_code)


# --- problem+json -----------------------------------------------------------------------


def test_errors_are_problem_json_without_traces(net: SimpleNamespace, operator: Any) -> None:
    ana = net.ana
    url = "/v1/cases"
    json_type = {"Content-Type": "application/json"}

    body = assert_problem(ana.request("POST", url, content=b'{"client": ', headers=json_type), 400)
    unknown_field = ana.request(
        "POST", url, json_body={"client": {"name": "Zed"}, "summary": "s", "colour": "red"}
    )
    body = assert_problem(unknown_field, 400)
    assert body["errors"]
    assert all(set(e) == {"field", "message"} for e in body["errors"])
    wrong_type = ana.request("POST", url, json_body={"client": {"name": 7}, "summary": "s"})
    assert assert_problem(wrong_type, 400)["errors"]

    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        anonymous = type(ana)(ana.server, None)
        assert_problem(anonymous.request("GET", url, headers=headers), 401)

    assert_problem(ana.request("GET", "/v1/no-such-thing"), 404)
    assert_problem(ana.request("GET", f"/v1/cases/{uuid4()}"), 404)
    assert_problem(ana.request("GET", f"/v1/referrals/{uuid4()}"), 404)
    assert_problem(ana.request("GET", "/v1/cases/not-a-uuid"), 404)

    assert_problem(ana.request("DELETE", url), 405)
    assert_problem(ana.request("PUT", f"/v1/cases/{uuid4()}", json_body={}), 405)

    huge = b'{"client": {"name": "' + b"x" * (1024 * 1024) + b'"}, "summary": "s"}'
    assert_problem(ana.request("POST", url, content=huge, headers=json_type), 413)

    as_text = ana.request(
        "POST", url, content=b"client=Zed", headers={"Content-Type": "text/plain"}
    )
    assert_problem(as_text, 415)
    as_form = ana.request("POST", url, data={"client": "Zed"})
    assert_problem(as_form, 415)

    case_id = ana.post(url, {"client": {"name": "Quinn Private"}, "summary": "s"})["id"]
    invalid = ana.request(
        "POST", f"/v1/cases/{case_id}/notes", json_body={"text": "t", "category": "astrology"}
    )
    body = assert_problem(invalid, 422)
    assert [e["field"] for e in body["errors"]] == ["category"]
    bad_section = ana.request(
        "POST",
        f"/v1/cases/{case_id}/consents",
        json_body={
            "grantee_agency_id": net.hospital["id"],
            "sections": ["everything"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    assert assert_problem(bad_section, 422)["errors"][0]["field"] == "sections"
    bad_needs = ana.request(
        "POST",
        url,
        json_body={"client": {"name": "Quinn Private"}, "summary": "s", "needs": ["Not A Code"]},
    )
    problem = assert_problem(bad_needs, bad_needs.status_code)
    assert bad_needs.status_code in (400, 422)
    assert "Quinn Private" not in json.dumps(problem)  # never personal data in a problem

    # 403 and 409 are problems too.
    assert_problem(
        net.hal.request("POST", f"/v1/cases/{case_id}/close", json_body={"reason": "r"}), 404
    )
    assert_problem(
        net.aud.request("POST", f"/v1/cases/{case_id}/close", json_body={"reason": "r"}), 403
    )
    ana.post(f"/v1/cases/{case_id}/close", {"reason": "r"}, status=200)
    assert_problem(
        ana.request("POST", f"/v1/cases/{case_id}/close", json_body={"reason": "r"}), 409
    )


def test_the_replica_run_read_from_the_replica(app_server: Any) -> None:
    """Last in the module: on ``postgres+replica`` the GET requests above were served by
    the standby (each still seeing the writes before it); elsewhere there is none."""
    assert_the_standby_served(app_server)
