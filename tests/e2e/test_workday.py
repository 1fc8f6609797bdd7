"""A working day of load on the full topology (issue 21): 3 API processes, 2 projection
workers, reads routed to the hot standby; 60 s of :func:`benchmarks.workday.run_workday`.

What must hold: no 5xx (nor a dropped connection), no acknowledged write missing from the
log afterwards, no read that missed a write that had answered before it started, and every
read model's lag back to 0 within 5 s of the load's stop. The standby's own statistics
show that reads were served there.

PostgreSQL and its standby (``replica_url``, tests/conftest.py: ``CASENET_TEST_REPLICA_URL``,
default 127.0.0.1:5433) are needed; in CI a missing one is a failure, elsewhere a skip.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from benchmarks.topology import Topology, on_database
from benchmarks.workday import LAG_BOUND_SECONDS, run_workday

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECONDS = 60
#: Modest: the users share the 2 cores with 3 API processes and 2 projection workers.
CONCURRENCY = 8
#: Every operation of the mix, each of which must have run.
OPERATIONS = {
    "open_case",
    "add_note",
    "read_case",
    "grant_consent",
    "withdraw_consent",
    "refer",
    "accept_referral",
    "read_inbox",
    "read_shared_cases",
    "read_shared_case",
    "follow_feed",
}


def transactions_on(server_url: str, database_url: str) -> int:
    """Transactions the server has counted in the database (a standby counts its own)."""
    with psycopg.connect(on_database(server_url, database_url), autocommit=True) as connection:
        row = connection.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_working_day_on_the_full_topology_loses_nothing_and_reads_nothing_stale(
    postgres_database_url: str, replica_url: str, tmp_path: Path
) -> None:
    with Topology(
        postgres_database_url,
        replica_urls=[replica_url],
        api_workers=3,
        projection_workers=2,
        data_dir=tmp_path,
    ) as topology:
        replica_before = transactions_on(replica_url, postgres_database_url)
        report = run_workday(
            topology.url,
            topology.operator_token,
            seconds=SECONDS,
            seed=21,
            concurrency=CONCURRENCY,
            database_url=postgres_database_url,
            lag=topology.lag,
        )
        replica_reads = transactions_on(replica_url, postgres_database_url) - replica_before
    summary = report.summary()
    print(summary, f"\n{replica_reads} transactions on the replica")
    assert report.five_xx == 0, summary
    assert report.transport_errors == 0, summary
    assert not report.generator_errors, summary
    assert report.lost_writes == 0, summary
    assert report.stale == 0, summary
    assert report.lag_zero_after is not None, f"still behind: {report.lag_left}\n{summary}"
    assert report.lag_zero_after <= LAG_BOUND_SECONDS, summary
    # A day that did something: every operation ran, and hundreds of writes answered.
    assert set(report.operations) >= OPERATIONS, summary
    assert all(report.operations[name].requests > 0 for name in OPERATIONS), summary
    assert report.acknowledged_writes >= 200, summary
    # No refusal but the 409 of two workers adding a note to one case at once.
    assert not report.unexpected, summary
    assert replica_reads > 100, f"{replica_reads} transactions on the replica\n{summary}"
