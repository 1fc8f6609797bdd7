"""Partnerships and appeals (issue 19, rule 7), over HTTP, on SQLite and PostgreSQL.

A network of agencies in a chain of partnerships, A - B - C - D - E, and F, partnered
with nobody: a partnership's lifecycle and who sees it; an appeal's reach (partners or
the network), its relays (never past three hops), its answers (the author sees all, a
responder its own), its closing and its expiry without an event; the fields an appeal
refuses; and the feed items each agency gets.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest

from casenet.domain.appeal import Appeal

NAMES = ("A", "B", "C", "D", "E", "F")


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def appeal_body(reach: str = "partners", **extra: Any) -> dict[str, Any]:
    return {
        "need": "health",
        "title": "Blood donors needed",
        "text": "O negative, this week.",
        "expires_at": later(days=2),
        "reach": reach,
        **extra,
    }


def partner(first: SimpleNamespace, second: SimpleNamespace) -> dict[str, Any]:
    asked = first.admin.post("/v1/partnerships", {"agency_id": second.id})
    return dict(second.admin.post(f"/v1/partnerships/{asked['id']}/accept", status=200))


@pytest.fixture(scope="module")
def net(operator: Any) -> SimpleNamespace:
    agencies = {}
    for name in NAMES:
        agency = operator.agency(f"Network {name}", "ngo")
        agencies[name] = SimpleNamespace(
            id=agency["id"],
            admin=operator.worker(agency, "admin"),
            worker=operator.worker(agency, "caseworker"),
            auditor=operator.worker(agency, "auditor"),
        )
    chain = [agencies[name] for name in "ABCDE"]
    for first, second in itertools.pairwise(chain):
        partner(first, second)
    return SimpleNamespace(**agencies)


def feed(api: Any) -> list[dict[str, Any]]:
    return list(api.get("/v1/feed?limit=500")["items"])


def test_a_partnership_from_request_to_end_is_seen_by_its_two_agencies_only(
    net: SimpleNamespace, probe: Any
) -> None:
    a, f, c = net.A, net.F, net.C
    asked = a.admin.post("/v1/partnerships", {"agency_id": f.id})
    assert asked["status"] == "requested"
    assert (asked["requester_agency_id"], asked["partner_agency_id"]) == (a.id, f.id)
    path = f"/v1/partnerships/{asked['id']}"
    # A second request while one is live, either way: 409.
    a.admin.post("/v1/partnerships", {"agency_id": f.id}, status=409)
    f.admin.post("/v1/partnerships", {"agency_id": a.id}, status=409)
    # Both see it pending; the asker may not accept its own request; a caseworker may not.
    assert asked["id"] in [p["id"] for p in f.worker.get("/v1/partnerships")["items"]]
    a.admin.post(f"{path}/accept", status=403)
    f.worker.post(f"{path}/accept", status=403)
    # Any other agency, any role: as a random id, byte for byte.
    for caller in (c.admin, c.worker, c.auditor):
        for method, suffix in (("GET", ""), ("POST", "/accept"), ("POST", "/end")):
            real = caller.request(method, f"{path}{suffix}")
            random = caller.request(method, f"/v1/partnerships/{uuid4()}{suffix}")
            assert real.status_code == 404
            probe.same(f"{caller!r} {method} {suffix}", real, random)
    probe.check()
    assert f.admin.post(f"{path}/accept", status=200)["status"] == "active"
    f.admin.post(f"{path}/decline", status=409)
    assert a.admin.post(f"{path}/end", status=200)["status"] == "ended"
    assert asked["id"] not in [p["id"] for p in a.worker.get("/v1/partnerships")["items"]]
    assert f.worker.get(path)["status"] == "ended"
    # Once ended, the pair may ask again: a new partnership, declined this time.
    again = f.admin.post("/v1/partnerships", {"agency_id": a.id})
    assert again["id"] != asked["id"]
    assert a.admin.post(f"/v1/partnerships/{again['id']}/decline", status=200)["status"] == (
        "declined"
    )


def test_a_partnership_with_oneself_or_nobody_is_422(net: SimpleNamespace) -> None:
    for agency_id in (net.A.id, str(uuid4())):
        answer = net.A.admin.expect(
            422, "POST", "/v1/partnerships", json_body={"agency_id": agency_id}
        )
        assert [e["field"] for e in answer.json()["errors"]] == ["agency_id"]


def test_reach_partners_reaches_the_partners_only_and_network_every_agency(
    net: SimpleNamespace, probe: Any
) -> None:
    to_partners = net.C.worker.post("/v1/appeals", appeal_body("partners"))
    path = f"/v1/appeals/{to_partners['id']}"
    assert to_partners["status"] == "open"
    for seen in (net.B, net.C, net.D):
        assert seen.auditor.get(path)["id"] == to_partners["id"]
        assert to_partners["id"] in [x["id"] for x in seen.worker.get("/v1/appeals")["items"]]
    for unseen in (net.A, net.E, net.F):
        for caller in (unseen.worker, unseen.admin):
            assert to_partners["id"] not in [x["id"] for x in caller.get("/v1/appeals")["items"]]
            for method, suffix, body in (
                ("GET", "", None),
                ("POST", "/responses", {"answer": "can_help"}),
                ("POST", "/relay", None),
                ("POST", "/close", {"reason": "r"}),
            ):
                real = caller.request(method, f"{path}{suffix}", json_body=body)
                random = caller.request(method, f"/v1/appeals/{uuid4()}{suffix}", json_body=body)
                assert real.status_code == 404, (caller, suffix)
                probe.same(f"{caller!r} {method} {suffix}", real, random)
    probe.check()
    to_all = net.F.worker.post("/v1/appeals", appeal_body("network"))
    for name in NAMES:
        assert getattr(net, name).worker.get(f"/v1/appeals/{to_all['id']}")["id"] == to_all["id"]


def test_a_relay_passes_an_appeal_on_but_never_past_three_hops(net: SimpleNamespace) -> None:
    appeal = net.A.worker.post("/v1/appeals", appeal_body("partners"))
    path = f"/v1/appeals/{appeal['id']}"
    net.C.worker.expect(404, "GET", path)
    assert net.B.auditor.post(f"{path}/relay", status=200) == {
        "appeal_id": appeal["id"],
        "newly_reached": 1,  # C (A had it)
    }
    assert net.B.worker.post(f"{path}/relay", status=200)["newly_reached"] == 0
    assert net.C.worker.post(f"{path}/relay", status=200)["newly_reached"] == 1  # D, hop 3
    assert net.D.worker.get(path)["id"] == appeal["id"]
    # D is three hops from A: its relay would make E the fourth; E is never reached.
    assert net.D.worker.post(f"{path}/relay", status=200)["newly_reached"] == 0
    net.E.worker.expect(404, "GET", path)
    assert appeal["id"] not in [x["id"] for x in net.E.worker.get("/v1/appeals")["items"]]


def test_the_author_sees_every_answer_a_responder_its_own(net: SimpleNamespace) -> None:
    appeal = net.C.worker.post("/v1/appeals", appeal_body("partners"))
    path = f"/v1/appeals/{appeal['id']}"
    from_b = net.B.worker.post(f"{path}/responses", {"answer": "can_help", "text": "Two donors"})
    from_d = net.D.auditor.post(f"{path}/responses", {"answer": "waitlist"})
    assert from_b["agency_id"] == net.B.id
    assert [r["id"] for r in net.C.auditor.get(path)["responses"]] == [from_b["id"], from_d["id"]]
    assert net.B.admin.get(path)["responses"] == [from_b]
    assert [r["id"] for r in net.D.worker.get(path)["responses"]] == [from_d["id"]]
    # The author does not answer its own appeal; an answer outside the vocabulary is 422.
    net.C.worker.post(f"{path}/responses", {"answer": "can_help"}, status=403)
    net.B.worker.post(f"{path}/responses", {"answer": "maybe"}, status=422)
    # Only the appealing agency's caseworkers and supervisors close it; then it is closed.
    net.B.worker.post(f"{path}/close", {"reason": "done"}, status=403)
    net.C.auditor.post(f"{path}/close", {"reason": "done"}, status=403)
    closed = net.C.worker.post(f"{path}/close", {"reason": "Enough donors"}, status=200)
    assert closed["status"] == "closed"
    net.B.worker.post(f"{path}/responses", {"answer": "can_help"}, status=409)
    net.B.worker.post(f"{path}/relay", status=409)
    assert appeal["id"] not in [
        x["id"] for x in net.B.worker.get("/v1/appeals?status=open")["items"]
    ]
    assert appeal["id"] in [x["id"] for x in net.B.worker.get("/v1/appeals?status=closed")["items"]]


def test_past_expires_at_an_appeal_is_closed_without_an_event(
    net: SimpleNamespace, app_server: Any
) -> None:
    appeal = net.B.worker.post("/v1/appeals", appeal_body("partners", expires_at=later(seconds=1)))
    path = f"/v1/appeals/{appeal['id']}"
    assert appeal["id"] in [x["id"] for x in net.A.worker.get("/v1/appeals?status=open")["items"]]
    stored = app_server.casenet.app.get(Appeal, UUID(appeal["id"]))
    deadline = datetime.fromisoformat(appeal["expires_at"])
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.05)
    assert net.A.worker.get(path)["status"] == "closed"
    assert appeal["id"] not in [
        x["id"] for x in net.A.worker.get("/v1/appeals?status=open")["items"]
    ]
    net.A.worker.post(f"{path}/responses", {"answer": "can_help"}, status=409)
    net.A.worker.post(f"{path}/relay", status=409)
    net.B.worker.post(f"{path}/close", {"reason": "late"}, status=409)
    assert app_server.casenet.app.get(Appeal, UUID(appeal["id"])).version == stored.version == 1


@pytest.mark.parametrize("field", ["case_id", "client_id", "caseId", "client", "colour"])
def test_a_field_an_appeal_does_not_have_is_422_naming_it(net: SimpleNamespace, field: str) -> None:
    body = appeal_body(**{field: str(uuid4())})
    answer = net.A.worker.expect(422, "POST", "/v1/appeals", json_body=body)
    errors = answer.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    if field != "colour":
        assert "client data" in errors[0]["message"]


def test_appeals_refuse_a_past_expiry_an_unknown_need_and_the_wrong_roles(
    net: SimpleNamespace,
) -> None:
    for change, field in (
        ({"expires_at": later(seconds=-5)}, "expires_at"),
        ({"need": "blood"}, "need"),
        ({"reach": "everyone"}, "reach"),
    ):
        answer = net.A.worker.expect(422, "POST", "/v1/appeals", json_body=appeal_body(**change))
        assert [e["field"] for e in answer.json()["errors"]] == [field]
    for role in ("admin", "auditor"):
        getattr(net.A, role).post("/v1/appeals", appeal_body(), status=403)
    net.A.worker.get("/v1/appeals?status=sometimes", status=422)


def test_feed_items_go_to_the_agencies_concerned_with_no_text(net: SimpleNamespace) -> None:
    heads = {
        name: max([0] + [i["position"] for i in feed(getattr(net, name).worker)]) for name in NAMES
    }

    def new(name: str) -> list[dict[str, Any]]:
        return [i for i in feed(getattr(net, name).worker) if i["position"] > heads[name]]

    asked = net.F.admin.post("/v1/partnerships", {"agency_id": net.E.id})
    net.E.admin.post(f"/v1/partnerships/{asked['id']}/accept", status=200)
    secret = f"canary-{uuid4().hex}"
    appeal = net.D.worker.post("/v1/appeals", appeal_body("partners", text=secret, title=secret))
    net.E.worker.post(f"/v1/appeals/{appeal['id']}/relay", status=200)  # F at hop 2
    answer = net.F.worker.post(
        f"/v1/appeals/{appeal['id']}/responses", {"answer": "can_help", "text": secret}
    )

    types = {name: [i["type"] for i in new(name)] for name in NAMES}
    assert types["F"] == [
        "partnership_requested",
        "partnership_accepted",
        "appeal_posted",
        "appeal_response",
    ]
    assert types["E"] == ["partnership_requested", "partnership_accepted", "appeal_posted"]
    assert types["D"] == ["appeal_posted", "appeal_response"]
    assert types["C"] == ["appeal_posted"]
    assert types["A"] == types["B"] == []
    posted_to_f = new("F")[2]
    assert posted_to_f["appeal_id"] == appeal["id"]
    assert (posted_to_f["hop"], posted_to_f["relayed_by_agency_id"]) == (2, net.E.id)
    assert posted_to_f["need"] == "health"
    response_item = new("D")[1]
    assert response_item == new("F")[3]
    assert response_item["response_id"] == answer["id"]
    assert (response_item["answer"], response_item["responder_agency_id"]) == ("can_help", net.F.id)
    assert new("F")[1]["status"] == "active"
    everything = repr([new(name) for name in NAMES])
    assert secret not in everything


def test_a_retried_post_writes_nothing_new_and_a_stale_if_match_is_412(
    net: SimpleNamespace,
) -> None:
    key = {"Idempotency-Key": f"appeal-{uuid4()}"}
    body = appeal_body("partners")
    first = net.E.worker.post("/v1/appeals", body, headers=key)
    assert net.E.worker.post("/v1/appeals", body, headers=key) == first
    mine = [x for x in net.E.worker.get("/v1/appeals")["items"] if x["title"] == body["title"]]
    assert [x["id"] for x in mine].count(first["id"]) == 1
    assert len([x for x in mine if x["expires_at"] == first["expires_at"]]) == 1
    path = f"/v1/appeals/{first['id']}/close"
    stale = {"If-Match": '"7"'}
    net.E.worker.post(path, {"reason": "r"}, status=412, headers=stale)
    current = {"If-Match": f'"{first["version"]}"'}
    assert net.E.worker.post(path, {"reason": "r"}, status=200, headers=current)["version"] == 2
