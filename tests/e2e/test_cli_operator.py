"""The operator's commands as they are run: real ``casenet`` processes on each store.

``--version``, ``migrate``, ``agencies list``, ``workers list`` and ``workers revoke``,
``serve`` on a taken port, and ``audit verify`` of the tar ``GET /v1/audit/export``
serves (as it is, and gzipped). Each command runs with its own data dir and every other
``CASENET_`` variable stripped; the SQLite store is the data dir's default file, the
PostgreSQL one a fresh database per test.
"""

from __future__ import annotations

import gzip
import socket
import subprocess
from pathlib import Path
from uuid import uuid4

import pytest
from litestar.testing import TestClient
from tests.support.cli import ok, run

import casenet
from casenet.api.app import create_app
from casenet.bootstrap import build_casenet
from casenet.settings import load_settings


def one_line_error(result: subprocess.CompletedProcess[str], *, starts: str = "") -> str:
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"casenet: error: {starts}"), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "command",
    [["migrate"], ["agencies", "list"], ["workers", "list"], ["workers", "revoke"]],
)
def test_each_new_command_explains_itself(command: list[str], tmp_path: Path) -> None:
    result = run([*command, "--help"], tmp_path / "data", {})
    assert ok(result).startswith(f"usage: casenet {' '.join(command)}")


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = run(["--version"], tmp_path / "data", {})
    assert ok(result) == f"casenet {casenet.__version__}\n"
    assert not (tmp_path / "data").exists(), "--version opens no store"


def test_serve_on_a_taken_port_is_one_line_before_the_server_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve", "--port", str(port)], tmp_path / "data", {})
    one_line_error(result, starts=f"port {port} on 127.0.0.1 is in use")
    assert result.stdout == "", "no banner: granian never started"


def test_migrate_on_an_unreachable_store_is_one_line(tmp_path: Path) -> None:
    store = {"CASENET_DATABASE_URL": "postgresql://casenet:pw-s3cret@127.0.0.1:1/casenet"}
    error = one_line_error(run(["migrate"], tmp_path, store), starts="cannot open")
    assert "pw-s3cret" not in error


class OperatorCliContract:
    """Written once; each store's subclass gives ``store`` (extra environment)."""

    def test_migrate_creates_the_tables_then_finds_them_current(
        self, tmp_path: Path, store: dict[str, str]
    ) -> None:
        first = ok(run(["migrate"], tmp_path, store))
        assert first.startswith("created the tables (schema ")
        fingerprint = first.strip().removeprefix("created the tables (schema ").rstrip(")")
        assert len(fingerprint) == 12
        again = ok(run(["migrate"], tmp_path, store))
        assert again == f"the tables are current (schema {fingerprint})\n"

        # An older version's schema (another fingerprint recorded): upgraded, then current.
        services = build_casenet(load_settings({"CASENET_DATA_DIR": str(tmp_path), **store}))
        try:
            services.app.database.record_schema_fingerprint("0" * 64)
        finally:
            services.close()
        upgraded = ok(run(["migrate"], tmp_path, store))
        assert upgraded == f"upgraded the tables (schema {'0' * 12} to {fingerprint})\n"
        assert ok(run(["migrate"], tmp_path, store)).startswith("the tables are current")

    def test_agencies_list_is_one_line_per_agency_by_id(
        self, tmp_path: Path, store: dict[str, str]
    ) -> None:
        assert ok(run(["agencies", "list"], tmp_path, store)) == ""
        shelter = ok(run(["agencies", "add", "Harbour Shelter", "--kind", "shelter",
                          "--restricted"], tmp_path, store)).strip()
        school = ok(run(["agencies", "add", "Hill School", "--kind", "school"],
                        tmp_path, store)).strip()
        lines = ok(run(["agencies", "list"], tmp_path, store)).splitlines()
        assert lines == sorted(
            [f"{shelter} shelter restricted Harbour Shelter", f"{school} school open Hill School"]
        )

    def test_workers_list_and_revoke_as_the_api_does(
        self, tmp_path: Path, store: dict[str, str]
    ) -> None:
        agency = ok(run(["agencies", "add", "Eastside", "--kind", "ngo"], tmp_path, store)).strip()
        workers: dict[str, tuple[str, str]] = {}  # name -> (id, token)
        for name, role in (("Ann Admin", "admin"), ("Bo Leaving", "caseworker")):
            out = ok(run(["workers", "add", agency, name, "--role", role], tmp_path, store))
            workers[name] = (out.split()[1], out.split()[-1])
        (ann, ann_token), (bo, bo_token) = workers["Ann Admin"], workers["Bo Leaving"]

        revoked = ok(run(["workers", "revoke", bo], tmp_path, store))
        assert revoked == f"worker {bo} (caseworker) of agency {agency} revoked\n"
        # Another process, right after: the token stopped, the other still works.
        services = build_casenet(load_settings({"CASENET_DATA_DIR": str(tmp_path), **store}))
        try:
            assert services.directory.authenticate(bo_token) is None
            still = services.directory.authenticate(ann_token)
            assert still is not None
            assert str(still.worker_id) == ann
        finally:
            services.close()

        listed = ok(run(["workers", "list", agency], tmp_path, store))
        assert listed.splitlines() == [
            f"{ann} admin active Ann Admin",
            f"{bo} caseworker revoked Bo Leaving",
        ]
        assert ann_token not in listed
        assert bo_token not in listed

        one_line_error(run(["workers", "revoke", bo], tmp_path, store), starts="worker is revoked")
        one_line_error(run(["workers", "revoke", str(uuid4())], tmp_path, store),
                       starts="worker not found")
        one_line_error(run(["workers", "list", str(uuid4())], tmp_path, store),
                       starts="agency not found")
        for args in (["workers", "list", "nope"], ["workers", "revoke", "nope"]):
            one_line_error(run(args, tmp_path, store), starts="argument")

    def test_audit_verify_takes_the_served_tar_and_a_gzip_of_it(
        self, tmp_path: Path, store: dict[str, str]
    ) -> None:
        out = ok(run(["demo"], tmp_path, store))
        [ids] = [line for line in out.splitlines() if line.startswith("case ")]
        case_id = ids.split()[1].strip(",()")
        settings = load_settings({"CASENET_DATA_DIR": str(tmp_path), **store})
        with TestClient(app=create_app(settings)) as client:
            answer = client.get(
                "/v1/audit/export",
                params={"case_id": case_id},
                headers={"Authorization": f"Bearer {settings.operator_token}"},
            )
        assert answer.status_code == 200, answer.text
        served = tmp_path / "export.tar"
        served.write_bytes(answer.content)
        zipped = tmp_path / "export.tar.gz"
        zipped.write_bytes(gzip.compress(answer.content))
        for bundle in (served, zipped):
            verified = ok(run(["audit", "verify", str(bundle)], tmp_path, store))
            assert verified.startswith("verified 7 records (3 agencies.jsonl, 1 cases.jsonl, ")

        cut = tmp_path / "cut.tar"
        cut.write_bytes(answer.content[: len(answer.content) // 2])
        one_line_error(run(["audit", "verify", str(cut)], tmp_path, store),
                       starts="bundle does not verify")


class TestOperatorCliOnSQLite(OperatorCliContract):
    @pytest.fixture
    def store(self) -> dict[str, str]:
        return {}  # the default: casenet.sqlite3 in the data dir


@pytest.mark.postgres
class TestOperatorCliOnPostgres(OperatorCliContract):
    @pytest.fixture
    def store(self, postgres_database_url: str) -> dict[str, str]:
        return {"CASENET_DATABASE_URL": postgres_database_url}
