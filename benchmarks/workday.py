"""A working day of load on a running casenet, and what it shows (issue 21).

:func:`run_workday` registers agencies of several kinds and a caseworker per user through
the operator, then runs the users (:mod:`benchmarks._workday_users`: locust, in a process
of its own) for ``seconds``: they open cases, write notes, grant and withdraw consents,
refer, accept referrals, read their inboxes, shared cases and cases shared with them, and
follow their agency's feed, in a fixed mix with a fixed seed. Each read checks the writes
that had answered before it started (a read that misses one is a *stale read*).

After the users stop it measures how long every read model takes to reach the log's head
(``lag``: a callable such as ``Topology.lag``; by default read from the store's positions
table), then looks up every acknowledged write in the log (``casenet_events`` on the
primary: the aggregate at that version or later) or, with no database URL, reads it back as
its owner: a write that answered 2xx and is not there is a *lost write*.

Why locust: measured here against ``GET /health/live`` at 8 users, its ``FastHttpUser``
spends ~170 us of CPU per request, an asyncio + httpx loop ~800 us (~770 on uvloop). On 2
cores the generator shares the machine with the servers, so the cheaper one leaves more
of it to what is measured.

Run: ``python -m benchmarks.workday --url URL --operator-token TOKEN [--seconds 60]
[--seed 21] [--concurrency 8] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psycopg

#: The agencies of the day: (kind, name); users are spread over them in turn.
AGENCIES = (
    ("ngo", "Workday Welfare"),
    ("hospital", "Workday General Hospital"),
    ("housing", "Workday Housing Trust"),
    ("legal_aid", "Workday Law Centre"),
)
LAG_BOUND_SECONDS = 5.0
EVENTS_TABLE = "casenet_events"
POSITIONS_TABLE = "casenet_projection_positions"

Lag = Callable[[], Mapping[str, int]]


@dataclass(frozen=True)
class OperationStats:
    """One operation's requests, failures (unexpected statuses) and latency."""

    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass
class WorkdayReport:
    """What a working day did and what it found."""

    seconds: float
    requests: int
    operations: dict[str, OperationStats]
    statuses: dict[str, int]
    five_xx: int
    unexpected: dict[str, int]
    transport_errors: int
    stale_reads: dict[str, int]
    stale_samples: list[str]
    #: Exceptions the users' own code raised: a day with any measured less than it says.
    generator_errors: list[str]
    acknowledged_writes: int
    lost_writes: int
    #: CPU seconds the users' process took (it shares the machine with the servers).
    generator_cpu_seconds: float = 0.0
    lost_samples: list[str] = field(default_factory=list)
    #: Seconds from the users' stop until every read model's lag was 0; None: not
    #: within the bound (``lag_left`` says what was left), or not measured.
    lag_zero_after: float | None = None
    lag_left: dict[str, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def stale(self) -> int:
        return sum(self.stale_reads.values())

    @property
    def ok(self) -> bool:
        """The issue's bar: no 5xx, nothing lost, nothing stale, models caught up."""
        return (
            self.five_xx == 0
            and self.transport_errors == 0
            and not self.generator_errors
            and self.lost_writes == 0
            and self.stale == 0
            and self.lag_zero_after is not None
        )

    def summary(self) -> str:
        lines = [
            f"{self.requests} requests in {self.seconds:.1f} s: {self.throughput:.1f} req/s; "
            f"5xx {self.five_xx}, transport errors {self.transport_errors}, "
            f"unexpected {sum(self.unexpected.values())}; the generator took "
            f"{self.generator_cpu_seconds:.1f} CPU s",
            f"acknowledged writes {self.acknowledged_writes}, lost {self.lost_writes}; "
            f"stale reads {self.stale}; lag 0 after "
            + ("-" if self.lag_zero_after is None else f"{self.lag_zero_after:.2f} s"),
            f"{'operation':<18} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}",
        ]
        for name, s in self.operations.items():
            lines.append(
                f"{name:<18} {s.requests:>8} {s.p50_ms:>8.0f} {s.p95_ms:>8.0f} {s.p99_ms:>8.0f}"
            )
        lines += [f"  stale: {sample}" for sample in self.stale_samples[:5]]
        lines += [f"  generator error: {error}" for error in self.generator_errors[:5]]
        lines += [f"  lost: {sample}" for sample in self.lost_samples[:5]]
        return "\n".join(lines)


# --- the network of the day -----------------------------------------------------------------


def register(url: str, operator_token: str, concurrency: int) -> dict[str, Any]:
    """The agencies and one caseworker per user, through the operator: the users' plan."""
    agencies = AGENCIES[: max(2, min(len(AGENCIES), concurrency))]
    operator = {"Authorization": f"Bearer {operator_token}"}
    suffix = os.urandom(3).hex()  # a second day on the same store gets new agencies
    with httpx.Client(base_url=url, headers=operator, timeout=30) as client:
        ids = []
        for kind, name in agencies:
            answer = client.post("/v1/agencies", json={"name": f"{name} {suffix}", "kind": kind})
            answer.raise_for_status()
            ids.append(answer.json()["id"])
        users = []
        for index in range(concurrency):
            agency = index % len(ids)
            answer = client.post(
                f"/v1/agencies/{ids[agency]}/workers",
                json={"name": f"Caseworker {index}", "role": "caseworker"},
            )
            answer.raise_for_status()
            users.append({"agency": agency, "token": answer.json()["token"]})
    return {"agencies": len(ids), "agency_ids": ids, "users": users}


def run_users(plan: dict[str, Any]) -> dict[str, Any]:
    """The users' process (:mod:`benchmarks._workday_users`), from plan to its result."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._workday_users"],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        timeout=plan["seconds"] + 120,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"the workday users failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- after the day: lag, then the log --------------------------------------------------------


def store_lag(database_url: str) -> Lag:
    """Each read model's lag, read from the store: the log's head less its position."""

    def lag() -> dict[str, int]:
        with psycopg.connect(database_url, autocommit=True) as connection:
            head_row = connection.execute(
                f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}"  # noqa: S608
            ).fetchone()
            head = int(head_row[0]) if head_row else 0
            rows = connection.execute(f"SELECT name, position FROM {POSITIONS_TABLE}").fetchall()  # noqa: S608
        return {str(name): max(0, head - int(position)) for name, position in rows}

    return lag


def wait_for_lag_zero(
    lag: Lag, since: float, bound: float = LAG_BOUND_SECONDS
) -> tuple[float | None, dict[str, int]]:
    """Poll ``lag`` until every model is at 0: seconds since ``since`` (monotonic), or None
    and what was left when ``bound`` passed."""
    left: dict[str, int] = {}
    while True:
        left = {name: value for name, value in lag().items() if value}
        now = time.monotonic()
        if not left:
            return now - since, {}
        if now - since > bound:
            return None, left
        time.sleep(0.05)


def lost_in_log(database_url: str, acknowledged: list[list[Any]]) -> list[str]:
    """The acknowledged writes the log lacks: no event of the aggregate at that version."""
    wanted: dict[str, int] = {}
    for _kind, aggregate_id, version, _owner in acknowledged:
        wanted[aggregate_id] = max(version, wanted.get(aggregate_id, 0))
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            f"SELECT originator_id::text, max(originator_version) FROM {EVENTS_TABLE} "  # noqa: S608
            "WHERE originator_id = ANY(%s::uuid[]) GROUP BY originator_id",
            (list(wanted),),
        ).fetchall()
    found = {str(aggregate_id): int(version) for aggregate_id, version in rows}
    return [f"{i} v{v}" for i, v in wanted.items() if found.get(i, 0) < v]


def lost_by_owner(url: str, plan: dict[str, Any], acknowledged: list[list[Any]]) -> list[str]:
    """The same check without the store: each aggregate read back by a worker of its owner."""
    tokens: dict[int, str] = {}
    for user in plan["users"]:
        tokens.setdefault(user["agency"], user["token"])
    wanted: dict[tuple[str, str, int], int] = {}
    for kind, aggregate_id, version, owner in acknowledged:
        key = (kind, aggregate_id, owner)
        wanted[key] = max(version, wanted.get(key, 0))
    lost = []
    paths = {"case": "/v1/cases/", "consent": "/v1/consents/", "referral": "/v1/referrals/"}
    with httpx.Client(base_url=url, timeout=30) as client:
        for (kind, aggregate_id, owner), version in wanted.items():
            answer = client.get(
                paths[kind] + aggregate_id, headers={"Authorization": f"Bearer {tokens[owner]}"}
            )
            if answer.status_code != 200 or answer.json()["version"] < version:
                lost.append(f"{kind} {aggregate_id} v{version}: {answer.status_code}")
    return lost


# --- the day ---------------------------------------------------------------------------------


def run_workday(
    base_url: str,
    operator_token: str,
    seconds: float,
    seed: int = 21,
    concurrency: int = 8,
    *,
    database_url: str | None = None,
    lag: Lag | None = None,
) -> WorkdayReport:
    """Load ``base_url`` for ``seconds`` with ``concurrency`` users, then check the day.

    ``database_url``: the primary, where acknowledged writes are looked up (else they are
    read back through the API) and, with no ``lag``, where read-model lag is read from.
    """
    plan = register(base_url, operator_token, concurrency)
    plan.update(url=base_url, seconds=seconds, seed=seed)
    result = run_users(plan)
    if lag is None and database_url is not None:
        lag = store_lag(database_url)
    caught_up, left = (None, {}) if lag is None else wait_for_lag_zero(lag, result["stopped_at"])
    acknowledged = result["acknowledged"]
    lost = (
        lost_in_log(database_url, acknowledged)
        if database_url
        else lost_by_owner(base_url, plan, acknowledged)
    )
    statuses: dict[str, int] = result["statuses"]
    return WorkdayReport(
        seconds=result["seconds"],
        requests=result["requests"],
        operations={n: OperationStats(**s) for n, s in result["operations"].items()},
        statuses=statuses,
        five_xx=sum(count for status, count in statuses.items() if status.startswith("5")),
        unexpected=result["unexpected"],
        transport_errors=result["transport_errors"],
        stale_reads=result["stale_reads"],
        stale_samples=result["stale_samples"],
        generator_errors=result["generator_errors"],
        acknowledged_writes=len(acknowledged),
        lost_writes=len(lost),
        lost_samples=lost[:20],
        generator_cpu_seconds=result["generator_cpu_seconds"],
        lag_zero_after=caught_up,
        lag_left=left,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workday", description=__doc__)
    parser.add_argument("--url", required=True, help="the API, e.g. http://127.0.0.1:8000")
    parser.add_argument("--operator-token", default=os.environ.get("CASENET_OPERATOR_TOKEN"))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", help="the primary: the log and read-model lag")
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    args = parser.parse_args(argv)
    if not args.operator_token:
        parser.error("--operator-token (or CASENET_OPERATOR_TOKEN) is required")
    report = run_workday(
        args.url,
        args.operator_token,
        args.seconds,
        args.seed,
        args.concurrency,
        database_url=args.database_url,
    )
    print(json.dumps(asdict(report), indent=2) if args.json else report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
