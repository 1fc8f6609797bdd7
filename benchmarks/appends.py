"""Appends at 1, 4 and 16 concurrent clients against raw INSERT+COMMIT, on both stores.

Figure: saves/s of new one-event aggregates through the application (group commit,
see ``infrastructure/persistence/``: on PostgreSQL under the library's table lock,
on SQLite a savepoint per save), with N threads. Ceiling: the same number of threads,
each on its own connection (psycopg; the sqlite3 module, in WAL mode as the store),
doing ``INSERT`` of a row of the same size + ``COMMIT`` into a plain table of the same
database, in the same run. Target at 16 clients on PostgreSQL: >= 50% of raw (the
issue's); SQLite's rows are reported without one.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg

from benchmarks import Options, Row, workload
from benchmarks.stores import (
    postgres_admin_url,
    postgres_database,
    postgres_unreachable,
    sqlite_database,
)
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
    if url.startswith("sqlite:"):
        return library, _raw_sqlite(url.removeprefix("sqlite:///"), threads, seconds)
    return library, _raw_postgres(url, threads, seconds)


_ROW = ("casenet.domain.agency:AgencyRegistered", os.urandom(160))


def _raw_postgres(url: str, threads: int, seconds: float) -> float:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, a uuid, "
            "v int, topic text, state bytea)"
        )
    connections = [psycopg.connect(url) for _ in range(threads)]
    try:

        def raw_step(index: int):  # type: ignore[no-untyped-def]
            connection = connections[index]

            def step() -> None:
                connection.execute(
                    "INSERT INTO bench_raw (a, v, topic, state) VALUES (%s, 1, %s, %s)",
                    (uuid4(), *_ROW),
                )
                connection.commit()

            return step

        return _run_threads(threads, seconds, raw_step)
    finally:
        for connection in connections:
            connection.close()


def _raw_sqlite(path: str, threads: int, seconds: float) -> float:
    """N connections to the store's file (WAL, the library's settings), each committing
    its own one-row INSERTs; SQLite's one writer at a time serialises them."""
    connections = [
        sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        for _ in range(threads)
    ]
    connections[0].execute("PRAGMA journal_mode=WAL")
    connections[0].execute(
        "CREATE TABLE IF NOT EXISTS bench_raw (id INTEGER PRIMARY KEY, a TEXT, v INTEGER, "
        "topic TEXT, state BLOB)"
    )
    try:

        def raw_step(index: int):  # type: ignore[no-untyped-def]
            connection = connections[index]

            def step() -> None:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    "INSERT INTO bench_raw (a, v, topic, state) VALUES (?, 1, ?, ?)",
                    (uuid4().hex, *_ROW),
                )
                connection.execute("COMMIT")

            return step

        return _run_threads(threads, seconds, raw_step)
    finally:
        for connection in connections:
            connection.close()


@workload(NAME)
def appends(options: Options) -> list[Row]:
    seconds = 2.0 if options.quick else 6.0
    stores: list[tuple[str, Any]] = [("sqlite", sqlite_database)]
    admin = postgres_admin_url()
    reason = postgres_unreachable(admin)
    if reason is None:
        stores.append(("postgresql", lambda _: postgres_database(admin)))
    else:
        print(f"appends: PostgreSQL skipped ({reason})")
    rows = []
    for store, fresh in stores:
        for threads in (1, 4, 16):
            with tempfile.TemporaryDirectory() as scratch, fresh(Path(scratch)) as url:
                library, raw = measure(url, Path(scratch), threads, seconds)
            rows.append(
                Row(
                    workload=NAME,
                    store=store,
                    figure=f"saves/s at {threads} clients vs raw INSERT+COMMIT",
                    value=library,
                    ceiling=raw,
                    target=TARGET_AT_16 if threads == 16 and store == "postgresql" else None,
                    details={"threads": threads, "seconds": seconds},
                )
            )
    return rows
