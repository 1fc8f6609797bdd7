"""The ``casenet`` command as an operator runs it: real processes, a real store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CASENET = [sys.executable, "-m", "casenet.cli"]


def run(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    environ.update({"CASENET_DATA_DIR": str(data_dir), **env})
    return subprocess.run(
        [*CASENET, *args], capture_output=True, text=True, env=environ, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "command",
    [[], ["serve"], ["agencies"], ["agencies", "add"], ["workers"], ["workers", "add"]],
)
def test_every_subcommand_explains_itself_with_help(command: list[str], tmp_path: Path) -> None:
    result = run([*command, "--help"], tmp_path)
    assert result.returncode == 0
    assert "usage: casenet" in result.stdout


def test_operator_registers_an_agency_and_a_worker_whose_token_is_printed_once(
    tmp_path: Path,
) -> None:
    agency = run(["agencies", "add", "Eastside Welfare", "--kind", "ngo"], tmp_path)
    assert agency.returncode == 0, agency.stderr
    agency_id = agency.stdout.strip()
    worker = run(["workers", "add", agency_id, "Ann Tan", "--role", "caseworker"], tmp_path)
    assert worker.returncode == 0, worker.stderr
    token = worker.stdout.strip().rsplit(" ", 1)[-1]
    assert len(token) >= 40
    store = (tmp_path / "casenet.sqlite3").read_bytes()
    assert token.encode() not in store, "the token must be stored only as a hash"


def test_a_malformed_database_url_is_one_readable_line_and_exit_1(tmp_path: Path) -> None:
    result = run(["agencies", "add", "X", "--kind", "ngo"], tmp_path, CASENET_DATABASE_URL="mysql://x")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("casenet: error: CASENET_DATABASE_URL")
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = "postgresql://casenet:s3cret-pw@127.0.0.1:1/casenet"
    result = run(["agencies", "add", "X", "--kind", "ngo"], tmp_path, CASENET_DATABASE_URL=url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cannot open the event store" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_a_domain_refusal_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run(
        ["workers", "add", "00000000-0000-0000-0000-000000000000", "Ann", "--role", "admin"],
        tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr == "casenet: error: agency not found\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_starts_prints_the_operator_token_and_answers_health(tmp_path: Path) -> None:
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    environ["CASENET_DATA_DIR"] = str(tmp_path)
    server = subprocess.Popen(
        [*CASENET, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environ,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline() + server.stdout.readline()
        token = (tmp_path / "operator_token").read_text().strip()
        assert token in banner
        assert f"http://127.0.0.1:{port}" in banner
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready") as answer:
                    assert answer.status == 200
                    assert b"ready" in answer.read()
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live") as answer:
            assert answer.status == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
