"""``GET /v1/network/metrics`` over HTTP, on SQLite and PostgreSQL: every worker may
read it; another agency's small cells are JSON ``null`` with ``suppressed: true``, the
caller's own are whole; a period or service type that cannot be is a 422 naming the
field, never a stack trace."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def net(operator: Any) -> dict[str, Any]:
    """An NGO that referred three clients to a hospital, which accepted two."""
    ngo, hospital = operator.agency("Metrics NGO"), operator.agency("Metrics Hospital", "hospital")
    ana = operator.worker(ngo, "caseworker")
    hal = operator.worker(hospital, "caseworker")
    case = ana.post("/v1/cases", {"client": {"name": "Rosa"}, "summary": "s"})
    body = {"case_id": case["id"], "to_agency_id": hospital["id"], "reason": "r"}
    body |= {"service_type": "disability", "urgency": "routine"}
    referrals = [ana.post("/v1/referrals", body) for _ in range(3)]
    for referral in referrals[:2]:
        hal.post(f"/v1/referrals/{referral['id']}/accept", status=200)
    auditor = operator.worker(ngo, "auditor")
    return {"ngo": ana, "hospital": hal, "auditor": auditor, "hospital_id": hospital["id"]}


def cell(answer: dict[str, Any], agency_id: str) -> dict[str, Any]:
    (found,) = [
        i
        for i in answer["items"]
        if i["agency_id"] == agency_id and i["service_type"] == "disability"
    ]
    return found


@pytest.mark.parametrize("who", ["ngo", "auditor"])
def test_another_agencys_small_cells_are_null_and_say_so(net: dict[str, Any], who: str) -> None:
    answer = net[who].get("/v1/network/metrics?service_type=disability")
    figures = cell(answer, net["hospital_id"])
    assert figures["suppressed"] is True
    withheld = ("received", "accepted", "rejected", "completed", "got_help", "overdue")
    assert {name: figures[name] for name in withheld} == dict.fromkeys(withheld)
    assert figures["median_hours_to_accept"] is None
    assert answer["service_type"] == "disability"


def test_the_caller_sees_its_own_agency_whole(net: dict[str, Any]) -> None:
    figures = cell(net["hospital"].get("/v1/network/metrics"), net["hospital_id"])
    assert (figures["received"], figures["accepted"], figures["rejected"]) == (3, 2, 0)
    assert figures["overdue"] == 0
    assert figures["suppressed"] is False
    assert figures["median_hours_to_accept"] is not None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("from=2026-02-01T00:00:00", "from"),
        ("service_type=haircuts", "service_type"),
    ],
)
def test_a_period_or_service_that_cannot_be_is_422_naming_the_field(
    net: dict[str, Any], query: str, field: str
) -> None:
    answer = net["ngo"].expect(422, "GET", f"/v1/network/metrics?{query}")
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in answer.json()["errors"]] == [field]
