"""Existence is never disclosed: the authorization matrix, from the served OpenAPI document.

Agency A owns a case (its client, a note), has consented disclosures to B and to D, and
a referral to B. Then B's consent is withdrawn and D's expires (it was granted with
``valid_until`` a few seconds ahead). A also opened emergency grants to B (revoked after
B read the case under it) and to D (created days ago: expired). For every operation on a
path with an id parameter (read from ``GET /schema/openapi.json``, so a new route is
covered the day it is added), A's real ids are substituted and the route is called, with
a body valid for the operation (and again with each header it documents: a stale or
current ``If-Match``, an ``Idempotency-Key``), by every role of

* C, an agency that was never granted anything;
* B, whose consent was withdrawn and emergency grant revoked;
* D, whose consent and emergency grant have expired.

None may get a 2xx, and each answer (status and body, byte for byte, and every header
but ``Date`` and a request id) must be the one the same caller gets for the same route
with random ids: "exists" and "does not exist" are indistinguishable.

Documented exclusions:

* ``GET /v1/agencies/{agency_id}`` (``get_agency``): agencies are public, the directory
  shows them to every worker, so A's entry is legitimately 200 for everyone (and a
  random id 404). It discloses no case or client; checked on its own below. So are its
  HSDS forms, ``GET /v1/hsds/organizations/{agency_id}`` and ``GET /v1/hsds/services/{id}``
  (the directory's services, any worker's to search), and their FHIR forms,
  ``/fhir/Organization/{agency_id}`` and ``/fhir/HealthcareService/{service_id}``.
* The referral routes for B (and the referral's FHIR Task and ServiceRequest): B is the
  referral's receiving party, and API.md gives
  "either party" the referral, its lifecycle and its conversation in every status, with
  or without consent. What B must not see after the withdrawal is the client, checked
  below (the referral shows no ``client``; the case is 404).

The client's subject-access copy (``get_subject_access``) is the registering agency's
alone: every role of B, C and D gets the 404 of a random client id.

The other agency-scoped routes (workers, services) on A's agency are 403 or 404 for
the other agencies' workers and may not tell A's ids from random ones either. A's
webhook (registered by its admin) is 404 to every other agency's every role, as are its
partnership with E and its appeal to its partners (which reached E only).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from tests.api.conftest import AppServer
from tests.support.replicas import MODULE_STORES_WITH_REPLICA, assert_the_standby_served

from casenet.domain.case import Case
from casenet.domain.emergency import EmergencyGrant


@pytest.fixture(scope="module", params=MODULE_STORES_WITH_REPLICA)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, module_stores: Any
) -> Any:
    """SQLite, PostgreSQL, and PostgreSQL with the GET requests' reads on its hot standby."""
    yield from module_stores(request, tmp_path_factory)


ROLES = ("caseworker", "supervisor", "admin", "auditor")
OUTSIDERS = ("B", "C", "D")
#: Seconds ahead D's consent is valid: long enough to check it is active first (four
#: requests in process, well under 0.1 s; 3 s when they crossed a real server), and
#: waited out before the matrix runs.
D_VALIDITY = 1.5
PUBLIC = {
    "get_agency",
    "hsds_get_organization",
    "hsds_get_service",
    "fhir_read_organization",
    "fhir_read_healthcare_service",
}
#: GET routes only an admin of A's agency may read (its supervisor: 403).
ADMIN_ONLY = {"list_workers", "list_webhook_deliveries"}
AGENCY_SCOPED = "/v1/agencies/{agency_id}"


def expired_emergency_grant(app_server: AppServer, case_id: str, grantee: str) -> str:
    """An emergency grant of the case to ``grantee`` created two days ago for an hour, as
    the log would hold it (no test waits out a grant's minimum of one minute)."""
    app = app_server.casenet.app
    case = app.get(Case, UUID(case_id))
    grant = EmergencyGrant.create(
        case_id=case.id,
        client_id=case.client_id,
        owner_agency_id=case.owner_agency_id,
        recording_agency_id=case.owner_agency_id,
        grantee_agency_id=UUID(grantee),
        sections=["identity", "summary"],
        basis="court_order",
        justification="Order of the family court.",
        minutes=60,
        worker_id=uuid4(),  # a worker of A (the log names a worker; any will do here)
        now=datetime.now(UTC) - timedelta(days=2),
    )
    app.save(grant)
    return str(grant.id)


@pytest.fixture(scope="module")
def world(operator: Any, app_server: AppServer) -> SimpleNamespace:
    a = operator.agency(
        "Agency A (owner)",
        "ngo",
        services=[{"type": "income", "description": "Advice", "area": "north"}],
    )
    b = operator.agency("Agency B (consent withdrawn)", "hospital")
    c = operator.agency("Agency C (never granted)", "school")
    d = operator.agency("Agency D (consent expired)", "clinic")
    owner = operator.worker(a, "caseworker")
    supervisor = operator.worker(a, "supervisor")
    admin = operator.worker(a, "admin")
    callers = {
        key: {role: operator.worker(agency, role) for role in ROLES}
        for key, agency in (("B", b), ("C", c), ("D", d))
    }

    case = owner.post(
        "/v1/cases",
        {
            "client": {"name": "Noor Haddad", "date_of_birth": "1990-01-01", "phone": "0123"},
            "summary": "Lost her job; two children.",
            "needs": ["income", "childcare"],
        },
    )
    note = owner.post(
        f"/v1/cases/{case['id']}/notes", {"text": "Asthma, uses an inhaler.", "category": "health"}
    )
    consent_b = owner.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": b["id"],
            "sections": ["identity", "contact", "notes.health"],
            "purpose": "referral",
            "method": "written",
        },
    )
    valid_until = datetime.now(UTC) + timedelta(seconds=D_VALIDITY)
    consent_d = owner.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": d["id"],
            "sections": ["identity", "summary"],
            "purpose": "care_coordination",
            "method": "verbal",
            "valid_until": valid_until.isoformat(),
        },
    )
    referral = owner.post(
        "/v1/referrals",
        {
            "case_id": case["id"],
            "to_agency_id": b["id"],
            "service_type": "health",
            "reason": "Asthma review",
            "urgency": "routine",
            "consent_id": consent_b["id"],
        },
    )
    owner.post(f"/v1/referrals/{referral['id']}/messages", {"text": "Thanks for seeing her."})
    emergency_b = owner.post(
        f"/v1/cases/{case['id']}/emergency-grants",
        {
            "grantee_agency_id": b["id"],
            "sections": ["summary"],
            "basis": "safeguarding",
            "justification": "The children were left alone.",
            "minutes": 120,
        },
    )
    emergency_d = expired_emergency_grant(app_server, case["id"], d["id"])
    # Its admin's webhook (nothing listens on port 9: attempts fail, which is no matter).
    webhook = admin.post("/v1/webhooks", {"url": "http://127.0.0.1:9/casenet"})
    # A works with E (no outsider), and appeals to its partners: E alone is reached.
    e = operator.agency("Agency E (A's partner)", "clinic")
    partnership = admin.post("/v1/partnerships", {"agency_id": e["id"]})
    operator.worker(e, "admin").post(f"/v1/partnerships/{partnership['id']}/accept", status=200)
    appeal = owner.post(
        "/v1/appeals",
        {
            "need": "health",
            "title": "Blood donors",
            "text": "O negative.",
            "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "reach": "partners",
        },
    )

    # While the consents are active, B and D do see the case: the ids are the real thing.
    assert callers["B"]["caseworker"].get(f"/v1/cases/{case['id']}")["client"]["name"]
    assert callers["D"]["auditor"].get(f"/v1/cases/{case['id']}")["summary"]

    owner.post(f"/v1/consents/{consent_b['id']}/withdraw", {"reason": "Client asked"}, status=200)
    # Still seen under the emergency grant alone, until it is revoked.
    assert callers["B"]["admin"].get(f"/v1/cases/{case['id']}")["shared_under_emergency"]
    owner.post(f"/v1/emergency-grants/{emergency_b['id']}/revoke", {"reason": "Safe"}, status=200)
    assert owner.get(f"/v1/emergency-grants/{emergency_d}")["status"] == "expired"
    time.sleep(max(0.0, (valid_until - datetime.now(UTC)).total_seconds()) + 0.5)
    assert owner.get(f"/v1/consents/{consent_b['id']}")["status"] == "withdrawn"
    assert owner.get(f"/v1/consents/{consent_d['id']}")["status"] == "expired"

    return SimpleNamespace(
        a=a,
        owner=owner,
        supervisor=supervisor,
        admin=admin,
        callers=callers,
        case=case,
        referral=referral,
        ids={
            "case_id": [case["id"]],
            "client_id": [case["client_id"]],
            "note_id": [note["id"]],
            "consent_id": [consent_b["id"], consent_d["id"]],
            "referral_id": [referral["id"]],
            "agency_id": [a["id"]],
            "service_id": [service["id"] for service in a["services"]],
            "worker_id": [owner.worker_id, admin.worker_id],
            "grant_id": [emergency_b["id"], emergency_d],
            "webhook_id": [webhook["id"]],
            "partnership_id": [partnership["id"]],
            "appeal_id": [appeal["id"]],
        },
    )


def real_ids(route: Any, ids: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of A's real ids for the route's parameters."""
    names = route.parameters
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(ids[name] for name in names))
    ]


def under_test(route: Any, outsider: str) -> bool:
    if route.operation_id in PUBLIC:
        return False
    return not (outsider == "B" and "referral_id" in route.parameters)


def test_the_matrix_covers_every_id_route_of_the_served_document(id_routes: list[Any]) -> None:
    operations = {r.operation_id for r in id_routes}
    assert len(id_routes) >= 25, [str(r) for r in id_routes]
    assert operations >= PUBLIC | ADMIN_ONLY
    for outsider in OUTSIDERS:
        tested = {r.operation_id for r in id_routes if under_test(r, outsider)}
        excluded = operations - tested
        if outsider == "B":
            assert excluded == PUBLIC | {
                r.operation_id
                for r in id_routes
                if r.template.startswith(("/v1/referrals/", "/fhir/Task/", "/fhir/ServiceRequest/"))
            }
        else:
            assert excluded == PUBLIC


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_an_outsider_cannot_tell_real_ids_from_random_ones(
    world: SimpleNamespace, id_routes: list[Any], probe: Any, outsider: str, role: str
) -> None:
    caller = world.callers[outsider][role]
    calls = 0
    for route in id_routes:
        if not under_test(route, outsider):
            continue
        for ids in real_ids(route, world.ids):
            for headers in route.header_variants():
                real, _ = probe.indistinguishable(route, caller, ids, caller.agency_id, headers)
                calls += 1
                # Not a 400/415/422: the body was valid, authorization is what answered.
                expected = (403, 404) if route.template.startswith(AGENCY_SCOPED) else (404,)
                if real.status_code not in expected:
                    probe.failures.append(
                        f"{caller!r} {route}: {real.status_code}, expected one of {expected}"
                    )
    # Ids in the query string, too.
    case_id, client_id = world.case["id"], world.case["client_id"]
    for path, real_id in (
        (f"/v1/disclosures?case_id={case_id}", case_id),
        (f"/v1/audit/export?case_id={case_id}", case_id),
        (f"/v1/audit/export?client_id={client_id}", client_id),
        (f"/v1/cases/{case_id}/access?at=2030-01-01T00:00:00Z", case_id),
        (f"/fhir/AuditEvent?entity={case_id}", case_id),
    ):
        real = caller.request("GET", path)
        random = caller.request("GET", path.replace(real_id, str(uuid4())))
        probe.same(f"{caller!r} GET {path}", real, random)
    assert calls >= (15 if outsider == "B" else 25)
    probe.check()


def test_the_ids_are_real_for_the_owner(world: SimpleNamespace, id_routes: list[Any]) -> None:
    """Every GET with A's ids answers 200 to A's supervisor, or its admin for the routes
    only an admin may read (404 with random ids): the matrix above compares existing
    resources with missing ones, not two missing ones."""
    for route in id_routes:
        if route.method != "GET":
            continue
        insider = world.admin if route.operation_id in ADMIN_ONLY else world.supervisor
        for ids in real_ids(route, world.ids):
            insider.expect(200, "GET", route.path(ids))
            if route.operation_id not in PUBLIC:
                insider.expect(404, "GET", route.random_path())
            if route.operation_id in ADMIN_ONLY:
                world.supervisor.expect(403, "GET", route.path(ids))


def test_the_directory_entry_is_public_and_discloses_no_case(world: SimpleNamespace) -> None:
    """The one route excluded for everyone: an agency is public (the directory)."""
    for outsider in OUTSIDERS:
        for role in ROLES:
            caller = world.callers[outsider][role]
            entry = caller.get(f"/v1/agencies/{world.a['id']}")
            assert set(entry) == {"id", "version", "name", "kind", "restricted", "services"}
            caller.expect(404, "GET", f"/v1/agencies/{uuid4()}")


def test_b_still_sees_its_referral_but_not_the_client(world: SimpleNamespace) -> None:
    """Why the referral routes are excluded for B, and what B may not see there."""
    referral_id = world.referral["id"]
    for role in ROLES:
        caller = world.callers["B"][role]
        seen = caller.get(f"/v1/referrals/{referral_id}")
        assert seen["id"] == referral_id
        assert "client" not in seen
        assert "Noor" not in str(seen)
        assert caller.get(f"/v1/referrals/{referral_id}/messages")["items"]
        missing = caller.expect(404, "GET", f"/v1/cases/{world.case['id']}")
        assert missing.content == caller.expect(404, "GET", f"/v1/cases/{uuid4()}").content
        assert caller.get("/v1/shared-cases")["items"] == []


def test_a_referral_naming_anothers_consent_answers_as_a_random_consent_id(
    world: SimpleNamespace, probe: Any
) -> None:
    """C refers its own client to B naming A's consent for B (or D's): the same 422,
    byte for byte, as with a consent id that does not exist."""
    caller = world.callers["C"]["caseworker"]
    own = caller.post(
        "/v1/cases",
        {"client": {"name": "Sam"}, "summary": "Needs a tutor.", "needs": ["education"]},
    )
    for to, consent_id in zip(("B", "D"), world.ids["consent_id"], strict=True):

        def refer(consent: str, to: str = to) -> Any:
            body = {
                "case_id": own["id"],
                "to_agency_id": world.callers[to]["caseworker"].agency_id,
                "service_type": "health",
                "reason": "Review",
                "urgency": "routine",
                "consent_id": consent,
            }
            return caller.request("POST", "/v1/referrals", json_body=body)

        real, random = refer(consent_id), refer(str(uuid4()))
        assert real.status_code == 422, real.text
        probe.same(f"{caller!r} POST /v1/referrals naming {to}'s consent", real, random)
    probe.check()


def test_the_replica_run_read_from_the_replica(app_server: Any) -> None:
    """Last in the module: on ``postgres+replica`` the GET requests above were served by
    the standby (each still seeing the writes before it); elsewhere there is none."""
    assert_the_standby_served(app_server)
