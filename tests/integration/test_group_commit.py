"""Group commit on both stores: concurrent saves commit together, safely.

Batching must keep every save atomic, give exactly the losers of a race their
conflict, and keep the ordering guarantee: a follower reading by position while
threads write never skips an event.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from casenet.application import Casenet
from casenet.domain.agency import Agency
from casenet.domain.errors import VersionConflict
from casenet.infrastructure.keytable import DataKeyRow
from casenet.infrastructure.persistence.postgres import CasenetPostgresRecorder
from casenet.infrastructure.persistence.sqlite import CasenetSQLiteRecorder

THREADS = 16


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_database_url"
    return str(request.getfixturevalue(fixture))


def test_each_store_writes_through_group_commit(casenet: Casenet) -> None:
    kind = (
        CasenetPostgresRecorder
        if casenet.app.database.dialect != "sqlite"
        else (CasenetSQLiteRecorder)
    )
    assert type(casenet.app.recorder) is kind


def _stored(casenet: Casenet, aggregate: Agency) -> list[StoredEvent]:
    return [casenet.app.mapper.to_stored_event(e) for e in aggregate.collect_events()]


def _key(subject_id: UUID) -> DataKeyRow:
    return DataKeyRow(subject_id, os.urandom(4), "test", os.urandom(60))


def _key_subjects(casenet: Casenet) -> set[UUID]:
    rows = casenet.app.database.run("SELECT subject_id FROM casenet_data_keys", commit=False)
    return {UUID(str(row["subject_id"])) for row in rows}


def test_a_batch_commits_its_saves_and_rolls_back_only_the_loser(casenet: Casenet) -> None:
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
    casenet: Casenet,
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


def test_a_follower_never_skips_while_threads_commit_in_groups(casenet: Casenet) -> None:
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
            batch = recorder.select_notifications(start=(seen[-1] if seen else 0) + 1, limit=500)
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
