"""A worker's token works, and stops working, at once in every process serving the
store, on SQLite and on PostgreSQL.

Authentication reads the directory read model as it is, without catching it up; the
commands that add and revoke workers catch it up before they answer, and it lives in
the shared database. So a worker added through server A (or by ``casenet workers add``,
a process with no background runner) is known to server B at the very next request,
and a token revoked through A is refused by B at the very next request: many times
over, so that B's own runner (polling every 0.1 s) cannot be what made it so.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

CASENET = [sys.executable, "-m", "casenet.cli"]
ROUNDS = 5

#: The e2e fixtures' classes (tests/e2e/conftest.py): the test folders are not packages.
LiveServer = Api = Any



def test_a_token_added_or_revoked_through_one_server_counts_at_once_on_another(
    servers: tuple[LiveServer, LiveServer], connect: Callable[..., Api]
) -> None:
    a, b = servers
    operator_a = connect(a)
    agency = operator_a.agency("Eastside Welfare NGO")
    for n in range(ROUNDS):
        worker = operator_a.worker(agency, "caseworker", f"Worker {n}")
        on_b = connect(b, worker.token)
        assert on_b.get("/v1/me")["worker"]["id"] == worker.worker_id  # at once, on B

        revoke = f"/v1/agencies/{agency['id']}/workers/{worker.worker_id}"
        assert operator_a.expect(200, "DELETE", revoke).json()["active"] is False
        on_b.expect(401, "GET", "/v1/me")  # at once, on B
        connect(a, worker.token).expect(401, "GET", "/v1/me")


def test_a_token_added_by_the_command_line_counts_at_once_on_a_server(
    servers: tuple[LiveServer, LiveServer], connect: Callable[..., Api]
) -> None:
    _, b = servers
    agency = connect(b).agency("City Hospital", "hospital")
    for n in range(ROUNDS):
        added = subprocess.run(
            [*CASENET, "workers", "add", agency["id"], f"Nurse {n}", "--role", "caseworker"],
            env=b.environ(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip().splitlines()[-1].split()[-1]
        assert connect(b, token).get("/v1/me")["agency"]["id"] == agency["id"]
