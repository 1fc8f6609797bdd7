"""The checked-in schemas (events and OpenAPI) are what the code generates now."""

from __future__ import annotations

from pathlib import Path

from casenet.schemas import expected_files

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_checked_in_schemas_match_the_code_run_make_schemas_if_not() -> None:
    expected = expected_files()
    on_disk = {
        str(path.relative_to(SCHEMAS)): path.read_text()
        for path in SCHEMAS.rglob("*.json")
    }
    assert sorted(on_disk) == sorted(expected), "schema files added or removed: make schemas"
    stale = [name for name, content in expected.items() if on_disk[name] != content]
    assert stale == [], f"stale schemas (run `make schemas`): {stale}"


def test_every_personal_field_is_marked_in_the_event_schemas() -> None:
    expected = expected_files()
    client_registered = expected["events/ClientRegistered.json"]
    for field in ("name", "date_of_birth", "phone", "address"):
        assert f'"{field}"' in client_registered
    assert client_registered.count('"x-personal": true') == 4
