"""The story the encryption tests share: clients whose every personal value is a canary.

Each client of the story goes through everything the services can record about them
(a case with notes, consents granted and withdrawn, one given by a guardian, an
emergency grant revoked and reviewed, referrals accepted, put on hold,
completed, rejected, cancelled and failed, messages both ways, the case closed and
reopened), and every personal value written is a unique random string
(``canary-<16 hex>``). The tests of ``test_encryption_*`` then look for those strings
where they must not be (the store's bytes) and where they must (reading back through
the application).

This module's own tests prove the story is worth scanning for: every canary reads back
through the application, and the story writes every personal field the domain can set.
The other ``test_encryption_*`` modules import its helpers (pytest puts this folder on
``sys.path``: the tests folders are not packages).
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

import msgspec
import pytest
from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.application.store import CasenetApplication
from casenet.domain.aggregate import DomainEvent, event_types
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.emergency import EmergencyGrant
from casenet.domain.referral import (
    Referral,
    ReferralAccepted,
    ReferralCompleted,
    ReferralStarted,
)
from casenet.infrastructure.mapper import EventMapper, personal_fields

#: Personal fields no service can fill: accepting, starting and completing a referral
#: take no reason (completing takes a note). The story writes every other one.
NEVER_SET_BY_A_SERVICE = frozenset(
    {(ReferralAccepted, "reason"), (ReferralStarted, "reason"), (ReferralCompleted, "reason")}
)

#: Attributes of the aggregates (and of their notes and messages) that hold personal data.
PERSONAL_ATTRIBUTES = frozenset(
    {"name", "date_of_birth", "phone", "address", "summary", "text", "evidence", "reason",
     "outcome_note", "representative_name", "justification", "review_note"}
)

PAGE = 500


def canary() -> str:
    """A personal value that occurs nowhere else: finding it anywhere is a leak."""
    return f"canary-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Network:
    """A welfare NGO (owns the cases) and a hospital (receives the referrals)."""

    welfare_id: UUID
    hospital_id: UUID
    welfare_worker: Actor
    welfare_admin: Actor
    #: Reviews the emergency grants the caseworker creates (rule 2b: someone else).
    welfare_supervisor: Actor
    hospital_worker: Actor
    #: The secret of the welfare NGO's webhook (encrypted at rest like personal data).
    webhook_secret: str


#: The data keys :func:`register_network` makes that belong to no client: the welfare
#: NGO's webhook secret is encrypted under a key of its own (gone when it is removed).
NETWORK_KEYS = 1


def register_network(casenet: Casenet) -> Network:
    welfare = casenet.agencies.register(OPERATOR_ACTOR, name="Eastside Welfare", kind="ngo")
    hospital = casenet.agencies.register(
        OPERATOR_ACTOR, name="City Hospital social work", kind="hospital"
    )
    worker, _ = casenet.agencies.add_worker(
        OPERATOR_ACTOR, welfare.id, name="Wanjiru", role="caseworker"
    )
    admin, _ = casenet.agencies.add_worker(OPERATOR_ACTOR, welfare.id, name="Ada", role="admin")
    supervisor, _ = casenet.agencies.add_worker(
        OPERATOR_ACTOR, welfare.id, name="Sipho", role="supervisor"
    )
    hospital_worker, _ = casenet.agencies.add_worker(
        OPERATOR_ACTOR, hospital.id, name="Hamid", role="caseworker"
    )
    welfare_admin = Actor(welfare.id, admin.id, "admin")
    _, secret = casenet.webhooks.register(
        welfare_admin, url="http://127.0.0.1:9/casenet", types=None
    )
    return Network(
        welfare_id=welfare.id,
        hospital_id=hospital.id,
        welfare_worker=Actor(welfare.id, worker.id, "caseworker"),
        welfare_admin=welfare_admin,
        welfare_supervisor=Actor(welfare.id, supervisor.id, "supervisor"),
        hospital_worker=Actor(hospital.id, hospital_worker.id, "caseworker"),
        webhook_secret=secret,
    )


@dataclass
class ClientStory:
    """What the story wrote for one client: ids, and every personal value (canaries)."""

    client_id: UUID
    case_id: UUID
    consent_ids: list[UUID] = field(default_factory=list)
    emergency_grant_ids: list[UUID] = field(default_factory=list)
    referral_ids: list[UUID] = field(default_factory=list)
    canaries: set[str] = field(default_factory=set)


def write_client_story(casenet: Casenet, network: Network) -> ClientStory:
    """One client through every service that records personal data about them."""
    worker, hospital = network.welfare_worker, network.hospital_worker
    canaries: set[str] = set()

    def new() -> str:
        value = canary()
        canaries.add(value)
        return value

    case = casenet.cases.open_case(
        worker,
        client=ClientDetails(name=new(), date_of_birth=new(), phone=new(), address=new()),
        summary=new(),
        needs=["housing", "health"],
    )
    story = ClientStory(client_id=case.client_id, case_id=case.id, canaries=canaries)
    for category in ("general", "health"):
        casenet.cases.add_note(worker, case.id, category=category, text=new())
    consent = casenet.consents.grant(
        worker, case.id, grantee_agency_id=network.hospital_id, sections=["identity", "needs"],
        purpose="referral", method="written", evidence=new(),
    )
    withdrawn = casenet.consents.grant(
        worker, case.id, grantee_agency_id=network.hospital_id, sections=["notes.health"],
        purpose="care_coordination", method="verbal", evidence=new(),
    )
    casenet.consents.withdraw(worker, withdrawn.id, reason=new())
    by_guardian = casenet.consents.grant(
        worker, case.id, grantee_agency_id=network.hospital_id, sections=["contact"],
        purpose="care_coordination", method="written", given_by="guardian",
        representative_name=new(),
    )
    story.consent_ids += [consent.id, withdrawn.id, by_guardian.id]
    emergency = casenet.emergency_grants.create(
        worker, case.id, grantee_agency_id=network.hospital_id, sections=["summary"],
        basis="safeguarding", justification=new(), minutes=60,
    )
    casenet.emergency_grants.revoke(worker, emergency.id, reason=new())
    casenet.emergency_grants.review(
        network.welfare_supervisor, emergency.id, finding="justified", note=new()
    )
    story.emergency_grant_ids.append(emergency.id)

    def refer(consent_id: UUID | None = None) -> UUID:
        referral = casenet.referrals.request(
            worker, case_id=case.id, to_agency_id=network.hospital_id,
            service_type="health", reason=new(), urgency="urgent",
            consent_id=consent_id,
        )
        story.referral_ids.append(referral.id)
        return referral.id

    completed = refer(consent.id)
    casenet.referrals.post_message(worker, completed, text=new())
    casenet.referrals.post_message(hospital, completed, text=new())
    casenet.referrals.move(hospital, completed, "accept")
    casenet.referrals.move(hospital, completed, "start")
    casenet.referrals.move(hospital, completed, "hold", reason=new())
    casenet.referrals.move(hospital, completed, "start")
    casenet.referrals.move(hospital, completed, "complete", outcome="got_help", note=new())
    casenet.referrals.move(hospital, refer(), "reject", reason=new())
    casenet.referrals.move(worker, refer(), "cancel", reason=new())
    failed = refer()
    casenet.referrals.move(hospital, failed, "accept")
    casenet.referrals.move(hospital, failed, "start")
    casenet.referrals.move(hospital, failed, "fail", reason=new())
    casenet.cases.close_case(worker, case.id, reason=new())
    casenet.cases.reopen_case(worker, case.id, reason=new())
    return story


# --- reading back ------------------------------------------------------------------------


def every_notification(app: CasenetApplication) -> list[Notification]:
    """The whole log, in order, as stored (page by page, as a projection reads it)."""
    notifications: list[Notification] = []
    start = 1
    while page := app.recorder.select_notifications(start=start, limit=PAGE):
        notifications.extend(page)
        start = page[-1].id + 1
    return notifications


def decoded_log(app: CasenetApplication) -> list[DomainEvent]:
    """Every event of the log, decrypted by the application's mapper."""
    return [app.mapper.to_domain_event(n) for n in every_notification(app)]  # type: ignore[misc]


def subject_of(event: DomainEvent) -> UUID:
    subject: UUID = getattr(event, type(event).subject_field)
    return subject


def personal_values_in_log(events: list[DomainEvent]) -> dict[UUID, list[str | None]]:
    """Each client's personal values as the log reads, every field of every event."""
    values: dict[UUID, list[str | None]] = {}
    for event in events:
        for name in personal_fields(type(event)):
            values.setdefault(subject_of(event), []).append(getattr(event, name))
    return values


def split_state(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An aggregate's (or note's, message's) state: (clear attributes, personal ones)."""
    names = getattr(type(obj), "__slots__", None) or [
        name for name in vars(obj) if not name.startswith("_")
    ]
    clear: dict[str, Any] = {}
    personal: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        if name in PERSONAL_ATTRIBUTES:
            personal[name] = value
        elif isinstance(value, list) and value and hasattr(type(value[0]), "__slots__"):
            parts = [split_state(item) for item in value]
            clear[name] = [part[0] for part in parts]
            personal[name] = [part[1] for part in parts]
        else:
            clear[name] = value
    return clear, personal


def leaves(value: Any) -> Iterator[Any]:
    """Every scalar inside nested dicts and lists."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def aggregates_of(app: CasenetApplication, story: ClientStory) -> list[Any]:
    """The client, their case, consents and referrals, loaded from the store."""
    return [
        app.get(Client, story.client_id),
        app.get(Case, story.case_id),
        *(app.get(Consent, consent_id) for consent_id in story.consent_ids),
        *(app.get(EmergencyGrant, grant_id) for grant_id in story.emergency_grant_ids),
        *(app.get(Referral, referral_id) for referral_id in story.referral_ids),
    ]


def personal_values_in_aggregates(app: CasenetApplication, story: ClientStory) -> set[Any]:
    return {
        value for aggregate in aggregates_of(app, story)
        for value in leaves(split_state(aggregate)[1])
    }


# --- the story's own contract ------------------------------------------------------------


class StoryContract:
    """What makes the story worth scanning for: it is there, and it is complete."""

    def test_every_canary_reads_back_through_the_application(self, casenet: Casenet) -> None:
        network = register_network(casenet)
        stories = [write_client_story(casenet, network) for _ in range(2)]
        in_log = personal_values_in_log(decoded_log(casenet.app))
        for story in stories:
            assert len(story.canaries) == 27
            # The aggregates keep 16 of them (no reason of a past step); the log all.
            in_aggregates = personal_values_in_aggregates(casenet.app, story)
            assert in_aggregates - {None} <= story.canaries
            assert len(in_aggregates - {None}) >= 16
            assert set(in_log[story.client_id]) - {None} == story.canaries

    def test_the_story_writes_every_personal_field_a_service_can_set(
        self, casenet: Casenet
    ) -> None:
        write_client_story(casenet, register_network(casenet))
        written = {
            (type(event), name)
            for event in decoded_log(casenet.app)
            for name in personal_fields(type(event))
            if getattr(event, name) is not None
        }
        every = {(t, name) for t in event_types() for name in personal_fields(t)}
        assert written <= every
        assert written == every - NEVER_SET_BY_A_SERVICE, (
            "a personal field the story does not write: extend write_client_story"
        )

    def test_every_stored_event_decodes_sealed_or_decrypted_on_one_path(
        self, casenet: Casenet
    ) -> None:
        # The mapper has one path from a stored row to its event: sealed, its personal
        # fields are None and every other field is the decrypted event's; decrypted,
        # they are what was written, or None once the client is erased.
        network = register_network(casenet)
        kept, erased = (write_client_story(casenet, network) for _ in range(2))
        casenet.clients.erase(OPERATOR_ACTOR, erased.client_id)
        mapper = cast(EventMapper, casenet.app.mapper)
        notifications = every_notification(casenet.app)
        checked: Counter[str] = Counter()
        for n in notifications:
            event_type = resolve_topic(n.topic)
            sealed, opened = (
                mapper.decode_row(
                    n.originator_id, n.originator_version, n.topic, n.state, personal=personal
                )
                for personal in (False, True)
            )
            assert type(sealed) is type(opened) is event_type
            fields = personal_fields(event_type)
            assert all(getattr(sealed, name) is None for name in fields)
            assert msgspec.structs.replace(opened, **dict.fromkeys(fields)) == sealed
            values = [getattr(opened, name) for name in fields]
            if not values:
                continue
            if subject_of(opened) == erased.client_id:
                assert not any(values)
                checked["erased"] += 1
            elif subject_of(opened) == kept.client_id:
                checked["decrypted"] += any(v in kept.canaries for v in values)
        assert checked["decrypted"] >= 20
        assert checked["erased"] >= 20


class TestStoryOnSQLite(StoryContract):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestStoryOnPostgres(StoryContract):
    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url
