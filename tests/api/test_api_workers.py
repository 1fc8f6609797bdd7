"""``GET /v1/agencies/{agency_id}/workers``: the agency's workers, for its admins and the
operator, never a token; in process, on each store."""

from __future__ import annotations

from typing import Any
from uuid import uuid4


def test_the_operator_and_the_agencys_admin_see_every_worker_and_no_token(
    operator: Any,
) -> None:
    agency = operator.agency("Harbour Shelter", "shelter")
    admin = operator.worker(agency, "admin", name="Ada Admin")
    leaving = operator.worker(agency, "caseworker", name="Lee Leaving")
    operator.expect(200, "DELETE", f"/v1/agencies/{agency['id']}/workers/{leaving.worker_id}")
    stays = operator.worker(agency, "auditor", name="Aud Itor")

    for caller in (operator, admin):
        answer = caller.expect(200, "GET", f"/v1/agencies/{agency['id']}/workers")
        items = answer.json()["items"]
        assert [(w["id"], w["role"], w["active"]) for w in items] == [
            (admin.worker_id, "admin", True),
            (leaving.worker_id, "caseworker", False),
            (stays.worker_id, "auditor", True),
        ]
        assert all(set(w) == {"id", "name", "role", "agency_id", "active"} for w in items)
        for token in (admin.token, leaving.token, stays.token):
            assert token not in answer.text
        assert "hash" not in answer.text
    # The revoked token no longer opens anything, this route included.
    leaving.expect(401, "GET", f"/v1/agencies/{agency['id']}/workers")


def test_anyone_else_gets_what_a_random_id_gets(operator: Any) -> None:
    agency = operator.agency("Northside Clinic", "clinic")
    own_supervisor = operator.worker(agency, "supervisor")
    other = operator.agency("Other School", "school")
    other_admin = operator.worker(other, "admin")

    real = other_admin.request("GET", f"/v1/agencies/{agency['id']}/workers")
    random = other_admin.request("GET", f"/v1/agencies/{uuid4()}/workers")
    assert real.status_code == random.status_code == 404
    assert real.content == random.content
    # The agency's own supervisor sees the agency, but may not list its workers.
    own_supervisor.expect(403, "GET", f"/v1/agencies/{agency['id']}/workers")
    operator.expect(404, "GET", f"/v1/agencies/{uuid4()}/workers")
