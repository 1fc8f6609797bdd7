"""Several processes on one PostgreSQL database: what makes the multi-process case correct.

* Optimistic concurrency: many writers in two processes save the same aggregate at the
  same version at the same instant; exactly one wins, the rest get ``VersionConflict``,
  and the aggregate's history stays gapless.
* The notification log's order: writers in four processes append while a follower
  tails the log by position (``start=last_seen + 1``), never re-reading from the start.
  The follower must see every committed event, in strictly increasing id order: an id
  committed after a higher one was read would be skipped for ever. The library's
  table-lock insert path (the one casenet uses) guarantees this; its database-function
  path does not.

Workers run in ``spawn``ed processes, each with its own application and connection pool.
The first two tests open their workers' stores one at a time (``startup`` lock), so that
each tests only what it names; the last one opens many at the same instant on purpose
(table creation at start-up must be serialised between processes).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from typing import Any
from uuid import UUID

import pytest

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.bootstrap import build_casenet
from casenet.domain.errors import VersionConflict
from casenet.settings import load_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SPAWN = multiprocessing.get_context("spawn")

RACING_PROCESSES = 2
RACERS_PER_PROCESS = 25
NOTES_BEFORE_THE_RACE = 4

WRITER_PROCESSES = 4
EVENTS_PER_WRITER = 1000
WRITER_DEADLINE_SECONDS = 30.0

STARTING_PROCESSES = 8
STARTING_ROUNDS = 5


@pytest.fixture
def database_url(postgres_database_url: str) -> str:
    """Every test here runs on a fresh PostgreSQL database."""
    return postgres_database_url


def report(line: str) -> None:
    """A measurement, shown by ``pytest -s`` and kept in the captured output otherwise."""
    print(f"[measure] {line}")


def start(target: Callable[..., None], *args: Any) -> SpawnProcess:
    process = SPAWN.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def stop(processes: list[SpawnProcess]) -> list[int | None]:
    """Join the processes (bounded), kill any that hang; their exit codes."""
    for process in processes:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
            process.join(timeout=10)
    return [process.exitcode for process in processes]


# --- (a) 50 concurrent saves at one version --------------------------------------------


def race_to_add_a_note(
    environ: dict[str, str],
    startup: Any,
    actor: Actor,
    case_id: UUID,
    racers: int,
    barrier: Any,
    results: Any,
) -> None:
    """In a worker process: ``racers`` threads each load the case, line up, then save."""
    with startup:
        casenet = build_casenet(load_settings(environ))
    assert actor.worker_id is not None
    worker_id = actor.worker_id

    def racer(number: int) -> None:
        outcome = "not run"
        loaded_at = -1
        try:
            case = casenet.cases.owned_case(actor, case_id)
            loaded_at = case.version
            case.add_note(worker_id=worker_id, category="general", text=f"{os.getpid()}/{number}")
            barrier.wait(timeout=120)
            try:
                casenet.app.save(case)
                outcome = "saved"
            except VersionConflict:
                outcome = "conflict"
        except Exception as error:  # noqa: BLE001  (reported to the test, which fails)
            outcome = f"error {type(error).__name__}: {error}"
        results.put((os.getpid(), number, loaded_at, outcome))

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    casenet.close()


def test_concurrent_saves_at_one_version_from_two_processes_exactly_one_wins(
    casenet: Casenet, casenet_environ: dict[str, str]
) -> None:
    agency = casenet.agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
    worker, _ = casenet.agencies.add_worker(OPERATOR_ACTOR, agency.id, name="W", role="caseworker")
    actor = Actor(agency.id, worker.id, "caseworker")
    case = casenet.cases.open_case(
        actor, client=ClientDetails(name="A client"), summary="Summary", needs=["housing"]
    )
    for number in range(NOTES_BEFORE_THE_RACE):
        casenet.cases.add_note(actor, case.id, category="general", text=f"Before {number}")
    version = 1 + NOTES_BEFORE_THE_RACE
    racers = RACING_PROCESSES * RACERS_PER_PROCESS
    barrier = SPAWN.Barrier(racers)
    results = SPAWN.Queue()
    startup = SPAWN.Lock()

    started = time.monotonic()
    processes = [
        start(race_to_add_a_note, casenet_environ, startup, actor, case.id, RACERS_PER_PROCESS,
              barrier, results)
        for _ in range(RACING_PROCESSES)
    ]
    try:
        outcomes = [results.get(timeout=180) for _ in range(racers)]
    finally:
        exit_codes = stop(processes)
    elapsed = time.monotonic() - started

    assert exit_codes == [0] * RACING_PROCESSES
    assert len({pid for pid, *_ in outcomes}) == RACING_PROCESSES
    assert {loaded_at for _, _, loaded_at, _ in outcomes} == {version}
    assert Counter(outcome for *_, outcome in outcomes) == {"saved": 1, "conflict": racers - 1}
    stored = casenet.app.recorder.select_events(case.id)
    assert [event.originator_version for event in stored] == list(range(1, version + 2))
    winner = next((pid, n) for pid, n, _, outcome in outcomes if outcome == "saved")
    notes = casenet.cases.owned_case(actor, case.id).notes
    assert [note.text for note in notes][-1] == f"{winner[0]}/{winner[1]}"
    assert len(notes) == NOTES_BEFORE_THE_RACE + 1
    report(
        f"{racers} racing saves in {RACING_PROCESSES} processes: 1 saved, "
        f"{racers - 1} conflicts, {elapsed:.2f} s including process start"
    )


# --- (b) a follower of the notification log never skips --------------------------------


def append_events(
    environ: dict[str, str],
    startup: Any,
    writer: int,
    go: Any,
    results: Any,
) -> None:
    """In a worker process: append events to an agency of its own, 1 to 3 per save."""
    with startup:
        casenet = build_casenet(load_settings(environ))
    agency = casenet.agencies.register(OPERATOR_ACTOR, name=f"Writer {writer}", kind="ngo")
    written, saves = 1, 1
    go.wait(timeout=120)
    deadline = time.monotonic() + WRITER_DEADLINE_SECONDS
    while written < EVENTS_PER_WRITER and time.monotonic() < deadline:
        batch = 1 + saves % 3
        for _ in range(batch):
            agency.add_worker(name=f"Worker {written}", role="caseworker", token_hash="0" * 64)
        casenet.app.save(agency)
        written += batch
        saves += 1
    casenet.close()
    results.put((writer, agency.id, written, saves))


def test_a_follower_tailing_the_log_sees_every_event_while_processes_append(
    casenet: Casenet, casenet_environ: dict[str, str]
) -> None:
    recorder = casenet.app.recorder
    go = SPAWN.Event()
    results = SPAWN.Queue()
    startup = SPAWN.Lock()
    processes = [
        start(append_events, casenet_environ, startup, writer, go, results)
        for writer in range(WRITER_PROCESSES)
    ]
    seen: list[int] = []
    polls = polls_with_news_while_writing = 0

    def follow() -> int:
        """Read what follows the last seen id; how many notifications came."""
        nonlocal polls
        polls += 1
        after = seen[-1] if seen else 0
        batch = recorder.select_notifications(start=after + 1, limit=1000)
        seen.extend(notification.id for notification in batch)
        return len(batch)

    try:
        # Let every writer register its agency, then start them together.
        while recorder.max_notification_id() != WRITER_PROCESSES:
            assert all(p.is_alive() for p in processes), "a writer died while starting"
            time.sleep(0.05)
        started = time.monotonic()
        go.set()
        writers_done: list[tuple[int, UUID, int, int]] = []
        while len(writers_done) < WRITER_PROCESSES:
            if follow():
                polls_with_news_while_writing += 1
            with contextlib.suppress(queue.Empty):
                writers_done.append(results.get_nowait())
            assert time.monotonic() - started < WRITER_DEADLINE_SECONDS + 60, "writers hang"
        elapsed = time.monotonic() - started
    finally:
        go.set()
        exit_codes = stop(processes)
    # Every writer has committed and exited: catch up, still by position only.
    while follow():
        pass

    assert exit_codes == [0] * WRITER_PROCESSES
    committed = [n.id for n in recorder.select_notifications(start=1, limit=1_000_000)]
    total = sum(written for _, _, written, _ in writers_done)
    assert len(committed) == total
    assert all(earlier < later for earlier, later in itertools.pairwise(seen))
    assert seen == committed
    # The test only proves something if the follower read while the writers wrote, and
    # the writers' transactions interleaved in the log.
    assert polls_with_news_while_writing >= 20
    owners = [n.originator_id for n in recorder.select_notifications(start=1, limit=1_000_000)]
    switches = sum(1 for a, b in itertools.pairwise(owners) if a != b)
    assert switches >= 20
    assert all(written >= 100 for _, _, written, _ in writers_done), writers_done
    saves = sum(s for *_, s in writers_done)
    report(
        f"follower: {WRITER_PROCESSES} writers appended {total} events in {saves} "
        f"transactions in {elapsed:.2f} s ({total / elapsed:.0f} events/s, "
        f"{saves / elapsed:.0f} commits/s); {polls} polls, "
        f"{polls_with_news_while_writing} with news while writing; "
        f"writers switched {switches} times in the log; no id skipped"
    )


# --- processes that open the store at the same instant --------------------------------


def open_the_store(environ: dict[str, str], rounds: int, line_up: Any, results: Any) -> None:
    """In a worker process: ``rounds`` times, line up with the others, open and close."""
    settings = load_settings(environ)
    for _ in range(rounds):
        line_up.wait(timeout=120)
        try:
            build_casenet(settings).close()
            results.put("opened")
        except Exception as error:  # noqa: BLE001  (reported to the test, which fails)
            results.put(f"{type(error).__name__}: {error}")


def test_processes_starting_together_all_open_the_store(
    casenet_environ: dict[str, str],
) -> None:
    load_settings(casenet_environ)  # the dev keys exist before the workers start
    line_up = SPAWN.Barrier(STARTING_PROCESSES)
    results = SPAWN.Queue()
    processes = [
        start(open_the_store, casenet_environ, STARTING_ROUNDS, line_up, results)
        for _ in range(STARTING_PROCESSES)
    ]
    try:
        outcomes = [results.get(timeout=120) for _ in range(STARTING_PROCESSES * STARTING_ROUNDS)]
    finally:
        stop(processes)

    # The first round opens a fresh database, the others one whose tables exist.
    assert Counter(outcomes) == {"opened": STARTING_PROCESSES * STARTING_ROUNDS}
