"""Group commit on PostgreSQL: concurrent saves commit together, safely.

Batching must keep every save atomic, give exactly the losers of a race their
conflict, and keep the ordering guarantee: a follower reading by position while
threads write never skips an event.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from casenet.application import Casenet
from casenet.domain.agency import Agency
from casenet.domain.errors import VersionConflict
from casenet.infrastructure.group_commit import GroupCommitRecorder

pytestmark = pytest.mark.postgres

THREADS = 16


@pytest.fixture
def database_url(postgres_database_url: str) -> str:
    return postgres_database_url


def test_the_postgres_store_writes_through_group_commit(casenet: Casenet) -> None:
    assert isinstance(casenet.app.recorder, GroupCommitRecorder)


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
