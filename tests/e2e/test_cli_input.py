"""The CLI refuses what the API refuses: the same domain rules, one line, exit 1.

``casenet agencies add`` and ``workers add`` with a control character in a name, or a
kind with a trailing newline, write nothing; ``audit export --from/--to`` refuses a
timestamp out of 1900-2200 UTC (a usage error, as any malformed timestamp there).
Real processes, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CASENET = [sys.executable, "-m", "casenet.cli"]
Run = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="module")
def run(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    data_dir = tmp_path_factory.mktemp("cli-data")

    def casenet(*args: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
        environ.update(CASENET_DATA_DIR=str(data_dir), CASENET_DATABASE_URL=module_database_url)
        return subprocess.run(
            [*CASENET, *args], capture_output=True, text=True, env=environ, timeout=120, check=False
        )

    return casenet


def refused_in_one_line(result: subprocess.CompletedProcess[str], field: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"casenet: error: {field}:"), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("character", ["\x01", "\x1b", "\x7f", "\x85"], ids=repr)
def test_a_control_character_in_a_name_is_one_line_and_exit_1(run: Run, character: str) -> None:
    refused_in_one_line(run("agencies", "add", f"East{character}side", "--kind", "ngo"), "name")
    agency = run("agencies", "add", "Eastside", "--kind", "ngo")
    assert agency.returncode == 0, agency.stderr
    agency_id = agency.stdout.strip()
    refused_in_one_line(
        run("workers", "add", agency_id, f"Ann{character}Tan", "--role", "admin"), "name"
    )
    status = run("projections", "status")
    assert status.returncode == 0, status.stderr


@pytest.mark.parametrize("kind", ["ngo\n", "ngo ", "NGO", "ngo\r"], ids=repr)
def test_a_kind_must_be_a_whole_code(run: Run, kind: str) -> None:
    refused_in_one_line(run("agencies", "add", "Eastside", "--kind", kind), "kind")


def test_tab_and_newline_are_accepted_in_names(run: Run) -> None:
    agency = run("agencies", "add", "East\tside\nWelfare", "--kind", "ngo")
    assert agency.returncode == 0, agency.stderr


@pytest.mark.parametrize(
    "instant", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2200-01-01T00:00:00Z"]
)
def test_audit_export_refuses_a_timestamp_out_of_range(
    run: Run, instant: str, tmp_path: Path
) -> None:
    for option in ("--from", "--to"):
        result = run("audit", "export", "--out", str(tmp_path / "bundle"), "--all", option, instant)
        assert result.returncode == 1  # a usage error: one line, exit 1 (test_cli_failures)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert "2200-01-01" in result.stderr
        assert not (tmp_path / "bundle").exists()
