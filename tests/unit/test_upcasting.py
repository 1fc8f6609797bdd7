"""Stored events: every type survives the mapper, and old versions are upgraded as read.

Encryption of personal fields is the key ring's business and is tested with a store;
here the mapper runs without one, so what is checked is the shape of stored state.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import cast
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from casenet.domain.agency import Agency, Service
from casenet.domain.aggregate import DomainEvent, event_types, project_aggregate
from casenet.domain.appeal import Appeal
from casenet.domain.case import Case, CaseNoteAdded, CaseOpened
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.disclosure import Disclosure
from casenet.domain.emergency import EmergencyGrant
from casenet.domain.partnership import Partnership
from casenet.domain.referral import Referral
from casenet.domain.webhook import Webhook
from casenet.infrastructure.mapper import EventMapper

NOTE_TOPIC = "casenet.domain.case:CaseNoteAdded"
ACTION_INPUT: dict[str, dict[str, str]] = {
    "reject": {"reason": "no capacity"},
    "cancel": {"reason": "client moved"},
    "hold": {"reason": "waiting"},
    "fail": {"reason": "no show"},
    "complete": {"outcome": "referred_elsewhere", "note": "sent to the clinic"},
}


def plain_mapper() -> EventMapper:
    """The mapper without a key ring: serialisation and upcasting, no encryption."""
    return EventMapper(keyring=None)


def one_event_of_each_type() -> dict[type[DomainEvent], DomainEvent]:
    """Drive every aggregate through every command, and keep one event of each type."""
    owner, receiver, worker = uuid4(), uuid4(), uuid4()

    agency = Agency.register(
        name="St Mary's", kind="hospital", services=[Service.of_type("health", "X-rays")]
    )
    staff = agency.add_worker(name="Amira", role="caseworker", token_hash="h")
    agency.revoke_worker(staff.id)
    agency.replace_services([Service.of_type(type="health", description="Clinic", area="North")])

    client = Client.register(agency_id=owner, name="Maria", date_of_birth="1980-04-02")
    client.provide_subject_access(agency_id=owner, worker_id=worker)
    client.erase(agency_id=owner, worker_id=worker)

    case = Case.open(
        owner_agency_id=owner, worker_id=worker, client_id=client.id, summary="s", needs=["housing"]
    )
    case.add_note(worker_id=worker, category="legal", text="note")
    case.close(worker_id=worker, reason="done")
    case.reopen(worker_id=worker, reason="again")

    consent = Consent.grant(
        case_id=case.id,
        client_id=client.id,
        owner_agency_id=owner,
        recording_agency_id=owner,
        grantee_agency_id=receiver,
        sections=["contact", "notes.legal"],
        purpose="care_coordination",
        method="electronic",
        worker_id=worker,
        valid_until=datetime.now(UTC) + timedelta(days=3),
        evidence="portal",
        given_by="guardian",
        representative_name="Rosa Lopez",
    )
    consent.withdraw(recording_agency_id=owner, worker_id=worker, reason="no longer")
    lapsed = Consent.grant(
        case_id=case.id,
        client_id=client.id,
        owner_agency_id=owner,
        recording_agency_id=owner,
        grantee_agency_id=receiver,
        sections=["identity"],
        purpose="referral",
        method="verbal",
        worker_id=worker,
        valid_until=datetime.now(UTC) + timedelta(days=1),
    )
    lapsed.note_expiry(now=datetime.now(UTC) + timedelta(days=2))

    disclosure = Disclosure.record(
        case_id=case.id,
        client_id=client.id,
        owner_agency_id=owner,
        recipient_agency_id=receiver,
        worker_id=worker,
        sections=("contact", "notes.legal"),
        consent_ids=(consent.id,),
        purposes=("care_coordination",),
    )

    emergency = EmergencyGrant.create(
        case_id=case.id,
        client_id=client.id,
        owner_agency_id=owner,
        recording_agency_id=owner,
        grantee_agency_id=receiver,
        sections=["identity", "summary"],
        basis="safeguarding",
        justification="bruises",
        minutes=1440,
        worker_id=worker,
    )
    emergency.revoke(recording_agency_id=owner, worker_id=worker, reason="police took over")
    emergency.note_review_due(now=emergency.review_due_at)
    emergency.review(
        reviewing_agency_id=owner, reviewer_worker_id=uuid4(), finding="justified", note="right"
    )

    events: list[DomainEvent] = []
    paths = (
        ["reject"],
        ["cancel"],
        ["accept", "hold", "start", "complete"],
        ["accept", "start", "fail"],
    )
    for path in paths:
        referral = Referral.request(
            case_id=case.id,
            client_id=client.id,
            from_agency_id=owner,
            to_agency_id=receiver,
            service_type="health",
            reason="r",
            urgency="urgent",
            worker_id=worker,
            consent_id=consent.id,
        )
        referral.post_message(agency_id=receiver, worker_id=worker, text="hello")
        if path == ["reject"]:  # unanswered past its due time, then rejected
            referral.note_overdue(now=referral.response_due_at + timedelta(seconds=1))
        for action in path:
            referral.move(
                action,
                agency_id=owner if action == "cancel" else receiver,
                worker_id=worker,
                **ACTION_INPUT.get(action, {}),
            )
        events += referral.collect_events()

    webhook = Webhook.register(
        agency_id=owner, url="https://x.example/h", types=("referral_requested",), secret="s"
    )
    webhook.remove()
    for aggregate in (agency, client, case, consent, lapsed, disclosure, emergency, webhook):
        events += aggregate.collect_events()
    events += network_events(owner, receiver, worker)
    return {type(event): event for event in events}


def network_events(owner: UUID, receiver: UUID, worker: UUID) -> list[DomainEvent]:
    """Partnerships and appeals through every command (issue 19)."""
    kept = Partnership.request(
        partnership_id=uuid4(), requester=owner, partner=receiver, worker_id=worker
    )
    kept.accept(agency_id=receiver, worker_id=worker)
    kept.end(agency_id=owner, worker_id=worker)
    declined = Partnership.request(
        partnership_id=uuid4(), requester=receiver, partner=owner, worker_id=worker
    )
    declined.decline(agency_id=owner, worker_id=worker)
    now = datetime.now(UTC)
    appeal = Appeal.post(
        agency_id=owner, worker_id=worker, need="health", title="Donors", text="O negative",
        area=None, expires_at=now + timedelta(days=1), reach="partners", reached=[receiver],
        now=now,
    )
    appeal.relay(agency_id=receiver, worker_id=worker, partners=[uuid4()], now=now)
    appeal.respond(agency_id=receiver, worker_id=worker, answer="can_help", text=None, now=now)
    appeal.close(agency_id=owner, worker_id=worker, reason="Enough", now=now)
    return [*kept.collect_events(), *declined.collect_events(), *appeal.collect_events()]


EVENTS = one_event_of_each_type()


def test_the_catalogue_holds_one_event_of_every_type_of_the_domain() -> None:
    assert set(EVENTS) == set(event_types())


@pytest.mark.parametrize("event_type", event_types(), ids=lambda t: t.__name__)
def test_every_event_type_survives_a_round_trip_through_the_mapper(
    event_type: type[DomainEvent],
) -> None:
    mapper = plain_mapper()
    event = EVENTS[event_type]

    stored = mapper.to_stored_event(event)
    restored = mapper.to_domain_event(stored)

    assert stored.topic == f"{event_type.__module__}:{event_type.__qualname__}"
    assert (stored.originator_id, stored.originator_version) == (
        event.originator_id,
        event.originator_version,
    )
    assert type(restored) is event_type
    assert restored == event


def test_a_current_note_is_stored_with_its_class_version() -> None:
    stored = plain_mapper().to_stored_event(EVENTS[CaseNoteAdded])

    state = json.loads(stored.state)
    assert state["class_version"] == 2
    assert state["category"] == "legal"
    assert "originator_id" not in state
    assert "originator_version" not in state


def test_a_version_1_event_type_is_stored_without_a_class_version() -> None:
    state = json.loads(plain_mapper().to_stored_event(EVENTS[CaseOpened]).state)

    assert "class_version" not in state


def version_1_note(case_id: UUID, version: int = 2) -> StoredEvent:
    """A note as the first release stored it: no category, no class_version."""
    state = {
        "timestamp": "2024-05-01T10:00:00Z",
        "client_id": str(uuid4()),
        "note_id": "0b8f7f8e-6a1e-4f7b-9a53-2f0a1a1f0c11",
        "text": "Called the landlord",
        "author_worker_id": str(uuid4()),
    }
    return StoredEvent(
        originator_id=case_id,
        originator_version=version,
        topic=NOTE_TOPIC,
        state=json.dumps(state).encode(),
    )


def test_a_version_1_note_is_read_as_a_general_note() -> None:
    case_id = uuid4()

    event = plain_mapper().to_domain_event(version_1_note(case_id))

    assert type(event) is CaseNoteAdded
    assert event.category == "general"
    assert (event.originator_id, event.originator_version) == (case_id, 2)
    assert str(event.note_id) == "0b8f7f8e-6a1e-4f7b-9a53-2f0a1a1f0c11"
    assert event.text == "Called the landlord"
    assert event.timestamp == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_an_upcast_note_is_stored_again_as_version_2_and_reads_back_unchanged() -> None:
    mapper = plain_mapper()
    upcast = mapper.to_domain_event(version_1_note(uuid4()))

    again = mapper.to_domain_event(mapper.to_stored_event(upcast))

    assert json.loads(mapper.to_stored_event(upcast).state)["class_version"] == 2
    assert again == upcast


def test_a_case_with_version_1_notes_rebuilds_with_them_in_the_general_section() -> None:
    mapper = plain_mapper()
    case = Case.open(
        owner_agency_id=uuid4(), worker_id=uuid4(), client_id=uuid4(), summary="s", needs=[]
    )
    [opened] = case.collect_events()
    stored = [mapper.to_stored_event(opened), version_1_note(case.id, version=2)]

    events = [cast(DomainEvent, mapper.to_domain_event(s)) for s in stored]

    rebuilt: Case | None = project_aggregate(None, events)

    assert isinstance(rebuilt, Case)
    assert rebuilt.version == 2
    assert [(n.category, n.text) for n in rebuilt.notes] == [("general", "Called the landlord")]


def old_and_current_notes(case_id: UUID) -> tuple[StoredEvent, StoredEvent]:
    """A version 1 note (version 2 of the case) and a current one (version 3), as stored."""
    current = plain_mapper().to_stored_event(
        CaseNoteAdded(
            originator_id=case_id, originator_version=3,
            timestamp=datetime(2024, 5, 2, 9, 30, 0, 123456, tzinfo=UTC),
            client_id=uuid4(), note_id=uuid4(), category="health", text="Clinic",
            author_worker_id=uuid4(),
        )
    )
    return version_1_note(case_id), current


def test_read_models_see_a_version_1_note_upcast_and_its_time_normalised() -> None:
    from eventsourcing.persistence import Notification

    from casenet.infrastructure.projections.facts import to_facts

    case_id = uuid4()
    old, current = old_and_current_notes(case_id)
    notifications = [
        Notification(id=position, originator_id=stored.originator_id,
                     originator_version=stored.originator_version, topic=stored.topic,
                     state=stored.state)
        for position, stored in enumerate((old, current), start=7)
    ]

    facts = to_facts(notifications, frozenset({CaseNoteAdded}))

    assert [(f.position, f.event_type, f.aggregate_id, f.version) for f in facts] == [
        (7, CaseNoteAdded, str(case_id), 2), (8, CaseNoteAdded, str(case_id), 3)
    ]
    assert [f.state["category"] for f in facts] == ["general", "health"]
    assert all("class_version" not in f.state for f in facts)
    assert [f.at for f in facts] == ["2024-05-01T10:00:00.000000Z", "2024-05-02T09:30:00.123456Z"]
    assert to_facts(notifications, frozenset({CaseOpened})) == []


def test_a_stateless_fact_decodes_only_its_time_unless_it_must_be_upcast() -> None:
    # A model that declares notes stateless gets them with an empty state and the
    # same position, aggregate, version and normalised time; a version 1 note is
    # decoded whole and upcast all the same (an upcast may need every field).
    from casenet.infrastructure.projections.facts import rows_to_facts

    case_id = uuid4()
    old, current = old_and_current_notes(case_id)
    rows = [
        (position, stored.topic, stored.originator_id.hex, stored.originator_version,
         stored.state)
        for position, stored in enumerate((old, current), start=7)
    ]
    notes = frozenset({CaseNoteAdded})

    whole = rows_to_facts(rows, notes)
    brief = rows_to_facts(rows, notes, stateless=notes)

    key = [(f.position, f.event_type, f.aggregate_id, f.version, f.at) for f in whole]
    assert [(f.position, f.event_type, f.aggregate_id, f.version, f.at) for f in brief] == key
    assert key[0][2] == str(case_id)  # SQLite's 32 hex digits, written as str(UUID)
    assert brief[0].state == whole[0].state  # upcast: decoded whole
    assert brief[0].state["category"] == "general"
    assert brief[1].state == {}
    assert whole[1].state["category"] == "health"


def test_a_batch_normalises_exactly_the_times_that_are_not_normal_already() -> None:
    # A batch's times are checked all at once; one that is not normal (another zone,
    # no microseconds, a newline) sends the batch the long way, stamp by stamp.
    from casenet.infrastructure.projections.facts import _all_normal, normalise_time

    normal = "2024-05-02T09:30:00.123456Z"
    assert _all_normal([normal] * 3)
    assert _all_normal([])
    odd_ones = (
        "2024-05-02T11:30:00.123456+02:00", "2024-05-02T09:30:00Z", "0999-05-02T09:30:00.123456Z"
    )
    for odd in odd_ones:
        assert not _all_normal([normal, odd, normal])
    assert not _all_normal([f"{normal}\n{normal}", normal[:-1], ""])  # the length adds up
    assert not _all_normal([f"{normal}\n{normal}"])

    from casenet.infrastructure.projections.facts import rows_to_facts

    case_id = uuid4()
    states = [
        {"timestamp": stamp, "client_id": str(uuid4()), "note_id": str(uuid4()),
         "category": "general", "text": "x", "author_worker_id": str(uuid4()),
         "class_version": 2}
        for stamp in (normal, "2024-05-02T11:30:00.5+02:00", normal)
    ]
    rows = [
        (position, get_topic(CaseNoteAdded), case_id.hex, position, json.dumps(state).encode())
        for position, state in enumerate(states, start=1)
    ]
    facts = rows_to_facts(rows, frozenset({CaseNoteAdded}))
    assert [f.at for f in facts] == [normal, "2024-05-02T09:30:00.500000Z", normal]
    assert [f.at for f in facts] == [normalise_time(s["timestamp"]) for s in states]


CONSENT_TOPIC = "casenet.domain.consent:ConsentGranted"


def version_1_consent(consent_id: UUID) -> StoredEvent:
    """A consent as stored before ``given_by``: no giver, no class_version."""
    state = {
        "timestamp": "2026-05-01T10:00:00Z",
        "case_id": str(uuid4()),
        "client_id": str(uuid4()),
        "owner_agency_id": str(uuid4()),
        "grantee_agency_id": str(uuid4()),
        "sections": ["identity"],
        "purpose": "referral",
        "valid_until": None,
        "method": "verbal",
        "evidence": "said yes at the desk",
        "recorded_by_worker_id": str(uuid4()),
    }
    return StoredEvent(
        originator_id=consent_id,
        originator_version=1,
        topic=CONSENT_TOPIC,
        state=json.dumps(state).encode(),
    )


def test_a_version_1_consent_reads_as_given_by_the_client_themself() -> None:
    from casenet.domain.consent import ConsentGranted

    consent_id = uuid4()
    mapper = plain_mapper()

    event = mapper.to_domain_event(version_1_consent(consent_id))
    rebuilt: Consent | None = project_aggregate(None, [cast(DomainEvent, event)])

    assert type(event) is ConsentGranted
    assert (event.given_by, event.representative_name) == ("self", None)
    assert event.evidence == "said yes at the desk"
    assert isinstance(rebuilt, Consent)
    assert (rebuilt.given_by, rebuilt.representative_name) == ("self", None)
    again = json.loads(mapper.to_stored_event(event).state)
    assert (again["class_version"], again["given_by"], again["representative_name"]) == (
        2, "self", None
    )


def test_read_models_see_a_version_1_consent_as_the_clients_own() -> None:
    from casenet.domain.consent import ConsentGranted
    from casenet.infrastructure.projections.facts import rows_to_facts

    stored = version_1_consent(uuid4())
    row = (3, stored.topic, stored.originator_id.hex, 1, stored.state)

    [fact] = rows_to_facts([row], frozenset({ConsentGranted}))

    assert (fact.state["given_by"], fact.state["representative_name"]) == ("self", None)
    assert fact.state["purpose"] == "referral"
