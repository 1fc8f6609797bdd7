"""The client's own rights (API.md): the copy of everything held about them (GDPR
Art. 15) and consent given for them by a parent, guardian or legal representative, on
each store.

The copy is checked with canaries: each client of the encryption story
(``test_encryption_story``: every personal value a unique random string, through every
service, an emergency grant and a guardian's consent included) must find every one of
their own in their copy, JSON and page, and none of another client's of the same
agency. Then the roles, the erased client, the page's words and escaping, and the
record each copy leaves.
"""

from __future__ import annotations

import base64
import hashlib
import re
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from tests.api.conftest import AppServer
from tests.api.test_consent_receipt_page import BROWSER, EVIL, visible_text
from tests.integration.test_encryption_story import register_network, write_client_story
from tests.support.http import Api, Probe

from casenet.api.subject_access_page import CONTENT_SECURITY_POLICY
from casenet.domain.client import Client, SubjectAccessProvided
from casenet.domain.wording import reader_time

ROLES = ("caseworker", "supervisor", "admin", "auditor")


@pytest.fixture(scope="module")
def world(app_server: AppServer, operator: Api) -> SimpleNamespace:
    """Eastside Welfare (the story's NGO) with three clients' stories, the hospital
    having read each case (disclosures), and a worker of every role on both sides."""
    casenet = app_server.casenet
    network = register_network(casenet)
    stories = [write_client_story(casenet, network) for _ in range(3)]
    for story in stories:
        casenet.case_queries.read_case(network.hospital_worker, story.case_id)
    welfare, hospital = str(network.welfare_id), str(network.hospital_id)
    return SimpleNamespace(
        network=network,
        kept=stories[0],
        other=stories[1],
        erased=stories[2],
        welfare={role: operator.worker(welfare, role) for role in ROLES},
        hospital={role: operator.worker(hospital, role) for role in ROLES},
    )


def copy_of(api: Api, client_id: UUID | str, accept: str | None = None) -> Any:
    headers = {} if accept is None else {"Accept": accept}
    return api.expect(200, "GET", f"/v1/clients/{client_id}/subject-access", headers=headers)


def found(text: str, canaries: set[str]) -> set[str]:
    return {canary for canary in canaries if canary in text}


def test_the_copy_holds_every_personal_value_of_the_client_and_none_of_anothers(
    world: SimpleNamespace,
) -> None:
    supervisor, kept, other = world.welfare["supervisor"], world.kept, world.other
    assert len(kept.canaries) == 27
    for accept in (None, "application/json", BROWSER):
        response = copy_of(supervisor, kept.client_id, accept)
        kind = "text/html" if accept == BROWSER else "application/json"
        assert response.headers["content-type"].startswith(kind)
        assert response.headers["cache-control"] == "no-store"
        assert found(response.text, kept.canaries) == kept.canaries, accept
        assert found(response.text, other.canaries) == set(), accept


def test_the_copy_tells_the_whole_story_in_its_places(world: SimpleNamespace) -> None:
    kept, network = world.kept, world.network
    copy = copy_of(world.welfare["admin"], kept.client_id).json()
    assert copy["client_id"] == str(kept.client_id)
    assert copy["registered_by"] == {"id": str(network.welfare_id), "name": "Eastside Welfare"}
    assert (copy["erased"], copy["erased_at"]) == (False, None)
    assert set(copy["client"].values()) <= kept.canaries
    [case] = copy["cases"]
    assert case["id"] == str(kept.case_id)
    assert [n["category"] for n in case["notes"]] == ["general", "health"]
    assert [s["status"] for s in case["history"]] == ["closed", "open"]
    consents = copy["consents"]
    assert [c["receipt"]["consent_id"] for c in consents] == [str(i) for i in kept.consent_ids]
    guardian = consents[2]["receipt"]
    assert guardian["given_by"] == "guardian"
    assert guardian["representative_name"] in kept.canaries
    assert guardian["given_by_description"] == f"{guardian['representative_name']}, your guardian"
    assert consents[1]["receipt"]["status"] == "withdrawn"
    assert consents[1]["withdrawal_reason"] in kept.canaries
    [grant] = copy["emergency_grants"]
    assert grant["basis"] == "safeguarding"
    assert grant["agency"]["name"] == "City Hospital social work"
    assert grant["review"]["finding"] == "justified"
    assert grant["justification"] in kept.canaries
    assert grant["revocation_reason"] in kept.canaries
    # The hospital's read: under the consents (identity, needs, contact) and nothing else.
    reads = [d for d in copy["disclosures"] if "identity" in d["sections"]]
    assert reads
    assert all(d["agency"]["id"] == str(network.hospital_id) for d in reads)
    assert {d["basis"] for d in reads} == {"consent"}
    given = {c["receipt"]["consent_id"] for c in consents}
    assert all(d["consent_ids"] and set(d["consent_ids"]) <= given for d in reads)
    assert all(d["emergency_grant_ids"] == [] for d in reads)
    referrals = copy["referrals"]
    assert [r["id"] for r in referrals] == [str(i) for i in kept.referral_ids]
    assert [r["status"] for r in referrals] == ["completed", "rejected", "cancelled", "failed"]
    assert {r["to_agency"]["name"] for r in referrals} == {"City Hospital social work"}
    assert [s["status"] for s in referrals[0]["history"]][-1] == "completed"
    assert len(referrals[0]["messages"]) == 2


def test_only_a_supervisor_or_admin_of_the_registering_agency_may_ask(
    world: SimpleNamespace, probe: Probe
) -> None:
    client_id = world.kept.client_id
    for role in ("supervisor", "admin"):
        copy_of(world.welfare[role], client_id)
    for role in ("caseworker", "auditor"):
        refused = world.welfare[role].expect(403, "GET", f"/v1/clients/{client_id}/subject-access")
        assert str(client_id) not in refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    # Another agency (even one that read the client's case), any role, whatever it
    # accepts: the 404 of a random id, byte for byte.
    for role in ROLES:
        caller = world.hospital[role]
        for accept in ("application/json", BROWSER):
            headers = {"Accept": accept}
            real = caller.request("GET", f"/v1/clients/{client_id}/subject-access", headers=headers)
            random = caller.request("GET", f"/v1/clients/{uuid4()}/subject-access", headers=headers)
            assert real.status_code == 404
            probe.same(f"{caller!r} subject access ({accept})", real, random)
    probe.check()


def test_each_copy_is_recorded_with_who_asked_and_listed_in_the_next(
    app_server: AppServer, world: SimpleNamespace
) -> None:
    client_id = world.other.client_id
    admin, supervisor = world.welfare["admin"], world.welfare["supervisor"]
    first = copy_of(admin, client_id).json()
    second = copy_of(supervisor, client_id).json()

    asked = [(r["agency_id"], r["worker_id"]) for r in second["requests"]]
    assert asked[-2:] == [(admin.agency_id, admin.worker_id), (supervisor.agency_id,
                                                                supervisor.worker_id)]
    assert second["requests"][-2]["at"] == first["requests"][-1]["at"]
    client = app_server.casenet.app.get(Client, client_id, personal=False)
    assert [str(s.worker_id) for s in client.subject_accesses][-2:] == [
        admin.worker_id, supervisor.worker_id
    ]
    # A refused request records nothing.
    world.welfare["caseworker"].expect(403, "GET", f"/v1/clients/{client_id}/subject-access")
    again = app_server.casenet.app.get(Client, client_id, personal=False)
    assert len(again.subject_accesses) == len(client.subject_accesses)
    assert SubjectAccessProvided.__name__ == "SubjectAccessProvided"


def test_after_erasure_the_copy_says_when_and_shows_no_personal_value(
    world: SimpleNamespace,
) -> None:
    erased, admin = world.erased, world.welfare["admin"]
    before = copy_of(admin, erased.client_id)
    assert found(before.text, erased.canaries) == erased.canaries
    admin.post(f"/v1/clients/{erased.client_id}/erasure", status=200)

    copy = copy_of(admin, erased.client_id).json()
    assert copy["erased"] is True
    assert copy["erased_at"]
    assert set(copy["client"].values()) == {None}
    assert copy["cases"][0]["summary"] is None
    assert copy["consents"][2]["receipt"]["representative_name"] is None
    assert copy["consents"][2]["receipt"]["given_by_description"] == (
        "your guardian, whose name was erased"
    )
    assert len(copy["referrals"]) == 4
    assert copy["disclosures"]
    html = copy_of(admin, erased.client_id, BROWSER).text
    text = " ".join(visible_text(html).split())
    erased_at = reader_time(copy["erased_at"])
    assert f"Your personal data was erased on {erased_at}." in text
    for shown in (copy_of(admin, erased.client_id).text, html):
        assert found(shown, erased.canaries) == set()


@pytest.fixture(scope="module")
def evil(world: SimpleNamespace) -> dict[str, Any]:
    """A client whose every value, and their guardian's name, is markup."""
    supervisor = world.welfare["supervisor"]
    case = supervisor.post(
        "/v1/cases",
        {"client": {"name": EVIL, "address": "1 <b>Bold</b> Street"}, "summary": "<i>x</i>",
         "needs": ["mental_health"]},
    )
    supervisor.post(f"/v1/cases/{case['id']}/notes", {"text": EVIL, "category": "mental_health"})
    supervisor.post(
        f"/v1/cases/{case['id']}/consents",
        {"grantee_agency_id": str(world.network.hospital_id), "sections": ["notes.mental_health"],
         "purpose": "care_coordination", "method": "written", "given_by": "legal_representative",
         "representative_name": "Rosa <b>Lopez</b>"},
    )
    return case


def test_the_page_is_in_plain_words_escaped_and_locked_down(
    world: SimpleNamespace, evil: dict[str, Any]
) -> None:
    response = copy_of(world.welfare["supervisor"], evil["client_id"], BROWSER)
    html = response.text
    text = " ".join(visible_text(html).split())
    assert "Everything we hold about you" in text
    assert f"Name {EVIL}" in text  # shown as text
    assert "Given by Rosa <b>Lopez</b>, your legal representative" in text
    assert "Until it is withdrawn (no end date)" in text  # not the client's alone to end
    assert "UTC (mental health notes): <script>" in text  # a note, then its words
    assert "mental health notes" in text
    assert "notes.mental_health" not in text
    assert "To coordinate care between the agencies involved" in text
    assert "care_coordination" not in text
    assert re.search(r"\d{4}-\d\d-\d\dT", text) is None  # no ISO instant is shown
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<b>" not in lowered
    assert "<i>x" not in lowered
    for asset in ("http://", "https://", " src=", "<link", "@import", "url("):
        assert asset not in lowered, asset
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src" not in policy
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["vary"] == "Accept"


# --- consent given by someone else ------------------------------------------------------


def test_a_consent_given_by_a_guardian_says_so_in_its_view_and_its_receipt(
    world: SimpleNamespace, evil: dict[str, Any]
) -> None:
    supervisor = world.welfare["supervisor"]
    consent = supervisor.post(
        f"/v1/cases/{evil['id']}/consents",
        {"grantee_agency_id": str(world.network.hospital_id), "sections": ["identity"],
         "purpose": "referral", "method": "verbal", "given_by": "guardian",
         "representative_name": "Rosa Lopez"},
    )
    assert (consent["given_by"], consent["representative_name"]) == ("guardian", "Rosa Lopez")
    receipt = supervisor.get(f"/v1/consents/{consent['id']}/receipt")
    assert receipt["given_by_description"] == "Rosa Lopez, your guardian"
    html = supervisor.expect(
        200, "GET", f"/v1/consents/{consent['id']}/receipt", headers={"Accept": BROWSER}
    ).text
    text = " ".join(visible_text(html).split())
    assert "Who gave it Rosa Lopez, your guardian." in text
    # The client did not agree it themself, and it is not theirs alone to withdraw.
    assert "A record of what Rosa Lopez, your guardian, agreed may be shared about you." in text
    assert "you agreed" not in text
    assert "Until it is withdrawn: it has no end date." in text
    supervisor.post(f"/v1/consents/{consent['id']}/withdraw", {"reason": "Moved."}, status=200)
    gone = supervisor.expect(
        200, "GET", f"/v1/consents/{consent['id']}/receipt", headers={"Accept": BROWSER}
    ).text
    assert "It was withdrawn on " in visible_text(gone)
    assert "You withdrew" not in visible_text(gone)
    own = supervisor.post(
        f"/v1/cases/{evil['id']}/consents",
        {"grantee_agency_id": str(world.network.hospital_id), "sections": ["needs"],
         "purpose": "referral", "method": "verbal"},
    )
    assert (own["given_by"], own["representative_name"]) == ("self", None)
    own_html = supervisor.expect(
        200, "GET", f"/v1/consents/{own['id']}/receipt", headers={"Accept": "text/html"}
    ).text
    own_text = " ".join(visible_text(own_html).split())
    assert "Who gave it You." in own_text
    assert "A record of what you agreed may be shared about you." in own_text
    assert "Until you withdraw it: it has no end date." in own_text


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"given_by": "aunt", "representative_name": "Rosa"}, "given_by",
         "self, parent, guardian, legal_representative"),
        ({"given_by": "parent"}, "representative_name", "required"),
        ({"representative_name": "Rosa Lopez"}, "representative_name", "not self"),
        ({"given_by": "guardian", "representative_name": ""}, "representative_name", ""),
    ],
    ids=["unknown_giver", "unnamed_parent", "named_self", "empty_name"],
)
def test_who_gave_a_consent_is_checked_with_a_problem_naming_the_field(
    world: SimpleNamespace, evil: dict[str, Any], extra: dict[str, str], field: str, words: str
) -> None:
    body = {"grantee_agency_id": str(world.network.hospital_id), "sections": ["identity"],
            "purpose": "referral", "method": "verbal", **extra}
    answer = world.welfare["supervisor"].request(
        "POST", f"/v1/cases/{evil['id']}/consents", json_body=body
    )
    assert answer.status_code in (400, 422), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    assert words in problem["errors"][0]["message"]
    assert "Rosa" not in answer.text
    assert "Traceback" not in answer.text
