"""``casenet directory import`` and ``export`` as they are run: real processes on each
store. A bad file is one line and exit 1 with nothing written; a second import changes
nothing; the exported JSON validates against HSDS 3.0 and imports elsewhere unchanged."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from uuid import uuid4

import pytest
from tests.support.cli import ok, run
from tests.support.hsds import hsds_errors

DIRECTORY = [
    {
        "id": str(uuid4()),
        "name": "Riverside Clinic",
        "description": "A community clinic.",
        "services": [
            {
                "name": "Evening appointments",
                "status": "active",
                "languages": [{"id": str(uuid4()), "code": "sw"}],
                "attributes": [{"id": str(uuid4()), "link_type": "need", "value": "health"}],
            }
        ],
    }
]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("casenet: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


class DirectoryCliContract:
    """Written once; each store's subclass gives ``store`` (extra environment)."""

    def test_import_twice_then_export(self, tmp_path: Path, store: dict[str, str]) -> None:
        source = tmp_path / "directory.json"
        source.write_text(json.dumps(DIRECTORY))

        first = ok(run(["directory", "import", str(source)], tmp_path, store))
        again = ok(run(["directory", "import", str(source)], tmp_path, store))
        exported = json.loads(ok(run(["directory", "export"], tmp_path, store)))

        assert "1 agencies created" in first
        assert "0 agencies created, 0 updated, 1 unchanged" in again
        assert hsds_errors("organization_package.json", exported) == []
        assert [o["id"] for o in exported] == [DIRECTORY[0]["id"]]
        out = tmp_path / "out.json"
        ok(run(["directory", "export", "--format", "json", "--out", str(out)], tmp_path, store))
        assert json.loads(out.read_text()) == exported

    @pytest.mark.parametrize(
        "content",
        [
            "not json",
            '{"an": "object"}',
            json.dumps([DIRECTORY[0], {"name": "No need", "services": [{"name": "S"}]}]),
        ],
    )
    def test_a_bad_file_is_one_line_and_writes_nothing(
        self, tmp_path: Path, store: dict[str, str], content: str
    ) -> None:
        source = tmp_path / "bad.json"
        source.write_text(content)

        one_line_error(run(["directory", "import", str(source)], tmp_path, store))

        assert ok(run(["agencies", "list"], tmp_path, store)) == ""

    def test_a_missing_file_is_one_line(self, tmp_path: Path, store: dict[str, str]) -> None:
        error = one_line_error(
            run(["directory", "import", str(tmp_path / "nowhere.json")], tmp_path, store)
        )
        assert "nowhere.json" in error


class TestDirectoryCliOnSQLite(DirectoryCliContract):
    @pytest.fixture
    def store(self) -> dict[str, str]:
        return {}  # the default: casenet.sqlite3 in the data dir


@pytest.mark.postgres
class TestDirectoryCliOnPostgres(DirectoryCliContract):
    @pytest.fixture
    def store(self, postgres_database_url: str) -> dict[str, str]:
        return {"CASENET_DATABASE_URL": postgres_database_url}
