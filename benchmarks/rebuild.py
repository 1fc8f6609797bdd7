"""How fast read models rebuild from the log, against reading the log itself; in what memory.

For each store (SQLite; PostgreSQL when reachable) and each size (100,000 and 1,000,000
stored events; ``--quick``: 20,000 and 100,000), one fresh store is filled with a
realistic mix (per client: registration, a case with notes, consents (one withdrawn),
a referral through its lifecycle with messages, the case closed), then two
measurements run, each in a fresh subprocess so that peak memory is the measurement's
own:

* ceiling: read every notification with plain SQL, as projections read the log
  (``raw_log.next_rows``, batches of 5,000 as a rebuild's), and msgspec-decode each
  state: what any read model must at least do per pass over the log;
* rebuild: ``projections.rebuild(every name)``, as ``casenet projections rebuild`` does
  it: one pass over the log, each batch read and decoded once and applied to every
  read model in one transaction;
* library read (for comparison, no target): the same notifications read through the
  event library (``recorder.select_notifications``, batches of 1,000) and decoded. It
  was the ceiling until projections stopped reading the log through the library (a
  rebuild now reads faster than it does, so it is no longer an upper bound); its row
  keeps the earlier figures comparable.

The figure is events / rebuild seconds (what an operator waits for). Targets: at
least 50% of the ceiling; the rebuild's peak memory flat from the small to the large
size.

``python -m benchmarks.rebuild [--quick]`` runs it alone; :func:`run` returns the rows.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

from benchmarks import Options, workload
from benchmarks.stores import (
    postgres_admin_url,
    postgres_database,
    postgres_unreachable,
    sqlite_database,
)

NAME = "rebuild"
TARGET = 0.50
#: Memory is "flat" if the large size's peak is at most this much above the small one's.
FLAT_MEMORY_SLACK = 1.25
FULL_SIZES = (100_000, 1_000_000)
QUICK_SIZES = (5_000, 20_000)
#: Notifications per read of the library's read (the rebuild and the ceiling read 5,000).
LIBRARY_BATCH = 1000
ROOT = Path(__file__).resolve().parent.parent

#: Notes per case; with the rest of a client's history this makes EVENTS_PER_CLIENT.
NOTES_PER_CASE = 36
EVENTS_PER_CLIENT = 2 + NOTES_PER_CASE + 3 + 4 + 4 + 1
CLIENTS_PER_SAVE = 200


# --- the workload -----------------------------------------------------------------------------


def run(quick: bool) -> list[dict[str, Any]]:
    """Rows: per store and size, rebuild rate vs ceiling; per store, peak memory by size."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    master_keys = f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    rows: list[dict[str, Any]] = []
    stores: list[tuple[str, Any]] = [("sqlite", sqlite_database)]
    admin_url = postgres_admin_url()
    unreachable = postgres_unreachable(admin_url)
    if unreachable:
        print(f"note: {NAME}: PostgreSQL skipped: {unreachable}", flush=True)
    else:
        stores.append(("postgresql", lambda directory: postgres_database(admin_url)))
    for store, fresh_store in stores:
        peaks: list[tuple[int, dict[str, Any]]] = []
        for size in sizes:
            with (
                tempfile.TemporaryDirectory(prefix="casenet-bench-") as directory,
                fresh_store(Path(directory)) as url,
            ):
                environ = {
                    "CASENET_DATABASE_URL": url,
                    "CASENET_DATA_DIR": str(Path(directory) / "data"),
                    "CASENET_MASTER_KEYS": master_keys,
                    "CASENET_ENV": "development",
                }
                started = time.perf_counter()
                events = measure("generate", environ, size)["events"]
                generated_in = time.perf_counter() - started
                print(
                    f"{NAME}: {store}: {events:,} events written in {generated_in:.1f} s",
                    flush=True,
                )
                # The ceiling is cheap: take it twice before the rebuild and once after,
                # and keep the best, so a busy minute of the machine does not flatter
                # the ratio.
                ceilings = [measure("ceiling", environ) for _ in range(2)]
                rebuild = measure("rebuild", environ)
                ceilings.append(measure("ceiling", environ))
                ceiling = max(ceilings, key=lambda m: m["events_per_second"])
                library = max(
                    (measure("library", environ) for _ in range(2)),
                    key=lambda m: m["events_per_second"],
                )
            assert rebuild["events"] == ceiling["events"] == library["events"] == events
            models = len(rebuild["models"])
            # One pass over the log feeds every read model: the figure is events/s.
            per_pass = events / rebuild["seconds"]
            rows.append(
                {
                    "workload": NAME,
                    "store": store,
                    "name": f"rebuild of every read model, {events:,} events: events/s",
                    "figure": per_pass,
                    "unit": "events/s",
                    "ceiling": ceiling["events_per_second"],
                    "ratio": per_pass / ceiling["events_per_second"],
                    "target": TARGET,
                    "meets_target": per_pass / ceiling["events_per_second"] >= TARGET,
                    "events": events,
                    "read_models": models,
                    "rebuild_seconds": rebuild["seconds"],
                    "wall_events_per_second": events / rebuild["seconds"],
                    "wall_ratio": events / rebuild["seconds"] / ceiling["events_per_second"],
                    "per_model_events_per_second": {
                        name: events / seconds for name, seconds in rebuild["models"].items()
                    },
                    "ceiling_samples": [c["events_per_second"] for c in ceilings],
                    "library_read_events_per_second": library["events_per_second"],
                    "ratio_to_library_read": per_pass / library["events_per_second"],
                    "peak_rss_mib": rebuild["peak_rss_kib"] / 1024,
                    "baseline_rss_mib": rebuild["baseline_rss_kib"] / 1024,
                    "ceiling_peak_rss_mib": ceiling["peak_rss_kib"] / 1024,
                    "generate_seconds": generated_in,
                }
            )
            rows.append(
                {
                    "workload": NAME,
                    "store": store,
                    "name": f"rebuild vs the library's read+decode (the earlier ceiling), "
                    f"{events:,} events: events/s",
                    "figure": per_pass,
                    "unit": "events/s",
                    "ceiling": library["events_per_second"],
                    "ratio": per_pass / library["events_per_second"],
                    "target": None,  # for comparison with earlier runs only
                    "events": events,
                }
            )
            peaks.append((events, rebuild))
        rows.append(memory_row(store, peaks))
    return rows


def memory_row(store: str, peaks: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Peak RSS of the rebuild at the largest size against the smallest ('ceiling')."""
    (small, at_small), (large, at_large) = peaks[0], peaks[-1]
    small_mib, large_mib = at_small["peak_rss_kib"] / 1024, at_large["peak_rss_kib"] / 1024
    growth_small = (at_small["peak_rss_kib"] - at_small["baseline_rss_kib"]) / 1024
    growth_large = (at_large["peak_rss_kib"] - at_large["baseline_rss_kib"]) / 1024
    return {
        "workload": NAME,
        "store": store,
        "name": f"rebuild peak RSS at {large:,} vs {small:,} events",
        "figure": large_mib,
        "unit": "MiB",
        "ceiling": small_mib,
        "ratio": large_mib / small_mib,
        "target": None,  # lower is better: see "flat"
        "flat": large_mib <= small_mib * FLAT_MEMORY_SLACK,
        "peak_rss_mib_by_events": {str(events): m["peak_rss_kib"] / 1024 for events, m in peaks},
        "growth_above_baseline_mib": {str(small): growth_small, str(large): growth_large},
    }


def to_row(row: dict[str, Any]) -> Any:
    """A row of this module as the benchmark runner's ``Row`` (for its registry)."""
    from benchmarks import Row

    details = {
        k: v
        for k, v in row.items()
        if k not in ("workload", "store", "name", "figure", "unit", "ceiling", "target")
    }
    return Row(
        workload=row["workload"],
        store=row["store"],
        figure=f"{row['name']} ({row['unit']})",
        value=row["figure"],
        ceiling=row["ceiling"],
        target=row["target"],
        condition=None if "flat" not in row else f"flat: <= x{FLAT_MEMORY_SLACK:.2f}",
        condition_met=row.get("flat"),
        details=details,
    )


# --- filling a store fast ------------------------------------------------------------------


def generate(environ: dict[str, str], events: int) -> int:
    """Write about ``events`` events (whole clients) in big saves; return the log's head."""
    from casenet.bootstrap import build_casenet
    from casenet.domain.agency import Agency
    from casenet.domain.aggregate import Aggregate
    from casenet.domain.case import Case
    from casenet.domain.client import Client
    from casenet.domain.consent import Consent
    from casenet.domain.referral import Referral
    from casenet.domain.sections import NOTE_CATEGORIES
    from casenet.settings import load_settings

    casenet = build_casenet(load_settings(environ))
    try:
        app = casenet.app
        agencies = [Agency.register(name=f"Agency {i}", kind="ngo") for i in range(4)]
        app.save(*agencies)
        workers = [uuid4() for _ in agencies]
        clients = max(1, (events - len(agencies)) // EVENTS_PER_CLIENT)
        pending: list[Aggregate] = []
        for i in range(clients):
            owner, other = agencies[i % 4].id, agencies[(i + 1) % 4].id
            worker, receiver = workers[i % 4], workers[(i + 1) % 4]
            client = Client.register(
                agency_id=owner,
                name=f"Client {i}",
                date_of_birth="1984-02-29",
                phone="+254 700 000000",
                address=f"{i} River Road",
            )
            case = Case.open(
                owner_agency_id=owner,
                worker_id=worker,
                client_id=client.id,
                summary="Her job clashes with her husband's hospital appointments",
                needs=["employment", "health"],
            )
            for n in range(NOTES_PER_CASE):
                case.add_note(
                    worker_id=worker,
                    category=NOTE_CATEGORIES[n % len(NOTE_CATEGORIES)],
                    text="Called the client; she will bring the forms on Monday.",
                )
            consents = [
                Consent.grant(
                    case_id=case.id,
                    client_id=client.id,
                    owner_agency_id=owner,
                    recording_agency_id=owner,
                    grantee_agency_id=other,
                    sections=sections,
                    purpose="referral",
                    method="written",
                    worker_id=worker,
                    evidence="Signed form, scanned",
                )
                for sections in (["identity", "needs"], ["summary", "notes.health"])
            ]
            consents[1].withdraw(recording_agency_id=owner, worker_id=worker, reason="Asked")
            referral = Referral.request(
                case_id=case.id,
                client_id=client.id,
                from_agency_id=owner,
                to_agency_id=other,
                service_type="health",
                reason="Move the Tuesday slot",
                urgency="routine",
                worker_id=worker,
                consent_id=consents[0].id,
            )
            for action in ("accept", "start"):
                referral.move(action, agency_id=other, worker_id=receiver)
            for side, by in (
                (other, receiver),
                (owner, worker),
                (other, receiver),
                (owner, worker),
            ):
                referral.post_message(agency_id=side, worker_id=by, text="Which Tuesday?")
            referral.move("complete", agency_id=other, worker_id=receiver, outcome="got_help")
            case.close(worker_id=worker, reason="Resolved")
            pending += [client, case, *consents, referral]
            if len(pending) >= 5 * CLIENTS_PER_SAVE:
                app.save(*pending)
                pending = []
        if pending:
            app.save(*pending)
        return app.projections.head()
    finally:
        casenet.close()


# --- the measurements, each in its own process -------------------------------------------


def measure(kind: str, environ: dict[str, str], events: int = 0) -> dict[str, Any]:
    """Run ``kind`` (generate, ceiling, library or rebuild) in a fresh interpreter; its
    JSON result."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    result = subprocess.run(  # noqa: S603  (this interpreter, this module)
        [sys.executable, "-m", "benchmarks.rebuild", "--measure", kind, "--events", str(events)],
        env={**clean, **environ},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{kind} measurement failed: {result.stderr.strip()[-2000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB: VmRSS (now) or VmHWM (peak of this process).

    Not ``getrusage``: its ``ru_maxrss`` survives exec, so a child would report the
    peak of the parent it was forked from.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_here(kind: str) -> dict[str, Any]:
    """The measurement itself (in the subprocess): time, events and peak RSS."""
    import msgspec

    from casenet.bootstrap import build_casenet
    from casenet.settings import load_settings

    casenet = build_casenet(load_settings())
    try:
        app = casenet.app
        head = app.projections.head()
        baseline = status_kib("VmRSS")
        models: dict[str, float] = {}
        started = time.perf_counter()
        if kind == "ceiling":
            from casenet.infrastructure.projections.rebuild import REBUILD_BATCH_SIZE
            from casenet.infrastructure.raw_log import next_rows

            decoder = msgspec.json.Decoder(dict[str, Any])
            position = events = 0
            while rows := next_rows(app.projections.db, app.recorder, position, REBUILD_BATCH_SIZE):
                for row in rows:
                    decoder.decode(row[4])
                events += len(rows)
                position = rows[-1][0]
        elif kind == "library":
            decoder = msgspec.json.Decoder(dict[str, Any])
            position = events = 0
            while notifications := app.recorder.select_notifications(
                start=position + 1, limit=LIBRARY_BATCH
            ):
                for notification in notifications:
                    decoder.decode(notification.state)
                events += len(notifications)
                position = notifications[-1].id
        else:
            events = head
            # As `casenet projections rebuild` does: every read model, one pass.
            names = app.projections.names()
            app.projections.rebuild(names)
            models = {name: time.perf_counter() - started for name in names}
            assert all(p == (head, False) for p in app.projections.positions().values())
        seconds = time.perf_counter() - started
    finally:
        casenet.close()
    return {
        "kind": kind,
        "events": events,
        "seconds": seconds,
        "events_per_second": events / seconds,
        "models": models,
        "baseline_rss_kib": baseline,
        "peak_rss_kib": status_kib("VmHWM"),
    }


# --- running it alone ----------------------------------------------------------------------


def print_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row["unit"] == "MiB":
            print(
                f"{row['store']:<10} {row['name']}: {row['figure']:.1f} MiB vs "
                f"{row['ceiling']:.1f} MiB (x{row['ratio']:.2f}, "
                f"{'flat' if row['flat'] else 'NOT flat'}); above baseline: "
                + ", ".join(
                    f"{k} events {v:.1f} MiB" for k, v in row["growth_above_baseline_mib"].items()
                )
            )
            continue
        if row["target"] is None:
            print(
                f"{row['store']:<10} {row['name']}: {row['figure']:,.0f} vs "
                f"{row['ceiling']:,.0f} {row['unit']} = {row['ratio']:.2f}"
            )
            continue
        verdict = "ok" if row["meets_target"] else "MISSED"
        print(
            f"{row['store']:<10} {row['name']}: {row['figure']:,.0f} vs ceiling "
            f"{row['ceiling']:,.0f} {row['unit']} = {row['ratio']:.2f} "
            f"(target >= {row['target']:.2f}: {verdict}); wall {row['rebuild_seconds']:.1f} s "
            f"= {row['wall_events_per_second']:,.0f} events/s "
            f"({row['wall_ratio']:.2f} of ceiling); peak RSS {row['peak_rss_mib']:.1f} MiB"
        )
        print(
            "           per read model: "
            + ", ".join(
                f"{name} {rate:,.0f}" for name, rate in row["per_model_events_per_second"].items()
            )
        )


def _registered(options: Options) -> list[Any]:
    return [to_row(row) for row in run(options.quick)]


workload(NAME)(_registered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rebuild", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 and 100,000 events")
    parser.add_argument(
        "--measure", choices=["generate", "ceiling", "library", "rebuild"], help=argparse.SUPPRESS
    )
    parser.add_argument("--events", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure == "generate":
        print(json.dumps({"events": generate(dict(os.environ), args.events)}))
        return 0
    if args.measure:
        print(json.dumps(measure_here(args.measure)))
        return 0
    rows = run(args.quick)
    print_rows(rows)
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.standalone.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
