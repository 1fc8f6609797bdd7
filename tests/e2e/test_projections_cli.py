"""``casenet projections status|checksum|rebuild`` as an operator runs them, on SQLite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.bootstrap import build_casenet
from casenet.infrastructure.projections import read_models
from casenet.settings import load_settings

CASENET = [sys.executable, "-m", "casenet.cli"]
MODELS = [model.name for model in read_models()]
CHECKSUM_LINE = re.compile(r"^([a-z_]+) ([0-9a-f]{64})$")
STATUS_LINE = re.compile(r"^([a-z_]+) position (\d+) lag (\d+)( \(rebuilding\))?$")


def cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    environ["CASENET_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [*CASENET, "projections", *args], capture_output=True, text=True, env=environ,
        timeout=120, check=False,
    )


def open_store(data_dir: Path) -> Casenet:
    """The same store and keys the command uses (the data dir's defaults)."""
    return build_casenet(load_settings({"CASENET_DATA_DIR": str(data_dir)}))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir whose store holds a small network's history, read models not caught up."""
    casenet = open_store(tmp_path)
    try:
        welfare = casenet.agencies.register(OPERATOR_ACTOR, name="Welfare", kind="ngo")
        hospital = casenet.agencies.register(OPERATOR_ACTOR, name="Hospital", kind="hospital")
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, welfare.id, name="Wanjiru", role="caseworker"
        )
        actor = Actor(welfare.id, worker.id, "caseworker")
        for n in range(3):
            case = casenet.cases.open_case(
                actor, client=ClientDetails(name=f"Client {n}"), summary="Rent", needs=["housing"]
            )
            casenet.cases.add_note(actor, case.id, category="general", text="First visit")
            consent = casenet.consents.grant(
                actor, case.id, grantee_agency_id=hospital.id, sections=["needs"],
                purpose="referral", method="verbal",
            )
            casenet.referrals.request(
                actor, case_id=case.id, to_agency_id=hospital.id, service_type="housing",
                reason="Rent", urgency="routine", consent_id=consent.id,
            )
    finally:
        casenet.close()
    return tmp_path


def head_of(data_dir: Path) -> int:
    casenet = open_store(data_dir)
    try:
        return casenet.app.projections.head()
    finally:
        casenet.close()


def parse_checksums(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    matches = [CHECKSUM_LINE.match(line) for line in lines]
    assert all(matches), f"not NAME SHA256: {lines!r}"
    return {m.group(1): m.group(2) for m in matches if m}


def test_status_prints_one_line_per_read_model_with_its_lag(data_dir: Path) -> None:
    head = head_of(data_dir)

    result = cli(["status"], data_dir)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    matches = [STATUS_LINE.match(line) for line in lines]
    assert all(matches), lines
    rows = [(m.group(1), int(m.group(2)), int(m.group(3))) for m in matches if m]
    assert [name for name, _, _ in rows] == MODELS
    for _, position, lag in rows:  # the last writes were never caught up
        assert position < head
        assert lag == head - position


def test_rebuild_prints_each_model_and_its_position_then_status_shows_no_lag(
    data_dir: Path,
) -> None:
    head = head_of(data_dir)

    result = cli(["rebuild"], data_dir)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{name} rebuilt to position {head}" for name in MODELS]
    status = cli(["status"], data_dir).stdout.splitlines()
    assert status == [f"{name} position {head} lag 0" for name in MODELS]


def positions(data_dir: Path) -> dict[str, int]:
    lines = cli(["status"], data_dir).stdout.splitlines()
    return {m.group(1): int(m.group(2)) for m in map(STATUS_LINE.match, lines) if m}


def test_rebuild_of_one_named_model_rebuilds_only_that_one(data_dir: Path) -> None:
    head = head_of(data_dir)
    before = positions(data_dir)
    assert before["consents"] < head

    result = cli(["rebuild", "consents"], data_dir)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"consents rebuilt to position {head}"]
    assert positions(data_dir) == {**before, "consents": head}


def test_checksum_prints_name_and_sha256_per_model_equal_to_the_live_read_models(
    data_dir: Path,
) -> None:
    before_catch_up = parse_checksums(cli(["checksum"], data_dir).stdout)
    casenet = open_store(data_dir)
    try:
        casenet.app.projections.ensure_current()
        live = {n: casenet.app.projections.checksum(n) for n in MODELS}
    finally:
        casenet.close()

    result = cli(["checksum"], data_dir)

    assert result.returncode == 0, result.stderr
    assert list(parse_checksums(result.stdout)) == MODELS
    assert parse_checksums(result.stdout) == live
    assert before_catch_up["cases"] != live["cases"], "the models were empty before catching up"
    assert cli(["rebuild"], data_dir).returncode == 0
    assert parse_checksums(cli(["checksum"], data_dir).stdout) == live


def test_checksum_of_named_models_prints_only_those(data_dir: Path) -> None:
    result = cli(["checksum", "referrals", "cases"], data_dir)

    assert result.returncode == 0, result.stderr
    assert list(parse_checksums(result.stdout)) == ["referrals", "cases"]


@pytest.mark.parametrize("action", ["checksum", "rebuild"])
def test_an_unknown_read_model_is_one_line_on_stderr_and_exit_1(
    action: str, data_dir: Path
) -> None:
    before = positions(data_dir)

    result = cli([action, "cases", "no_such_model"], data_dir)

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("casenet: error: no read model named 'no_such_model'")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert positions(data_dir) == before, "nothing rebuilt, not even the known model"


@pytest.mark.parametrize("action", ["status", "checksum", "rebuild"])
def test_each_projections_command_explains_itself(action: str, tmp_path: Path) -> None:
    result = cli([action, "--help"], tmp_path)

    assert result.returncode == 0
    assert f"usage: casenet projections {action}" in result.stdout
