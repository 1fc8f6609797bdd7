"""The network's story from the seeds (issue 19), over HTTP, on SQLite and PostgreSQL.

A welfare NGO, a hospital's social-work department, a school and a blood bank publish
their services. The NGO's worker looks for help with health, in Tamil, and finds the
hospital's medical social workers (the HSDS endpoint shows the same service); the NGO
asks to partner with the hospital, and the hospital's admin accepts. The NGO opens the
case of a domestic maid's disabled husband, records his consent for the hospital, and
refers his appointment problem: she can bring him only after her shifts, an hour she can
manage. The hospital accepts, starts and completes it with ``got_help``. Then the
hospital needs blood: it posts an appeal to its partners; the NGO, partnered with the
blood bank too, relays it; the blood bank answers ``can_help`` and the hospital sees the
answer. The network's figures count the referral: the hospital sees its own cell
whole, every other agency sees it withheld (below 5), and they equal a recomputation
from the events, also after a rebuild.

Every client value is a canary: the school and the blood bank, which no consent names,
never see one (not in the directory, appeals, feeds, figures, nor in the 404s of the
case, its consent, its referral or its client, byte for byte those of random ids), and
neither does the server's log.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from tests.support.hsds import hsds_errors
from tests.support.http import Api, Probe, Route
from tests.support.network_figures import recomputed

#: A mark of this run in every client value, so that none can be found by chance.
MARK = uuid4().hex[:10]
CLIENT = {
    "name": f"Selvam Murugan {MARK}",
    "date_of_birth": "1969-11-23",
    "phone": f"+91 44 2811 {MARK[:4]}",
    "address": f"7 Canal Street {MARK}, Kotturpuram",
}
SUMMARY = f"Wheelchair user; his wife works as a domestic maid until 6 pm ({MARK})."
NOTE = f"Physiotherapy every Tuesday; mornings are impossible for the family ({MARK})."
REASON = f"Could his appointments move after 6 pm, an hour she can manage? ({MARK})"
OUTCOME_NOTE = f"Evening slots on Tuesdays and Fridays from next week ({MARK})."
MESSAGE = f"His wife thanks you; she starts at 7 am ({MARK})."
CANARIES = (*CLIENT.values(), SUMMARY, NOTE, REASON, OUTCOME_NOTE, MESSAGE)
#: The routes of the client's records: they answer a stranger as for a random id.
CLIENT_ROUTES = ("/v1/cases/", "/v1/consents/", "/v1/referrals/", "/v1/clients/")

SERVICES = {
    "ngo": {
        "name": "Welfare casework",
        "description": "Benefits, housing and family casework for domestic workers.",
        "needs": ["income", "family_support"],
        "languages": ["ta", "en"],
        "areas": ["Chennai South"],
        "capacity": "accepting",
        "contacts": [{"name": "Anitha Raj", "title": "Welfare worker", "phone": "+91 44 100"}],
    },
    "hospital": {
        "name": "Medical social work",
        "description": "Social workers who arrange treatment around a family's work.",
        "needs": ["health", "disability"],
        "languages": ["ta", "en", "hi"],
        "areas": ["Chennai South", "Chennai Central"],
        "eligibility": "Patients of the hospital and their carers.",
        "capacity": "accepting",
        "contacts": [
            {"name": "Meena Pillai", "title": "Medical social worker", "phone": "+91 44 200"},
            {"name": "Social work desk", "email": "socialwork@hospital.example"},
        ],
    },
    "school": {
        "name": "School admissions help",
        "description": "Places for children refused admission.",
        "needs": ["education"],
        "languages": ["ta", "en"],
        "areas": ["Chennai South"],
        "capacity": "waitlist",
        "contacts": [{"name": "K. Lakshmi", "title": "Headteacher"}],
    },
    "blood_bank": {
        "name": "Blood donation",
        "description": "Donors and blood for the city's hospitals.",
        "needs": ["health"],
        "languages": ["en"],
        "areas": ["Chennai"],
        "capacity": "accepting",
        "contacts": [{"name": "Donor desk", "phone": "+91 44 300"}],
    },
}
KINDS = {"ngo": "ngo", "hospital": "hospital", "school": "school", "blood_bank": "blood_bank"}


@pytest.fixture(scope="module")
def net(operator: Api) -> SimpleNamespace:
    """The four agencies, each with its services published by its admin, and workers."""
    agencies = {}
    for key, kind in KINDS.items():
        agency = operator.agency(f"The {key.replace('_', ' ')}", kind)
        admin = operator.worker(agency, "admin")
        path = f"/v1/agencies/{agency['id']}/services"
        admin.expect(200, "PUT", path, json_body={"services": [SERVICES[key]]})
        agencies[key] = SimpleNamespace(
            id=agency["id"],
            admin=admin,
            worker=operator.worker(agency, "caseworker"),
            auditor=operator.worker(agency, "auditor"),
        )
    return SimpleNamespace(**agencies)


def strangers(net: SimpleNamespace) -> list[Api]:
    """The workers of the agencies no consent names, in every role that reads."""
    return [a for x in (net.school, net.blood_bank) for a in (x.admin, x.worker, x.auditor)]


def find_the_hospital(net: SimpleNamespace) -> str:
    """The NGO finds the hospital by need and language; the HSDS service is the same."""
    found = net.ngo.worker.get("/v1/services?need=health&language=ta")["items"]
    assert [(s["agency_name"], s["name"]) for s in found] == [
        ("The hospital", "Medical social work")
    ]
    (service,) = found
    assert service["contacts"] == SERVICES["hospital"]["contacts"]
    assert service["capacity"] == "accepting"
    assert {s["agency_id"] for s in net.ngo.worker.walk("/v1/services?need=health")} == {
        net.hospital.id,
        net.blood_bank.id,
    }
    hsds = net.ngo.worker.get(f"/v1/hsds/services/{service['id']}")
    assert hsds_errors("service.json", hsds) == []
    assert (hsds["id"], hsds["name"], hsds["organization"]["id"]) == (
        service["id"],
        "Medical social work",
        net.hospital.id,
    )
    assert [x["code"] for x in hsds["languages"]] == ["ta", "en", "hi"]
    needs = [a["taxonomy_term"]["code"] for a in hsds["attributes"] if a["link_type"] == "need"]
    assert needs == ["health", "disability"]
    organization = net.ngo.worker.get(f"/v1/hsds/organizations/{net.hospital.id}")
    assert hsds_errors("organization.json", organization) == []
    assert [s["id"] for s in organization["services"]] == [service["id"]]
    return str(service["id"])


def partner(asker: SimpleNamespace, accepter: SimpleNamespace) -> str:
    asked = asker.admin.post("/v1/partnerships", {"agency_id": accepter.id})
    assert asked["status"] == "requested"
    accepted = accepter.admin.post(f"/v1/partnerships/{asked['id']}/accept", status=200)
    assert accepted["status"] == "active"
    return str(asked["id"])


def refer_the_husband(net: SimpleNamespace) -> dict[str, str]:
    """The NGO's case, the consent, the referral, taken to ``got_help`` by the hospital."""
    ngo, hospital = net.ngo.worker, net.hospital.worker
    case = ngo.post("/v1/cases", {"client": CLIENT, "summary": SUMMARY, "needs": ["disability"]})
    ngo.post(f"/v1/cases/{case['id']}/notes", {"text": NOTE, "category": "health"})
    hospital.expect(404, "GET", f"/v1/cases/{case['id']}")  # no consent yet
    consent = ngo.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": net.hospital.id,
            "sections": ["identity", "contact", "notes.health"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    referral = ngo.post(
        "/v1/referrals",
        {
            "case_id": case["id"],
            "to_agency_id": net.hospital.id,
            "service_type": "health",
            "reason": REASON,
            "urgency": "routine",
            "consent_id": consent["id"],
        },
    )
    assert datetime.fromisoformat(referral["response_due_at"]) == datetime.fromisoformat(
        referral["created_at"]
    ) + timedelta(days=7)
    assert referral["overdue"] is False
    path = f"/v1/referrals/{referral['id']}"
    seen = hospital.get(path)
    assert (seen["client"], seen["reason"]) == (CLIENT, REASON)  # under the consent
    assert [n["text"] for n in hospital.get(f"/v1/cases/{case['id']}")["notes"]] == [NOTE]
    for action, body in (("accept", None), ("start", None)):
        hospital.post(f"{path}/{action}", body, status=200)
    done = {"outcome": "got_help", "note": OUTCOME_NOTE}
    assert hospital.post(f"{path}/complete", done, status=200)["status"] == "completed"
    hospital.post(f"{path}/messages", {"text": MESSAGE})
    final = ngo.get(path)
    assert (final["status"], final["outcome"]) == ("completed", "got_help")
    return {
        "case_id": case["id"],
        "client_id": case["client_id"],
        "consent_id": consent["id"],
        "referral_id": referral["id"],
    }


def pass_the_appeal_on(net: SimpleNamespace, probe: Probe) -> str:
    """The hospital's blood appeal reaches the NGO, the NGO relays it to the blood bank,
    which answers; the hospital sees the answer. The school is never reached."""
    appeal = net.hospital.worker.post(
        "/v1/appeals",
        {
            "need": "health",
            "title": "Blood donors needed: O negative",
            "text": "Two units this week for a child in the paediatric ward.",
            "expires_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
            "reach": "partners",
        },
    )
    path = f"/v1/appeals/{appeal['id']}"
    assert [a["id"] for a in net.ngo.worker.get("/v1/appeals?status=open")["items"]] == [
        appeal["id"]
    ]
    for outside in (net.blood_bank.worker, net.school.worker):  # not the hospital's partners
        probe.same(f"{outside!r} before the relay", outside.request("GET", path),
                   outside.request("GET", f"/v1/appeals/{uuid4()}"))  # fmt: skip
    relayed = net.ngo.worker.post(f"{path}/relay", status=200)
    assert relayed == {"appeal_id": appeal["id"], "newly_reached": 1}  # the blood bank
    assert net.blood_bank.worker.get(path)["id"] == appeal["id"]
    answer = net.blood_bank.worker.post(
        f"{path}/responses", {"answer": "can_help", "text": "Three O negative donors today."}
    )
    seen = net.hospital.worker.get(path)["responses"]
    assert [(r["id"], r["agency_id"], r["answer"]) for r in seen] == [
        (answer["id"], net.blood_bank.id, "can_help")
    ]
    assert net.ngo.worker.get(path)["responses"] == []  # a relayer is not the author
    return str(appeal["id"])


def feed_types(api: Api) -> list[str]:
    return [item["type"] for item in api.get("/v1/feed?limit=500")["items"]]


def figures_count_the_referral(net: SimpleNamespace, app_server: Any) -> None:
    """The hospital's health cell: whole to the hospital, withheld (1 < 5) to every
    other agency; every view equal to a recomputation from the events."""

    def served(api: Api) -> tuple[datetime, list[dict[str, Any]]]:
        answer = api.get("/v1/network/metrics?service_type=health")
        return datetime.fromisoformat(answer["at"]), answer["items"]

    def recomputation(agency: str, at: datetime) -> list[dict[str, Any]]:
        everything = recomputed(app_server.casenet, UUID(agency), at)
        return [f for f in everything if f["service_type"] == "health"]

    _, own = served(net.hospital.auditor)
    assert own == [
        {
            "agency_id": net.hospital.id,
            "service_type": "health",
            "received": 1,
            "accepted": 1,
            "rejected": 0,
            "completed": 1,
            "got_help": 1,
            "overdue": 0,
            "median_hours_to_accept": own[0]["median_hours_to_accept"],
            "median_hours_to_complete": own[0]["median_hours_to_complete"],
            "suppressed": False,
        }
    ]
    assert 0 <= own[0]["median_hours_to_accept"] <= own[0]["median_hours_to_complete"] < 1
    for other in (net.ngo, net.school, net.blood_bank):
        _, theirs = served(other.worker)
        assert [f["suppressed"] for f in theirs] == [True]
        assert {k: v for k, v in theirs[0].items() if v is not None} == {
            "agency_id": net.hospital.id,
            "service_type": "health",
            "suppressed": True,
        }
    for _ in ("before the rebuild", "after it"):
        for agency in (net.hospital, net.ngo, net.blood_bank):
            at, items = served(agency.worker)
            assert items == recomputation(agency.id, at)
        app_server.casenet.projections.rebuild(["network_metrics"])


def test_the_network_story_from_search_to_donors(
    net: SimpleNamespace, id_routes: list[Route], probe: Probe, app_server: Any
) -> None:
    find_the_hospital(net)
    ids = {"partnership_id": partner(net.ngo, net.hospital)}
    ids |= refer_the_husband(net)
    partner(net.blood_bank, net.ngo)
    ids["appeal_id"] = pass_the_appeal_on(net, probe)
    figures_count_the_referral(net, app_server)

    # What each agency was told, in order: the school nothing at all.
    assert feed_types(net.school.worker) == []
    assert feed_types(net.blood_bank.worker) == [
        "partnership_requested",
        "partnership_accepted",
        "appeal_posted",
        "appeal_response",
    ]
    posted = [i for i in net.blood_bank.worker.get("/v1/feed")["items"] if i.get("hop")]
    assert [(i["hop"], i["relayed_by_agency_id"]) for i in posted] == [(2, net.ngo.id)]
    hospital_feed = feed_types(net.hospital.worker)
    assert hospital_feed.count("appeal_response") == 1
    assert "referral_requested" in hospital_feed

    # The client's records and the NGO and hospital's partnership answer a stranger
    # exactly as random ids do; so does the appeal to the school, which it never reached.
    for stranger in strangers(net):
        for route in id_routes:
            theirs = route.template.startswith((*CLIENT_ROUTES, "/v1/partnerships/"))
            if stranger.agency_id == net.school.id:
                theirs = theirs or route.template.startswith("/v1/appeals/")
            if theirs and set(route.parameters) <= set(ids):
                probe.indistinguishable(route, stranger, ids, stranger.agency_id)
    probe.check()

    # Everything a stranger can read holds no client value; nor does the server's log.
    for stranger in strangers(net):
        for path in (
            "/v1/services",
            "/v1/hsds/services",
            f"/v1/hsds/organizations/{net.ngo.id}",
            "/v1/appeals",
            "/v1/appeals?status=closed",
            "/v1/partnerships",
            "/v1/feed?limit=500",
            "/v1/network/metrics",
            "/v1/cases",
            "/v1/shared-cases",
            "/v1/referrals?direction=incoming",
            "/v1/referrals?direction=outgoing",
        ):
            text = stranger.expect(200, "GET", path).text
            assert not [c for c in CANARIES if c in text], (stranger, path)
        assert stranger.get("/v1/shared-cases")["items"] == []
        assert stranger.get("/v1/referrals?direction=incoming")["items"] == []
    bank_view = net.blood_bank.worker.get(f"/v1/appeals/{ids['appeal_id']}")
    assert not [c for c in CANARIES if c in json.dumps(bank_view)]
    assert not [c for c in CANARIES if c in app_server.log()]
