"""The HTTP workloads on a PostgreSQL "on another host": how well the server hides round trips.

In production the database is a managed PostgreSQL 0.5-2 ms away. This workload puts
:mod:`benchmarks.proxy` between one ``casenet serve`` process and PostgreSQL, twice in the
same run: once adding 0.5 ms each way (1 ms round trip), once adding nothing (the same
proxy, the same threads). The ratio of the two rates is what the round trips cost; the
proxy's own cost is in both. Before each run the proxy's real added round trip is
measured with ``SELECT 1`` (a row of its own), since the point is that it adds what it
claims.

Workloads (the :mod:`benchmarks.http` requests, 32 connections): ``owner_read`` and
``create``. Targets (issue 16): at 1 ms each keeps at least 0.7 of its rate at 0 ms, and
the owner read's p99 at 1 ms stays under 60 ms.

Run: ``python -m benchmarks.remote [--quick]`` or as the ``remote`` workload of
``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks import Options, Row, workload
from benchmarks.http import FULL, QUICK, Result, Size, check, load, seed, serve, stop, workloads
from benchmarks.proxy import measure_round_trip
from benchmarks.stores import postgres_admin_url, postgres_database, postgres_unreachable

NAME = "remote"
DELAY_MS = 0.5  # each way: a 1 ms round trip
RATIO_TARGET = 0.70
P99_TARGET_MS = 60.0
MEASURED = ("owner_read", "create")


@contextmanager
def proxy(database_url: str, delay_ms: float) -> Iterator[str]:
    """A proxy to the database's server adding ``delay_ms`` each way; the URL through it."""
    parts = urlsplit(database_url)
    target = f"{parts.hostname}:{parts.port or 5432}"
    process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
        [sys.executable, "-m", "benchmarks.proxy", "--target", target, "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            raise RuntimeError(f"the proxy did not start: {line}")
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{line[1]}"
        yield urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))
    finally:
        stop(process)  # type: ignore[arg-type]


def round_trip_ms(database_url: str) -> float:
    """The median time of ``SELECT 1`` over one connection to ``database_url``."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        return measure_round_trip(lambda: connection.execute("SELECT 1").fetchone())


Measured = dict[float, tuple[float, dict[str, Result]]]


def measure(database_url: str, data_dir: Path, size: Size) -> Measured:
    """For each delay: the measured round trip (ms) and each workload's result."""
    seeded = seed(database_url, data_dir)
    requests = workloads(seeded)
    measured: Measured = {}
    for delay in (0.0, DELAY_MS):
        with proxy(database_url, delay) as proxied:
            rtt = round_trip_ms(proxied)
            results: dict[str, Result] = {}
            with serve(proxied, data_dir) as server:
                for name in MEASURED:
                    request = requests[name]
                    check(server.base, request)
                    if size.warmup:
                        load(server.base, request, size.warmup, data_dir)
                    results[name] = r = load(server.base, request, size.seconds, data_dir)
                    print(
                        f"  remote {2 * delay:.1f} ms  {name:<11} {r.rate:>7.0f} req/s  "
                        f"p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:7.2f} ms  "
                        f"({r.errors} errors, {r.unexpected} unexpected statuses)",
                        flush=True,
                    )
        measured[delay] = (rtt, results)
    return measured


def rows(measured: Measured) -> list[Row]:
    base_rtt, base = measured[0.0]
    far_rtt, far = measured[DELAY_MS]
    out = [
        Row(
            workload=NAME,
            store="postgresql",
            figure="round trip the proxy adds (ms; ceiling: what it claims)",
            value=round(far_rtt - base_rtt, 3),
            ceiling=2 * DELAY_MS,
            details={"rtt_ms_at_0": round(base_rtt, 3), "rtt_ms_at_delay": round(far_rtt, 3)},
        )
    ]
    for name in MEASURED:
        near, remote = base[name], far[name]
        is_read = name == "owner_read"
        out.append(
            Row(
                workload=NAME,
                store="postgresql",
                figure=(
                    f"{name} req/s at 1 ms RTT against 0 ms (p99 {remote.p99_ms:.1f} ms "
                    f"against {near.p99_ms:.1f} ms)"
                ),
                value=round(remote.rate, 1),
                ceiling=round(near.rate, 1),
                target=RATIO_TARGET,
                condition=f"p99 < {P99_TARGET_MS:.0f} ms" if is_read else None,
                condition_met=remote.p99_ms < P99_TARGET_MS if is_read else None,
                details={
                    "p50_ms": round(remote.p50_ms, 2),
                    "p99_ms": round(remote.p99_ms, 2),
                    "p50_ms_at_0": round(near.p50_ms, 2),
                    "p99_ms_at_0": round(near.p99_ms, 2),
                    "errors": remote.errors + near.errors,
                    "unexpected_statuses": remote.unexpected + near.unexpected,
                    "generator": remote.generator,
                },
            )
        )
    return out


@workload(NAME)
def remote(options: Options) -> list[Row]:
    """One server process on PostgreSQL through the proxy, at 1 ms and at 0 ms RTT."""
    admin_url = postgres_admin_url()
    unreachable = postgres_unreachable(admin_url)
    if unreachable:
        print(f"note: {NAME}: PostgreSQL skipped: {unreachable}")
        return []
    with (
        tempfile.TemporaryDirectory(prefix="casenet-bench-remote-") as scratch,
        postgres_database(admin_url) as url,
    ):
        return rows(measure(url, Path(scratch), QUICK if options.quick else FULL))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.remote", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for row in remote(Options(quick=args.quick)):
        verdict = "" if row.meets_target is None else (" ok" if row.meets_target else " MISSED")
        print(f"{row.figure}: {row.value:,.2f} / {row.ceiling:,.2f} = {row.ratio:.3f}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
