"""What the consent audit export and its verifier cost per record, on SQLite and PostgreSQL.

A store is filled with 100,000 audit records (``--quick``: 20,000): a network of
agencies, cases, consents granted and withdrawn, referrals through their steps, and
mostly disclosures (written many aggregates per save, so that filling is quick). Then

* ``export``: records/s of ``AuditService.export`` (scope: everything) from the store;
* ``verify``: records/s of ``verify`` of that bundle with the public key;

each beside its ceiling, measured in the same run: records/s of plain SHA-256 over the
same record bytes (``hashlib.sha256``, one ``update`` per record, bytes in memory).
The best of a few rounds of five tries each counts, for the figures and the ceiling
alike. Target: at least 25% of the ceiling.

Run it alone with ``python -m benchmarks.audit [--quick] [--profile]`` (``--profile``
prints the top costs of one export and one verify), or with the others through
``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import Options, Row, workload
from benchmarks.stores import (
    postgres_admin_url,
    postgres_database,
    postgres_unreachable,
    sqlite_database,
)
from casenet.application import OPERATOR_ACTOR, Casenet
from casenet.application.audit import Scope
from casenet.bootstrap import build_casenet
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.disclosure import Disclosure
from casenet.domain.referral import Referral
from casenet.infrastructure.audit_bundle import (
    FILES,
    load_public_key,
    public_key_text,
    record_body,
    verify,
)
from casenet.settings import load_settings

NAME = "audit"
TARGET = 0.25
UNIT = "records/s"
SAVE_BATCH = 500  # aggregates per save while filling the store
#: Tries of each figure and of the ceiling in a round; the best of all rounds counts.
TRIES = 5


@dataclass(frozen=True)
class Size:
    records: int
    rounds: int  # measurements of each figure; the best counts


QUICK = Size(records=10_000, rounds=2)
FULL = Size(records=100_000, rounds=3)

FreshDatabase = Callable[[Path], AbstractContextManager[str]]


def run(quick: bool, profile: bool = False) -> list[dict[str, Any]]:
    """One row per figure and store: workload, store, figure, unit, ceiling, ratio."""
    size = QUICK if quick else FULL
    rows = measure("sqlite", sqlite_database, size, profile)
    admin_url = postgres_admin_url()
    unreachable = postgres_unreachable(admin_url)
    if unreachable:
        print(f"note: {NAME}: PostgreSQL skipped: {unreachable}", file=sys.stderr)
    else:
        rows += measure("postgresql", lambda _: postgres_database(admin_url), size, profile)
    return rows


@workload(NAME)
def audit(options: Options) -> list[Row]:
    """For ``python -m benchmarks``: the same rows as :func:`run`."""
    return [
        Row(
            workload=NAME,
            store=row["store"],
            figure=f"{row['workload']} {UNIT} vs sha256 {UNIT}",
            value=row["figure"],
            ceiling=row["ceiling"],
            target=TARGET,
            details={k: v for k, v in row.items() if k not in ("store", "figure", "ceiling")},
        )
        for row in run(options.quick)
    ]


def measure(
    store: str, fresh_database: FreshDatabase, size: Size, profile: bool
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="casenet-bench-audit-") as scratch:
        directory = Path(scratch)
        with fresh_database(directory) as url:
            settings = load_settings(
                {
                    "CASENET_DATABASE_URL": url,
                    "CASENET_DATA_DIR": str(directory / "data"),
                    "CASENET_MASTER_KEYS": f"bench:{base64.b64encode(os.urandom(32)).decode()}",
                    "CASENET_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
                }
            )
            public_key = load_public_key(public_key_text(settings.signing_key))
            casenet = build_casenet(settings)
            try:
                started = time.perf_counter()
                fill(casenet, size.records)
                filled = time.perf_counter() - started
                export_times, verify_times, ceiling_times = [], [], []
                records = 0
                for round_ in range(size.rounds):
                    # Each figure gets as many tries as its ceiling (TRIES a round), so
                    # that one preemption of a 0.1 s export weighs no more than one of
                    # the ceiling's loops: with 3 tries against 15 the ratio read low.
                    for try_ in range(TRIES):
                        bundle = directory / f"bundle-{round_}-{try_}"
                        started = time.perf_counter()
                        manifest = casenet.audit.export(bundle, Scope("all"))
                        export_times.append(time.perf_counter() - started)
                        records = sum(f["records"] for f in manifest["files"])
                        started = time.perf_counter()
                        verified = verify(bundle, public_key)
                        verify_times.append(time.perf_counter() - started)
                        assert verified.records == records
                        if try_ < TRIES - 1:
                            shutil.rmtree(bundle)
                    bodies = record_bytes(bundle)
                    assert len(bodies) == records
                    # A short loop: the best of a few, so that one preemption does not
                    # set the ceiling.
                    ceiling_times.append(min(sha256_seconds(bodies) for _ in range(TRIES)))
                if profile:
                    print_profile(
                        f"{store} export",
                        lambda: casenet.audit.export(directory / "profiled", Scope("all")),
                    )
                    print_profile(
                        f"{store} verify", lambda: verify(directory / "profiled", public_key)
                    )
            finally:
                casenet.close()
    ceiling = records / min(ceiling_times)
    common = {
        "store": store,
        "unit": UNIT,
        "ceiling": ceiling,
        "target": TARGET,
        "records": records,
        "bytes": sum(len(b) for b in bodies),
        "fill_seconds": filled,
        "ceiling_seconds": ceiling_times,
    }
    rows = []
    for name, seconds in (("export", export_times), ("verify", verify_times)):
        figure = records / min(seconds)
        rows.append(
            {
                "workload": f"{NAME} {name}",
                **common,
                "figure": figure,
                "ratio": figure / ceiling,
                "microseconds_per_record": 1e6 / figure,
                "ceiling_microseconds_per_record": 1e6 / ceiling,
                "meets_target": figure / ceiling >= TARGET,
                "seconds": seconds,
            }
        )
    return rows


# --- the records --------------------------------------------------------------------------


def fill(casenet: Casenet, target: int) -> int:
    """At least ``target`` audit records: per case ~1,000 of them, mostly disclosures."""
    app = casenet.app
    agencies = [
        casenet.agencies.register(OPERATOR_ACTOR, name=f"Agency {i}", kind="ngo") for i in range(4)
    ]
    owner, grantees = agencies[0], agencies[1:]
    worker, _ = casenet.agencies.add_worker(OPERATOR_ACTOR, owner.id, name="W", role="caseworker")
    reader, _ = casenet.agencies.add_worker(
        OPERATOR_ACTOR, grantees[0].id, name="R", role="caseworker"
    )
    made = len(agencies)
    while made < target:
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
        app.save(client, case)
        made += 1
        consents = [
            Consent.grant(
                case_id=case.id,
                client_id=client.id,
                owner_agency_id=owner.id,
                recording_agency_id=owner.id,
                grantee_agency_id=grantees[i % 3].id,
                sections=["identity", "needs", "notes.health"][: 1 + i % 3],
                purpose="referral",
                method="written",
                worker_id=worker.id,
            )
            for i in range(60)
        ]
        for consent in consents[::2]:
            consent.withdraw(recording_agency_id=owner.id, worker_id=worker.id, reason="No")
        save_in_batches(casenet, consents)
        made += 90
        referrals = []
        for i in range(10):
            referral = Referral.request(
                case_id=case.id,
                client_id=client.id,
                from_agency_id=owner.id,
                to_agency_id=grantees[i % 3].id,
                service_type="housing",
                reason="Help",
                urgency="routine",
                worker_id=worker.id,
            )
            for action in ("accept", "start"):
                referral.move(action, agency_id=grantees[i % 3].id, worker_id=reader.id)
            referral.move(
                "complete", agency_id=grantees[i % 3].id, worker_id=reader.id, outcome="got_help"
            )
            referrals.append(referral)
        save_in_batches(casenet, referrals)
        made += 40
        under = tuple(c.id for c in consents[1:4:2])
        disclosures = [
            Disclosure.record(
                case_id=case.id,
                client_id=client.id,
                owner_agency_id=owner.id,
                recipient_agency_id=grantees[0].id,
                worker_id=reader.id,
                sections=("identity", "needs"),
                consent_ids=under,
                purposes=("referral",),
            )
            for _ in range(min(859, max(0, target - made)))
        ]
        save_in_batches(casenet, disclosures)
        made += len(disclosures)
    return made


def save_in_batches(casenet: Casenet, aggregates: list[Any]) -> None:
    for start in range(0, len(aggregates), SAVE_BATCH):
        casenet.app.save(*aggregates[start : start + SAVE_BATCH])


# --- the ceiling ---------------------------------------------------------------------------


def record_bytes(bundle: Path) -> list[bytes]:
    """Every record's canonical bytes, as chained (the ``record`` of each line)."""
    bodies: list[bytes] = []
    for name in FILES:
        with (bundle / name).open("rb") as handle:
            bodies.extend(record_body(line) for line in handle)
    return bodies


def sha256_seconds(bodies: list[bytes]) -> float:
    """Plain SHA-256 over the same bytes: one running hash, one update per record."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    update = digest.update
    for body in bodies:
        update(body)
    digest.hexdigest()
    return time.perf_counter() - started


def print_profile(label: str, call: Callable[[], object], top: int = 14) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(f"--- profile: {label} (by own time) ---")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


# --- stores ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 records instead of 100,000")
    parser.add_argument("--profile", action="store_true", help="print the top costs too")
    args = parser.parse_args(argv)
    rows = run(args.quick, profile=args.profile)
    print(f"{'workload':<14} {'store':<11} {'figure':>12} {'ceiling':>12} {'ratio':>6}  target")
    for row in rows:
        verdict = "ok" if row["meets_target"] else "MISSED"
        print(
            f"{row['workload']:<14} {row['store']:<11} {row['figure']:>12,.0f} "
            f"{row['ceiling']:>12,.0f} {row['ratio']:>6.3f}  >={TARGET:.2f} {verdict}"
            f"  ({row['records']:,} records, {UNIT})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
