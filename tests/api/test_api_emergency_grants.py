"""Emergency grants over HTTP (API.md "Emergency grants", DESIGN.md rule 2b), on each store.

The story: a school's worker sees signs of abuse and opens an emergency grant to the
child-protection agency under ``safeguarding`` for 24 hours; the agency reads the case
(only the granted sections); another supervisor of the school reviews it ``justified``;
the accounting of disclosures and ``access?at=`` show the read on its basis; after the
revocation the agency meets the same 404 as for a random id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from tests.api.conftest import AppServer
from tests.support.http import Api, Probe

from casenet.domain.case import Case
from casenet.domain.emergency import EmergencyGrant

GRANT = {
    "sections": ["identity", "summary", "notes.family"],
    "basis": "safeguarding",
    "justification": "Bruises on Lena's arms; she is afraid to go home.",
    "minutes": 1440,
}


@pytest.fixture(scope="module")
def school(operator: Api) -> SimpleNamespace:
    """A school (a caseworker, two supervisors, an auditor), a child-protection agency,
    and an unrelated clinic; a case of the school with a family and a health note."""
    school = operator.agency("Northside Primary School", "school")
    protection = operator.agency("Child Protection Service", "child_protection")
    clinic = operator.agency("Eastside Clinic", "clinic")
    teacher = operator.worker(school, "caseworker")
    head = operator.worker(school, "supervisor")
    deputy = operator.worker(school, "supervisor")
    case = teacher.post(
        "/v1/cases",
        {
            "client": {"name": "Lena Novak", "date_of_birth": "2016-05-04", "phone": "0555"},
            "summary": "Withdrawn in class, bruises.",
            "needs": ["safety"],
        },
    )
    teacher.post(f"/v1/cases/{case['id']}/notes", {"text": "Lives with mum.", "category": "family"})
    teacher.post(f"/v1/cases/{case['id']}/notes", {"text": "Asthma.", "category": "health"})
    return SimpleNamespace(
        school=school,
        teacher=teacher,
        head=head,
        deputy=deputy,
        auditor=operator.worker(school, "auditor"),
        protection=protection,
        social_worker=operator.worker(protection, "caseworker"),
        clinic=operator.worker(clinic, "supervisor"),
        case=case,
    )


def open_grant(w: SimpleNamespace, by: Api | None = None, **changes: Any) -> dict[str, Any]:
    body = {"grantee_agency_id": w.protection["id"], **GRANT, **changes}
    grant: dict[str, Any] = (by or w.teacher).post(
        f"/v1/cases/{w.case['id']}/emergency-grants", body
    )
    return grant


def test_the_safeguarding_story(school: SimpleNamespace) -> None:
    w = school
    case_id = w.case["id"]
    w.social_worker.expect(404, "GET", f"/v1/cases/{case_id}")

    grant = open_grant(w)
    created = datetime.fromisoformat(grant["created_at"])
    assert grant["status"] == "active"
    assert grant["basis"] == "safeguarding"
    assert grant["created_by"] == w.teacher.worker_id
    assert datetime.fromisoformat(grant["expires_at"]) - created == timedelta(minutes=1440)
    assert datetime.fromisoformat(grant["review_due_at"]) - created == timedelta(hours=72)
    assert "review" not in grant

    seen = w.social_worker.get(f"/v1/cases/{case_id}")
    assert seen["sections"] == GRANT["sections"]
    assert seen["shared_under_emergency"] == [grant["id"]]
    assert seen["shared_under"] == []
    assert seen["client"] == {"name": "Lena Novak", "date_of_birth": "2016-05-04"}
    assert [n["text"] for n in seen["notes"]] == ["Lives with mum."]  # not the health note
    assert "needs" not in seen
    shared = w.social_worker.get("/v1/shared-cases")["items"]
    assert [(s["case_id"], s["shared_under_emergency"]) for s in shared] == [
        (case_id, [grant["id"]])
    ]
    owner_view = w.teacher.get(f"/v1/cases/{case_id}")
    assert "shared_under_emergency" not in owner_view

    # The creator may not review it; another supervisor does, once.
    w.teacher.expect(
        403,
        "POST",
        f"/v1/emergency-grants/{grant['id']}/review",
        json_body={"finding": "justified", "note": "n"},
    )
    reviewed = w.deputy.post(
        f"/v1/emergency-grants/{grant['id']}/review",
        {"finding": "justified", "note": "Clear signs; sharing was right."},
        status=200,
    )
    assert reviewed["review"]["finding"] == "justified"
    assert reviewed["review"]["reviewer_worker_id"] == w.deputy.worker_id
    assert reviewed["version"] == 2
    w.head.expect(
        409,
        "POST",
        f"/v1/emergency-grants/{grant['id']}/review",
        json_body={"finding": "unjustified", "note": "No."},
    )

    disclosures = w.head.get(f"/v1/disclosures?case_id={case_id}")["items"]
    assert len(disclosures) == 1
    (read,) = disclosures
    assert read["basis"] == "safeguarding"
    assert read["emergency_grant_ids"] == [grant["id"]]
    assert read["recipient_agency_id"] == w.protection["id"]
    assert read["worker_id"] == w.social_worker.worker_id
    assert read["sections"] == GRANT["sections"]

    access = w.auditor.get(f"/v1/cases/{case_id}/access")["grants"]
    assert [(g["agency_id"], g["basis"]) for g in access] == [
        (w.school["id"], "owner"),
        (w.protection["id"], "emergency"),
    ]
    assert access[1]["emergency_grant_ids"] == [grant["id"]]
    assert access[1]["legal_bases"] == ["safeguarding"]
    before = (created - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    then = w.auditor.get(f"/v1/cases/{case_id}/access?at={before}")["grants"]
    assert [g["basis"] for g in then] == ["owner"]

    revoked = w.teacher.post(
        f"/v1/emergency-grants/{grant['id']}/revoke", {"reason": "Police took over."}, status=200
    )
    assert revoked["status"] == "revoked"
    w.teacher.expect(
        409, "POST", f"/v1/emergency-grants/{grant['id']}/revoke", json_body={"reason": "again"}
    )
    gone = w.social_worker.expect(404, "GET", f"/v1/cases/{case_id}")
    assert gone.content == w.social_worker.expect(404, "GET", f"/v1/cases/{uuid4()}").content
    assert w.social_worker.get("/v1/shared-cases")["items"] == []
    listed = w.teacher.get(f"/v1/cases/{case_id}/emergency-grants")["items"]
    assert [(g["id"], g["status"], g["review"]["finding"]) for g in listed] == [
        (grant["id"], "revoked", "justified")
    ]


def test_the_review_lists_pending_and_overdue(
    school: SimpleNamespace, app_server: AppServer
) -> None:
    w = school
    fresh = open_grant(w, minutes=30)
    # A grant created four days ago (its review 24 hours overdue), as the log would hold it.
    casenet = app_server.casenet
    case = casenet.app.get(Case, UUID(w.case["id"]))
    old = EmergencyGrant.create(
        case_id=case.id,
        client_id=case.client_id,
        owner_agency_id=case.owner_agency_id,
        recording_agency_id=case.owner_agency_id,
        grantee_agency_id=UUID(w.protection["id"]),
        sections=["summary"],
        basis="vital_interests",
        justification="She said she would hurt herself.",
        minutes=60,
        worker_id=UUID(w.teacher.worker_id),
        now=datetime.now(UTC) - timedelta(days=4),
    )
    casenet.app.save(old)

    pending = [g["id"] for g in w.auditor.walk("/v1/emergency-grants?review=pending")]
    overdue = [g["id"] for g in w.head.walk("/v1/emergency-grants?review=overdue")]
    assert str(old.id) in pending
    assert fresh["id"] in pending
    assert overdue == [str(old.id)]
    assert w.head.get(f"/v1/emergency-grants/{old.id}")["status"] == "expired"
    w.teacher.expect(
        409, "POST", f"/v1/emergency-grants/{old.id}/revoke", json_body={"reason": "late"}
    )
    # An expired grant discloses nothing, and is still reviewed (after the fact).
    w.deputy.post(
        f"/v1/emergency-grants/{old.id}/review",
        {"finding": "unjustified", "note": "Should have called the GP."},
        status=200,
    )
    assert [g["id"] for g in w.head.walk("/v1/emergency-grants?review=overdue")] == []
    w.teacher.expect(403, "GET", "/v1/emergency-grants?review=pending")
    w.teacher.post(f"/v1/emergency-grants/{fresh['id']}/revoke", {"reason": "done"}, status=200)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"basis": "hunch"}, "basis", "vital_interests, safeguarding, court_order"),
        ({"basis": "Safeguarding"}, "basis", "legal_obligation"),
        ({"minutes": 0}, "minutes", "between 1 and 4320"),
        ({"minutes": 4321}, "minutes", "between 1 and 4320"),
        ({"sections": ["identity", "diary"]}, "sections", "must be one of"),
        ({"justification": " "}, "justification", "blank"),
    ],
)
def test_an_invalid_grant_is_a_422_naming_the_field(
    school: SimpleNamespace, change: dict[str, Any], field: str, words: str
) -> None:
    body = {"grantee_agency_id": school.protection["id"], **GRANT, **change}
    answer = school.teacher.expect(
        422, "POST", f"/v1/cases/{school.case['id']}/emergency-grants", json_body=body
    )
    assert answer.headers["content-type"].startswith("application/problem+json")
    (error,) = answer.json()["errors"]
    assert error["field"] == field
    assert words in error["message"]
    assert "Lena" not in answer.text


def test_an_invalid_review_or_filter_is_a_422(school: SimpleNamespace) -> None:
    grant = open_grant(school, minutes=5)
    answer = school.head.expect(
        422,
        "POST",
        f"/v1/emergency-grants/{grant['id']}/review",
        json_body={"finding": "fine", "note": "ok"},
    )
    assert answer.json()["errors"] == [
        {"field": "finding", "message": "must be one of justified, unjustified"}
    ]
    answer = school.head.expect(422, "GET", "/v1/emergency-grants?review=later")
    assert answer.json()["errors"][0]["field"] == "review"
    school.teacher.post(f"/v1/emergency-grants/{grant['id']}/revoke", {"reason": "x"}, status=200)


def test_a_retried_create_with_the_same_key_creates_one_grant(school: SimpleNamespace) -> None:
    key = {"Idempotency-Key": f"emergency-{uuid4()}"}
    path = f"/v1/cases/{school.case['id']}/emergency-grants"
    body = {"grantee_agency_id": school.protection["id"], **GRANT, "minutes": 10}
    first = school.teacher.expect(201, "POST", path, json_body=body, headers=key)
    again = school.teacher.expect(201, "POST", path, json_body=body, headers=key)
    assert again.content == first.content
    other = school.teacher.request("POST", path, json_body={**body, "minutes": 11}, headers=key)
    assert other.status_code == 409
    ids = [g["id"] for g in school.teacher.get(path)["items"]]
    assert ids.count(first.json()["id"]) == 1
    grant_id = first.json()["id"]
    etag = first.headers["etag"]
    school.teacher.expect(
        412,
        "POST",
        f"/v1/emergency-grants/{grant_id}/revoke",
        json_body={"reason": "x"},
        headers={"If-Match": '"9"'},
    )
    school.teacher.expect(
        200,
        "POST",
        f"/v1/emergency-grants/{grant_id}/revoke",
        json_body={"reason": "x"},
        headers={"If-Match": etag},
    )


def test_no_agency_but_the_owner_can_tell_a_grant_exists(school: SimpleNamespace) -> None:
    """The active grantee, an unrelated agency: every grant route answers as for random ids."""
    w = school
    grant = open_grant(w, minutes=15)
    assert w.social_worker.get(f"/v1/cases/{w.case['id']}")["shared_under_emergency"]
    probe = Probe()
    review = {"finding": "justified", "note": "n"}
    for caller in (w.social_worker, w.clinic):
        create = {**GRANT, "grantee_agency_id": caller.agency_id}
        for method, template, body in (
            ("GET", "/v1/cases/{}/emergency-grants", None),
            ("POST", "/v1/cases/{}/emergency-grants", create),
            ("GET", "/v1/emergency-grants/{}", None),
            ("POST", "/v1/emergency-grants/{}/revoke", {"reason": "r"}),
            ("POST", "/v1/emergency-grants/{}/review", review),
        ):
            real_id = w.case["id"] if "cases" in template else grant["id"]
            real = caller.request(method, template.format(real_id), json_body=body)
            random = caller.request(method, template.format(uuid4()), json_body=body)
            assert real.status_code == 404, (caller, template, real.text)
            probe.same(f"{caller!r} {method} {template}", real, random)
    # The clinic's supervisor lists its own agency's grants awaiting review: none of these.
    assert w.clinic.get("/v1/emergency-grants?review=pending")["items"] == []
    probe.check()
    w.teacher.post(f"/v1/emergency-grants/{grant['id']}/revoke", {"reason": "x"}, status=200)


def test_a_restricted_owner_never_discloses_identity_under_an_emergency_grant(
    operator: Api, school: SimpleNamespace
) -> None:
    shelter = operator.agency("Safe House", "dv_shelter", restricted=True)
    advocate = operator.worker(shelter, "caseworker")
    case = advocate.post(
        "/v1/cases",
        {"client": {"name": "Ana Ruiz", "phone": "0777"}, "summary": "Fled.", "needs": ["housing"]},
    )
    advocate.post(
        f"/v1/cases/{case['id']}/emergency-grants",
        {
            "grantee_agency_id": school.protection["id"],
            "sections": ["identity", "contact", "summary"],
            "basis": "vital_interests",
            "justification": "Threat to life.",
            "minutes": 60,
        },
    )
    seen = school.social_worker.get(f"/v1/cases/{case['id']}")
    assert seen["sections"] == ["summary"]
    assert "client" not in seen
    assert "Ana" not in str(seen)
