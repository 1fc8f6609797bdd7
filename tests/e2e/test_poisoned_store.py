"""``casenet serve`` on a store the code before issue 15 poisoned, on SQLite and PostgreSQL.

That code accepted a worker or agency name with a NUL in it (on PostgreSQL the read
models stopped there, and every worker request of every agency answered 500, after
restarts too) and a consent ``valid_until`` at the edge of the range with an offset
(grantee reads, shared cases, access, the audit export and rebuild answered 500 or
died). Today's API refuses both, so the events are appended directly, past every
check; then a real server starts on the store (ready: 200), serves every agency,
rebuilds with the CLI and exports the audit.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from casenet.application.agencies import hash_token
from casenet.bootstrap import build_casenet
from casenet.domain.agency import Agency, AgencyRegistered, WorkerAdded
from casenet.domain.case import Case
from casenet.domain.consent import Consent, ConsentGranted
from casenet.settings import load_settings

CASENET = [sys.executable, "-m", "casenet.cli"]
EDGES = (
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
)


def poison(server: Any, tokens: dict[str, str], ids: dict[str, str]) -> None:
    """Append the old code's poison to the server's store, as it stored it."""
    environ = {k: v for k, v in server.environ().items() if k.startswith("CASENET_")}
    casenet = build_casenet(load_settings(environ))
    try:
        app = casenet.app
        app.save(
            Agency._start(
                uuid4(),
                AgencyRegistered,
                name="Poison\x00Agency",
                kind="ngo",
                restricted=False,
                services=(),
            )
        )
        hospital = app.get(Agency, UUID(ids["hospital"]))
        tokens["nul"] = secrets.token_urlsafe(32)
        hospital._record(
            WorkerAdded,
            worker_id=uuid4(),
            name="Eve\x00Null",
            role="caseworker",
            token_hash=hash_token(tokens["nul"]),
        )
        app.save(hospital)
        case = app.get(Case, UUID(ids["case"]))
        for edge in EDGES:
            app.save(
                Consent._start(
                    uuid4(),
                    ConsentGranted,
                    case_id=case.id,
                    client_id=case.client_id,
                    owner_agency_id=case.owner_agency_id,
                    grantee_agency_id=hospital.id,
                    sections=("identity", "summary"),
                    purpose="referral",
                    valid_until=edge,
                    method="verbal",
                    evidence=None,
                    given_by="self",
                    representative_name=None,
                    recorded_by_worker_id=uuid4(),
                )
            )
    finally:
        casenet.close()


def test_a_poisoned_store_starts_serves_rebuilds_and_exports(
    new_server: Any, connect: Any, tmp_path: Path
) -> None:
    server = new_server()
    server.start()
    operator = connect(server)
    welfare, hospital = operator.agency("Welfare NGO"), operator.agency("Hospital", "hospital")
    owner = operator.worker(welfare, "supervisor")
    school = operator.worker(operator.agency("School", "school"), "caseworker")
    body = {"client": {"name": "Amina"}, "summary": "Needs a slot", "needs": ["housing"]}
    case = owner.post("/v1/cases", body)
    server.stop()  # the old code's writes, while no server runs
    tokens: dict[str, str] = {}
    poison(server, tokens, {"hospital": hospital["id"], "case": case["id"]})

    server.start()  # was: ready, but every worker request of every agency 500 (PostgreSQL)

    nul_worker = connect(server, tokens["nul"])
    me = nul_worker.get("/v1/me")
    assert me["agency"]["id"] == hospital["id"]
    shared = nul_worker.get("/v1/shared-cases")
    assert [item["case_id"] for item in shared["items"]] == [case["id"]]
    view = nul_worker.get(f"/v1/cases/{case['id']}")
    assert view["client"]["name"] == "Amina"
    assert nul_worker.get("/v1/feed")["items"]
    assert school.get("/v1/agencies")["items"]
    assert school.get("/v1/cases")["items"] == []
    consents = owner.get(f"/v1/cases/{case['id']}/consents")["items"]
    assert len(consents) == 2
    for consent in consents:
        owner.get(f"/v1/consents/{consent['id']}/receipt")
    owner.get(f"/v1/cases/{case['id']}/access?at=2100-01-01T00:00:00Z")
    owner.get(f"/v1/cases/{case['id']}/access")
    export = operator.expect(200, "GET", f"/v1/audit/export?case_id={case['id']}")
    assert export.headers["content-type"] == "application/x-tar"
    # The operator's CLI: a rebuild completes, status shows every model at the head.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    environ.update(server.environ())
    for args in (
        ["projections", "rebuild"],
        ["projections", "status"],
        ["audit", "export", "--out", str(tmp_path / "bundle"), "--all"],
    ):
        done = subprocess.run(
            [*CASENET, *args], env=environ, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert "STOPPED" not in done.stdout
    assert connect(server, None).get("/health/ready") == {"status": "ready"}
    assert nul_worker.get(f"/v1/cases/{case['id']}")["client"]["name"] == "Amina"
