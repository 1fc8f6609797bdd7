"""Every way a ``casenet`` command can fail is one line on stderr and exit status 1.

Real processes, as an operator runs them: usage errors, unknown ids, bad URLs, an
unreachable database, a bad bundle, a file that cannot be written, a damaged store.
No traceback, no personal data, no secret.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import pytest

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails

CASENET = [sys.executable, "-m", "casenet.cli"]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
PASSWORD = "s3cret-pw"


def run(args: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``casenet ARGS``; a command that does not end (a server that should have
    refused to start) is killed with all its processes and fails the test."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    with subprocess.Popen(
        [*CASENET, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, **environ},
        start_new_session=True,  # its own process group: we can end all of it
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"casenet {' '.join(args)} did not end", pytrace=False)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_one_line(result: subprocess.CompletedProcess[str], *says: str) -> str:
    """Exit 1, nothing on stdout, one ``casenet: error:`` line on stderr naming ``says``."""
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr.startswith("casenet: error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    for words in says:
        assert words in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def dev(tmp_path: Path) -> dict[str, str]:
    """A development casenet on an SQLite file of this test's own."""
    return {"CASENET_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def public_key(tmp_path: Path) -> Path:
    key = tmp_path / "key.pub"
    key.write_text(base64.b64encode(bytes(range(32))).decode())
    return key


# --- usage errors: one line and exit 1 (argparse's own are three lines and exit 2) ----


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param([], "arguments are required: COMMAND", id="no-command"),
        pytest.param(["frobnicate"], "invalid choice", id="unknown-command"),
        pytest.param(["workers", "add", "not-an-id", "Ann", "--role", "admin"], "not an id",
                     id="workers-add-bad-agency-id"),
        pytest.param(["workers", "add", UNKNOWN_ID, "Ann", "--role", "boss"], "--role",
                     id="workers-add-bad-role"),
        pytest.param(["clients", "erase", "42"], "not an id", id="erase-bad-id"),
        pytest.param(["serve", "--port", "99999"], "not a TCP port", id="serve-bad-port"),
        pytest.param(["serve", "--workers", "0"], "--workers", id="serve-no-workers"),
        pytest.param(["audit", "export", "--out", "b", "--all", "--from",
                      "9999-12-31T23:59:59-01:00"], "2200", id="from-overflows"),
        pytest.param(["audit", "export", "--out", "b", "--all", "--to", "0001-01-01T00:00:00Z"],
                     "2200", id="to-too-early"),
        pytest.param(["audit", "export", "--all"], "--out", id="export-without-out"),
    ],
)
def test_a_usage_error_is_one_line_exit_1_and_touches_nothing(
    args: list[str], says: str, dev: dict[str, str], tmp_path: Path
) -> None:
    args = [str(tmp_path / "bundle") if arg == "b" else arg for arg in args]
    assert_one_line(run(args, dev), says, "--help")
    assert not (tmp_path / "bundle").exists()
    assert not (tmp_path / "data").exists(), "a usage error opens no store"


# --- what the operator named does not exist or cannot be used -------------------------


def test_unknown_ids_are_one_line_each(dev: dict[str, str]) -> None:
    assert_one_line(
        run(["workers", "add", UNKNOWN_ID, "Ann", "--role", "admin"], dev), "agency not found"
    )
    assert_one_line(run(["clients", "erase", UNKNOWN_ID], dev), "client not found")
    assert_one_line(run(["projections", "rebuild", "nosuch"], dev), "no read model named")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param(f"mysql://root:{PASSWORD}@db/casenet", "CASENET_DATABASE_URL", id="scheme"),
        pytest.param(f"postgresql://app:{PASSWORD}@db:port/x", "port", id="port"),
        pytest.param(f"postgresql://app:{PASSWORD}@127.0.0.1:1/casenet",
                     "cannot open the event store", id="unreachable"),
        pytest.param(f"postgresql://app:{PASSWORD}@nowhere.invalid:5432/casenet",
                     "cannot open the event store", id="unknown-host"),
    ],
)
def test_a_bad_or_unreachable_database_is_one_line_without_the_password(
    url: str, says: str, dev: dict[str, str]
) -> None:
    for args in (["agencies", "add", "X", "--kind", "ngo"], ["projections", "status"]):
        assert_one_line(run(args, {**dev, "CASENET_DATABASE_URL": url}), says)


def test_a_setting_that_does_not_parse_is_one_line(dev: dict[str, str]) -> None:
    assert_one_line(
        run(["projections", "status"], {**dev, "CASENET_AUTH_FAILURES_PER_MINUTE": "lots"}),
        "CASENET_AUTH_FAILURES_PER_MINUTE",
    )
    assert_one_line(
        run(["projections", "status"], {**dev, "CASENET_TRUSTED_PROXIES": "proxy.example"}),
        "CASENET_TRUSTED_PROXIES",
    )


def test_audit_verify_of_anything_but_a_bundle_is_one_line(
    dev: dict[str, str], public_key: Path, tmp_path: Path
) -> None:
    def verify(target: Path) -> str:
        return assert_one_line(
            run(["audit", "verify", str(target), "--public-key", str(public_key)], dev),
            "bundle does not verify",
        )

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no manifest.json" in verify(tmp_path / "absent")
    assert "no manifest.json" in verify(empty)
    archive = tmp_path / "empty.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(empty, arcname="casenet-audit")
    assert "the tar holds no bundle" in verify(archive)
    not_a_tar = tmp_path / "notes.txt"
    not_a_tar.write_text("not a bundle\n")
    assert "neither a bundle directory nor a tar" in verify(not_a_tar)
    hostile = tmp_path / "hostile.tar"
    with tarfile.open(hostile, "w") as tar:
        tar.add(not_a_tar, arcname="../escaped.txt")
    assert "cannot unpack" in verify(hostile)
    assert not (tmp_path.parent / "escaped.txt").exists()
    garbage_key = tmp_path / "garbage.pub"
    garbage_key.write_bytes(b"\xff\xfe not a key")
    assert_one_line(
        run(["audit", "verify", str(empty), "--public-key", str(garbage_key)], dev),
        "public key",
    )


def test_audit_export_to_a_place_it_cannot_write_is_one_line(
    dev: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the bundle's folder should be\n")
    out = blocker / "bundle"
    assert_one_line(
        run(["audit", "export", "--out", str(out), "--all"], dev), "audit export failed", str(out)
    )


# --- the unexpected: a failure no command foresaw ----------------------------------------


def test_a_damaged_store_is_one_line_naming_the_command_not_the_data(
    casenet: Casenet, casenet_environ: dict[str, str]
) -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    agency = casenet.agencies.register(OPERATOR_ACTOR, name="Eastside Welfare", kind="ngo")
    worker, _ = casenet.agencies.add_worker(
        OPERATOR_ACTOR, agency.id, name="Ann", role="caseworker"
    )
    actor = Actor(agency.id, worker.id, "caseworker")
    case = casenet.cases.open_case(
        actor, client=ClientDetails(name=canary), summary="s", needs=["housing"]
    )
    # An event the code cannot decode any more (a damaged disk, a bad manual edit).
    table = casenet.app.recorder.events_table_name  # type: ignore[attr-defined]
    casenet.app.database.run(
        f"UPDATE {table} SET state = %s WHERE originator_id = %s",
        (f'{{"name": "{canary}"}}'.encode(), case.client_id.hex),
        commit=True,
    )

    result = run(["clients", "erase", str(case.client_id)], casenet_environ)

    line = assert_one_line(result, "clients erase failed unexpectedly", "--debug")
    assert canary not in line
    debug = run(["--debug", "clients", "erase", str(case.client_id)], casenet_environ)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr, "--debug shows the traceback"


# --- demo: never in production, never over a store with agencies ------------------------


def test_demo_refuses_a_store_that_already_has_agencies(
    casenet: Casenet, casenet_environ: dict[str, str], open_casenet: Callable[[], Casenet]
) -> None:
    casenet.agencies.register(OPERATOR_ACTOR, name="A real agency", kind="ngo")
    before = _event_count(casenet)

    assert_one_line(run(["demo"], casenet_environ), "demo is refused", "already has agencies")

    assert _event_count(open_casenet()) == before, "the refused demo wrote nothing"


def test_demo_seeds_an_empty_store_once_then_refuses(casenet_environ: dict[str, str]) -> None:
    first = run(["demo"], casenet_environ)
    assert first.returncode == 0, first.stderr
    assert "casenet demo network" in first.stdout
    assert_one_line(run(["demo"], casenet_environ), "already has agencies")


def test_demo_is_refused_in_production(database_url: str, tmp_path: Path) -> None:
    production = {
        "CASENET_ENV": "production",
        "CASENET_DATABASE_URL": database_url,
        "CASENET_DATA_DIR": str(tmp_path / "data"),
        "CASENET_MASTER_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "CASENET_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "CASENET_OPERATOR_TOKEN": secrets.token_urlsafe(32),
    }

    assert_one_line(run(["demo"], production), "demo is refused when CASENET_ENV=production")

    status = run(["projections", "status"], production)
    assert status.returncode == 0, status.stderr
    assert all(" position 0 " in line for line in status.stdout.splitlines()), status.stdout


def _event_count(casenet: Casenet) -> int:
    table = casenet.app.recorder.events_table_name  # type: ignore[attr-defined]
    rows = casenet.app.database.run(f"SELECT COUNT(*) AS n FROM {table}", commit=False)
    return int(rows[0]["n"])


# --- production refuses weak secrets before it touches anything ------------------------


@pytest.mark.parametrize(
    "weak",
    [
        pytest.param({"CASENET_OPERATOR_TOKEN": "a" * 32}, id="token-a32"),
        pytest.param({"CASENET_OPERATOR_TOKEN": " " * 32}, id="token-spaces"),
        pytest.param({"CASENET_MASTER_KEYS": "k1:" + base64.b64encode(bytes(32)).decode()},
                     id="zero-master-key"),
        pytest.param({"CASENET_SIGNING_KEY": base64.b64encode(bytes(32)).decode()},
                     id="zero-signing-key"),
        pytest.param({"CASENET_DATABASE_URL": ""}, id="no-database-url"),
    ],
)
def test_production_with_a_weak_secret_refuses_to_serve(
    weak: dict[str, str], tmp_path: Path
) -> None:
    production = {
        "CASENET_ENV": "production",
        "CASENET_DATABASE_URL": f"sqlite:///{tmp_path / 'casenet.sqlite3'}",
        "CASENET_DATA_DIR": str(tmp_path / "data"),
        "CASENET_MASTER_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "CASENET_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "CASENET_OPERATOR_TOKEN": secrets.token_urlsafe(32),
        **weak,
    }
    production = {k: v for k, v in production.items() if v}

    line = assert_one_line(run(["serve", "--port", "1"], production), *weak)

    assert "production" in line
    assert not (tmp_path / "casenet.sqlite3").exists(), "refused before opening the store"


def test_keys_generate_prints_secrets_production_accepts(tmp_path: Path) -> None:
    generated = run(["keys", "generate"], {})
    assert generated.returncode == 0, generated.stderr
    secrets_ = dict(line.split("=", 1) for line in generated.stdout.splitlines())
    assert set(secrets_) == {
        "CASENET_MASTER_KEYS", "CASENET_SIGNING_KEY", "CASENET_OPERATOR_TOKEN",
    }
    production = {
        "CASENET_ENV": "production",
        "CASENET_DATABASE_URL": f"sqlite:///{tmp_path / 'casenet.sqlite3'}",
        "CASENET_DATA_DIR": str(tmp_path / "data"),
        **secrets_,
    }
    status = run(["keys", "status"], production)
    assert status.returncode == 0, status.stderr
    assert secrets_["CASENET_MASTER_KEYS"].split(":")[0] in status.stdout


def test_audit_verify_takes_the_tar_the_api_serves(
    casenet_environ: dict[str, str], tmp_path: Path
) -> None:
    assert run(["demo"], casenet_environ).returncode == 0
    bundle = tmp_path / "bundle"
    exported = run(["audit", "export", "--out", str(bundle), "--all"], casenet_environ)
    assert exported.returncode == 0, exported.stderr
    archive = tmp_path / f"casenet-audit-all-{uuid4()}.tar"
    with tarfile.open(archive, "w") as tar:  # as api/controllers/audit.py packs it
        tar.add(bundle, arcname="casenet-audit")

    verified = run(["audit", "verify", str(archive)], casenet_environ)

    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("verified ")
