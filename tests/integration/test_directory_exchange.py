"""A network started from an existing directory, and its directory handed on, on both
stores: HSDS 3.0 JSON imported (checked whole first, idempotent), exported as JSON that
validates against the spec and round-trips, and as a tabular data package that passes
``frictionless``."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import frictionless
import msgspec
import pytest
from tests.support.hsds import hsds_errors

from casenet.application import OPERATOR_ACTOR, Casenet
from casenet.application.hsds_tabular import TABLES
from casenet.bootstrap import build_casenet
from casenet.cli import main
from casenet.domain.agency import Agency
from casenet.domain.errors import InvalidInput
from casenet.settings import load_settings

CLINIC_ID = str(uuid4())
SERVICE_ID = str(uuid4())


def a_211_directory() -> list[dict[str, Any]]:
    """Two organizations as another directory exports them: its own ids, a need as a
    taxonomy code, a closed service, a contact with a phone."""
    return [
        {
            "id": CLINIC_ID,
            "name": "Riverside Clinic",
            "description": "A community clinic.",
            "services": [
                {
                    "id": SERVICE_ID,
                    "name": "Evening appointments",
                    "description": "Appointments after 6 pm for carers who work days.",
                    "status": "active",
                    "eligibility_description": "Carers.",
                    "languages": [{"id": str(uuid4()), "code": "sw"}],
                    "service_areas": [{"id": str(uuid4()), "name": "Riverside"}],
                    "contacts": [
                        {
                            "id": str(uuid4()),
                            "name": "Hal Hospital",
                            "title": "Social worker",
                            "email": "hal@example.org",
                            "phones": [{"id": str(uuid4()), "number": "+254 20 555 0101"}],
                        }
                    ],
                    "attributes": [
                        {
                            "id": str(uuid4()),
                            "taxonomy_term": {"id": str(uuid4()), "code": "health"},
                        }
                    ],
                }
            ],
        },
        {
            "name": "Food Bank",
            "description": "Parcels on Fridays.",
            "services": [
                {
                    "name": "Food parcels",
                    "status": "temporarily closed",
                    "attributes": [{"id": str(uuid4()), "link_type": "need", "value": "food"}],
                }
            ],
        },
    ]


def import_json(casenet: Casenet, document: Any) -> Any:
    return casenet.directory_exchange.import_document(OPERATOR_ACTOR, json.dumps(document).encode())


def export(casenet: Casenet) -> list[dict[str, Any]]:
    exported: list[dict[str, Any]] = msgspec.to_builtins(
        casenet.directory_exchange.export(OPERATOR_ACTOR)
    )
    return exported


def test_an_import_creates_the_agencies_and_a_second_import_writes_nothing(
    casenet: Casenet,
) -> None:
    first = import_json(casenet, a_211_directory())
    versions = {a.id: a.version for a in casenet.directory.every_agency()}
    again = import_json(casenet, a_211_directory())

    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert {a.id: a.version for a in casenet.directory.every_agency()} == versions
    clinic = casenet.app.get(Agency, UUID(CLINIC_ID))  # the HSDS id became the agency's id
    [service] = clinic.services
    assert str(service.id) == SERVICE_ID
    assert (service.needs, service.languages, service.areas) == (
        ("health",),
        ("sw",),
        ("Riverside",),
    )
    assert service.contacts[0].phone == "+254 20 555 0101"
    [food] = next(a for a in casenet.directory.every_agency() if a.name == "Food Bank").services
    assert (food.needs, food.capacity, food.description) == (
        ("food",),
        "not_accepting",
        "Food parcels",
    )


def test_an_organization_matched_by_name_has_its_services_updated(casenet: Casenet) -> None:
    import_json(casenet, a_211_directory())
    changed = a_211_directory()
    changed[1]["services"][0]["status"] = "active"

    summary = import_json(casenet, changed)

    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 1)
    [food] = next(a for a in casenet.directory.every_agency() if a.name == "Food Bank").services
    assert food.capacity == "accepting"


@pytest.mark.parametrize(
    ("spoil", "field"),
    [
        (
            lambda d: d[1]["services"][0].update(attributes=[]),
            "organization 2 ('Food Bank'): services.needs",
        ),
        (
            lambda d: d[0]["services"][0]["languages"][0].update(code="english!"),
            "services.languages",
        ),
        (lambda d: d[1].update(name=" "), "organization 2"),
        (lambda d: d.append(dict(d[1])), "organization 3 ('Food Bank'): name"),
        (lambda d: d[0].update(name=7), "file"),
    ],
)
def test_a_bad_file_is_refused_whole_and_writes_nothing(
    casenet: Casenet, spoil: Callable[[list[dict[str, Any]]], None], field: str
) -> None:
    document = a_211_directory()
    spoil(document)

    with pytest.raises(InvalidInput) as refused:
        import_json(casenet, document)

    assert field in str(refused.value)
    assert "\n" not in str(refused.value)
    assert casenet.directory.every_agency() == []


def test_the_export_validates_and_round_trips_through_another_network(
    casenet: Casenet, another_database_url: str, tmp_path: Path
) -> None:
    import_json(casenet, a_211_directory())
    restricted = casenet.agencies.register(
        OPERATOR_ACTOR, name="Refuge", kind="shelter", restricted=True
    )
    exported = export(casenet)

    assert hsds_errors("organization_package.json", exported) == []
    for organization in exported:
        assert hsds_errors("organization.json", organization) == []
    refuge = next(o for o in exported if o["id"] == str(restricted.id))
    assert {a["link_type"]: a["value"] for a in refuge["attributes"]}["restricted"] == "true"

    elsewhere = build_casenet(
        load_settings(
            {"CASENET_DATABASE_URL": another_database_url, "CASENET_DATA_DIR": str(tmp_path / "x")}
        )
    )
    try:
        assert import_json(elsewhere, exported).created == 3
        assert export(elsewhere) == exported
        assert elsewhere.app.get(Agency, restricted.id).restricted is True
    finally:
        elsewhere.close()


def test_the_csv_package_the_command_writes_passes_frictionless(
    casenet: Casenet,
    casenet_environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import_json(casenet, a_211_directory())
    for name, value in casenet_environ.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "package"

    assert main(["directory", "export", "--format", "csv", "--out", str(out)]) == 0
    report = frictionless.validate(str(out / "datapackage.json"))

    assert report.valid, report.flatten(["title", "message"])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["datapackage.json", *(f"{table}.csv" for table in TABLES)]
    )
    with (out / "services.csv").open(encoding="utf-8") as file:
        services = {row["name"]: row for row in csv.DictReader(file)}
    assert services["Evening appointments"]["organization_id"] == CLINIC_ID
    with (out / "languages.csv").open(encoding="utf-8") as file:
        assert [row["code"] for row in csv.DictReader(file)] == ["sw"]
    assert main(["directory", "export", "--format", "csv"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
