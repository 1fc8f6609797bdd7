"""Mixed load: a working day's throughput on 1 and on 3 API processes, with and without a
replica for reads (issue 21).

Each configuration is a :class:`~benchmarks.topology.Topology` on a fresh PostgreSQL
database (2 ``projections run`` workers, the server's own projection thread off) loaded by
:func:`benchmarks.workday.run_workday` for the same time, seed and number of users. The
baseline is 1 API process and no replica, measured in the same run; every other
configuration is a row against it, and the replica's effect at 3 processes is a row of its
own. Each row also carries the working day's bar as its condition: no 5xx, no lost or
stale read, read models caught up within 5 s.

On one small machine the load generator, the API processes, the projection workers,
PostgreSQL and its standby share the same cores: the ratios say what more processes or a
replica buy *here*, not on a fleet.

The replica is the hot standby at ``CASENET_BENCH_REPLICA_URL`` (else
``CASENET_TEST_REPLICA_URL``, else 127.0.0.1:5433); without one, the replica rows are
left out with a note.

Run: ``python -m benchmarks.mixed_load [--quick]`` or as the ``mixed_load`` workload of
``python -m benchmarks``. ``--quick`` (CI) measures the baseline and 3 processes with the
replica only, 3 s each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from benchmarks import Options, Row, workload
from benchmarks.stores import postgres_admin_url, postgres_database, postgres_unreachable
from benchmarks.topology import Topology
from benchmarks.workday import WorkdayReport, run_workday

NAME = "mixed_load"
REPLICA_URL_VARIABLES = ("CASENET_BENCH_REPLICA_URL", "CASENET_TEST_REPLICA_URL")
DEFAULT_REPLICA_URL = "postgresql://postgres@127.0.0.1:5433/postgres"
USERS = 12
SEED = 21
BAR = "0 5xx, 0 lost, 0 stale, lag 0 in 5 s"


@dataclass(frozen=True)
class Configuration:
    api_workers: int
    replica: bool

    @property
    def label(self) -> str:
        processes = f"{self.api_workers} API process" + ("es" if self.api_workers > 1 else "")
        return processes + (", replica reads" if self.replica else ", no replica")


BASELINE = Configuration(1, replica=False)
FULL = (BASELINE, Configuration(1, True), Configuration(3, False), Configuration(3, True))
QUICK = (BASELINE, Configuration(3, True))
FULL_SECONDS, QUICK_SECONDS = 30.0, 3.0


def replica_url() -> str:
    for variable in REPLICA_URL_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    return DEFAULT_REPLICA_URL


def replica_unusable(url: str) -> str | None:
    """Why ``url`` is no hot standby to read from (one line), or None when it is."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as connection:
            row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error as error:
        return (str(error).strip().splitlines() or [type(error).__name__])[0]
    return None if row and row[0] else "not a hot standby (not in recovery)"


def measure(admin_url: str, configuration: Configuration, seconds: float) -> WorkdayReport:
    """One configuration on a fresh database: the working day's report."""
    with (
        tempfile.TemporaryDirectory(prefix="casenet-bench-mixed-") as scratch,
        postgres_database(admin_url) as database_url,
        Topology(
            database_url,
            replica_urls=[replica_url()] if configuration.replica else [],
            api_workers=configuration.api_workers,
            projection_workers=2,
            data_dir=Path(scratch),
        ) as topology,
    ):
        report = run_workday(
            topology.url,
            topology.operator_token,
            seconds,
            SEED,
            USERS,
            database_url=database_url,
            lag=topology.lag,
        )
    print(
        f"  {NAME}  {configuration.label:<32} {report.throughput:7.1f} req/s  "
        f"5xx {report.five_xx}  lost {report.lost_writes}  stale {report.stale}  lag 0 after "
        + ("-" if report.lag_zero_after is None else f"{report.lag_zero_after:.2f} s"),
        flush=True,
    )
    return report


def details(report: WorkdayReport) -> dict[str, object]:
    return {
        "requests": report.requests,
        "seconds": round(report.seconds, 2),
        "users": USERS,
        "five_xx": report.five_xx,
        "lost_writes": report.lost_writes,
        "stale_reads": report.stale,
        "acknowledged_writes": report.acknowledged_writes,
        "generator_cpu_seconds": round(report.generator_cpu_seconds, 2),
        "lag_zero_after_s": report.lag_zero_after,
        "operations": {
            name: {
                "requests": s.requests,
                "p50_ms": s.p50_ms,
                "p95_ms": s.p95_ms,
                "p99_ms": s.p99_ms,
            }
            for name, s in report.operations.items()
        },
    }


def row(label: str, report: WorkdayReport, ceiling: float) -> Row:
    return Row(
        workload=NAME,
        store="postgresql",
        figure=f"working-day req/s, {label}",
        value=round(report.throughput, 1),
        ceiling=round(ceiling, 1),
        condition=BAR,
        condition_met=report.ok,
        details=details(report),
    )


def rows(measured: dict[Configuration, WorkdayReport]) -> list[Row]:
    base = measured[BASELINE].throughput
    out = [
        row(f"{c.label} (ceiling: the baseline, 1 process)", report, base)
        for c, report in measured.items()
    ]
    three, three_replica = Configuration(3, False), Configuration(3, True)
    if three in measured and three_replica in measured:
        out.append(
            row(
                "3 API processes, replica reads (ceiling: 3, no replica)",
                measured[three_replica],
                measured[three].throughput,
            )
        )
    return out


@workload(NAME)
def mixed_load(options: Options) -> list[Row]:
    """The working day on each configuration, against 1 process without a replica."""
    admin_url = postgres_admin_url()
    unreachable = postgres_unreachable(admin_url)
    if unreachable:
        print(f"note: {NAME}: PostgreSQL skipped: {unreachable}")
        return []
    configurations = QUICK if options.quick else FULL
    unusable = replica_unusable(replica_url())
    if unusable:
        print(f"note: {NAME}: no replica rows: {unusable}")
        configurations = tuple(c for c in configurations if not c.replica)
    seconds = QUICK_SECONDS if options.quick else FULL_SECONDS
    measured = {c: measure(admin_url, c, seconds) for c in configurations}
    return rows(measured)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mixed_load", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for r in mixed_load(Options(quick=args.quick)):
        print(f"{r.figure}: {r.value:,.1f} / {r.ceiling:,.1f} = {r.ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
