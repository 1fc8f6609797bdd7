"""The application contract, written once and run on SQLite and on PostgreSQL.

Everything goes through the application services a client of casenet calls; every
state is checked again from a NEW application instance on the same database, so what
is asserted is what the store kept, not what an object remembered.
"""

from __future__ import annotations

import copy
import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4, uuid5

import pytest
from eventsourcing.persistence import OperationalError, PersistenceError

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.application.agencies import hash_token
from casenet.application.rendering import render_case
from casenet.application.views import ClientView
from casenet.domain import case as case_module
from casenet.domain.agency import Agency, Service
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.disclosure import Disclosure
from casenet.domain.errors import (
    IllegalTransition,
    NotFound,
    NotPermitted,
    StaleVersion,
    VersionConflict,
)
from casenet.domain.referral import Referral
from casenet.domain.sections import SECTIONS
from casenet.domain.visibility import OWNER, Grant
from casenet.infrastructure import mapper as mapper_module
from casenet.infrastructure.crypto import DataKey, unseal

ALL = 10_000  # more than any test writes: "the whole log" in one select


@dataclass(frozen=True)
class Network:
    """Two agencies with a caseworker each: a welfare NGO and a hospital."""

    welfare: Agency
    hospital: Agency
    welfare_worker: Actor
    hospital_worker: Actor


def register_network(casenet: Casenet) -> Network:
    welfare = casenet.agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
    hospital = casenet.agencies.register(
        OPERATOR_ACTOR,
        name="City Hospital social work",
        kind="hospital",
        services=[Service.of_type(type="health", description="Moves appointments")],
    )
    welfare_worker, _ = casenet.agencies.add_worker(
        OPERATOR_ACTOR, welfare.id, name="Wanjiru", role="caseworker"
    )
    hospital_worker, _ = casenet.agencies.add_worker(
        OPERATOR_ACTOR, hospital.id, name="Hamid", role="caseworker"
    )
    return Network(
        welfare=welfare,
        hospital=hospital,
        welfare_worker=Actor(welfare.id, welfare_worker.id, "caseworker"),
        hospital_worker=Actor(hospital.id, hospital_worker.id, "caseworker"),
    )


def agency_with_worker(casenet: Casenet, agency: str, worker: str) -> tuple[Actor, str]:
    """A new agency with one caseworker: the caseworker and their token."""
    registered = casenet.agencies.register(OPERATOR_ACTOR, name=agency, kind="ngo")
    added, token = casenet.agencies.add_worker(
        OPERATOR_ACTOR, registered.id, name=worker, role="caseworker"
    )
    return Actor(registered.id, added.id, "caseworker"), token


def open_case(casenet: Casenet, actor: Actor) -> Case:
    return casenet.cases.open_case(
        actor,
        client=ClientDetails(
            name="Amina Njeri", date_of_birth="1984-02-29", phone="+254 700 000000",
            address="12 River Road",
        ),
        summary="Job clashes with her husband's hospital appointments",
        needs=["employment", "health"],
    )


def all_notifications(casenet: Casenet) -> list[tuple[int, UUID, int, str]]:
    """(id, originator id, originator version, topic) of every notification, in order."""
    return [
        (n.id, n.originator_id, n.originator_version, n.topic)
        for n in casenet.app.recorder.select_notifications(start=1, limit=ALL)
    ]


def data_key_subjects(casenet: Casenet) -> set[str]:
    """The clients that have a row in the data keys table (a key or a tombstone)."""
    rows = casenet.app.database.run("SELECT subject_id FROM casenet_data_keys", commit=False)
    return {str(r["subject_id"]) for r in rows}


class ApplicationContract:
    """The behaviour of casenet's application services over any store."""

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError("a subclass names the store")

    # --- agencies and workers ----------------------------------------------------------

    def test_registered_agencies_and_their_workers_survive_a_restart(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        agency = casenet.agencies.register(
            OPERATOR_ACTOR,
            name="Girls' shelter",
            kind="shelter",
            restricted=True,
            services=[Service.of_type(type="housing", description="Beds", area="Nairobi")],
        )
        admin, admin_token = casenet.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name="Achieng", role="admin"
        )
        leaver, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name="Otieno", role="caseworker"
        )
        casenet.agencies.revoke_worker(OPERATOR_ACTOR, agency.id, leaver.id)

        reloaded = open_casenet().app.get(Agency, agency.id)

        assert (reloaded.name, reloaded.kind, reloaded.restricted) == (
            "Girls' shelter", "shelter", True,
        )
        assert reloaded.services == agency.services
        assert [(s.needs, s.areas) for s in reloaded.services] == [(("housing",), ("Nairobi",))]
        assert reloaded.version == 4
        assert {w.id: (w.name, w.role, w.active) for w in reloaded.workers.values()} == {
            admin.id: ("Achieng", "admin", True),
            leaver.id: ("Otieno", "caseworker", False),
        }
        assert reloaded.workers[admin.id].token_hash == hash_token(admin_token)
        assert admin_token not in str(all_notifications(casenet))

    def test_a_token_revoked_or_added_by_another_process_counts_at_once(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        # Authentication reads the directory as it is, and the commands that add and
        # revoke workers bring it up to date before they return: a revocation or a new
        # worker committed by another process counts at the very next request.
        expected, token = agency_with_worker(casenet, "Clinic", "Njoki")
        assert expected.agency_id is not None
        agency = casenet.app.get(Agency, expected.agency_id)
        assert casenet.directory.authenticate(token) == expected
        assert casenet.directory.authenticate(token) == expected
        assert casenet.directory.authenticate("not-a-token") is None

        other = open_casenet()
        newcomer, new_token = other.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name="Baraka", role="supervisor"
        )
        assert casenet.directory.authenticate(new_token) == Actor(
            agency.id, newcomer.id, "supervisor"
        )
        other.agencies.revoke_worker(OPERATOR_ACTOR, agency.id, expected.require_worker())
        assert casenet.directory.authenticate(token) is None
        assert casenet.directory.authenticate(new_token) is not None

    # --- cases -------------------------------------------------------------------------

    def test_opening_a_case_stores_the_client_and_the_case(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        opened = open_case(casenet, network.welfare_worker)

        restarted = open_casenet()
        case = restarted.cases.owned_case(network.welfare_worker, opened.id)
        client = restarted.app.get(Client, case.client_id)

        assert (case.version, case.status, case.owner_agency_id) == (1, "open", network.welfare.id)
        assert case.summary == "Job clashes with her husband's hospital appointments"
        assert case.needs == ("employment", "health")
        assert (client.name, client.date_of_birth, client.phone, client.address) == (
            "Amina Njeri", "1984-02-29", "+254 700 000000", "12 River Road",
        )
        assert client.registered_by_agency_id == network.welfare.id
        # The client's and the case's first events went into the log side by side.
        last_two = all_notifications(restarted)[-2:]
        assert [(n[1], n[2]) for n in last_two] == [(client.id, 1), (case.id, 1)]
        assert last_two[1][0] == last_two[0][0] + 1

    def test_opening_a_case_records_neither_client_nor_case_when_the_write_fails(
        self, casenet: Casenet, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        network = register_network(casenet)
        existing = open_case(casenet, network.welfare_worker)
        before = all_notifications(casenet)
        keys_before = data_key_subjects(casenet)
        # The next case gets the id of an existing one, so its first event collides with
        # a stored event after the client's has been written in the same transaction.
        monkeypatch.setattr(case_module, "uuid4", lambda: existing.id)

        with pytest.raises(VersionConflict):
            open_case(casenet, network.welfare_worker)

        after = all_notifications(casenet)
        assert [n[1:] for n in after] == [n[1:] for n in before]
        assert not any(topic.endswith("ClientRegistered") for *_, topic in after[len(before):])
        # Nor the new client's data key, which goes in with the events.
        assert data_key_subjects(casenet) == keys_before
        assert str(existing.client_id) in keys_before

    def test_a_registration_retried_after_a_failed_write_keeps_its_data_readable(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # A retry with the same Idempotency-Key registers the client under the same id.
        # The first write took the new client's key into its transaction and failed;
        # the retry must write the key again, not reuse the one the key ring made.
        network = register_network(casenet)
        recorder = casenet.app.recorder
        real_insert = recorder.insert_events

        def fails_once(*args: object, **kwargs: object) -> None:
            monkeypatch.setattr(recorder, "insert_events", real_insert)
            recorder.staged_keys()  # type: ignore[attr-defined]
            raise OperationalError("the connection was lost (injected)")

        monkeypatch.setattr(recorder, "insert_events", fails_once)
        request_id = uuid4()
        details = ClientDetails(name="Amina Njeri", phone="+254 700 000000")
        with pytest.raises(OperationalError):
            casenet.cases.open_case(
                network.welfare_worker, client=details, summary="First", needs=[],
                new_id=request_id,
            )
        case = casenet.cases.open_case(
            network.welfare_worker, client=details, summary="First", needs=[],
            new_id=request_id,
        )

        restarted = open_casenet()  # nothing cached: every key comes from the table
        client = restarted.app.get(Client, case.client_id)
        assert (client.name, client.phone) == ("Amina Njeri", "+254 700 000000")
        assert restarted.cases.owned_case(network.welfare_worker, case.id).summary == "First"
        assert str(case.client_id) in data_key_subjects(restarted)

    def test_notes_are_kept_in_order_with_their_category(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        case = open_case(casenet, network.welfare_worker)
        _, first = casenet.cases.add_note(
            network.welfare_worker, case.id, category="general", text="Called the employer"
        )
        updated, second = casenet.cases.add_note(
            network.welfare_worker, case.id, category="health", text="Husband on dialysis",
            expected_version=2,
        )
        assert updated.version == 3

        reloaded = open_casenet().cases.owned_case(network.welfare_worker, case.id)

        assert reloaded.version == 3
        assert [(n.id, n.category, n.text, n.author_worker_id) for n in reloaded.notes] == [
            (first.id, "general", "Called the employer", network.welfare_worker.worker_id),
            (second.id, "health", "Husband on dialysis", network.welfare_worker.worker_id),
        ]

    def test_a_case_closes_and_reopens_and_a_closed_case_takes_no_notes(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        worker = network.welfare_worker
        case = open_case(casenet, worker)
        casenet.cases.close_case(worker, case.id, reason="Resolved", expected_version=1)

        with pytest.raises(IllegalTransition):
            casenet.cases.add_note(worker, case.id, category="general", text="Too late")
        with pytest.raises(IllegalTransition):
            casenet.cases.close_case(worker, case.id, reason="Again")
        closed = open_casenet().cases.owned_case(worker, case.id)
        assert (closed.status, closed.version, closed.notes) == ("closed", 2, [])

        casenet.cases.reopen_case(worker, case.id, reason="New clash", expected_version=2)
        casenet.cases.add_note(worker, case.id, category="general", text="Back again")

        reopened = open_casenet().cases.owned_case(worker, case.id)
        assert (reopened.status, reopened.version) == ("open", 4)
        assert [n.text for n in reopened.notes] == ["Back again"]

    def test_a_case_does_not_exist_for_another_agency(self, casenet: Casenet) -> None:
        network = register_network(casenet)
        case = open_case(casenet, network.welfare_worker)

        with pytest.raises(NotFound):
            casenet.cases.owned_case(network.hospital_worker, case.id)
        with pytest.raises(NotFound):
            casenet.cases.add_note(
                network.hospital_worker, case.id, category="general", text="Not mine"
            )
        assert casenet.cases.owned_case(network.welfare_worker, case.id).version == 1

    def test_several_aggregates_load_together_in_the_order_asked(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        case = open_case(casenet, network.welfare_worker)
        casenet.cases.add_note(network.welfare_worker, case.id, category="general", text="One")
        app = open_casenet().app

        client, loaded, agency = app.get_all(
            (Client, case.client_id), (Case, case.id), (Agency, network.welfare.id)
        )
        assert isinstance(client, Client)
        assert isinstance(loaded, Case)
        assert isinstance(agency, Agency)
        assert (client.id, client.name, client.address) == (
            case.client_id, "Amina Njeri", "12 River Road"
        )
        assert (loaded.id, loaded.version, [n.text for n in loaded.notes]) == (
            case.id, 2, ["One"]
        )
        assert agency.id == network.welfare.id
        missing = uuid4()
        with pytest.raises(NotFound, match=r"^case not found$"):
            app.get_all((Client, case.client_id), (Case, missing))
        with pytest.raises(NotFound, match=r"^case not found$"):
            app.get_all((Case, case.client_id))  # a client's id is not a case's

    def test_the_owners_repeated_read_equals_its_first_and_others_still_see_nothing(
        self, casenet: Casenet
    ) -> None:
        # The owner's second read loads case and client in one statement (the case's
        # parties are remembered after the first): same view; another agency's read
        # after it still finds nothing.
        network = register_network(casenet)
        case = open_case(casenet, network.welfare_worker)
        first = casenet.case_queries.read_case(network.welfare_worker, case.id)
        casenet.cases.add_note(network.welfare_worker, case.id, category="general", text="Two")
        second = casenet.case_queries.read_case(network.welfare_worker, case.id)

        assert second.version == first.version + 1
        assert second.client == first.client
        assert isinstance(second.client, ClientView)
        assert second.client.name == "Amina Njeri"
        assert isinstance(second.notes, list)
        assert [n.text for n in second.notes] == ["Two"]
        with pytest.raises(NotFound):
            casenet.case_queries.read_case(network.hospital_worker, case.id)

    def test_a_sealed_load_has_the_same_state_but_no_personal_field_and_cannot_be_shown(
        self, casenet: Casenet
    ) -> None:
        network = register_network(casenet)
        case = open_case(casenet, network.welfare_worker)
        casenet.cases.add_note(network.welfare_worker, case.id, category="general", text="One")

        full = casenet.app.get(Case, case.id)
        sealed = casenet.app.get(Case, case.id, personal=False)
        assert (sealed.sealed, full.sealed) == (True, False)
        assert (sealed.version, sealed.status, sealed.client_id, sealed.needs) == (
            full.version, full.status, full.client_id, full.needs
        )
        assert [(n.id, n.category) for n in sealed.notes] == [
            (n.id, n.category) for n in full.notes
        ]
        assert (sealed.summary, [n.text for n in sealed.notes]) == (None, [None])
        assert full.summary is not None
        client = casenet.app.get(Client, case.client_id)
        grant = Grant(network.welfare.id, SECTIONS, OWNER)
        assert render_case(full, client, grant).summary == full.summary
        with pytest.raises(RuntimeError, match="sealed Case"):
            render_case(sealed, client, grant)
        with pytest.raises(RuntimeError, match="sealed Client"):
            render_case(full, casenet.app.get(Client, case.client_id, personal=False), grant)

    def test_commands_decrypt_nothing_but_a_retried_note_answers_as_written(
        self, casenet: Casenet, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Adding notes, recording a consent and referring read ids and states only: no
        # personal field of the case's history is decrypted for them.
        network = register_network(casenet)
        worker = network.welfare_worker
        case = open_case(casenet, worker)
        decrypted: list[bytes] = []

        def counting(key: DataKey, associated_data: bytes, stored: str) -> bytes:
            decrypted.append(associated_data)
            return unseal(key, associated_data, stored)

        # Every personal field the mapper decrypts, on either of its paths, goes here.
        monkeypatch.setattr(mapper_module, "unseal", counting)
        note_id = uuid4()
        for text in ("One", "Two"):
            casenet.cases.add_note(worker, case.id, category="general", text=text)
        casenet.cases.add_note(worker, case.id, category="general", text="Three", new_id=note_id)
        consent = casenet.consents.grant(
            worker, case.id, grantee_agency_id=network.hospital.id, sections=["identity"],
            purpose="referral", method="verbal", evidence="Said yes on the phone",
        )
        casenet.referrals.request(
            worker, case_id=case.id, to_agency_id=network.hospital.id,
            service_type="health", reason="Clashing shifts",
            urgency="routine", consent_id=consent.id,
        )
        assert decrypted == []

        _, retried = casenet.cases.add_note(
            worker, case.id, category="general", text="Three", new_id=note_id
        )
        assert (retried.id, retried.text) == (note_id, "Three")
        assert decrypted  # the retry's answer was read back from the store
        assert casenet.app.get(Case, case.id).version == 4  # opened, three notes: no fourth

    def test_a_one_statement_read_sees_every_commit_and_raises_the_librarys_errors(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        # Database.read runs without an explicit transaction: it must never hold on to an
        # old snapshot, and a driver's error must reach callers as the library's.
        db = casenet.app.database
        other = open_casenet().app.database
        db.run("CREATE TABLE read_probe (n INTEGER NOT NULL)", commit=True)
        for n in (1, 2, 3):
            other.run("INSERT INTO read_probe VALUES (%s)", (n,), commit=True)
            assert [r["n"] for r in db.read("SELECT n FROM read_probe ORDER BY n")] == list(
                range(1, n + 1)
            )
        with pytest.raises(PersistenceError) as raised:
            db.read("SELECT n FROM no_such_table")
        assert type(raised.value).__module__ == "eventsourcing.persistence"

    # --- consent -----------------------------------------------------------------------

    def test_a_consent_is_granted_then_withdrawn(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        case = open_case(casenet, network.welfare_worker)
        until = datetime.now(UTC) + timedelta(days=90)
        granted = casenet.consents.grant(
            network.welfare_worker,
            case.id,
            grantee_agency_id=network.hospital.id,
            sections=["summary", "needs", "notes.health"],
            purpose="referral",
            method="written",
            valid_until=until,
            evidence="Signed form 17",
        )
        active = open_casenet().app.get(Consent, granted.id)
        assert active.is_active_at(datetime.now(UTC))
        assert (active.case_id, active.client_id, active.grantee_agency_id) == (
            case.id, case.client_id, network.hospital.id,
        )
        assert active.sections == ("needs", "summary", "notes.health")
        assert (active.purpose, active.method, active.evidence) == (
            "referral", "written", "Signed form 17",
        )
        assert active.valid_until == until

        casenet.consents.withdraw(
            network.welfare_worker, granted.id, reason="Client changed her mind",
            expected_version=1,
        )

        withdrawn = open_casenet().app.get(Consent, granted.id)
        assert withdrawn.version == 2
        assert withdrawn.withdrawn_at is not None
        assert withdrawn.status_at(datetime.now(UTC)) == "withdrawn"
        assert withdrawn.status_at(withdrawn.granted_at) == "active"

    # --- referrals ---------------------------------------------------------------------

    def test_a_referral_goes_through_its_whole_lifecycle_with_messages(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        referring, receiving = network.welfare_worker, network.hospital_worker
        case = open_case(casenet, referring)
        consent = casenet.consents.grant(
            referring, case.id, grantee_agency_id=network.hospital.id,
            sections=["summary", "needs"], purpose="referral", method="verbal",
        )
        referral = casenet.referrals.request(
            referring, case_id=case.id, to_agency_id=network.hospital.id,
            service_type="health", reason="Move the dialysis slot",
            urgency="urgent", consent_id=consent.id,
        )
        casenet.referrals.move(receiving, referral.id, "accept", expected_version=1)
        _, asked = casenet.referrals.post_message(receiving, referral.id, text="Which days work?")
        _, answered = casenet.referrals.post_message(referring, referral.id, text="Weekends only")
        casenet.referrals.move(receiving, referral.id, "start")
        casenet.referrals.move(receiving, referral.id, "hold", reason="Waiting for the doctor")
        casenet.referrals.move(receiving, referral.id, "start")
        casenet.referrals.move(
            receiving, referral.id, "complete", outcome="got_help", note="Moved to Saturdays",
            expected_version=7,
        )

        reloaded = open_casenet().referrals.party_referral(referring, referral.id)

        assert (reloaded.status, reloaded.outcome, reloaded.outcome_note) == (
            "completed", "got_help", "Moved to Saturdays",
        )
        assert reloaded.version == 8
        assert (reloaded.case_id, reloaded.client_id, reloaded.consent_id) == (
            case.id, case.client_id, consent.id,
        )
        assert [(h.status, h.agency_id) for h in reloaded.history] == [
            ("requested", network.welfare.id),
            ("accepted", network.hospital.id),
            ("in_progress", network.hospital.id),
            ("on_hold", network.hospital.id),
            ("in_progress", network.hospital.id),
            ("completed", network.hospital.id),
        ]
        assert reloaded.history[-1].outcome == "got_help"
        assert [(m.id, m.agency_id, m.text) for m in reloaded.messages] == [
            (asked.id, network.hospital.id, "Which days work?"),
            (answered.id, network.welfare.id, "Weekends only"),
        ]
        with pytest.raises(IllegalTransition):
            casenet.referrals.move(referring, referral.id, "cancel", reason="Too late")
        assert open_casenet().app.get(Referral, referral.id).version == 8

    def test_a_referral_is_cancelled_by_the_referring_agency_only(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        case = open_case(casenet, network.welfare_worker)
        referral = casenet.referrals.request(
            network.welfare_worker, case_id=case.id, to_agency_id=network.hospital.id,
            service_type="health", reason="Move the slot", urgency="routine",
        )
        with pytest.raises(NotPermitted, match="referring agency"):
            casenet.referrals.move(
                network.hospital_worker, referral.id, "cancel", reason="Not ours to cancel"
            )

        casenet.referrals.move(
            network.welfare_worker, referral.id, "cancel", reason="Solved another way"
        )

        reloaded = open_casenet().app.get(Referral, referral.id)
        assert (reloaded.status, reloaded.version) == ("cancelled", 2)

    # --- the notification log ----------------------------------------------------------

    def test_the_notification_log_holds_every_event_once_in_one_gapless_order(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        worker = network.welfare_worker
        case = open_case(casenet, worker)
        casenet.cases.add_note(worker, case.id, category="general", text="First")
        consent = casenet.consents.grant(
            worker, case.id, grantee_agency_id=network.hospital.id, sections=["needs"],
            purpose="care_coordination", method="electronic",
        )
        referral = casenet.referrals.request(
            worker, case_id=case.id, to_agency_id=network.hospital.id,
            service_type="health", reason="Move it", urgency="routine",
        )
        casenet.referrals.move(network.hospital_worker, referral.id, "accept")
        casenet.consents.withdraw(worker, consent.id, reason="Done")
        casenet.cases.close_case(worker, case.id, reason="Done")

        restarted = open_casenet()
        log = all_notifications(restarted)

        ids = [n[0] for n in log]
        assert ids == list(range(1, len(ids) + 1))
        aggregates: list[tuple[type, UUID]] = [
            (Agency, network.welfare.id), (Agency, network.hospital.id), (Client, case.client_id),
            (Case, case.id), (Consent, consent.id), (Referral, referral.id),
            # The referral's reason, disclosed to the hospital (API.md).
            (Disclosure, uuid5(referral.id, "disclosure")),
        ]
        versions = {
            aggregate_id: restarted.app.get(kind, aggregate_id).version
            for kind, aggregate_id in aggregates
        }
        assert len(log) == sum(versions.values()) == 13
        # Each aggregate's events appear once each, in version order, 1..version.
        for aggregate_id, version in versions.items():
            assert [n[2] for n in log if n[1] == aggregate_id] == list(range(1, version + 1))
        # The global order is the order the commands ran in.
        assert [n[3].rpartition(":")[2] for n in log[4:]] == [
            "ClientRegistered", "CaseOpened", "CaseNoteAdded", "ConsentGranted",
            "ReferralRequested", "DisclosureRecorded", "ReferralAccepted", "ConsentWithdrawn",
            "CaseClosed",
        ]
        # The library's paged notification log gives the same sequence, page by page.
        paged: list[int] = []
        section_id: str | None = "1,10"
        while section_id is not None:
            section = restarted.app.notification_log[section_id]
            paged.extend(item.id for item in section.items)
            section_id = section.next_id
        assert paged == ids
        # And a reader that resumes after a position sees exactly the rest.
        rest = restarted.app.recorder.select_notifications(start=8, limit=ALL)
        assert [n.id for n in rest] == ids[7:]
        assert restarted.app.recorder.max_notification_id() == len(ids)

    # --- optimistic concurrency --------------------------------------------------------

    def test_a_stale_expected_version_is_refused_and_records_nothing(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        worker = network.welfare_worker
        case = open_case(casenet, worker)
        casenet.cases.add_note(worker, case.id, category="general", text="Now at version 2")
        before = all_notifications(casenet)

        with pytest.raises(StaleVersion) as refused:
            casenet.cases.add_note(
                worker, case.id, category="general", text="Written against v1",
                expected_version=1,
            )
        with pytest.raises(StaleVersion):
            casenet.cases.close_case(worker, case.id, reason="Stale", expected_version=3)

        assert (refused.value.expected, refused.value.actual) == (1, 2)
        assert all_notifications(casenet) == before
        reloaded = open_casenet().cases.owned_case(worker, case.id)
        assert (reloaded.version, [n.text for n in reloaded.notes]) == (2, ["Now at version 2"])

    def test_two_copies_saved_at_the_same_version_one_wins_the_other_conflicts(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        worker = network.welfare_worker
        case = open_case(casenet, worker)
        other = open_casenet()  # another process, on the same database
        mine = casenet.cases.owned_case(worker, case.id)
        theirs = other.cases.owned_case(worker, case.id)
        assert mine.version == theirs.version == 1
        assert worker.worker_id is not None
        mine.add_note(worker_id=worker.worker_id, category="general", text="Mine")
        theirs.add_note(worker_id=worker.worker_id, category="general", text="Theirs")
        before = all_notifications(casenet)

        casenet.app.save(mine)
        with pytest.raises(VersionConflict):
            other.app.save(theirs)

        after = all_notifications(casenet)
        assert [n[1:3] for n in after[len(before):]] == [(case.id, 2)]
        assert len({(n[1], n[2]) for n in after}) == len(after)
        assert [n[0] for n in after] == sorted({n[0] for n in after})
        reloaded = open_casenet().cases.owned_case(worker, case.id)
        assert (reloaded.version, [n.text for n in reloaded.notes]) == (2, ["Mine"])

    def test_a_conflicting_save_of_several_aggregates_records_none_of_them(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        worker = network.welfare_worker
        assert worker.worker_id is not None
        case = open_case(casenet, worker)
        agency = casenet.app.get(Agency, network.welfare.id)
        agency_version = agency.version
        stale_case = copy.deepcopy(casenet.app.get(Case, case.id))
        casenet.cases.add_note(worker, case.id, category="general", text="Won the race")
        agency.add_worker(name="Newcomer", role="caseworker", token_hash="0" * 64)
        stale_case.add_note(worker_id=worker.worker_id, category="general", text="Lost it")

        with pytest.raises(VersionConflict):
            casenet.app.save(agency, stale_case)

        restarted = open_casenet()
        assert restarted.app.get(Agency, network.welfare.id).version == agency_version
        assert [n.text for n in restarted.app.get(Case, case.id).notes] == ["Won the race"]


class TestSQLite(ApplicationContract):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url

    def test_sqlite_reads_go_through_a_read_only_connection_per_thread(
        self, casenet: Casenet
    ) -> None:
        # On an SQLite file Database.read uses a connection of the calling thread's own,
        # outside the library's pool: it must refuse writes, serve each thread its own
        # connection, see other threads' commits, and be closed with the store.
        db = casenet.app.database
        db.run("CREATE TABLE reader_probe (n INTEGER NOT NULL)", commit=True)
        with pytest.raises(PersistenceError):
            db.read("INSERT INTO reader_probe VALUES (1)")
        assert db.read("SELECT count(*) AS n FROM reader_probe")[0]["n"] == 0

        seen: dict[str, object] = {}

        def in_a_thread() -> None:
            seen["rows"] = [r["n"] for r in db.read("SELECT n FROM reader_probe")]
            seen["reader"] = db._reader()

        db.run("INSERT INTO reader_probe VALUES (7)", commit=True)
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        assert seen["rows"] == [7]
        assert seen["reader"] is not db._reader()
        # A thread's reader goes with the thread: nothing else holds it.
        assert len(db._reader_connections) == 2
        del seen["reader"]
        gc.collect()
        assert list(db._reader_connections) == [db._reader()]

        casenet.close()
        with pytest.raises(PersistenceError):
            db.read("SELECT 1")


@pytest.mark.postgres
class TestPostgres(ApplicationContract):
    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url
