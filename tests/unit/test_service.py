"""A service of the directory (HSDS 3.0 in meaning): its rules, its ids, and the first
shape ``{type, description, area}``, accepted from commands and upcast from old events."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent

from casenet.domain.agency import Agency, AgencyRegistered, ServicesReplaced
from casenet.domain.aggregate import project_aggregate
from casenet.domain.errors import InvalidInput
from casenet.domain.service import Contact, Service, check_language, check_services
from casenet.infrastructure.mapper import EventMapper, state_decoder
from casenet.infrastructure.projections.directory import service_rows

CLINIC = Service(
    name="Clinic",
    description="Weekly clinic",
    needs=("health",),
    languages=("en", "sw"),
    areas=("North",),
    capacity="waitlist",
    contacts=(Contact(name="Dr Achieng", title="Doctor", phone="+254 20 123 4567"),),
)


def test_the_first_shape_is_one_need_one_area_named_for_the_need() -> None:
    service = Service.of_type(type="mental_health", description="Sessions", area="North")
    assert (service.name, service.needs, service.areas) == (
        "Mental health",
        ("mental_health",),
        ("North",),
    )
    assert (service.type, service.area, service.capacity) == ("mental_health", "North", "accepting")
    assert Service.of_type(type="food", description="Meals").area is None


@pytest.mark.parametrize("tag", ["en", "sw", "pt-BR", "zh-Hant-TW", "es-419", "de-CH-1996"])
def test_a_well_formed_bcp47_tag_is_accepted_as_given(tag: str) -> None:
    assert check_language(tag, "languages") == tag


@pytest.mark.parametrize("tag", ["", "e", "english!", "en_GB", "en-", "-en", "en\n", "a" * 9])
def test_a_malformed_tag_is_refused(tag: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_language(tag, "services.languages")
    assert refused.value.field == "services.languages"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"needs": ()}, "services.needs"),
        ({"needs": ("banana",)}, "services.needs"),
        ({"name": " "}, "services.name"),
        ({"languages": ("en_GB",)}, "services.languages"),
        ({"areas": ("",)}, "services.areas"),
        ({"capacity": "full"}, "services.capacity"),
        ({"eligibility": "x" * 2_001}, "services.eligibility"),
        ({"contacts": (Contact(name=""),)}, "services.contacts.name"),
        ({"contacts": (Contact(name="A", email="a@b"),)}, "services.contacts.email"),
        ({"contacts": (Contact(name="A", phone="ring ring"),)}, "services.contacts.phone"),
        # PostgreSQL text refuses a NUL; the address pattern alone let one through.
        ({"contacts": (Contact(name="A", email="a\x00b@c.org"),)}, "services.contacts.email"),
        ({"contacts": (Contact(name="A", email="a\x07b@c.org"),)}, "services.contacts.email"),
        ({"areas": ("North",) * 51}, "services.areas"),
    ],
)
def test_a_bad_service_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        Agency.register(name="A", kind="ngo", services=[msgspec.structs.replace(CLINIC, **change)])
    assert refused.value.field == field


def test_each_service_gets_an_id_and_keeps_it_when_sent_again_by_name() -> None:
    agency = Agency.register(name="A", kind="ngo", services=[CLINIC])
    [first] = agency.services

    agency.replace_services([Service.of_type("housing", "Beds"), CLINIC])

    assert first.id is not None
    assert agency.services[1].id == first.id
    assert agency.services[0].id not in (None, first.id)


def test_an_explicit_id_is_kept_and_two_alike_are_refused() -> None:
    chosen = uuid4()
    [kept] = check_services([msgspec.structs.replace(CLINIC, id=chosen)], ())
    assert kept.id == chosen
    twice = [
        msgspec.structs.replace(CLINIC, id=chosen),
        msgspec.structs.replace(CLINIC, id=chosen, name="Other"),
    ]
    with pytest.raises(InvalidInput) as refused:
        check_services(twice, ())
    assert refused.value.field == "services.id"


def test_two_services_named_alike_but_for_case_are_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_services([CLINIC, msgspec.structs.replace(CLINIC, name="CLINIC")], ())
    assert refused.value.field == "services.name"


def version_1(agency_id: UUID, version: int, topic: str, state: dict[str, Any]) -> StoredEvent:
    """An agency's event as the first release stored it: services ``{type, ...}``."""
    state = {"timestamp": "2024-05-01T10:00:00Z", **state}
    return StoredEvent(
        originator_id=agency_id,
        originator_version=version,
        topic=topic,
        state=json.dumps(state).encode(),
    )


OLD_SERVICES = [
    {"type": "housing", "description": "Beds", "area": "North"},
    {"type": "food", "description": "Meals", "area": None},
]


def test_old_agency_events_replay_with_services_upcast_and_stable_ids() -> None:
    agency_id = uuid4()
    registered = version_1(
        agency_id,
        1,
        "casenet.domain.agency:AgencyRegistered",
        {"name": "Old", "kind": "ngo", "restricted": False, "services": OLD_SERVICES},
    )
    replaced = version_1(
        agency_id, 2, "casenet.domain.agency:ServicesReplaced", {"services": OLD_SERVICES[1:]}
    )
    mapper = EventMapper(keyring=None)

    events = [mapper.to_domain_event(stored) for stored in (registered, replaced)]
    agency = project_aggregate(None, events[:1])
    again = project_aggregate(None, [mapper.to_domain_event(registered)])

    assert isinstance(agency, Agency)
    assert isinstance(again, Agency)
    assert [(s.name, s.needs, s.areas) for s in agency.services] == [
        ("Housing", ("housing",), ("North",)),
        ("Food", ("food",), ()),
    ]
    assert agency.services == again.services  # the same ids at every replay
    assert len({s.id for s in agency.services}) == 2
    # The directory read model derives the same ids from the same stored state.
    facts_state = state_decoder(AgencyRegistered)(registered.state)
    rows = service_rows(str(agency_id), facts_state["services"])
    assert [row.service_id for row in rows] == [str(s.id) for s in agency.services]
    # An upcast event is stored again as version 2 and reads back unchanged.
    for event in events:
        stored = mapper.to_stored_event(event)
        assert json.loads(stored.state)["class_version"] == 2
        assert mapper.to_domain_event(stored) == event
    assert type(events[1]) is ServicesReplaced
