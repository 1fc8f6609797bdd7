"""Read models are exactly once, resumable and rebuildable: on SQLite and on PostgreSQL.

* Fed live (``ensure_current``) or rebuilt from the whole log, every read model comes
  out identical (equal checksums), and the same log gives the same checksums on both
  stores.
* ``status`` shows the lag before a catch-up and none after.
* A rebuild killed with SIGKILL half-way resumes where it stopped and ends identical.
* Two runners catching up the same read model at once apply each notification once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.domain.agency import Agency, Service
from casenet.domain.aggregate import Aggregate, utcnow
from casenet.domain.case import Case, CaseNoteAdded
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.referral import Referral
from casenet.infrastructure.projections import Projections, ReadModel, ReadModelStopped
from casenet.infrastructure.projections.cases import CasesModel
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import Database

CASENET = [sys.executable, "-m", "casenet.cli"]
ALL = 1_000_000


# --- histories -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """What a history wrote, counted independently of any read model."""

    cases: int
    notes: int


def write_history(casenet: Casenet) -> Written:
    """Every kind of event, through the services, as agencies would write them."""
    agencies = casenet.agencies
    welfare = agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
    hospital = agencies.register(
        OPERATOR_ACTOR, name="Hospital", kind="hospital",
        services=[Service.of_type(type="health", description="Moves appointments")],
    )
    shelter = agencies.register(OPERATOR_ACTOR, name="Shelter", kind="shelter", restricted=True)
    actors: dict[UUID, Actor] = {}
    reviewers: dict[UUID, Actor] = {}  # a second supervisor: reviews emergency grants
    for agency in (welfare, hospital, shelter):
        worker, _ = agencies.add_worker(OPERATOR_ACTOR, agency.id, name="W", role="supervisor")
        actors[agency.id] = Actor(agency.id, worker.id, "supervisor")
        other, _ = agencies.add_worker(OPERATOR_ACTOR, agency.id, name="R", role="supervisor")
        reviewers[agency.id] = Actor(agency.id, other.id, "supervisor")
    admin, _ = agencies.add_worker(OPERATOR_ACTOR, hospital.id, name="Admin", role="admin")
    leaver, _ = agencies.add_worker(OPERATOR_ACTOR, hospital.id, name="Leaver", role="caseworker")
    agencies.revoke_worker(OPERATOR_ACTOR, hospital.id, leaver.id)
    agencies.replace_services(
        Actor(hospital.id, admin.id, "admin"), hospital.id,
        [Service.of_type(type="health", description="Moves appointments", area="Nairobi")],
    )
    hospital_admin = Actor(hospital.id, admin.id, "admin")
    casenet.webhooks.register(
        hospital_admin, url="http://127.0.0.1:9/kept", types=["referral_requested"]
    )
    removed, _ = casenet.webhooks.register(hospital_admin, url="http://127.0.0.1:9/x", types=None)
    casenet.webhooks.remove(hospital_admin, removed.id)
    cases = notes = 0
    for owner, grantee in ((welfare, hospital), (shelter, welfare), (hospital, shelter)):
        actor = actors[owner.id]
        for n in range(2):
            case = casenet.cases.open_case(
                actor,
                client=ClientDetails(name=f"Client {n}", phone="+254 700 000000"),
                summary="Rent arrears and a clash with hospital appointments",
                needs=["housing", "health"],
            )
            cases += 1
            for category in ("general", "health", "legal")[: n + 2]:
                casenet.cases.add_note(actor, case.id, category=category, text="Home visit")
                notes += 1
            until = utcnow() + timedelta(days=30)
            kept = casenet.consents.grant(
                actor, case.id, grantee_agency_id=grantee.id,
                sections=["identity", "needs", "notes.health"], purpose="referral",
                method="written", valid_until=until.astimezone(timezone(timedelta(hours=3))),
                evidence="Signed form",
            )
            dropped = casenet.consents.grant(
                actor, case.id, grantee_agency_id=grantee.id, sections=["summary"],
                purpose="care_coordination", method="verbal",
            )
            casenet.consents.withdraw(actor, dropped.id, reason="Client changed their mind")
            referral = casenet.referrals.request(
                actor, case_id=case.id, to_agency_id=grantee.id, service_type="health",
                reason="Move the Tuesday slot", urgency="urgent", consent_id=kept.id,
            )
            receiver = actors[grantee.id]
            casenet.referrals.post_message(receiver, referral.id, text="Which Tuesday?")
            casenet.referrals.move(receiver, referral.id, "accept")
            if n:
                casenet.referrals.move(receiver, referral.id, "start")
                casenet.referrals.move(receiver, referral.id, "complete", outcome="got_help")
                casenet.cases.close_case(actor, case.id, reason="Resolved")
                casenet.cases.reopen_case(actor, case.id, reason="New appointment clash")
            emergency = casenet.emergency_grants.create(
                actor, case.id, grantee_agency_id=grantee.id, sections=["summary", "contact"],
                basis=("safeguarding", "court_order")[n], justification="Signs of neglect",
                minutes=120,
            )
            casenet.case_queries.read_case(receiver, case.id)
            if n:  # the first grant of each owner is left unreviewed: its review falls due
                casenet.emergency_grants.review(
                    reviewers[owner.id], emergency.id, finding="justified", note="Right call"
                )
                casenet.emergency_grants.revoke(actor, emergency.id, reason="Police took over")
            if owner is welfare and n == 0:
                casenet.clients.erase(OPERATOR_ACTOR, case.client_id)
    write_network(casenet, actors, hospital_admin)
    # A month on, the deadline step notes the kept consents' expiry (not the withdrawn),
    # and the overdue reviews of the three unreviewed emergency grants.
    assert casenet.projections.deadlines.run(now=utcnow() + timedelta(days=31)) == cases + 3
    return Written(cases=cases, notes=notes)


def write_network(casenet: Casenet, actors: dict[UUID, Actor], hospital_admin: Actor) -> None:
    """Partnerships asked, accepted, declined and ended; appeals posted, relayed,
    answered and closed (issue 19). ``actors``: a supervisor of each of the three
    agencies, in the order they were registered (welfare, hospital, shelter)."""
    welfare, hospital, shelter = list(actors)
    admins = {}
    for agency_id in (welfare, shelter):
        worker, _ = casenet.agencies.add_worker(OPERATOR_ACTOR, agency_id, name="A", role="admin")
        admins[agency_id] = Actor(agency_id, worker.id, "admin")
    partners = casenet.partnerships
    kept = partners.request(hospital_admin, welfare)
    partners.answer(admins[welfare], kept.id, "accept")
    ended = partners.request(admins[welfare], shelter)
    partners.answer(admins[shelter], ended.id, "accept")
    declined = partners.request(hospital_admin, shelter)
    partners.answer(admins[shelter], declined.id, "decline")
    appeal = casenet.appeals.post(
        actors[hospital], need="health", title="Blood donors", text="O negative", area="Nairobi",
        expires_at=utcnow() + timedelta(days=2), reach="partners",
    )
    assert casenet.appeals.relay(actors[welfare], appeal.id)[1] == 1  # the shelter, hop 2
    casenet.appeals.respond(actors[shelter], appeal.id, answer="can_help", text="Two donors")
    casenet.appeals.respond(actors[welfare], appeal.id, answer="waitlist", text=None)
    casenet.appeals.close(actors[hospital], appeal.id, reason="Enough donors came")
    casenet.appeals.post(
        actors[shelter], need="housing", title="Beds", text="Two nights", area=None,
        expires_at=utcnow() + timedelta(days=1), reach="network",
    )
    partners.answer(admins[shelter], ended.id, "end")


def bulk_history(casenet: Casenet, clients: int, notes_per_case: int = 30) -> Written:
    """Many events fast: aggregates made in memory and saved a few hundred at a time."""
    agencies = [Agency.register(name=f"Agency {i}", kind="ngo") for i in range(3)]
    casenet.app.save(*agencies)
    worker = uuid4()
    pending: list[Aggregate] = []
    for i in range(clients):
        owner, other = agencies[i % 3].id, agencies[(i + 1) % 3].id
        client = Client.register(agency_id=owner, name=f"Client {i}", phone="+254 700 000000")
        case = Case.open(
            owner_agency_id=owner, worker_id=worker, client_id=client.id,
            summary="Needs help with rent", needs=["housing"],
        )
        for _ in range(notes_per_case):
            case.add_note(worker_id=worker, category="general", text="Spoke with the client")
        consent = Consent.grant(
            case_id=case.id, client_id=client.id, owner_agency_id=owner,
            recording_agency_id=owner, grantee_agency_id=other, sections=["needs"],
            purpose="referral", method="verbal", worker_id=worker,
        )
        referral = Referral.request(
            case_id=case.id, client_id=client.id, from_agency_id=owner, to_agency_id=other,
            service_type="housing", reason="Rent", urgency="routine", worker_id=worker,
            consent_id=consent.id,
        )
        referral.move("accept", agency_id=other, worker_id=worker)
        pending += [client, case, consent, referral]
        if len(pending) >= 400:
            casenet.app.save(*pending)
            pending = []
    if pending:
        casenet.app.save(*pending)
    return Written(cases=clients, notes=clients * notes_per_case)


def checksums(projections: Projections) -> dict[str, str]:
    return {name: projections.checksum(name) for name in projections.names()}


def row_counts(casenet: Casenet) -> dict[str, int]:
    counts = {}
    for model in casenet.app.projections.models.values():
        for table in model.tables:
            rows = casenet.app.database.run(f"SELECT COUNT(*) AS n FROM {table}", commit=False)
            counts[table] = int(rows[0]["n"])
    return counts


def declared_indexes(projections: Projections) -> set[str]:
    """Every secondary index the read models declare (CREATE INDEX IF NOT EXISTS name)."""
    return {
        statement.split()[5]
        for model in projections.models.values()
        for statement in model.create_statements(projections.db)
        if statement.startswith("CREATE INDEX IF NOT EXISTS ")
    }


def present_indexes(casenet: Casenet) -> set[str]:
    """The indexes the database holds, from its own catalog."""
    db = casenet.app.database
    if db.dialect == "sqlite":
        rows = db.run("SELECT name FROM sqlite_master WHERE type = 'index'", commit=False)
        return {str(row["name"]) for row in rows}
    rows = db.run(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()", commit=False
    )
    return {str(row["indexname"]) for row in rows}


class ApplyFailed(Exception):
    """Raised by a read model made to fail half-way through a rebuild."""


def fail_after(casenet: Casenet, name: str, batches: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make read model ``name`` raise from its ``batches + 1``-th batch on (in this
    process only), as a crash half-way through a rebuild would stop it."""
    model = casenet.app.projections.models[name]
    apply, calls = model.apply_batch, [0]

    def failing(*args: object) -> None:
        calls[0] += 1
        if calls[0] > batches:
            raise ApplyFailed(name)
        apply(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(model, "apply_batch", failing)


def cli_environ(casenet_environ: dict[str, str]) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    return {**environ, **casenet_environ}


# --- the contract ---------------------------------------------------------------------------


class ProjectionsContract:
    """Written once; each subclass names the store."""

    #: Clients (35 events each) for the kill test: enough for the rebuild of the cases
    #: read model to take several batches of REBUILD_BATCH_SIZE (5,000) events, so that
    #: at least one whole batch remains between the first position the test sees and
    #: the head (otherwise the rebuild can finish before the kill lands).
    kill_clients = 700

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError("a subclass names the store")

    def test_a_model_behind_only_by_events_it_ignores_has_nothing_pending(
        self, casenet: Casenet
    ) -> None:
        projections = casenet.app.projections
        agency = casenet.agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name="W", role="caseworker"
        )
        actor = Actor(agency.id, worker.id, "caseworker")
        admin, _ = casenet.agencies.add_worker(OPERATOR_ACTOR, agency.id, name="A", role="admin")
        projections.ensure_current()
        start = projections.head()
        # An event the directory follows (an agency's services), then two it does not
        # (a client's registration and a case's opening), which the cases model follows.
        casenet.agencies.replace_services(
            Actor(agency.id, admin.id, "admin"),
            agency.id,
            [Service.of_type(type="housing", description="Beds")],
        )
        followed = projections.head()
        casenet.cases.open_case(
            actor, client=ClientDetails(name="Amina"), summary="s", needs=["housing"]
        )
        head = projections.head()
        assert head > followed + 1 > start + 1
        # Whether the window (position, head] holds an event the model follows.
        assert projections.has_pending("directory", start, head)
        assert projections.has_pending("directory", start, followed)
        assert not projections.has_pending("directory", followed, head)
        assert not projections.has_pending("directory", head, head)
        assert projections.has_pending("cases", followed, head)
        assert not projections.has_pending("cases", start, followed)

    def test_live_read_models_equal_read_models_rebuilt_from_the_log(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        write_history(casenet)
        # Past the audit model's first page (256 positions), so that it completes one.
        bulk_history(casenet, clients=4, notes_per_case=40)
        projections = casenet.app.projections
        projections.ensure_current()
        live = checksums(projections)
        counts = row_counts(casenet)
        empty = [table for table, count in counts.items() if count == 0]
        assert empty == [], f"extend write_history: it leaves {empty} empty (a weak test)"

        for name in projections.names():
            projections.rebuild(name)

        assert checksums(projections) == live
        assert row_counts(casenet) == counts
        other = open_casenet().app.projections  # another process, say
        for name in other.names():
            other.rebuild(name)
        assert checksums(other) == live

    def test_a_model_whose_version_went_up_is_replayed_when_the_store_is_opened(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        write_history(casenet)
        projections = casenet.app.projections
        projections.ensure_current()
        live = checksums(projections)
        epochs = projections.table.epochs(projections.names())
        # A store the code before issue 17 left: feed rows of the old shape, written by
        # version 1 of the model, under another schema fingerprint.
        db = casenet.app.database
        db.run("UPDATE rm_feed SET type = 'ReferralRequested', body = '{}'", commit=True)
        db.run(
            "UPDATE casenet_projection_positions SET model_version = 1 WHERE name = 'feed'",
            commit=True,
        )
        db.record_schema_fingerprint("before issue 17")

        upgraded = open_casenet()  # this version, starting on it
        assert upgraded.schema.changed
        again = upgraded.app.projections
        after = again.table.epochs(again.names())
        assert after == {**epochs, "feed": epochs["feed"] + 1}  # the feed alone, emptied
        assert again.position("feed") == 0
        again.ensure_current()
        assert checksums(again) == live  # replayed: the rows of this version
        open_casenet()  # and a later start leaves it be
        assert again.table.epochs(again.names()) == after

    def test_where_batches_end_never_shows_in_the_rows(self, casenet: Casenet) -> None:
        # A batch builds the rows it creates in memory and folds its events on older
        # rows into one UPDATE each. One event per batch takes only the second way, a
        # rebuild (one batch here) almost only the first; small batches cut runs of
        # notes, messages and status changes anywhere. All must give the same rows.
        write_history(casenet)
        bulk_history(casenet, clients=6, notes_per_case=30)  # past the audit's first page
        projections = casenet.app.projections
        names = projections.names()
        projections.rebuild(names)
        assert row_counts(casenet)["rm_audit_pages"] > 0
        rebuilt = checksums(projections)
        counts = row_counts(casenet)

        for batch_size in (1, 2, 3, 5, 8):
            projections.reset(names)
            applied = projections.catch_up(names, batch_size=batch_size)

            assert applied == projections.head()
            assert checksums(projections) == rebuilt, f"batches of {batch_size}"
            assert row_counts(casenet) == counts

    def test_a_model_that_reads_notes_gets_them_whole_beside_one_that_does_not(
        self, casenet: Casenet
    ) -> None:
        # The cases model declares notes stateless (it only counts them): a batch gives
        # them an empty state only when no other model of the batch follows them.
        write_history(casenet)
        bulk_history(casenet, clients=2, notes_per_case=3)
        seen: list[dict[str, object]] = []

        class NoteTexts(ReadModel):
            name, follows = "note_texts", (CaseNoteAdded,)

            def create_statements(self, db: Database) -> list[str]:
                return []

            def apply_batch(self, db: Database, cursor: object, facts: list[StoredFact]) -> None:
                seen.extend(fact.state for fact in facts)

            def primary_keys(self) -> dict[str, str]:
                return {}

        app = casenet.app
        app.projections.ensure_current()
        live = app.projections.checksum("cases")  # fed one batch at a time, live
        projections = Projections(app.recorder, app.projections.db, [CasesModel(), NoteTexts()])
        projections.setup()
        projections.rebuild(["cases", "note_texts"])

        assert len(seen) >= 6
        assert all(state["text"] and state["category"] for state in seen)
        assert projections.checksum("cases") == live

    def test_batches_of_thousands_stop_where_they_are_told_and_at_the_head(
        self, casenet: Casenet
    ) -> None:
        # The last batch is cut short by ``until``, and then by the end of the log.
        bulk_history(casenet, clients=170, notes_per_case=30)
        projections = casenet.app.projections
        names = projections.names()
        head = projections.head()
        assert head > 2 * 2_500
        projections.rebuild(names)
        rebuilt = checksums(projections)
        projections.reset(names)

        applied = projections.catch_up(names, until=3_333, batch_size=2_500)

        assert applied == 3_333
        assert projections.positions() == dict.fromkeys(names, (3_333, True))
        assert projections.catch_up(names, batch_size=2_500) == head - 3_333
        assert checksums(projections) == rebuilt

    def test_a_rebuild_ends_with_every_index_its_read_models_declare(
        self, casenet: Casenet
    ) -> None:
        write_history(casenet)
        projections = casenet.app.projections
        declared = declared_indexes(projections)
        assert len(declared) >= 9

        projections.rebuild(projections.names())

        assert declared <= present_indexes(casenet)
        assert projections.positions() == dict.fromkeys(
            projections.names(), (projections.head(), False)
        )

    def test_a_rebuild_that_fails_half_way_is_finished_by_the_next_one(
        self, casenet: Casenet, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        bulk_history(casenet, clients=450, notes_per_case=30)
        projections = casenet.app.projections
        projections.ensure_current()
        live, counts, head = checksums(projections), row_counts(casenet), projections.head()
        assert head > 3 * 5_000  # the rebuild's batch: it fails in its third
        fail_after(casenet, "cases", 2, monkeypatch)

        with pytest.raises(ReadModelStopped, match="cases stopped at position 10000"):
            projections.rebuild(projections.names())

        # Only the model that failed stopped (before the event it failed on); the
        # others were rebuilt to the end, their indexes built again.
        stopped = projections.positions()
        assert stopped == {
            **dict.fromkeys(projections.names(), (head, False)),
            "cases": (10_000, True),
        }
        assert projections.stopped() == {
            "cases": "ApplyFailed applying CaseNoteAdded at position 10001"
        }
        missing = declared_indexes(projections) - present_indexes(casenet)
        if casenet.app.database.dialect == "sqlite":  # the bulk load drops them
            assert missing == set(projections._bulk_indexes["cases"])
        else:
            assert missing == set()
        monkeypatch.undo()

        applied = projections.rebuild(["cases"])  # the fixed version, as an operator would

        assert applied == head - 10_000, "it must resume, not start over"
        assert projections.positions() == dict.fromkeys(projections.names(), (head, False))
        assert declared_indexes(projections) <= present_indexes(casenet)
        assert checksums(projections) == live
        assert row_counts(casenet) == counts

    def test_after_a_rebuild_stopped_half_way_reads_are_right_and_a_start_restores_indexes(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        bulk_history(casenet, clients=300, notes_per_case=30)
        projections = casenet.app.projections
        projections.ensure_current()
        live = checksums(projections)
        fail_after(casenet, "referrals", 1, monkeypatch)
        with pytest.raises(ReadModelStopped):
            projections.rebuild(projections.names())
        monkeypatch.undo()
        assert projections.positions()["referrals"][1]

        # A read catches the models up before it queries them, as during any rebuild.
        reader = open_casenet()
        assert declared_indexes(projections) <= present_indexes(reader)  # the start did it
        assert reader.app.projections.resume() == ["referrals"]  # as a runner's start does
        reader.app.projections.ensure_current()
        assert checksums(reader.app.projections) == live
        owner = casenet.app.database.run(
            "SELECT owner_agency_id FROM rm_cases ORDER BY case_id LIMIT 1", commit=False
        )[0]["owner_agency_id"]
        listed = reader.app.database.run(
            "SELECT COUNT(*) AS n FROM rm_cases WHERE owner_agency_id = %s", (owner,),
            commit=False,
        )[0]
        assert int(listed["n"]) == 100  # 300 clients, three agencies in turn

        reader.app.projections.rebuild(reader.app.projections.names())
        assert checksums(projections) == live

    def test_a_batch_touching_more_earlier_referrals_than_one_lookup_takes(
        self, casenet: Casenet
    ) -> None:
        # The feed looks up the parties of older referrals 500 at a time.
        agencies = [Agency.register(name=f"Agency {i}", kind="ngo") for i in range(2)]
        worker = uuid4()
        referrals = [
            Referral.request(
                case_id=uuid4(), client_id=uuid4(), from_agency_id=agencies[0].id,
                to_agency_id=agencies[1].id, service_type="housing", reason="Rent",
                urgency="routine", worker_id=worker,
            )
            for _ in range(1201)
        ]
        casenet.app.save(*agencies, *referrals)
        projections = casenet.app.projections
        projections.catch_up(projections.names())
        for referral in referrals:
            referral.move("accept", agency_id=agencies[1].id, worker_id=worker)
        casenet.app.save(*referrals)

        projections.catch_up(projections.names(), batch_size=2000)

        accepted = casenet.app.database.run(
            "SELECT agency_id, COUNT(*) AS n FROM rm_feed WHERE type = 'referral_status_changed' "
            "GROUP BY agency_id ORDER BY agency_id", commit=False,
        )
        assert sorted((row["agency_id"], int(row["n"])) for row in accepted) == sorted(
            (str(agency.id), len(referrals)) for agency in agencies
        )
        live = checksums(projections)
        projections.rebuild(projections.names())
        assert checksums(projections) == live

    def test_a_checksum_changes_with_the_content(self, casenet: Casenet) -> None:
        write_history(casenet)
        projections = casenet.app.projections
        projections.ensure_current()
        live = checksums(projections)

        casenet.app.database.run(
            "UPDATE rm_cases SET note_count = note_count + 1 WHERE case_id = "
            "(SELECT MIN(case_id) FROM rm_cases)", commit=True,
        )
        changed = checksums(projections)
        projections.reset("consents")

        assert changed["cases"] != live["cases"]
        assert {n: c for n, c in changed.items() if n != "cases"} == {
            n: c for n, c in live.items() if n != "cases"
        }
        assert projections.checksum("consents") != live["consents"]
        assert len(set(live.values())) == len(live), "distinct models, distinct digests"

    def test_status_shows_the_lag_before_a_catch_up_and_none_after(
        self, casenet: Casenet
    ) -> None:
        projections = casenet.app.projections
        write_history(casenet)
        actor_agency = casenet.agencies.register(OPERATOR_ACTOR, name="Late", kind="ngo")
        # (Before the catch-up: adding a worker catches the directory up by itself.)
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, actor_agency.id, name="W", role="caseworker"
        )
        projections.catch_up(projections.names())
        caught_up = projections.head()
        casenet.cases.open_case(
            Actor(actor_agency.id, worker.id, "caseworker"),
            client=ClientDetails(name="New client"), summary="New", needs=["food"],
        )
        head = projections.head()

        before = projections.status()
        assert head > caught_up
        assert [(s.position, s.head, s.lag, s.rebuilding) for s in before] == [
            (caught_up, head, head - caught_up, False)
        ] * len(projections.models)

        projections.catch_up(projections.names())

        after = projections.status()
        assert [(s.position, s.lag, s.rebuilding) for s in after] == [
            (head, 0, False)
        ] * len(projections.models)
        assert {s.name for s in after} == set(projections.models)

    def test_an_interrupted_rebuild_resumes_from_its_position_not_from_the_start(
        self, casenet: Casenet
    ) -> None:
        written = bulk_history(casenet, clients=60, notes_per_case=20)
        projections = casenet.app.projections
        projections.ensure_current()
        live = checksums(projections)
        head = projections.head()
        # What a rebuild killed after a few batches leaves behind: rows and position of
        # the batches it committed, and the rebuilding mark.
        projections.reset("cases")
        projections.catch_up("cases", until=head // 2, batch_size=100)
        stopped_at = projections.position("cases")
        assert 0 < stopped_at < head
        assert projections.positions()["cases"] == (stopped_at, True)
        assert {s.name: s.rebuilding for s in projections.status()}["cases"]

        applied = projections.rebuild("cases")

        assert applied == head - stopped_at, "it must resume, not start over"
        assert projections.positions()["cases"] == (head, False)
        assert checksums(projections) == live
        notes = casenet.app.database.run(
            "SELECT COUNT(*) AS n, SUM(note_count) AS notes FROM rm_cases", commit=False
        )[0]
        assert (int(notes["n"]), int(notes["notes"])) == (written.cases, written.notes)

    @pytest.mark.slow
    def test_a_rebuild_killed_half_way_resumes_and_ends_identical(
        self, casenet: Casenet, casenet_environ: dict[str, str]
    ) -> None:
        bulk_history(casenet, clients=self.kill_clients)
        projections = casenet.app.projections
        projections.ensure_current()
        live = checksums(projections)
        head = projections.head()
        assert head > 30 * self.kill_clients
        environ = cli_environ(casenet_environ)

        rebuild = subprocess.Popen(
            [*CASENET, "projections", "rebuild"], env=environ,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            # cases: the second model rebuilt, its rows grow all along the log.
            interrupted = "cases"
            wait_for_half_way(projections, interrupted, head, rebuild)
            os.kill(rebuild.pid, signal.SIGKILL)
            rebuild.wait(timeout=30)
        finally:
            if rebuild.poll() is None:
                rebuild.kill()
                rebuild.wait()
        assert rebuild.returncode == -signal.SIGKILL
        positions = projections.positions()
        assert positions[interrupted][1], "the killed rebuild must be marked as rebuilding"
        assert 0 < positions[interrupted][0] < head
        assert checksums(projections)[interrupted] != live[interrupted]

        resumed = subprocess.run(
            [*CASENET, "projections", "rebuild"], env=environ, capture_output=True,
            text=True, timeout=300, check=False,
        )

        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.splitlines() == [
            f"{name} rebuilt to position {head}" for name in projections.names()
        ]
        assert projections.positions() == dict.fromkeys(projections.names(), (head, False))
        assert declared_indexes(projections) <= present_indexes(casenet)
        assert checksums(projections) == live  # = an uninterrupted rebuild's (test above)

    @pytest.mark.parametrize("model", ["cases", "referrals"])
    def test_two_runners_catching_up_one_read_model_at_once_apply_each_notification_once(
        self, model: str, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        written = bulk_history(casenet, clients=120, notes_per_case=10)
        head = casenet.app.projections.head()
        runners = [open_casenet().app.projections, open_casenet().app.projections]
        start = threading.Barrier(len(runners))
        applied: list[int] = []
        errors: list[BaseException] = []

        def run(projections: Projections) -> None:
            try:
                start.wait()
                applied.append(projections.catch_up(model, batch_size=25))
            except BaseException as error:  # noqa: BLE001  (reported by the test)
                errors.append(error)

        threads = [threading.Thread(target=run, args=(r,)) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        assert errors == []
        assert sum(applied) == head, "a notification counted by two runners was applied twice"
        assert casenet.app.projections.positions()[model] == (head, False)
        db = casenet.app.database
        if model == "cases":
            row = db.run("SELECT COUNT(*) AS n, SUM(note_count) AS notes FROM rm_cases",
                         commit=False)[0]
            assert (int(row["n"]), int(row["notes"])) == (written.cases, written.notes)
        else:
            row = db.run("SELECT COUNT(*) AS n, SUM(version) AS v FROM rm_referrals",
                         commit=False)[0]
            history = db.run("SELECT COUNT(*) AS n FROM rm_referral_history", commit=False)[0]
            # Each referral: requested and accepted (version 2), two history rows.
            assert (int(row["n"]), int(row["v"])) == (written.cases, 2 * written.cases)
            assert int(history["n"]) == 2 * written.cases
        raced = casenet.app.projections.checksum(model)
        casenet.app.projections.rebuild(model)
        assert casenet.app.projections.checksum(model) == raced


def wait_for_half_way(
    projections: Projections, name: str, head: int, process: subprocess.Popen[bytes]
) -> None:
    """Return once read model ``name`` is seen rebuilding with 0 < position < head."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        position, rebuilding = projections.positions()[name]
        if rebuilding and 0 < position < head:
            return
        if process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"the rebuild ended before it could be interrupted: {stderr!r}")
        time.sleep(0.005)
    pytest.fail("the rebuild never got half-way")


class TestSQLite(ProjectionsContract):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgres(ProjectionsContract):
    kill_clients = 500  # 150 (5,250 events) left one batch after the first: it raced

    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url


# --- one log, two stores ----------------------------------------------------------------------


@pytest.mark.postgres
def test_the_same_log_gives_the_same_checksums_on_sqlite_and_postgresql(
    sqlite_url: str, postgres_database_url: str, tmp_path: Path
) -> None:
    from eventsourcing.persistence import StoredEvent

    from casenet.bootstrap import build_casenet
    from casenet.settings import load_settings

    def open_store(url: str) -> Casenet:
        return build_casenet(load_settings({
            "CASENET_DATABASE_URL": url, "CASENET_DATA_DIR": str(tmp_path / "data"),
        }))

    source, target = open_store(sqlite_url), open_store(postgres_database_url)
    try:
        write_history(source)
        notifications = source.app.recorder.select_notifications(start=1, limit=ALL)
        target.app.recorder.insert_events([
            StoredEvent(
                originator_id=UUID(str(n.originator_id)),
                originator_version=n.originator_version,
                topic=n.topic,
                state=n.state,
            )
            for n in notifications
        ])
        for casenet in (source, target):
            casenet.app.projections.ensure_current()

        assert target.app.projections.head() == len(notifications)
        assert checksums(target.app.projections) == checksums(source.app.projections)
    finally:
        source.close()
        target.close()


def test_timestamps_in_other_zones_project_as_utc(casenet: Casenet) -> None:
    """valid_until given as +03:00 is stored as the same instant in UTC (text order = time)."""
    write_history(casenet)
    casenet.app.projections.ensure_current()
    rows = casenet.app.database.run(
        "SELECT consent_id, valid_until FROM rm_consents WHERE valid_until IS NOT NULL",
        commit=False,
    )
    assert rows
    for row in rows:
        consent = casenet.app.get(Consent, UUID(row["consent_id"]))
        assert consent.valid_until is not None
        assert row["valid_until"] == consent.valid_until.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )


class TestSQLiteBulkWrites:
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url

    def test_a_bulk_write_checkpoints_the_wal_less_often_and_only_while_it_lasts(
        self, casenet: Casenet
    ) -> None:
        from casenet.infrastructure.persistence.sqlite import BULK_CHECKPOINT_PAGES

        with casenet.app.database.bulk_cursor() as cursor:
            connection = cursor.connection
            during = connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            cursor.execute("UPDATE casenet_projection_positions SET position = position")

        assert during == BULK_CHECKPOINT_PAGES > 1000
        assert connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
