"""``CASENET_PROJECTIONS_IN_SERVER=false``: the server keeps no read model current by itself.

What nobody reads stays behind the log while the server runs; reads still see every
write (they catch up what they query); a ``casenet projections run`` process, started
beside it, brings every model to the head.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from tests.api.conftest import AppServer

APP_ENVIRON = {"CASENET_PROJECTIONS_IN_SERVER": "false"}
#: How long the server is left alone: many times its runner's interval (0.1 s).
LEFT_ALONE = 1.5


def lags(app_server: AppServer) -> dict[str, int]:
    return {status.name: status.lag for status in app_server.casenet.projections.status()}


def test_read_models_stay_behind_until_a_projections_worker_runs(
    operator: Any, app_server: AppServer
) -> None:
    agency = operator.agency("Lonely NGO", "ngo")
    worker = operator.worker(agency, "caseworker")
    case = worker.post("/v1/cases", {"client": {"name": "Ola"}, "summary": "s"})
    assert worker.get(f"/v1/cases/{case['id']}")["id"] == case["id"]  # read your writes

    time.sleep(LEFT_ALONE)
    behind = {name: lag for name, lag in lags(app_server).items() if lag > 0}
    assert "network_metrics" in behind, lags(app_server)  # nobody read it: nobody ran it

    settings = app_server.settings
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    environ.update(
        CASENET_DATABASE_URL=settings.database.url,
        CASENET_DATA_DIR=str(settings.data_dir),
        CASENET_OPERATOR_TOKEN=settings.operator_token,
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "casenet.cli", "projections", "run", "--interval", "0.1"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while any(lags(app_server).values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(lags(app_server).values()), lags(app_server)
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        runner.wait(timeout=20)
