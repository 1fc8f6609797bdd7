"""FHIR R5 under /fhir: every resource valid (fhir.resources, FHIR 5.0.0) and bound
codes only, on each store; the same visibility as the REST API; errors as
OperationOutcomes with the REST API's status codes.

Eastside (an ngo) owns Maria's case: consents to St Mary's (a hospital: identity,
summary, mental-health notes; for referral, written) and to Northside (contact, for care
coordination, verbal, later withdrawn), and a referral to St Mary's under the first.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from tests.support.fhir import check_fhir
from tests.support.http import Api

FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def world(operator: Api) -> SimpleNamespace:
    eastside = operator.agency(
        "Eastside Welfare",
        "ngo",
        services=[{"type": "housing", "description": "Emergency beds", "area": "east"}],
    )
    st_marys = operator.agency("St Mary's Hospital", "hospital")
    northside = operator.agency("Northside Refuge", "refuge", restricted=True)
    ana = operator.worker(eastside, "caseworker")
    case = ana.post(
        "/v1/cases",
        {
            "client": {"name": "Maria", "date_of_birth": "1985-04-12", "phone": "555-0101"},
            "summary": "Lost her flat.",
            "needs": ["housing"],
        },
    )
    for category in ("mental_health", "substance_use", "sexual_health", "general"):
        ana.post(f"/v1/cases/{case['id']}/notes", {"text": "Seen.", "category": category})
    consent = ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": st_marys["id"],
            "sections": ["identity", "summary", "notes.mental_health", "notes.substance_use"],
            "purpose": "referral",
            "method": "written",
        },
    )
    other = ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": northside["id"],
            "sections": ["contact", "notes.sexual_health"],
            "purpose": "care_coordination",
            "method": "verbal",
        },
    )
    ana.post(f"/v1/consents/{other['id']}/withdraw", {"reason": "Client asked"}, status=200)
    referral = ana.post(
        "/v1/referrals",
        {
            "case_id": case["id"],
            "to_agency_id": st_marys["id"],
            "service_type": "health",
            "reason": "Needs a mental-health assessment.",
            "urgency": "urgent",
            "consent_id": consent["id"],
        },
    )
    return SimpleNamespace(
        eastside=eastside,
        st_marys=st_marys,
        northside=northside,
        ana=ana,
        auditor=operator.worker(eastside, "auditor"),
        doctor=operator.worker(st_marys, "caseworker"),
        outsider=operator.worker(northside, "supervisor"),
        case=case,
        consent=consent,
        withdrawn=other,
        referral=referral,
    )


def fhir_get(api: Api, path: str, status: int = 200) -> dict[str, Any]:
    response = api.expect(status, "GET", path)
    assert response.headers["content-type"].startswith(FHIR_JSON)
    return check_fhir(response.json())


def test_the_capability_statement_needs_no_token(operator: Api) -> None:
    anyone = Api(operator.server, None)
    statement = fhir_get(anyone, "/fhir/metadata")
    assert statement["fhirVersion"] == "5.0.0"
    served = {r["type"] for r in statement["rest"][0]["resource"]}
    assert served >= {"Consent", "ServiceRequest", "Task", "AuditEvent", "Bundle"}


def test_consents_active_and_withdrawn(world: SimpleNamespace) -> None:
    active = fhir_get(world.ana, f"/fhir/Consent/{world.consent['id']}")
    assert active["status"] == "active"
    provision = active["provision"][0]
    assert provision["purpose"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
            "code": "TREAT",
            "display": "treatment",
        }
    ]
    labels = {(c["system"].rsplit("/", 1)[-1], c["code"]) for c in provision["securityLabel"]}
    assert labels == {
        ("v3-ActCode", "PSY"),
        ("v3-ActCode", "ETH"),
        ("urn:casenet:fhir:CodeSystem:section", "identity"),
        ("urn:casenet:fhir:CodeSystem:section", "summary"),
    }
    assert provision["actor"][0]["reference"] == {
        "reference": f"Organization/{world.st_marys['id']}"
    }
    assert active["verification"][0]["verificationType"]["coding"][0]["code"] == "written"
    withdrawn = fhir_get(world.ana, f"/fhir/Consent/{world.withdrawn['id']}")
    assert withdrawn["status"] == "inactive"
    assert withdrawn["provision"][0]["purpose"][0]["code"] == "COC"
    assert "end" in withdrawn["period"]


def test_an_expired_consent_is_inactive(world: SimpleNamespace) -> None:
    until = datetime.now(UTC) + timedelta(seconds=0.5)
    expiring = world.ana.post(
        f"/v1/cases/{world.case['id']}/consents",
        {
            "grantee_agency_id": world.northside["id"],
            "sections": ["needs"],
            "purpose": "referral",
            "method": "electronic",
            "valid_until": until.isoformat(),
        },
    )
    assert fhir_get(world.ana, f"/fhir/Consent/{expiring['id']}")["status"] == "active"
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.2)
    expired = fhir_get(world.ana, f"/fhir/Consent/{expiring['id']}")
    assert expired["status"] == "inactive"
    assert expired["period"]["end"].startswith(until.strftime("%Y-%m-%dT%H:%M"))


def test_the_referral_as_service_request_and_task(world: SimpleNamespace) -> None:
    rid = world.referral["id"]
    for api in (world.ana, world.doctor):
        request = fhir_get(api, f"/fhir/ServiceRequest/{rid}")
        assert request["status"] == "active"
        assert request["priority"] == "urgent"
        assert request["reason"][0]["concept"]["text"] == "Needs a mental-health assessment."
        task = api.expect(200, "GET", f"/fhir/Task/{rid}")
        body = check_fhir(task.json())
        assert body["status"] == "requested"
        assert body["focus"] == {"reference": f"ServiceRequest/{rid}"}
        assert body["owner"] == {"reference": f"Organization/{world.st_marys['id']}"}
        assert task.headers["etag"] == f'W/"{body["meta"]["versionId"]}"'


def test_directory_resources(world: SimpleNamespace) -> None:
    org = fhir_get(world.doctor, f"/fhir/Organization/{world.eastside['id']}")
    assert org["name"] == "Eastside Welfare"
    assert org["type"][0]["coding"][0]["code"] == "cg"
    refuge = fhir_get(world.doctor, f"/fhir/Organization/{world.northside['id']}")
    assert refuge["type"][0]["coding"][0]["code"] == "other"
    assert "restricted" in refuge["description"]
    service_id = world.eastside["services"][0]["id"]
    service = fhir_get(world.doctor, f"/fhir/HealthcareService/{service_id}")
    assert service["providedBy"]["reference"] == f"Organization/{world.eastside['id']}"
    assert service["type"][0]["coding"][0]["code"] == "housing"


def test_the_owners_bundle_holds_everything(world: SimpleNamespace) -> None:
    bundle = fhir_get(world.ana, f"/fhir/Bundle/{world.case['id']}")
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    consents = {
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Consent"
    }
    assert consents >= {world.consent["id"], world.withdrawn["id"]}  # withdrawn ones too
    assert kinds.count("ServiceRequest") == kinds.count("Task") == 1
    patient = bundle["entry"][0]["resource"]
    assert patient["name"] == [{"text": "Maria"}]
    assert patient["telecom"] == [{"system": "phone", "value": "555-0101"}]
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(urls)) == len(urls)
    assert all(url.startswith("http") and "/fhir/" in url for url in urls)


def test_a_grantees_bundle_holds_only_what_its_consent_allows(world: SimpleNamespace) -> None:
    bundle = fhir_get(world.doctor, f"/fhir/Bundle/{world.case['id']}")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        by_kind.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    patient = by_kind["Patient"][0]
    assert patient["name"] == [{"text": "Maria"}]
    assert patient["birthDate"] == "1985-04-12"
    assert "telecom" not in patient  # contact was not granted
    assert [c["id"] for c in by_kind["Consent"]] == [world.consent["id"]]
    assert [t["id"] for t in by_kind["Task"]] == [world.referral["id"]]
    # The read was a disclosure, and the accounting shows it as an AuditEvent.
    search = fhir_get(world.auditor, f"/fhir/AuditEvent?entity={world.case['id']}&_count=500")
    assert search["type"] == "searchset"
    events = [e["resource"] for e in search["entry"]]
    recipients = {e["agent"][0]["who"]["reference"] for e in events}
    assert f"Organization/{world.st_marys['id']}" in recipients
    assert any(e["action"] == "R" for e in events)


def test_the_audit_events_come_a_page_at_a_time(world: SimpleNamespace) -> None:
    url = f"/fhir/AuditEvent?entity={world.case['id']}&_count=1"
    seen: list[str] = []
    for _ in range(50):
        page = fhir_get(world.auditor, url)
        seen += [e["resource"]["id"] for e in page["entry"]]
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        url = following[0][following[0].index("/fhir/") :]
    assert len(seen) >= 2
    assert len(set(seen)) == len(seen)


def test_an_unrelated_agency_gets_the_404_of_a_random_id(world: SimpleNamespace) -> None:
    for path in (
        f"/fhir/Bundle/{world.case['id']}",
        f"/fhir/Task/{world.referral['id']}",
        f"/fhir/ServiceRequest/{world.referral['id']}",
        f"/fhir/Consent/{world.consent['id']}",
        f"/fhir/Consent/{world.withdrawn['id']}",  # to the agency it was granted to
    ):
        real = world.outsider.expect(404, "GET", path)
        random = world.outsider.expect(404, "GET", path.rsplit("/", 1)[0] + f"/{uuid4()}")
        assert real.content == random.content
        assert real.headers["content-type"].startswith(FHIR_JSON)
        outcome = check_fhir(real.json())
        assert outcome["issue"][0]["code"] == "not-found"


def test_errors_are_operation_outcomes_with_the_rest_apis_statuses(
    world: SimpleNamespace, operator: Api
) -> None:
    rid = world.referral["id"]
    for api, path, status, code in (
        (Api(operator.server, None), f"/fhir/Task/{rid}", 401, "login"),
        (world.ana, f"/fhir/AuditEvent?entity={world.case['id']}", 403, "forbidden"),
        (world.ana, f"/fhir/AuditEvent?entity={world.case['id']}&_count=0", 400, "structure"),
    ):
        outcome = check_fhir(api.expect(status, "GET", path).json())
        assert outcome["issue"][0]["code"] == code
    # The router's own 404 (an id that is no UUID, a resource casenet does not serve).
    for path in ("/fhir/Task/not-a-uuid", f"/fhir/Patient/{world.case['client_id']}"):
        missing = world.doctor.expect(404, "GET", path)
        assert check_fhir(missing.json())["issue"][0]["code"] == "not-found"
    put = world.doctor.request(
        "PUT",
        f"/fhir/Task/{rid}",
        content=b"status=accepted",
        headers={"Content-Type": "text/plain"},
    )
    assert put.status_code == 415
    assert check_fhir(put.json())["issue"][0]["code"] == "not-supported"
