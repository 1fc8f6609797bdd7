"""What one live batch of the audit read model writes, against the command's own write.

A store (SQLite file or fresh PostgreSQL database) gets a case of one agency, then
``--grants`` consents granted to another, one command at a time through the services,
each followed by the audit model catching up alone: a live batch of one event (what the
projection runner applies on a quiet server). Measured per step, as counts, not times:

* SQLite: WAL frames (4 KiB pages) written by the command (its ``save``) and by the
  audit batch, the WAL truncated before each;
* PostgreSQL: WAL bytes (``pg_current_wal_lsn`` differences) of the command and of the
  audit batch; at the end the audit tables' dead tuples and sizes. The WAL is the
  cluster's: other sessions' writes only add, so the median and the minimum count.

A baseline step (a case note: an event the audit model does not follow) gives what a
batch costs the runner alone (its position row).

Run with ``python -m benchmarks.audit_writes [--store sqlite|postgresql] [--grants N]``.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.stores import postgres_admin_url, postgres_database, sqlite_database
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.bootstrap import build_casenet
from casenet.settings import load_settings

AUDIT = "audit"
AUDIT_TABLES = ("rm_audit_records", "rm_audit_pages", "rm_audit_subjects")


class SqliteMeter:
    """WAL frames written since the last ``start`` (the WAL truncated there)."""

    def __init__(self, casenet: Casenet, path: Path) -> None:
        self.db = casenet.app.database
        self.wal = Path(f"{path}-wal")
        self.page_size = 4096

    def start(self) -> None:
        assert self.db.truncate_wal(), "checkpoint busy"

    def read(self) -> int:
        size = self.wal.stat().st_size if self.wal.exists() else 0
        return max(0, size - 32) // (self.page_size + 24) * self.page_size

    def close(self) -> None:
        pass


class PostgresMeter:
    """WAL bytes the cluster wrote since the last ``start``."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url, autocommit=True)
        self.lsn = ""

    def _now(self) -> str:
        row = self.connection.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        return str(row[0])

    def start(self) -> None:
        self.lsn = self._now()

    def read(self) -> int:
        row = self.connection.execute(
            "SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (self._now(), self.lsn)
        ).fetchone()
        assert row is not None
        return int(row[0])

    def tables(self) -> dict[str, dict[str, int]]:
        time.sleep(1.5)  # the stats of other backends are flushed at most once a second
        found = {}
        for table in AUDIT_TABLES:
            row = self.connection.execute(
                "SELECT s.n_tup_ins, s.n_tup_upd, s.n_dead_tup, "
                "pg_total_relation_size(c.oid), COALESCE(t.n_dead_tup, 0) "
                "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
                "LEFT JOIN pg_stat_all_tables t ON t.relid = c.reltoastrelid "
                "WHERE s.relname = %s",
                (table,),
            ).fetchone()
            assert row is not None
            found[table] = dict(
                zip(("inserted", "updated", "dead", "bytes", "toast_dead"), row, strict=True)
            )
        return found

    def close(self) -> None:
        self.connection.close()


def measure(store: str, grants: int) -> dict[str, Any]:
    fresh: Callable[[Path], AbstractContextManager[str]] = (
        sqlite_database if store == "sqlite" else lambda _: postgres_database(postgres_admin_url())
    )
    with tempfile.TemporaryDirectory(prefix="casenet-audit-writes-") as scratch:
        directory = Path(scratch)
        with fresh(directory) as url, opened(url, directory) as casenet:
            meter: SqliteMeter | PostgresMeter = (
                SqliteMeter(casenet, directory / "casenet.sqlite3")
                if store == "sqlite"
                else PostgresMeter(url)
            )
            try:
                return steps(casenet, meter, grants)
            finally:
                meter.close()


@contextmanager
def opened(url: str, directory: Path) -> Iterator[Casenet]:
    settings = load_settings(
        {
            "CASENET_DATABASE_URL": url,
            "CASENET_DATA_DIR": str(directory / "data"),
            "CASENET_MASTER_KEYS": f"bench:{base64.b64encode(os.urandom(32)).decode()}",
            "CASENET_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
    )
    casenet = build_casenet(settings)
    try:
        yield casenet
    finally:
        casenet.close()


def steps(casenet: Casenet, meter: SqliteMeter | PostgresMeter, grants: int) -> dict[str, Any]:
    agencies = casenet.agencies
    owner = agencies.register(OPERATOR_ACTOR, name="Owner", kind="ngo")
    grantee = agencies.register(OPERATOR_ACTOR, name="Grantee", kind="hospital")
    worker, _ = agencies.add_worker(OPERATOR_ACTOR, owner.id, name="W", role="caseworker")
    actor = Actor(owner.id, worker.id, "caseworker")
    case = casenet.cases.open_case(
        actor, client=ClientDetails(name="Client"), summary="Summary", needs=["housing"]
    )
    projections = casenet.app.projections
    others = [name for name in projections.names() if name != AUDIT]
    projections.catch_up(projections.names())

    def step(command: Callable[[], object]) -> tuple[int, int]:
        meter.start()
        command()
        written = meter.read()
        projections.catch_up(others)  # not measured: the other read models
        meter.start()
        assert projections.catch_up(AUDIT) == 1
        audit = meter.read()
        return written, audit

    def grant() -> object:
        return casenet.consents.grant(
            actor,
            case.id,
            grantee_agency_id=grantee.id,
            sections=["needs"],
            purpose="care_coordination",
            method="verbal",
        )

    def note() -> object:
        return casenet.cases.add_note(actor, case.id, category="general", text="Note")

    baseline = [step(note) for _ in range(20)]
    measured = [step(grant) for _ in range(grants)]
    result: dict[str, Any] = {
        "baseline_command": summary([w for w, _ in baseline]),
        "baseline_audit_batch": summary([a for _, a in baseline]),
        "grant_command": summary([w for w, _ in measured]),
        "grant_audit_batch": summary([a for _, a in measured]),
        "grant_audit_batch_total": sum(a for _, a in measured),
    }
    if isinstance(meter, PostgresMeter):
        result["tables"] = meter.tables()
    return result


def summary(values: list[int]) -> dict[str, float]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": round(statistics.fmean(values)),
        "max": max(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--grants", type=int, default=600)
    args = parser.parse_args()
    result = measure(args.store, args.grants)
    for key, value in result.items():
        print(f"{args.store} {key}: {value}")


if __name__ == "__main__":
    main()
