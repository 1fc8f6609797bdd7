"""A client (the data subject): registered by one agency, erased for ever."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from casenet.domain.aggregate import Aggregate, project_aggregate
from casenet.domain.client import Client, ClientErased, ClientRegistered
from casenet.domain.errors import ClientAlreadyErased, IllegalTransition, InvalidInput, NotPermitted

AGENCY = uuid4()
WORKER = uuid4()


def state(value: Any) -> Any:
    """Everything an aggregate holds, as comparable plain values (for replay checks)."""
    if isinstance(value, Aggregate):
        return {k: v for k, v in vars(value).items() if k != "_pending_events"}
    return value


def register(**overrides: Any) -> Client:
    fields: dict[str, Any] = {
        "agency_id": AGENCY,
        "name": "Maria Santos",
        "date_of_birth": "1980-04-02",
        "phone": "+63 900 000 0000",
        "address": "12 Harbour Road",
    }
    fields.update(overrides)
    return Client.register(**fields)


def registered() -> Client:
    client = register()
    client.collect_events()
    return client


def test_registering_records_the_clients_identity_and_contact() -> None:
    client = register()

    [event] = client.collect_events()

    assert type(event) is ClientRegistered
    assert (event.originator_id, event.originator_version) == (client.id, 1)
    assert event.registered_by_agency_id == AGENCY
    assert (event.name, event.date_of_birth) == ("Maria Santos", "1980-04-02")
    assert (event.phone, event.address) == ("+63 900 000 0000", "12 Harbour Road")
    assert (client.name, client.erased) == ("Maria Santos", False)


def test_a_client_may_be_registered_with_a_name_only() -> None:
    client = register(date_of_birth=None, phone=None, address=None)

    [event] = client.collect_events()
    assert isinstance(event, ClientRegistered)
    assert (event.date_of_birth, event.phone, event.address) == (None, None, None)


@pytest.mark.parametrize("name", ["", "   ", "x" * 501])
def test_a_client_without_a_usable_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        register(name=name)
    assert raised.value.field == "client.name"


def test_erasure_by_the_registering_agency_records_it_and_forgets_every_personal_value() -> None:
    client = registered()

    client.erase(agency_id=AGENCY, worker_id=WORKER)

    [event] = client.collect_events()
    assert type(event) is ClientErased
    assert (event.originator_version, event.erased_by_worker_id) == (2, WORKER)
    assert client.erased is True
    assert (client.name, client.date_of_birth, client.phone, client.address) == (None,) * 4
    assert client.registered_by_agency_id == AGENCY


def test_the_operator_may_erase_any_client() -> None:
    client = registered()

    client.erase(agency_id=None, worker_id=None)

    [event] = client.collect_events()
    assert type(event) is ClientErased
    assert event.erased_by_worker_id is None
    assert client.erased is True


def test_another_agency_may_not_erase_a_client_and_nothing_is_recorded() -> None:
    client = registered()

    with pytest.raises(NotPermitted):
        client.erase(agency_id=uuid4(), worker_id=WORKER)

    assert client.collect_events() == []
    assert (client.erased, client.name, client.version) == (False, "Maria Santos", 1)


@pytest.mark.parametrize("agency", [AGENCY, None], ids=["registering_agency", "operator"])
def test_an_erased_client_cannot_be_erased_again(agency: Any) -> None:
    client = registered()
    client.erase(agency_id=AGENCY, worker_id=WORKER)
    client.collect_events()

    with pytest.raises(ClientAlreadyErased) as raised:
        client.erase(agency_id=agency, worker_id=WORKER)

    assert isinstance(raised.value, IllegalTransition)  # the API answers 409
    assert client.collect_events() == []
    assert (client.erased, client.version) == (True, 2)


def test_a_client_rebuilt_from_their_events_is_erased_like_the_original() -> None:
    client = register()
    client.erase(agency_id=AGENCY, worker_id=WORKER)
    events = client.collect_events()

    rebuilt: Client | None = project_aggregate(None, events)

    assert type(rebuilt) is Client
    assert state(rebuilt) == state(client)
    assert rebuilt.erased is True
    assert rebuilt.name is None


def test_a_registered_client_rebuilt_from_their_events_equals_the_original() -> None:
    client = register()
    events = client.collect_events()

    rebuilt: Client | None = project_aggregate(None, events)

    assert type(rebuilt) is Client
    assert state(rebuilt) == state(client)
    assert rebuilt.name == "Maria Santos"


def test_a_subject_access_is_recorded_with_who_asked_and_kept_after_erasure() -> None:
    client = registered()
    client.provide_subject_access(agency_id=AGENCY, worker_id=WORKER)
    client.erase(agency_id=AGENCY, worker_id=WORKER)
    client.provide_subject_access(agency_id=AGENCY, worker_id=WORKER)
    events = client.collect_events()

    assert [type(e).__name__ for e in events] == [
        "SubjectAccessProvided", "ClientErased", "SubjectAccessProvided"
    ]
    assert client.erased_at == events[1].timestamp
    rebuilt: Client | None = project_aggregate(None, [*register_events(client), *events])
    assert isinstance(rebuilt, Client)
    assert [(s.at, s.agency_id, s.worker_id) for s in rebuilt.subject_accesses] == [
        (events[0].timestamp, AGENCY, WORKER), (events[2].timestamp, AGENCY, WORKER)
    ]
    assert rebuilt.erased_at == events[1].timestamp


def register_events(client: Client) -> list[Any]:
    """The registration of ``client``, as its first event (its id and version 1)."""
    return [
        ClientRegistered(
            originator_id=client.id, originator_version=1, timestamp=client.created_on,
            registered_by_agency_id=AGENCY, name="Maria Santos", date_of_birth=None,
            phone=None, address=None,
        )
    ]


def test_only_the_registering_agency_answers_a_subject_access_request() -> None:
    client = registered()
    with pytest.raises(NotPermitted):
        client.provide_subject_access(agency_id=uuid4(), worker_id=WORKER)
    assert client.collect_events() == []
