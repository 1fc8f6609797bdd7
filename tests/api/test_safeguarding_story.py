"""The safeguarding story of issue 18, told once and checked everywhere it is told, on
SQLite and on PostgreSQL.

A school's teacher sees signs of abuse on a child and opens an emergency grant to the
child-protection agency under ``safeguarding`` for 24 hours (1440 minutes); the
agency's social worker reads the case (exactly the granted sections); the school's
deputy head, another supervisor than the one who opened it, reviews it ``justified``.
Two days before, the school had shared the case with the family court's welfare
office under a court order for an hour: that grant has expired.

Then every place that tells the story must tell the same one, compared with each other
rather than with constants: the case the agency read, the accounting of disclosures,
the audit bundle (exported over HTTP, verified by the code ``casenet audit verify``
runs, its records read, and point-in-time access recomputed from it alone), the
client's subject-access copy (JSON and the page), ``access?at=``, and both agencies'
feeds: same grant id, basis, sections, agency and times. The court, whose grant
expired, meets the 404 of a random id on every route. Last, the client is erased:
``client_erased`` reaches exactly the school, the agency and the court, at the instant
the copy and the bundle give for the erasure.
"""

from __future__ import annotations

import tarfile
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest
from tests.api.conftest import AppServer
from tests.api.test_api_authorization_matrix import expired_emergency_grant
from tests.api.test_consent_receipt_page import BROWSER, visible_text
from tests.support.http import Api, Probe, Route

from casenet.application.audit import access_from_bundle, public_key, verify_bundle
from casenet.domain.wording import FINDING_WORDS, LEGAL_BASIS_WORDS, listed, reader_time
from casenet.infrastructure.audit_bundle import read_records
from casenet.infrastructure.audit_report import write_report

GRANT = {
    "sections": ["identity", "summary", "notes.family"],
    "basis": "safeguarding",
    "justification": "Bruises on both arms; Mia says she is afraid to go home.",
    "minutes": 1440,
}


def instant(text: str) -> datetime:
    """An instant of any of the API's, the bundle's or the feed's texts."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def story(app_server: AppServer, operator: Api) -> SimpleNamespace:
    """The story up to the review (the erasure is the last test's)."""
    school = operator.agency("Riverside Primary School", "school")
    protection = operator.agency("County Child Protection", "child_protection")
    court = operator.agency("Family Court welfare office", "court")
    clinic = operator.agency("Harbour Clinic", "clinic")  # never had anything
    teacher = operator.worker(school, "caseworker", "Tom Teacher")
    case = teacher.post(
        "/v1/cases",
        {
            "client": {"name": "Mia Kowalski", "date_of_birth": "2015-03-02", "phone": "0777"},
            "summary": "Quiet in class for weeks; bruises seen today.",
            "needs": ["safety"],
        },
    )
    for text, category in (("Lives with mum and her partner.", "family"), ("Asthma.", "health")):
        teacher.post(f"/v1/cases/{case['id']}/notes", {"text": text, "category": category})
    court_grant = expired_emergency_grant(app_server, case["id"], court["id"])
    w = SimpleNamespace(
        school=school,
        protection=protection,
        court=court,
        clinic=clinic,
        teacher=teacher,
        head=operator.worker(school, "supervisor", "Hana Head"),
        deputy=operator.worker(school, "supervisor", "Dev Deputy"),
        admin=operator.worker(school, "admin"),
        auditor=operator.worker(school, "auditor"),
        social_worker=operator.worker(protection, "caseworker", "Sam Social"),
        court_clerk=operator.worker(court, "caseworker"),
        court_head=operator.worker(court, "supervisor"),
        clinic_nurse=operator.worker(clinic, "caseworker"),
        case=case,
        court_grant=court_grant,
    )
    w.start = {name: feed_head(api) for name, api in feeds(w).items()}
    w.grant = teacher.post(
        f"/v1/cases/{case['id']}/emergency-grants",
        {"grantee_agency_id": protection["id"], **GRANT},
    )
    w.seen = w.social_worker.get(f"/v1/cases/{case['id']}")
    w.reviewed = w.deputy.post(
        f"/v1/emergency-grants/{w.grant['id']}/review",
        {"finding": "justified", "note": "Clear signs of harm; sharing at once was right."},
        status=200,
    )
    [w.read] = w.head.get(f"/v1/disclosures?case_id={case['id']}")["items"]
    return w


def feeds(w: SimpleNamespace) -> dict[str, Api]:
    return {
        "school": w.head,
        "protection": w.social_worker,
        "court": w.court_clerk,
        "clinic": w.clinic_nurse,
    }


def feed_head(api: Api) -> int:
    items = api.get("/v1/feed?limit=500")["items"]
    return int(items[-1]["position"]) if items else 0


def feed_since(api: Api, position: int) -> list[dict[str, Any]]:
    return [i for i in api.get("/v1/feed?limit=500")["items"] if i["position"] > position]


def subject_access(w: SimpleNamespace, accept: str = "application/json") -> Any:
    return w.head.expect(
        200,
        "GET",
        f"/v1/clients/{w.case['client_id']}/subject-access",
        headers={"Accept": accept},
    )


def exported_bundle(w: SimpleNamespace, app_server: AppServer, folder: Path) -> Path:
    """The case's bundle as the school's auditor downloads it, verified as ``casenet
    audit verify`` verifies it, then unpacked to be read."""
    answer = w.auditor.expect(200, "GET", f"/v1/audit/export?case_id={w.case['id']}")
    folder.mkdir(parents=True)
    archive = folder / "bundle.tar"
    archive.write_bytes(answer.content)
    verified = verify_bundle(archive, public_key(app_server.settings.signing_key))
    assert verified.records > 0
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder / "casenet-audit"


def records(bundle: Path, name: str, **match: str) -> list[dict[str, Any]]:
    return [
        r
        for r in read_records(bundle, name)
        if all(r.get(key) == value for key, value in match.items())
    ]


# --- the story as each place tells it -------------------------------------------------


def test_the_agency_reads_exactly_the_granted_sections(story: SimpleNamespace) -> None:
    w, grant, seen = story, story.grant, story.seen
    assert (grant["status"], grant["basis"], grant["sections"]) == (
        "active",
        GRANT["basis"],
        GRANT["sections"],
    )
    created = instant(grant["created_at"])
    assert instant(grant["expires_at"]) - created == timedelta(minutes=grant["minutes"])
    assert seen["sections"] == grant["sections"]
    assert seen["shared_under_emergency"] == [grant["id"]]
    assert seen["shared_under"] == []
    assert set(seen["client"]) == {"name", "date_of_birth"}  # identity, not contact
    assert [n["category"] for n in seen["notes"]] == ["family"]  # not the health note
    assert "needs" not in seen
    # The court's grant expired two days ago: it gave nothing to read.
    assert w.court_clerk.request("GET", f"/v1/cases/{w.case['id']}").status_code == 404


def test_the_review_is_the_deputys_and_only_one(story: SimpleNamespace) -> None:
    w, review = story, story.reviewed["review"]
    assert (story.reviewed["id"], review["finding"]) == (w.grant["id"], "justified")
    assert review["reviewer_worker_id"] == w.deputy.worker_id != w.grant["created_by"]
    assert instant(review["reviewed_at"]) > instant(w.read["at"]) > instant(w.grant["created_at"])
    w.head.expect(
        409,
        "POST",
        f"/v1/emergency-grants/{w.grant['id']}/review",
        json_body={"finding": "unjustified", "note": "A second opinion."},
    )
    listed = w.head.get(f"/v1/cases/{w.case['id']}/emergency-grants")["items"]
    mine = [g for g in listed if g["id"] == w.grant["id"]]
    assert mine == [w.reviewed]


def test_the_accounting_of_disclosures_names_the_grant_and_its_basis(
    story: SimpleNamespace,
) -> None:
    w, read, grant = story, story.read, story.grant
    assert read["case_id"] == w.case["id"]
    assert read["recipient_agency_id"] == grant["grantee_agency_id"] == w.protection["id"]
    assert read["worker_id"] == w.social_worker.worker_id
    assert read["sections"] == grant["sections"] == w.seen["sections"]
    assert (read["basis"], read["legal_bases"]) == (grant["basis"], [grant["basis"]])
    assert read["emergency_grant_ids"] == [grant["id"]]
    assert read["consent_ids"] == []
    assert instant(grant["created_at"]) < instant(read["at"]) < instant(grant["expires_at"])


def test_access_at_any_instant_tells_who_could_see_and_why(story: SimpleNamespace) -> None:
    w, grant, read = story, story.grant, story.read
    path = f"/v1/cases/{w.case['id']}/access"

    def at(moment: datetime | str) -> dict[str, dict[str, Any]]:
        text = moment if isinstance(moment, str) else iso(moment)
        grants = w.auditor.get(path, params={"at": text})["grants"]
        return {g["agency_id"]: g for g in grants if g["agency_id"] != w.school["id"]}

    created, expires = instant(grant["created_at"]), instant(grant["expires_at"])
    assert at(created - timedelta(microseconds=1)) == {}
    during = at(read["at"])
    assert list(during) == [read["recipient_agency_id"]]
    shown = during[w.protection["id"]]
    assert (shown["basis"], shown["sections"]) == ("emergency", read["sections"])
    assert shown["emergency_grant_ids"] == read["emergency_grant_ids"]
    assert shown["legal_bases"] == read["legal_bases"]
    assert at(expires - timedelta(microseconds=1)) == during
    assert at(expires) == {}
    # The court's grant, an hour two days ago: shown then, gone now.
    court = w.head.get(f"/v1/emergency-grants/{w.court_grant}")
    then = at(instant(court["created_at"]) + timedelta(minutes=30))
    assert list(then) == [w.court["id"]]
    assert then[w.court["id"]]["emergency_grant_ids"] == [w.court_grant]
    assert then[w.court["id"]]["legal_bases"] == ["court_order"]
    assert court["status"] == "expired"


def test_the_audit_bundle_verifies_and_tells_the_same_story(
    story: SimpleNamespace, app_server: AppServer, tmp_path: Path
) -> None:
    w, grant, reviewed, read = story, story.grant, story.reviewed, story.read
    bundle = exported_bundle(w, app_server, tmp_path / "export")
    [opened] = records(
        bundle, "consents.jsonl", emergency_grant_id=grant["id"], type="EmergencyGrantCreated"
    )
    assert opened["case_id"] == grant["case_id"]
    assert opened["grantee_agency_id"] == grant["grantee_agency_id"]
    assert (opened["basis"], opened["sections"]) == (grant["basis"], grant["sections"])
    assert opened["minutes"] == grant["minutes"]
    assert opened["worker_id"] == grant["created_by"]
    for field, recorded in (
        ("created_at", opened["at"]),
        ("expires_at", opened["expires_at"]),
        ("review_due_at", opened["review_due_at"]),
    ):
        assert instant(recorded) == instant(grant[field]), field
    [review] = records(
        bundle, "consents.jsonl", emergency_grant_id=grant["id"], type="EmergencyGrantReviewed"
    )
    assert review["finding"] == reviewed["review"]["finding"]
    assert review["worker_id"] == reviewed["review"]["reviewer_worker_id"]
    assert instant(review["at"]) == instant(reviewed["review"]["reviewed_at"])
    assert (
        records(
            bundle, "consents.jsonl", emergency_grant_id=grant["id"], type="EmergencyGrantRevoked"
        )
        == []
    )
    [disclosure] = records(bundle, "disclosures.jsonl")
    assert disclosure["disclosure_id"] == read["id"]
    assert instant(disclosure["at"]) == instant(read["at"])
    for field in ("case_id", "recipient_agency_id", "worker_id", "sections"):
        assert disclosure[field] == read[field], field
    assert disclosure["emergency_grant_ids"] == read["emergency_grant_ids"]
    assert disclosure["legal_bases"] == read["legal_bases"]
    assert [
        r["type"] for r in records(bundle, "consents.jsonl", emergency_grant_id=story.court_grant)
    ] == ["EmergencyGrantCreated"]
    # Access computed from the bundle alone equals the server's, at the read.
    from_bundle = access_from_bundle(bundle, UUID(w.case["id"]), instant(read["at"]))
    served = w.auditor.get(f"/v1/cases/{w.case['id']}/access", params={"at": read["at"]})
    assert [
        (
            str(g.agency_id),
            g.basis,
            list(g.sections),
            [str(i) for i in g.emergency_ids],
            list(g.legal_bases),
        )
        for g in from_bundle
    ] == [
        (
            g["agency_id"],
            g["basis"],
            g["sections"],
            g.get("emergency_grant_ids", []),
            g.get("legal_bases", []),
        )
        for g in served["grants"]
    ]


def test_the_clients_copy_tells_them_the_same_story(story: SimpleNamespace) -> None:
    w, grant, reviewed, read = story, story.grant, story.reviewed, story.read
    copy = subject_access(w).json()
    told = {g["id"]: g for g in copy["emergency_grants"]}
    assert set(told) == {grant["id"], w.court_grant}
    mine = told[grant["id"]]
    assert mine["case_id"] == grant["case_id"]
    assert mine["agency"] == {"id": w.protection["id"], "name": w.protection["name"]}
    assert (mine["basis"], mine["sections"]) == (grant["basis"], grant["sections"])
    assert mine["basis_description"] == LEGAL_BASIS_WORDS[grant["basis"]]
    assert mine["justification"] == grant["justification"]
    assert mine["status"] == "active"
    for field in ("created_at", "expires_at"):
        assert instant(mine[field]) == instant(grant[field]), field
    assert mine["revoked_at"] is None
    assert mine["review"]["finding"] == reviewed["review"]["finding"]
    assert mine["review"]["note"] == reviewed["review"]["note"]
    assert instant(mine["review"]["reviewed_at"]) == instant(reviewed["review"]["reviewed_at"])
    assert told[w.court_grant]["status"] == "expired"
    [saw] = copy["disclosures"]
    assert instant(saw["at"]) == instant(read["at"])
    assert saw["case_id"] == read["case_id"]
    assert saw["agency"]["id"] == read["recipient_agency_id"]
    assert (saw["basis"], saw["sections"]) == (read["basis"], read["sections"])
    assert saw["emergency_grant_ids"] == read["emergency_grant_ids"] == [mine["id"]]
    assert saw["consent_ids"] == read["consent_ids"] == []
    assert saw["section_descriptions"] == mine["section_descriptions"]

    page = " ".join(visible_text(subject_access(w, BROWSER).text).split())
    # "name and date of birth, summary of the situation and notes on family"
    shares = listed(mine["section_descriptions"])
    assert shares.endswith(f" and {mine['section_descriptions'][-1]}")
    assert (
        f"From {reader_time(mine['created_at'])} until {reader_time(mine['expires_at'])}, "
        f"{w.protection['name']} could see your {shares}, {LEGAL_BASIS_WORDS[grant['basis']]}."
    ) in page
    assert (
        f"Reviewed on {reader_time(mine['review']['reviewed_at'])}: "
        f"{FINDING_WORDS[mine['review']['finding']]}."
    ) in page
    assert (
        f"{reader_time(saw['at'])}: {w.protection['name']} saw your {shares}, without your "
        f"consent, {LEGAL_BASIS_WORDS[read['basis']]}."
    ) in page


def test_the_feeds_tell_the_school_and_the_agency_and_no_one_else(
    story: SimpleNamespace,
) -> None:
    w, grant, reviewed = story, story.grant, story.reviewed
    got = {name: feed_since(api, w.start[name]) for name, api in feeds(w).items()}
    school = [i for i in got["school"] if i.get("emergency_grant_id") == grant["id"]]
    assert [(i["type"], i["status"]) for i in school] == [
        ("emergency_grant", "active"),
        ("emergency_grant", "reviewed"),
    ]
    told, review = school
    assert (told["case_id"], told["basis"], told["sections"]) == (
        grant["case_id"],
        grant["basis"],
        grant["sections"],
    )
    assert (told["owner_agency_id"], told["grantee_agency_id"]) == (
        w.school["id"],
        grant["grantee_agency_id"],
    )
    for field in ("expires_at", "review_due_at"):
        assert instant(told[field]) == instant(grant[field]), field
    assert instant(told["at"]) == instant(grant["created_at"])
    assert review["finding"] == reviewed["review"]["finding"]
    assert instant(review["at"]) == instant(reviewed["review"]["reviewed_at"])
    # The agency hears that it may read; the review is the school's own business.
    assert got["protection"] == [told]
    assert got["court"] == got["clinic"] == []


def test_an_expired_emergency_grantee_meets_the_404_of_a_random_id(
    story: SimpleNamespace, id_routes: list[Route], probe: Probe
) -> None:
    w = story
    ids = {
        "case_id": w.case["id"],
        "client_id": w.case["client_id"],
        "grant_id": w.court_grant,
    }
    routes = [r for r in id_routes if set(r.parameters) <= set(ids)]
    assert {"get_case", "get_case_access", "get_emergency_grant", "get_subject_access"} <= {
        r.operation_id for r in routes
    }
    for caller in (w.court_clerk, w.court_head):
        for route in routes:
            for headers in route.header_variants():
                probe.indistinguishable(route, caller, ids, w.court["id"], headers)
    probe.check()
    # And the grant it had is the one the school's records name.
    assert w.head.get(f"/v1/emergency-grants/{w.court_grant}")["grantee_agency_id"] == w.court["id"]


def test_the_erasure_is_told_to_exactly_the_parties_at_one_instant(
    story: SimpleNamespace, app_server: AppServer, tmp_path: Path
) -> None:
    w = story
    start = {name: feed_head(api) for name, api in feeds(w).items()}
    w.admin.post(f"/v1/clients/{w.case['client_id']}/erasure", None, status=200)
    got = {name: feed_since(api, start[name]) for name, api in feeds(w).items()}
    told = {name for name, items in got.items() if items}
    # Everyone who ever had the client's data (the court's grant expired, still it had
    # it), and no one else.
    assert told == {"school", "protection", "court"}
    items = [got[name] for name in sorted(told)]
    assert all(len(i) == 1 and i[0]["type"] == "client_erased" for i in items)
    assert {i[0]["client_id"] for i in items} == {w.case["client_id"]}
    assert len({i[0]["id"] for i in items}) == 1
    at = instant(items[0][0]["at"])

    page = " ".join(visible_text(subject_access(w, BROWSER).text).split())
    assert f"Your personal data was erased on {reader_time(at)}." in page
    copy = subject_access(w).json()
    assert copy["erased"] is True
    assert instant(copy["erased_at"]) == at
    still = {g["id"]: g for g in copy["emergency_grants"]}
    assert set(still) == {w.grant["id"], w.court_grant}
    assert still[w.grant["id"]]["justification"] is None
    assert still[w.grant["id"]]["basis"] == w.grant["basis"]

    bundle = exported_bundle(w, app_server, tmp_path / "after")
    [erasure] = records(bundle, "erasures.jsonl", type="ClientErased")
    assert erasure["client_id"] == w.case["client_id"]
    assert instant(erasure["at"]) == at
    assert erasure["worker_id"] == w.admin.worker_id
    # Each copy made for the client (this test's two and the earlier test's two) is a
    # record of the bundle, as the last copy lists them: when, and who asked.
    copies = records(bundle, "erasures.jsonl", type="SubjectAccessProvided")
    assert len(copies) == len(copy["requests"]) == 4
    assert [(instant(r["at"]), r["client_id"], r["agency_id"], r["worker_id"]) for r in copies] == [
        (instant(r["at"]), copy["client_id"], r["agency_id"], r["worker_id"])
        for r in copy["requests"]
    ]
    report = " ".join(visible_text(write_report(bundle).read_text()).split())
    told_copy = "A copy of everything held about the client was made for them"
    assert report.count(told_copy) == len(copies)
    assert f"The client's personal data was erased on {reader_time(at)}" in report
