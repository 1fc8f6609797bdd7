"""The consent audit as an operator and an auditor use it: real ``casenet`` processes.

Each test seeds a store with ``casenet demo`` (a subprocess with its own data dir and
every other ``CASENET_`` variable stripped), then exports with ``casenet audit export``
or over HTTP (``GET /v1/audit/export``, a tar), and checks the bundle offline with
``casenet audit verify`` and the public key that ``casenet audit public-key`` prints.
Once on SQLite (the default store in the data dir), once on PostgreSQL.
"""

from __future__ import annotations

import base64
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from litestar.testing import TestClient
from tests.support.cli import ok, run

from casenet.api.app import create_app
from casenet.infrastructure.audit_bundle import FILES
from casenet.settings import load_settings


@dataclass(frozen=True)
class Demo:
    """What ``casenet demo`` printed: ids and a token per worker (by name)."""

    case_id: str
    client_id: str
    consent_id: str
    tokens: dict[str, str]


def seed(data_dir: Path, store: dict[str, str]) -> Demo:
    out = ok(run(["demo"], data_dir, store))
    tokens = {}
    for name in ("Ana Welfare", "Sam Supervisor", "Ada Admin", "Aud Itor", "Hal Hospital",
                 "Hana Admin", "Sid School"):
        [line] = [line for line in out.splitlines() if f" {name} " in line]
        tokens[name] = line.split()[-1]
    [ids] = [line for line in out.splitlines() if line.startswith("case ")]
    words = ids.replace(",", "").replace("(", "").replace(")", "").split()
    # case ID client ID consent ID referral ID
    return Demo(case_id=words[1], client_id=words[3], consent_id=words[5], tokens=tokens)


class AuditCliContract:
    """Written once; each store's subclass gives ``store`` (extra environment)."""

    def test_export_verify_and_tamper_as_the_operator(
        self, tmp_path: Path, store: dict[str, str]
    ) -> None:
        data = tmp_path / "data"
        demo = seed(data, store)
        bundle = tmp_path / "bundle"
        out = ok(run(["audit", "export", "--out", str(bundle), "--all", "--html"], data, store))
        assert out.startswith(f"wrote {bundle}: 3 agencies, 1 cases, 1 consents, ")
        assert f"report: {bundle / 'report.html'}" in out
        assert sorted(p.name for p in bundle.iterdir()) == sorted(
            [*FILES, "manifest.json", "report.html"]
        )
        report = (bundle / "report.html").read_text()
        assert demo.case_id in report
        assert f"Reference {demo.consent_id}." in report
        # The worker who recorded the consent by name (from the directory), not by id.
        assert "Ana Welfare (caseworker), " in report

        key_text = ok(run(["audit", "public-key"], data, store)).strip()
        assert len(base64.b64decode(key_text, validate=True)) == 32
        key_file = tmp_path / "casenet.pub"
        key_file.write_text(key_text + "\n")

        verified = ok(run(["audit", "verify", str(bundle), "--public-key", str(key_file)],
                          data, store))
        # The one disclosure: the demo referral's reason, told the hospital.
        assert verified.startswith("verified 7 records (3 agencies.jsonl, 1 cases.jsonl, "
                                   "1 consents.jsonl, 1 disclosures.jsonl, 1 referrals.jsonl, "
                                   "0 erasures.jsonl); chain head ")
        assert "signed by key " in verified
        # Without --public-key: this casenet's own key.
        assert ok(run(["audit", "verify", str(bundle)], data, store)) == verified

        # Offline: with --public-key it needs nothing of the casenet (not even its store).
        elsewhere = run(["audit", "verify", str(bundle), "--public-key", str(key_file)],
                        tmp_path / "nowhere", {"CASENET_DATABASE_URL": "mysql://nothing"})
        assert ok(elsewhere) == verified

        # One byte of one record flipped: exit 1, one line that says where.
        consents = bundle / "consents.jsonl"
        original = consents.read_bytes()
        index = original.index(b'"purpose":"referral"') + len(b'"purpose":"')
        consents.write_bytes(original[:index] + b"R" + original[index + 1 :])
        failed = run(["audit", "verify", str(bundle), "--public-key", str(key_file)], data, store)
        assert failed.returncode == 1
        assert failed.stdout == ""
        assert failed.stderr.count("\n") == 1
        assert failed.stderr.startswith(
            "casenet: error: bundle does not verify: consents.jsonl line 1: "
        )
        assert "Traceback" not in failed.stderr
        consents.write_bytes(original)
        ok(run(["audit", "verify", str(bundle), "--public-key", str(key_file)], data, store))

        # Another casenet's public key: exit 1, the signature named.
        other_key = ok(run(["audit", "public-key"], tmp_path / "other", {})).strip()
        assert other_key != key_text
        other_file = tmp_path / "other.pub"
        other_file.write_text(other_key)
        refused = run(["audit", "verify", str(bundle), "--public-key", str(other_file)], data,
                      store)
        assert refused.returncode == 1
        assert refused.stderr == (
            "casenet: error: bundle does not verify: manifest.json: the signature does not "
            "match (edited, or signed with another key)\n"
        )

    def test_export_by_case_and_client_and_range(
        self, tmp_path: Path, store: dict[str, str]
    ) -> None:
        data = tmp_path / "data"
        demo = seed(data, store)
        for scope, expected in (
            (["--case", demo.case_id], "1 cases, 1 consents"),
            (["--client", demo.client_id], "1 cases, 1 consents"),
            (["--case", "00000000-0000-4000-8000-000000000000"], "0 cases, 0 consents"),
            (["--all", "--from", "2199-01-01T00:00:00Z"], "1 cases, 0 consents"),
            (["--all", "--to", "2000-01-01T00:00:00+00:00"], "1 cases, 0 consents"),
        ):
            out = ok(run(["audit", "export", "--out", str(tmp_path / "b"), *scope], data, store))
            assert f"3 agencies, {expected}, " in out, (scope, out)
            verified = ok(run(["audit", "verify", str(tmp_path / "b")], data, store))
            assert verified.startswith("verified ")

    def test_http_export_is_a_tar_that_verifies_and_only_the_owners_auditor_gets(
        self, tmp_path: Path, store: dict[str, str]
    ) -> None:
        data = tmp_path / "data"
        demo = seed(data, store)
        key_file = tmp_path / "casenet.pub"
        key_file.write_text(ok(run(["audit", "public-key"], data, store)))
        settings = load_settings({"CASENET_DATA_DIR": str(data), **store})

        def get(client: TestClient, token: str, **query: str):  # type: ignore[no-untyped-def]
            return client.get(
                "/v1/audit/export", params=query, headers={"Authorization": f"Bearer {token}"}
            )

        with TestClient(app=create_app(settings)) as client:
            auditor = demo.tokens["Aud Itor"]
            answer = get(client, auditor, case_id=demo.case_id)
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "application/x-tar"
            assert answer.headers["content-disposition"] == (
                f'attachment; filename="casenet-audit-case-{demo.case_id}.tar"'
            )
            by_client = get(client, auditor, client_id=demo.client_id)
            assert by_client.status_code == 200, by_client.text
            as_operator = get(client, settings.operator_token, case_id=demo.case_id)
            assert as_operator.status_code == 200, as_operator.text

            for name in ("Hal Hospital", "Hana Admin", "Sid School"):  # other agencies
                for query in ({"case_id": demo.case_id}, {"client_id": demo.client_id}):
                    refused = get(client, demo.tokens[name], **query)
                    assert refused.status_code == 404, (name, query, refused.text)
                    assert demo.case_id not in refused.text
            for name in ("Ana Welfare", "Sam Supervisor", "Ada Admin"):  # owner, not auditors
                refused = get(client, demo.tokens[name], case_id=demo.case_id)
                assert refused.status_code == 403, (name, refused.text)
            unknown = get(client, auditor, case_id="00000000-0000-4000-8000-000000000000")
            assert unknown.status_code == 404
            assert get(client, auditor).status_code == 422
            both = get(client, auditor, case_id=demo.case_id, client_id=demo.client_id)
            assert both.status_code == 422
            assert client.get(
                "/v1/audit/export", params={"case_id": demo.case_id}
            ).status_code == 401

        for label, tar_bytes in (("case", answer.content), ("client", by_client.content),
                                 ("operator", as_operator.content)):
            target = tmp_path / f"extracted-{label}"
            with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
                names = tar.getnames()
                tar.extractall(target, filter="data")
            assert sorted(names) == sorted(
                ["casenet-audit", *(f"casenet-audit/{n}" for n in [*FILES, "manifest.json"])]
            )
            verified = ok(run(["audit", "verify", str(target / "casenet-audit"),
                               "--public-key", str(key_file)], data, store))
            assert verified.startswith("verified 7 records (3 agencies.jsonl, 1 cases.jsonl, ")
        # The auditor's bundle names its agency's restriction in the signed scope.
        manifest = (tmp_path / "extracted-case" / "casenet-audit" / "manifest.json").read_text()
        assert '"owner_agency_id"' in manifest
        operator_manifest = (
            tmp_path / "extracted-operator" / "casenet-audit" / "manifest.json"
        ).read_text()
        assert '"owner_agency_id"' not in operator_manifest


class TestAuditCliOnSQLite(AuditCliContract):
    @pytest.fixture
    def store(self) -> dict[str, str]:
        return {}  # the default: casenet.sqlite3 in the data dir


@pytest.mark.postgres
class TestAuditCliOnPostgres(AuditCliContract):
    @pytest.fixture
    def store(self, postgres_database_url: str) -> dict[str, str]:
        return {"CASENET_DATABASE_URL": postgres_database_url}


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "export", "--out", "bundle"],
        ["audit", "export", "--out", "bundle", "--all", "--case",
         "00000000-0000-4000-8000-000000000000"],
        ["audit", "export", "--all"],
        ["audit", "export", "--out", "bundle", "--case", "not-an-id"],
        ["audit", "export", "--out", "bundle", "--all", "--from", "2025-01-01T00:00:00"],
        ["audit", "verify"],
    ],
)
def test_a_malformed_audit_command_is_a_usage_error(args: list[str], tmp_path: Path) -> None:
    result = run(args, tmp_path / "data", {})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("casenet: error: ")
    assert "(see: casenet audit" in result.stderr
    assert not (tmp_path / "data").exists(), "a usage error touches nothing"


def test_verify_of_a_folder_that_is_not_a_bundle_is_one_line(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pub"
    key_file.write_text(base64.b64encode(bytes(32)).decode())
    (tmp_path / "empty").mkdir()
    result = run(["audit", "verify", str(tmp_path / "empty"), "--public-key", str(key_file)],
                 tmp_path / "data", {})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "no manifest.json" in result.stderr
    missing_key = run(["audit", "verify", str(tmp_path / "empty"), "--public-key",
                       str(tmp_path / "absent.pub")], tmp_path / "data", {})
    assert missing_key.returncode == 1
    assert missing_key.stderr.count("\n") == 1
    assert "cannot read the public key file" in missing_key.stderr
