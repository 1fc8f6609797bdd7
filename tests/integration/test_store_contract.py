"""What every store must do, written once and run on SQLite and on PostgreSQL.

A store is casenet's recorder for it (a subclass of the eventsourcing library's
application recorder: ``persistence/sqlite.py``, ``persistence/postgres.py``) and the
``sql.Database`` it brings for casenet's own tables. :class:`StoreContract` is what
the rest of casenet relies on; each store's subclass names the store and only what
must differ (the recorder's class; whether truncating the WAL does anything).

Group commit must keep every save atomic, give exactly the losers of a race their
conflict, and keep the ordering guarantee: a follower reading by position while
threads write never skips an event. The log read with plain SQL (``raw_log``) must
give what the library's reader gives.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent
from eventsourcing.utils import get_topic

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.domain.agency import Agency
from casenet.domain.case import Case, CaseOpened
from casenet.domain.client import Client
from casenet.domain.consent import Consent, ConsentGranted, ConsentWithdrawn
from casenet.domain.errors import VersionConflict
from casenet.infrastructure.keytable import DataKeyRow
from casenet.infrastructure.persistence.base import CasenetRecorder
from casenet.infrastructure.persistence.postgres import CasenetPostgresRecorder
from casenet.infrastructure.persistence.sqlite import CasenetSQLiteRecorder
from casenet.infrastructure.raw_log import next_rows, stored_rows, uuid_text
from casenet.infrastructure.sql import Database

THREADS = 16


def store_of(casenet: Casenet) -> CasenetRecorder:
    recorder = casenet.app.recorder
    assert isinstance(recorder, CasenetRecorder)
    return recorder


def _stored(casenet: Casenet, aggregate: Agency) -> list[StoredEvent]:
    return [casenet.app.mapper.to_stored_event(e) for e in aggregate.collect_events()]


def _key(subject_id: UUID) -> DataKeyRow:
    return DataKeyRow(subject_id, os.urandom(4), "test", os.urandom(60))


def _key_subjects(casenet: Casenet) -> set[UUID]:
    rows = casenet.app.database.run("SELECT subject_id FROM casenet_data_keys", commit=False)
    return {UUID(str(row["subject_id"])) for row in rows}


def _client_with_case(casenet: Casenet) -> UUID:
    """A new client (with a data key), through a case opened by a new agency."""
    agency = casenet.agencies.register(OPERATOR_ACTOR, name="Clinic", kind="ngo")
    worker, _ = casenet.agencies.add_worker(OPERATOR_ACTOR, agency.id, name="W", role="caseworker")
    case = casenet.cases.open_case(
        Actor(agency.id, worker.id, "caseworker"),
        client=ClientDetails(name="Amina Njeri", phone="+254 700 000000"),
        summary="Summary",
        needs=[],
    )
    return case.client_id


def fill(casenet: Casenet) -> None:
    owner = casenet.agencies.register(OPERATOR_ACTOR, name="Owner", kind="ngo")
    grantee = casenet.agencies.register(OPERATOR_ACTOR, name="Grantee", kind="ngo")
    worker, _ = casenet.agencies.add_worker(OPERATOR_ACTOR, owner.id, name="W", role="caseworker")
    for _ in range(3):
        client = Client.register(
            agency_id=owner.id, name="Client", date_of_birth=None, phone=None, address=None
        )
        case = Case.open(
            owner_agency_id=owner.id,
            worker_id=worker.id,
            client_id=client.id,
            summary="Summary",
            needs=["housing"],
        )
        consents = [
            Consent.grant(
                case_id=case.id,
                client_id=client.id,
                owner_agency_id=owner.id,
                recording_agency_id=owner.id,
                grantee_agency_id=grantee.id,
                sections=["needs"],
                purpose="referral",
                method="written",
                worker_id=worker.id,
            )
            for _ in range(4)
        ]
        consents[0].withdraw(recording_agency_id=owner.id, worker_id=worker.id, reason="No")
        casenet.app.save(client, case, *consents)


class StoreContract:
    """What casenet's recorder and database do on every store."""

    recorder_class: type[CasenetRecorder]

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError("a subclass names the store")

    def assert_wal_truncated(self, casenet: Casenet) -> None:
        """What :meth:`Database.truncate_wal` must have done (a subclass says)."""
        raise NotImplementedError

    # --- the recorder ------------------------------------------------------------------

    def test_the_store_is_casenets_recorder_with_its_database(self, casenet: Casenet) -> None:
        store = store_of(casenet)
        assert type(store) is self.recorder_class
        assert isinstance(casenet.app.database, Database)
        assert casenet.app.database is store.database

    def test_appended_events_read_back_by_id_in_one_statement(
        self, casenet: Casenet, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first, second = (Agency.register(name=n, kind="ngo") for n in ("First", "Second"))
        second.replace_services([])
        casenet.app.save(first, second)
        store, statements = store_of(casenet), []
        read = store.database.read

        def counted(*args: Any, **kwargs: Any) -> list[Any]:
            statements.append(args[0])
            return read(*args, **kwargs)

        monkeypatch.setattr(store.database, "read", counted)
        stored = {
            a.id: [(e.originator_version, e.topic) for e in store.select_events(a.id)]
            for a in (first, second)
        }
        assert [version for version, _ in stored[second.id]] == [1, 2]
        for count in (3, 12):  # either side of SQLite's UNION ALL limit
            ids = [second.id, uuid4(), first.id] + [uuid4() for _ in range(count - 3)]
            histories, keys = store.read_aggregates(ids, [])
            assert [[(row[1], row[2]) for row in rows] for rows in histories] == [
                stored[second.id],
                [],
                stored[first.id],
            ] + [[]] * (count - 3)
            assert keys == []
        assert len(statements) == 2

    def test_key_rows_are_read_with_the_events_in_the_same_statement(
        self, casenet: Casenet
    ) -> None:
        kept, erased = (_client_with_case(casenet) for _ in range(2))
        casenet.clients.erase(OPERATOR_ACTOR, erased)
        never = uuid4()
        histories, keys = store_of(casenet).read_aggregates([kept], [kept, erased, never])
        assert [row[1] for row in histories[0]] == [1]
        by_subject = {row.subject_id: row for row in keys}
        assert set(by_subject) == {kept, erased}  # a tombstone, no row for a stranger
        assert by_subject[kept].wrapped
        assert by_subject[kept].master_key_id
        assert by_subject[erased].wrapped is None
        assert isinstance(by_subject[kept].data_key_id, bytes)

    def test_a_version_already_stored_is_refused_and_nothing_is_written(
        self, casenet: Casenet
    ) -> None:
        agency = Agency.register(name="Taken", kind="ngo")
        (event,) = _stored(casenet, agency)
        store = store_of(casenet)
        store.insert_events([event])
        head = casenet.app.projections.head()
        fresh = StoredEvent(uuid4(), 1, event.topic, event.state)
        with pytest.raises(IntegrityError):
            store.insert_events([fresh, event])  # the first is new, the second taken
        assert casenet.app.projections.head() == head
        assert store.read_aggregates([fresh.originator_id], [])[0] == [[]]

    # --- casenet's tables ----------------------------------------------------------------

    def test_casenets_tables_take_ids_times_and_bytes_as_the_store_holds_them(
        self, casenet: Casenet
    ) -> None:
        db = casenet.app.database
        db.run(
            f"CREATE TABLE probe (id {db.uuid} PRIMARY KEY, at {db.time} NOT NULL, "
            f"data {db.blob}){db.clustered}",
            commit=True,
        )
        ids = sorted(uuid4() for _ in range(4))
        with db.bulk_cursor() as cursor:
            clear = [(db.id_param(i), db.now(), b"\x00\xff") for i in ids[:2]]
            db.insert_rows(cursor, "probe", clear)
            db.write_many(
                cursor,
                "INSERT INTO probe VALUES (%s, %s, %s)",
                [(db.id_param(i), db.now(), None) for i in ids[2:]],
            )
            db.insert_rows(cursor, "probe", [])  # nothing to send
        rows = db.read("SELECT id, data FROM probe ORDER BY id", tuples=True)
        assert [UUID(str(row[0])) for row in rows] == ids
        data = [None if row[1] is None else bytes(row[1]) for row in rows]
        assert data == [b"\x00\xff", b"\x00\xff", None, None]
        found = db.run("SELECT id FROM probe WHERE id = %s", (db.id_param(ids[1]),), commit=False)
        assert [UUID(str(row["id"])) for row in found] == [ids[1]]

    def test_a_failed_bulk_or_erasing_write_commits_nothing(self, casenet: Casenet) -> None:
        db = casenet.app.database
        db.run("CREATE TABLE probe (n INTEGER PRIMARY KEY)", commit=True)
        for cursor_of in (db.bulk_cursor, db.erasing_cursor):
            def twice(cursor_of: Any = cursor_of) -> None:
                with cursor_of() as cursor:
                    cursor.execute(db.sql("INSERT INTO probe VALUES (%s)"), (1,))
                    cursor.execute(db.sql("INSERT INTO probe VALUES (%s)"), (1,))

            with pytest.raises(PersistenceError):
                twice()
            with cursor_of() as cursor:
                cursor.execute(db.sql("INSERT INTO probe VALUES (%s)"), (2,))
            assert [row["n"] for row in db.read("SELECT n FROM probe")] == [2]
            db.run("DELETE FROM probe", commit=True)

    def test_the_wal_is_truncated_after_an_erasure_where_the_store_has_one(
        self, casenet: Casenet
    ) -> None:
        casenet.clients.erase(OPERATOR_ACTOR, _client_with_case(casenet))
        assert casenet.app.database.truncate_wal() is True
        self.assert_wal_truncated(casenet)

    def test_a_transaction_that_reads_then_writes_survives_a_writer_in_between(
        self, casenet: Casenet, open_casenet: Any
    ) -> None:
        # A rebuild's last transaction reads (its indexes exist?) and then writes, while
        # the server writes too. On SQLite a deferred BEGIN made that "database is
        # locked" at once, with no wait, whenever the other write came in between (the
        # live-rebuild test failed 1 run in 8 or so); a writing transaction now holds
        # the write lock from its start, and the other writer waits for it.
        other = open_casenet()
        db = casenet.app.database
        with db.cursor(commit=True) as cursor:
            cursor.execute("CREATE TABLE scratch_counter (n INTEGER NOT NULL)")
            cursor.execute("INSERT INTO scratch_counter VALUES (1)")
        read = threading.Event()
        errors: list[BaseException] = []

        def write_meanwhile() -> None:
            read.wait(10)
            try:
                other.app.database.run("UPDATE scratch_counter SET n = n + 1", commit=True)
            except BaseException as error:  # noqa: BLE001  (reported below)
                errors.append(error)

        writer = threading.Thread(target=write_meanwhile)
        writer.start()
        try:
            with db.cursor(commit=True) as cursor:
                cursor.execute("SELECT n FROM scratch_counter")
                cursor.fetchall()
                read.set()
                time.sleep(0.3)  # the other writer commits now, if it can
                cursor.execute("UPDATE scratch_counter SET n = n + 10")
        finally:
            read.set()
            writer.join(20)
            other.close()
        assert errors == []
        assert [tuple(row) for row in db.read("SELECT n FROM scratch_counter", tuples=True)] == [
            (12,)
        ]

    # --- group commit --------------------------------------------------------------------

    def test_a_batch_commits_its_saves_and_rolls_back_only_the_loser(
        self, casenet: Casenet
    ) -> None:
        # One batch as the leader writes it: the middle save takes a version that is
        # already stored. It alone is rolled back, with the key it carried; the saves
        # before and after it commit, with theirs.
        taken = Agency.register(name="Taken", kind="ngo")
        casenet.app.save(taken)
        before, after = (
            Agency.register(name="Before", kind="ngo"),
            Agency.register(name="After", kind="ngo"),
        )
        again = Agency.register(name="Taken again", kind="ngo")
        # The loser's first event is new (a fresh aggregate), its second taken: the first
        # is inserted, then must go when the second fails.
        (event,) = _stored(casenet, again)
        stray = uuid4()
        loser = [
            StoredEvent(stray, 1, event.topic, event.state),
            StoredEvent(taken.id, 1, event.topic, event.state),
        ]
        subjects = [uuid4(), uuid4(), uuid4()]
        recorder: Any = casenet.app.recorder
        outcomes = recorder._flush(
            [
                (_stored(casenet, before), [_key(subjects[0])]),
                (loser, [_key(subjects[1])]),
                (_stored(casenet, after), [_key(subjects[2])]),
            ]
        )

        assert isinstance(outcomes[1], IntegrityError)
        assert len(outcomes[0]) == len(outcomes[2]) == 1
        assert outcomes[0][0] < outcomes[2][0]
        stored = casenet.app.recorder.select_notifications(start=1, limit=100)
        assert [(n.id, n.originator_id) for n in stored][-2:] == [
            (outcomes[0][0], before.id),
            (outcomes[2][0], after.id),
        ]
        assert [n.originator_version for n in stored if n.originator_id == taken.id] == [1]
        assert not [n for n in stored if n.originator_id == stray]
        assert casenet.app.get(Agency, taken.id).name == "Taken"
        keys = _key_subjects(casenet)
        assert subjects[0] in keys
        assert subjects[2] in keys
        assert subjects[1] not in keys

    def test_racing_saves_in_one_batch_lose_alone_and_everyone_else_commits(
        self, casenet: Casenet,
    ) -> None:
        contested = Agency.register(name="Contested", kind="ngo")
        casenet.app.save(contested)
        line_up = threading.Barrier(THREADS)
        outcomes: list[str] = []
        lock = threading.Lock()

        def write(index: int) -> None:
            if index % 2:
                # Odd threads all try version 2 of the same agency: one may win.
                copy = casenet.app.get(Agency, contested.id)
                copy.replace_services([])
                line_up.wait()
                try:
                    casenet.app.save(copy)
                    outcome = "won"
                except VersionConflict:
                    outcome = "lost"
            else:
                fresh = Agency.register(name=f"Fresh {index}", kind="ngo")
                line_up.wait()
                casenet.app.save(fresh)
                outcome = "fresh"
            with lock:
                outcomes.append(outcome)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(outcomes).count("won") == 1
        assert outcomes.count("lost") == THREADS // 2 - 1
        assert outcomes.count("fresh") == THREADS // 2
        stored = casenet.app.recorder.select_notifications(start=1, limit=1000)
        assert len(stored) == 1 + 1 + THREADS // 2  # registration, one winner, the fresh ones
        versions = [n.originator_version for n in stored if n.originator_id == contested.id]
        assert versions == [1, 2]

    def test_a_follower_never_skips_while_threads_commit_in_groups(
        self, casenet: Casenet
    ) -> None:
        recorder = casenet.app.recorder
        stop = threading.Event()
        seen: list[int] = []
        polls_with_news = 0

        def follow() -> None:
            nonlocal polls_with_news
            while True:
                # Read the flag before polling: an empty poll that began after every writer
                # had finished proves the follower has seen everything.
                writers_done = stop.is_set()
                after = seen[-1] if seen else 0
                batch = recorder.select_notifications(start=after + 1, limit=500)
                seen.extend(n.id for n in batch)
                polls_with_news += bool(batch)
                if writers_done and not batch:
                    return

        def write(saves: int, failures: list[Any]) -> None:
            try:
                for _ in range(saves):
                    casenet.app.save(Agency.register(name="Writer", kind="ngo"))
            except Exception as error:  # noqa: BLE001  (reported by the assertion below)
                failures.append(error)

        follower = threading.Thread(target=follow)
        follower.start()
        failures: list[Any] = []
        writers = [threading.Thread(target=write, args=(60, failures)) for _ in range(THREADS)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        stop.set()
        follower.join()

        committed = [n.id for n in recorder.select_notifications(start=1, limit=10_000)]
        assert failures == []
        assert len(committed) == THREADS * 60
        assert seen == committed
        assert all(a < b for a, b in itertools.pairwise(seen))
        assert polls_with_news >= 5, "the follower must have read while the writers wrote"

    # --- the log read with plain SQL -------------------------------------------------------

    @pytest.mark.parametrize("batch", [1, 3, 7, 10_000])
    def test_stored_rows_are_the_librarys_notifications_of_those_topics(
        self, casenet: Casenet, batch: int
    ) -> None:
        fill(casenet)
        app = casenet.app
        head = app.projections.head()
        topics = [get_topic(t) for t in (CaseOpened, ConsentGranted, ConsentWithdrawn)]
        stop = head - 2  # the last consents of the last case are beyond it
        expected = [
            (n.id, n.topic, str(n.originator_id), n.originator_version, bytes(n.state))
            for n in app.recorder.select_notifications(start=1, limit=head, stop=stop)
            if n.topic in topics
        ]
        assert len(expected) == 3 * 6 - 2  # per case: opened, 4 granted, 1 withdrawn
        assert {row[1] for row in expected} == set(topics)
        rows = list(stored_rows(app.projections.db, app.recorder, topics, stop=stop, batch=batch))
        assert [(p, t, i, v, bytes(s)) for p, t, i, v, s in rows] == expected
        assert all(str(UUID(row[2])) == row[2] for row in rows)

    @pytest.mark.parametrize(
        ("start", "limit", "stop"),
        [(0, 10_000, None), (0, 5, None), (4, 7, None), (4, 100, 9), (10, 1, 11), (3, 10, 3)],
    )
    def test_next_rows_are_the_librarys_next_notifications(
        self, casenet: Casenet, start: int, limit: int, stop: int | None
    ) -> None:
        fill(casenet)
        app = casenet.app
        expected = [
            (n.id, n.topic, str(n.originator_id), n.originator_version, bytes(n.state))
            for n in app.recorder.select_notifications(start=start + 1, limit=limit, stop=stop)
        ]
        assert expected or stop == start
        rows = next_rows(app.projections.db, app.recorder, start, limit, stop)
        # The id as stored (SQLite: 32 hex digits), which uuid_text writes as str(UUID).
        assert [(p, t, uuid_text(i), v, bytes(s)) for p, t, i, v, s in rows] == expected
        assert all(UUID(row[2]) == UUID(uuid_text(row[2])) for row in rows)
        past = next_rows(app.projections.db, app.recorder, app.projections.head(), limit)
        assert past == []


class TestSQLite(StoreContract):
    recorder_class = CasenetSQLiteRecorder

    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url

    def assert_wal_truncated(self, casenet: Casenet) -> None:
        # Every page image from before the erasure was copied out and the log emptied.
        wal = Path(f"{casenet.app.database.datastore.pool.db_name}-wal")  # type: ignore[attr-defined]
        assert wal.exists()
        assert wal.stat().st_size == 0


@pytest.mark.postgres
class TestPostgres(StoreContract):
    recorder_class = CasenetPostgresRecorder

    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url

    def assert_wal_truncated(self, casenet: Casenet) -> None:
        """Nothing to do: old row versions go at VACUUM, and the server's WAL is not
        casenet's to truncate."""
