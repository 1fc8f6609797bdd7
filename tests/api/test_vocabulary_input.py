"""A word outside a closed vocabulary is a 422 that names the field and lists every
allowed word (not a 409, not a bare "invalid"), on every route that takes one, before
anything is recorded; the vocabulary's own words are accepted."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from tests.support.http import Api

from casenet.domain.agency import ROLES
from casenet.domain.consent import METHODS, PURPOSES
from casenet.domain.referral import OUTCOMES, URGENCIES
from casenet.domain.sections import NOTE_CATEGORIES, SECTIONS
from casenet.domain.vocabulary import NEEDS


@pytest.fixture(scope="module")
def net(operator: Api) -> SimpleNamespace:
    ngo = operator.agency("Vocabulary NGO")
    clinic = operator.agency("Vocabulary Clinic", services=[{"type": "health", "description": "d"}])
    ana = operator.worker(ngo, "caseworker")
    hal = operator.worker(clinic, "caseworker")
    case = ana.post("/v1/cases", {"client": {"name": "V"}, "summary": "s", "needs": ["food"]})
    referral = ana.post(
        "/v1/referrals",
        {
            "case_id": case["id"],
            "to_agency_id": clinic["id"],
            "service_type": "health",
            "reason": "r",
            "urgency": "routine",
        },
    )
    hal.post(f"/v1/referrals/{referral['id']}/accept", status=200)
    hal.post(f"/v1/referrals/{referral['id']}/start", status=200)
    return SimpleNamespace(
        operator=operator, ngo=ngo, clinic=clinic, ana=ana, hal=hal, case=case, referral=referral
    )


def bodies(net: SimpleNamespace) -> list[tuple[Api, str, str, dict[str, Any], str, Any]]:
    """(caller, method, path, body with ``banana`` in one field, the field, its words)."""
    case, clinic = net.case["id"], net.clinic["id"]
    consent = {"grantee_agency_id": clinic, "sections": ["identity"], "purpose": "referral"}
    consent["method"] = "written"
    referral = {"case_id": case, "to_agency_id": clinic, "service_type": "health"}
    referral |= {"reason": "r", "urgency": "routine"}
    service = {"type": "health", "description": "d"}
    return [
        (
            net.ana,
            "POST",
            "/v1/cases",
            {"client": {"name": "V"}, "summary": "s", "needs": ["banana"]},
            "needs",
            NEEDS,
        ),
        (
            net.operator,
            "POST",
            "/v1/agencies",
            {"name": "n", "kind": "ngo", "services": [service | {"type": "banana"}]},
            "services.type",
            NEEDS,
        ),
        (
            net.ana,
            "POST",
            "/v1/referrals",
            referral | {"service_type": "banana"},
            "service_type",
            NEEDS,
        ),
        (net.ana, "POST", "/v1/referrals", referral | {"urgency": "banana"}, "urgency", URGENCIES),
        (
            net.operator,
            "POST",
            f"/v1/agencies/{net.ngo['id']}/workers",
            {"name": "n", "role": "banana"},
            "role",
            ROLES,
        ),
        (
            net.ana,
            "POST",
            f"/v1/cases/{case}/notes",
            {"text": "t", "category": "banana"},
            "category",
            NOTE_CATEGORIES,
        ),
        (
            net.ana,
            "POST",
            f"/v1/cases/{case}/consents",
            consent | {"sections": ["banana"]},
            "sections",
            SECTIONS,
        ),
        (
            net.ana,
            "POST",
            f"/v1/cases/{case}/consents",
            consent | {"purpose": "banana"},
            "purpose",
            PURPOSES,
        ),
        (
            net.ana,
            "POST",
            f"/v1/cases/{case}/consents",
            consent | {"method": "banana"},
            "method",
            METHODS,
        ),
        (
            net.hal,
            "POST",
            f"/v1/referrals/{net.referral['id']}/complete",
            {"outcome": "banana"},
            "outcome",
            OUTCOMES,
        ),
    ]


def test_a_word_outside_a_vocabulary_is_422_listing_the_words(net: SimpleNamespace) -> None:
    for caller, method, path, body, field, words in bodies(net):
        answer = caller.request(method, path, json_body=body)
        assert answer.status_code == 422, (path, field, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        [error] = answer.json()["errors"]
        assert error["field"] == field, (path, error)
        assert all(word in error["message"] for word in words), (path, error)
    # Nothing was recorded: the referral is still in progress, the case has no note.
    assert net.hal.get(f"/v1/referrals/{net.referral['id']}")["status"] == "in_progress"
    assert net.ana.get(f"/v1/cases/{net.case['id']}")["notes"] == []


def test_the_needs_vocabulary_is_accepted_whole(net: SimpleNamespace) -> None:
    case = net.ana.post(
        "/v1/cases", {"client": {"name": "V"}, "summary": "s", "needs": list(NEEDS)}
    )
    assert case["needs"] == list(NEEDS)


@pytest.mark.parametrize("query", ["/v1/referrals?direction=banana", "/v1/cases?status=banana"])
def test_a_query_word_outside_its_vocabulary_is_422_listing_the_words(
    net: SimpleNamespace, query: str
) -> None:
    answer = net.ana.request("GET", query)
    assert answer.status_code == 422
    message = answer.json()["errors"][0]["message"]
    assert ("incoming" in message and "outgoing" in message) or (
        "open" in message and "closed" in message
    )
