"""An agency of the network: registration, workers and their roles, the services it offers."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import msgspec
import pytest

from casenet.domain.agency import (
    Agency,
    AgencyRegistered,
    Service,
    ServicesReplaced,
    WorkerAdded,
    WorkerRevoked,
)
from casenet.domain.aggregate import Aggregate, project_aggregate
from casenet.domain.errors import IllegalTransition, InvalidInput

SHELTER_SERVICE = Service.of_type(type="housing", description="Beds for women and children")


def without_ids(services: tuple[Service, ...]) -> tuple[Service, ...]:
    """The services as sent: the agency gives each an id."""
    assert all(s.id is not None for s in services)
    return tuple(msgspec.structs.replace(s, id=None) for s in services)


def state(value: Any) -> Any:
    """Everything an aggregate holds, as comparable plain values (for replay checks)."""
    if isinstance(value, Aggregate):
        return {k: state(v) for k, v in vars(value).items() if k != "_pending_events"}
    if isinstance(value, dict):
        return {k: state(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [state(v) for v in value]
    if type(value).__module__.startswith("casenet.") and hasattr(value, "__slots__"):
        return {k: state(getattr(value, k)) for k in value.__slots__}
    return value


def registered(**overrides: Any) -> Agency:
    fields: dict[str, Any] = {"name": "Harbour House", "kind": "ngo"}
    fields.update(overrides)
    agency = Agency.register(**fields)
    agency.collect_events()
    return agency


def test_registering_records_agency_registered_with_its_services() -> None:
    agency = Agency.register(
        name="Harbour House", kind="dv_shelter", restricted=True, services=[SHELTER_SERVICE]
    )

    [event] = agency.collect_events()

    assert type(event) is AgencyRegistered
    assert (event.originator_id, event.originator_version) == (agency.id, 1)
    assert (event.name, event.kind, event.restricted) == ("Harbour House", "dv_shelter", True)
    assert without_ids(event.services) == (SHELTER_SERVICE,)
    assert (agency.restricted, agency.services, agency.workers) == (True, event.services, {})


def test_an_agency_is_not_restricted_unless_registered_so() -> None:
    assert registered().restricted is False


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"kind": "NGO"}, "kind"),
        ({"services": [Service.of_type(type="shelter beds", description="x")]}, "services.needs"),
        ({"services": [Service.of_type(type="housing", description="  ")]}, "services.description"),
        (
            {"services": [Service.of_type(type="housing", description="x", area=" ")]},
            "services.areas",
        ),
    ],
)
def test_an_agency_with_invalid_details_is_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        Agency.register(**{"name": "Harbour House", "kind": "ngo", **overrides})
    assert raised.value.field == field


@pytest.mark.parametrize("role", ["caseworker", "supervisor", "admin", "auditor"])
def test_a_worker_of_every_role_is_added_with_only_a_token_hash(role: str) -> None:
    agency = registered()

    worker = agency.add_worker(name="Amira", role=role, token_hash="sha256:abc")

    [event] = agency.collect_events()
    assert type(event) is WorkerAdded
    assert (event.originator_version, event.worker_id) == (2, worker.id)
    assert (event.name, event.role, event.token_hash) == ("Amira", role, "sha256:abc")
    assert agency.workers == {worker.id: worker}
    assert (worker.role, worker.active) == (role, True)
    assert agency.version == 2


@pytest.mark.parametrize(
    ("name", "role", "field"),
    [("Amira", "operator", "role"), ("Amira", "Caseworker", "role"), ("  ", "admin", "name")],
)
def test_a_worker_with_an_unknown_role_or_blank_name_is_refused(
    name: str, role: str, field: str
) -> None:
    agency = registered()

    with pytest.raises(InvalidInput) as raised:
        agency.add_worker(name=name, role=role, token_hash="sha256:abc")

    assert raised.value.field == field
    assert agency.collect_events() == []
    assert (agency.workers, agency.version) == ({}, 1)


def test_revoking_a_worker_records_it_and_deactivates_them() -> None:
    agency = registered()
    worker = agency.add_worker(name="Amira", role="caseworker", token_hash="h")
    colleague = agency.add_worker(name="Ben", role="admin", token_hash="h2")
    agency.collect_events()

    agency.revoke_worker(worker.id)

    [event] = agency.collect_events()
    assert type(event) is WorkerRevoked
    assert (event.originator_version, event.worker_id) == (4, worker.id)
    assert agency.workers[worker.id].active is False
    assert agency.workers[colleague.id].active is True


def test_a_revoked_worker_cannot_be_revoked_again() -> None:
    agency = registered()
    worker = agency.add_worker(name="Amira", role="caseworker", token_hash="h")
    agency.revoke_worker(worker.id)
    agency.collect_events()

    with pytest.raises(IllegalTransition):
        agency.revoke_worker(worker.id)

    assert agency.collect_events() == []
    assert agency.version == 3


def test_revoking_a_worker_of_no_such_id_is_invalid_input() -> None:
    agency = registered()

    with pytest.raises(InvalidInput) as raised:
        agency.revoke_worker(uuid4())

    assert raised.value.field == "worker_id"
    assert agency.collect_events() == []
    assert agency.version == 1


def test_replacing_services_records_the_whole_new_list() -> None:
    agency = registered(services=[SHELTER_SERVICE])
    counselling = Service.of_type(type="mental_health", description="Weekly sessions", area="North")

    agency.replace_services([counselling])

    [event] = agency.collect_events()
    assert type(event) is ServicesReplaced
    assert without_ids(event.services) == (counselling,)
    assert agency.services == event.services


def test_replacing_services_with_an_invalid_one_keeps_the_old_list() -> None:
    agency = registered(services=[SHELTER_SERVICE])

    with pytest.raises(InvalidInput):
        agency.replace_services(
            [SHELTER_SERVICE, Service.of_type(type="Bad Type", description="x")]
        )

    assert agency.collect_events() == []
    assert (without_ids(agency.services), agency.version) == ((SHELTER_SERVICE,), 1)


def test_an_agency_rebuilt_from_its_events_equals_the_agency_that_recorded_them() -> None:
    agency = Agency.register(name="St Mary's", kind="hospital", services=[SHELTER_SERVICE])
    first = agency.add_worker(name="Amira", role="caseworker", token_hash="h1")
    agency.add_worker(name="Ben", role="supervisor", token_hash="h2")
    agency.revoke_worker(first.id)
    agency.replace_services([])
    events = agency.collect_events()

    rebuilt: Agency | None = project_aggregate(None, events)

    assert type(rebuilt) is Agency
    assert state(rebuilt) == state(agency)
    assert [w.active for w in rebuilt.workers.values()] == [False, True]
    assert rebuilt.services == ()
