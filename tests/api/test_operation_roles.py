"""What each operation's description says about who may call it is what the API does.

A (the owner) has a case with a note, a consent for B, and a referral to B; both have a
worker of every role. Each operation of the served document is called, with its own
example body (ids made real), by every role of the agency its row in
``operation_docs.WHO`` names and by the operator: the roles it names are never refused
(no 401, 403 or 404), the others get 403 (the operator, of no agency, may get 404 for a
case). A later operation is covered the day it has its row (test_operation_docs.py
makes sure it does).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from tests.support.http import Api

from casenet.api import examples
from casenet.api.operation_docs import WHO, Who
from casenet.domain.agency import ROLES

METHODS = ("get", "put", "post", "delete", "patch")
#: Operations run last, in this order: they change what the others need.
LAST = ("revoke_worker", "erase_client")
#: Query strings an operation needs to be called at all.
QUERIES = {
    "export_audit": "?case_id={case_id}",
    "get_case_access": "",
    "list_emergency_grants_awaiting_review": "?review=pending",
    "fhir_search_audit_events": "?entity={case_id}",
}


@pytest.fixture(scope="module")
def world(operator: Api) -> SimpleNamespace:
    a = operator.agency("Roles A", services=[{"type": "housing", "description": "Rent"}])
    b = operator.agency("Roles B", services=[{"type": "health", "description": "Clinic"}])
    staff = {
        (name, role): operator.worker(agency, role)
        for name, agency in (("A", a), ("B", b))
        for role in ROLES
    }
    writer = staff[("A", "caseworker")]
    case = writer.post(
        "/v1/cases", {"client": {"name": "Role Client"}, "summary": "s", "needs": ["housing"]}
    )
    writer.post(f"/v1/cases/{case['id']}/notes", {"text": "t", "category": "general"})
    consent = writer.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": b["id"],
            "sections": ["identity", "summary"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    referral = writer.post(
        "/v1/referrals",
        {
            "case_id": case["id"],
            "to_agency_id": b["id"],
            "service_type": "health",
            "reason": "r",
            "urgency": "routine",
            "consent_id": consent["id"],
        },
    )
    grant = writer.post(
        f"/v1/cases/{case['id']}/emergency-grants",
        {
            "grantee_agency_id": b["id"],
            "sections": ["summary"],
            "basis": "safeguarding",
            "justification": "j",
            "minutes": 60,
        },
    )
    webhook = staff[("A", "admin")].post("/v1/webhooks", {"url": "http://127.0.0.1:9/roles"})
    # B asks A to work together (A's admin answers); A appeals to the network (B answers).
    partnership = staff[("B", "admin")].post("/v1/partnerships", {"agency_id": a["id"]})
    appeal = writer.post(
        "/v1/appeals",
        {
            "need": "health",
            "title": "Donors",
            "text": "t",
            "expires_at": "2030-01-01T00:00:00Z",
            "reach": "network",
        },
    )
    spare = operator.worker(a, "caseworker", "Spare")
    ids = {
        "agency_id": a["id"],
        "worker_id": spare.worker_id,
        "case_id": case["id"],
        "client_id": case["client_id"],
        "consent_id": consent["id"],
        "referral_id": referral["id"],
        "grant_id": grant["id"],
        "webhook_id": webhook["id"],
        "partnership_id": partnership["id"],
        "appeal_id": appeal["id"],
        # B's: A's own list is replaced by the calls under test.
        "service_id": b["services"][0]["id"],
    }
    real = {
        examples.CASE: case["id"],
        examples.ST_MARYS: b["id"],
        examples.CONSENT: consent["id"],
        examples.EASTSIDE: a["id"],
    }
    return SimpleNamespace(staff=staff, operator=operator, ids=ids, real=real)


def callers(who: Who) -> list[str]:
    """The agencies whose workers the row is about: A, or B for the receiving side."""
    if "receiving" in who.of or "appeal reached" in who.of:
        return ["B"]
    if "one it reached" in who.of:
        return ["A", "B"]
    if "either" in who.of or "shared" in who.of:
        return ["A", "B"]
    return ["A"]


def calls(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    found = [
        (item[method]["operationId"], method.upper(), path, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]
    rank = {name: i for i, name in enumerate(LAST)}
    return sorted(found, key=lambda c: (rank.get(c[0], -1), c[0]))


def body_of(op: dict[str, Any], real: dict[str, str]) -> Any:
    media = op.get("requestBody", {}).get("content", {})
    content = media.get("application/json") or media.get("application/fhir+json")
    if content is None:
        return None
    text = json.dumps(content["examples"]["example"]["value"])
    for placeholder, actual in real.items():
        text = text.replace(placeholder, actual)
    return json.loads(text)


def test_exactly_the_roles_an_operation_names_may_call_it(
    world: SimpleNamespace, openapi: dict[str, Any]
) -> None:
    wrong = []
    for operation_id, method, path, op in calls(openapi):
        who = WHO[operation_id]
        if who.anyone:
            continue
        url = path.format(**world.ids) + QUERIES.get(operation_id, "").format(**world.ids)
        body = body_of(op, world.real)
        tried: list[tuple[Api, bool]] = [(world.operator, who.operator)]
        for agency in callers(who):
            tried += [(world.staff[(agency, role)], role in who.roles) for role in ROLES]
        # The refused first: an allowed call may change what they would be refused
        # (a webhook removed, a grant revoked is then a 404 or a 409 to anyone).
        for caller, allowed in sorted(tried, key=lambda t: t[1]):
            status = caller.request(method, url, json_body=body).status_code
            # The operator belongs to no agency, so sees no case: 404 before the role.
            refusals = (403, 404) if caller is world.operator else (403,)
            if (status in (401, 403, 404)) if allowed else (status not in refusals):
                wrong.append(f"{operation_id} by {caller!r}: {status}")
    assert wrong == [], "\n".join(wrong)
