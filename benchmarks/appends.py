"""PostgreSQL appends at 1, 4 and 16 concurrent clients against raw INSERT+COMMIT.

Figure: saves/s of new one-event aggregates through the application (group commit
under the library's table lock, see ``infrastructure/group_commit.py``), with N
threads. Ceiling: the same number of threads, each on its own psycopg connection,
doing ``INSERT`` of a row of the same size + ``COMMIT`` into a plain table of the
same database, in the same run. Target at 16 clients: >= 50% of raw.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from uuid import uuid4

import psycopg

from benchmarks import Options, Row, workload
from benchmarks.stores import postgres_admin_url, postgres_database, postgres_unreachable
from casenet.bootstrap import build_casenet
from casenet.domain.agency import Agency
from casenet.settings import load_settings

NAME = "appends"
TARGET_AT_16 = 0.50


def _run_threads(threads: int, seconds: float, work: object) -> float:
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def loop(index: int) -> None:
        step = work(index)  # type: ignore[operator]
        while time.monotonic() < deadline:
            step()
            counts[index] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / seconds


def measure(url: str, data_dir: Path, threads: int, seconds: float) -> tuple[float, float]:
    casenet = build_casenet(
        load_settings({"CASENET_DATABASE_URL": url, "CASENET_DATA_DIR": str(data_dir)})
    )
    try:

        def save_step(_: int):  # type: ignore[no-untyped-def]
            return lambda: casenet.app.save(Agency.register(name="Bench", kind="ngo"))

        casenet.app.save(Agency.register(name="Warm", kind="ngo"))
        library = _run_threads(threads, seconds, save_step)
    finally:
        casenet.close()
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, a uuid, "
            "v int, topic text, state bytea)"
        )
    connections = [psycopg.connect(url) for _ in range(threads)]
    payload = os.urandom(160)
    try:

        def raw_step(index: int):  # type: ignore[no-untyped-def]
            connection = connections[index]

            def step() -> None:
                connection.execute(
                    "INSERT INTO bench_raw (a, v, topic, state) VALUES (%s, 1, %s, %s)",
                    (uuid4(), "casenet.domain.agency:AgencyRegistered", payload),
                )
                connection.commit()

            return step

        raw = _run_threads(threads, seconds, raw_step)
    finally:
        for connection in connections:
            connection.close()
    return library, raw


@workload(NAME)
def appends(options: Options) -> list[Row]:
    admin = postgres_admin_url()
    reason = postgres_unreachable(admin)
    if reason is not None:
        print(f"appends: PostgreSQL skipped ({reason})")
        return []
    seconds = 2.0 if options.quick else 6.0
    rows = []
    for threads in (1, 4, 16):
        with tempfile.TemporaryDirectory() as scratch, postgres_database(admin) as url:
            library, raw = measure(url, Path(scratch), threads, seconds)
        rows.append(
            Row(
                workload=NAME,
                store="postgresql",
                figure=f"saves/s at {threads} clients vs raw INSERT+COMMIT",
                value=library,
                ceiling=raw,
                target=TARGET_AT_16 if threads == 16 else None,
                details={"threads": threads, "seconds": seconds},
            )
        )
    return rows
