"""A real ``casenet serve`` with ``CASENET_LOG_FORMAT=json``: its stderr holds one JSON
access line per request, with every field, and none of the values the requests carried.

Its own process (not ``live_server``): stderr is read apart from stdout, and the server
is started with the log settings. A bad log setting is refused at start with one line.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

CASENET = [sys.executable, "-m", "casenet.cli"]
OPERATOR_TOKEN = "e2e-log-operator-" + secrets.token_urlsafe(32)
READY_TIMEOUT = 60.0

ACCESS_FIELDS = {"time", "level", "logger", "message", "method", "route", "status"}
ACCESS_FIELDS |= {"duration_ms", "request_id"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environ(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    return {
        **clean,
        "CASENET_DATABASE_URL": database_url,
        "CASENET_DATA_DIR": str(data_dir),
        "CASENET_OPERATOR_TOKEN": OPERATOR_TOKEN,
        **settings,
    }


def serve_and_call(
    database_url: str, tmp_path: Path, calls: list[tuple[str, str, dict[str, Any]]]
) -> tuple[list[httpx.Response], str]:
    """Start a json-logging server, make ``calls`` (after readiness), stop it (SIGTERM:
    the log is flushed), and give the answers and the server's stderr."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [*CASENET, "serve", "--port", str(port)],
            stdout=out,
            stderr=err,
            env=environ(database_url, tmp_path / "data", CASENET_LOG_FORMAT="json"),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            assert process.poll() is None, stderr.read_text()
            try:
                if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=30) as client:
            answers = [client.request(m, path, **kwargs) for m, path, kwargs in calls]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
    lines = stderr.read_text().splitlines()
    # Not the readiness probes': counting them when ready raced their last line's write.
    access = [
        line
        for line in lines
        if '"casenet.access"' in line and json.loads(line)["route"] != "/health/live"
    ]
    return answers, "\n".join(access)


def test_a_real_server_writes_one_json_access_line_per_request_and_no_canary(
    module_database_url: str, tmp_path: Path
) -> None:
    canary = f"canary{uuid4().hex}"
    token, query, body = f"{canary}token", f"{canary}query", f"{canary}body"
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/agencies", {"headers": operator, "json": {"name": body, "kind": "ngo"}}),
        ("GET", f"/v1/cases?q={query}", {"headers": {"Authorization": f"Bearer {token}"}}),
        ("GET", f"/nowhere/{query}", {"headers": {"X-Request-Id": "given-id.1"}}),
        ("GET", "/metrics", {"headers": operator}),
    ]
    answers, access = serve_and_call(module_database_url, tmp_path, calls)
    assert [a.status_code for a in answers] == [201, 401, 404, 200]
    lines = [json.loads(line) for line in access.splitlines() if line]
    assert len(lines) == len(calls), access
    for line, answer, (method, _, _) in zip(lines, answers, calls, strict=True):
        assert line.keys() >= ACCESS_FIELDS
        assert (line["method"], line["status"]) == (method, answer.status_code)
        assert line["request_id"] == answer.headers["x-request-id"]
    assert [line["route"] for line in lines] == [
        "/v1/agencies",
        "/v1/cases",
        "(unmatched)",
        "/metrics",
    ]
    assert lines[2]["request_id"] == "given-id.1"
    everything = (tmp_path / "stderr.log").read_text() + (tmp_path / "stdout.log").read_text()
    for value in (canary, token, query, body, OPERATOR_TOKEN):
        assert value not in everything


@pytest.mark.parametrize(
    ("setting", "value"), [("CASENET_LOG_LEVEL", "verbose"), ("CASENET_LOG_FORMAT", "xml")]
)
def test_a_bad_log_setting_is_one_line_at_start(
    tmp_path: Path, setting: str, value: str
) -> None:
    result = subprocess.run(
        [*CASENET, "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path, **{setting: value}),
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"casenet: error: {setting} must be one of")
