"""The command path against the library's bare save, and how latency grows with the store.

``commands``: one unit is what a caseworker does to refer a new client: register the
client and open the case (one save, 2 events), record a consent (1 event), request a
referral (1 event), through casenet's application services (rules, encryption,
msgspec mapper). Ceiling: the eventsourcing library's own ``Application.save`` of the
same number of events in the same saves (a plain declarative aggregate, its default
JSON transcoder), on the same kind of store, in the same run. Target >= 50%.

``scaling``: owner read latency (authenticate + read the case) and command latency
(add a note) with 10k, 100k and (full run) 1M events already in the store: nothing may
replay history in proportion to the store's size. Every size's store is filled first,
then the sizes take turns, five rounds of a fifth of the samples each, so that the
host's drift weighs on all of them alike. Target: latency at the largest size within
20% of the smallest (ratio = small / large p50 >= 0.83). The runner draws its figures,
with the rebuild's by size, in docs/scaling.png (``benchmarks._report``).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from benchmarks import Options, Row, workload
from benchmarks.rebuild import generate
from benchmarks.stores import (
    postgres_admin_url,
    postgres_database,
    postgres_unreachable,
    sqlite_database,
)
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.bootstrap import build_casenet
from casenet.infrastructure.store import eventsourcing_env
from casenet.settings import load_settings, parse_database_url

EVENTS_PER_UNIT = 4
FreshStore = Callable[[Path], AbstractContextManager[str]]


def stores() -> Iterator[tuple[str, FreshStore]]:
    yield "sqlite", sqlite_database
    admin = postgres_admin_url()
    reason = postgres_unreachable(admin)
    if reason is None:
        yield "postgresql", lambda _: postgres_database(admin)
    else:
        print(f"commands: PostgreSQL skipped ({reason})")


class BareCase(Aggregate):
    """The library's own declarative aggregate: the ceiling's events."""

    @event("Opened")
    def __init__(self, summary: str) -> None:
        self.summary = summary

    @event("Noted")
    def note(self, text: str) -> None:
        self.text = text


def network(casenet: Casenet) -> tuple[Actor, UUID]:
    owner = casenet.agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
    grantee = casenet.agencies.register(OPERATOR_ACTOR, name="Hospital", kind="hospital")
    worker, _ = casenet.agencies.add_worker(OPERATOR_ACTOR, owner.id, name="Ana", role="caseworker")
    return Actor(owner.id, worker.id, "caseworker"), grantee.id


def command_units(casenet: Casenet, actor: Actor, grantee: UUID, units: int) -> float:
    started = time.perf_counter()
    for i in range(units):
        case = casenet.cases.open_case(
            actor,
            client=ClientDetails(name=f"Client {i}", phone="+1 555 0100"),
            summary="Her shifts clash with her husband's appointments.",
            needs=["employment"],
        )
        consent = casenet.consents.grant(
            actor,
            case.id,
            grantee_agency_id=grantee,
            sections=["identity", "contact"],
            purpose="referral",
            method="written",
        )
        casenet.referrals.request(
            actor,
            case_id=case.id,
            to_agency_id=grantee,
            service_type="health",
            reason="Move the appointments to evenings.",
            urgency="routine",
            consent_id=consent.id,
        )
    return units * EVENTS_PER_UNIT / (time.perf_counter() - started)


def bare_units(app: Application[UUID], units: int) -> float:
    started = time.perf_counter()
    for _ in range(units):
        first, second = BareCase("summary"), BareCase("summary")
        app.save(first, second)  # two events in one save, like client + case
        first.note("consent")
        app.save(first)
        second.note("referral")
        app.save(second)
    return units * EVENTS_PER_UNIT / (time.perf_counter() - started)


@workload("commands")
def commands(options: Options) -> list[Row]:
    units, rounds = (40, 2) if options.quick else (300, 5)
    rows = []
    for store, fresh in stores():
        best_casenet = best_bare = 0.0
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as scratch, fresh(Path(scratch)) as url:
                settings = load_settings({"CASENET_DATABASE_URL": url, "CASENET_DATA_DIR": scratch})
                casenet = build_casenet(settings)
                try:
                    actor, grantee = network(casenet)
                    best_casenet = max(best_casenet, command_units(casenet, actor, grantee, units))
                finally:
                    casenet.close()
            with tempfile.TemporaryDirectory() as scratch, fresh(Path(scratch)) as url:
                env = eventsourcing_env(parse_database_url(url))
                if "SQLITE_DBNAME" in env:
                    Path(env["SQLITE_DBNAME"]).parent.mkdir(parents=True, exist_ok=True)
                env.pop("APPLICATION_RECORDER_TOPIC", None)  # the library's own recorder
                bare: Application[UUID] = Application(env)
                try:
                    best_bare = max(best_bare, bare_units(bare, units))
                finally:
                    bare.close()
        rows.append(
            Row(
                workload="commands",
                store=store,
                figure="events/s: register+open+consent+refer vs the library's bare save",
                value=best_casenet,
                ceiling=best_bare,
                target=0.50,
                details={"units": units, "rounds": rounds},
            )
        )
    return rows


def _latencies(call: Callable[[], object], samples: int) -> list[float]:
    call()  # warm
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def _latency_probes(casenet: Casenet) -> tuple[Callable[[], None], Callable[[], None]]:
    """An owner's read (authenticate + read the case) and a command (add a note) on a
    case of its own, opened in ``casenet``'s store."""
    actor, _ = network(casenet)
    _, token = casenet.agencies.add_worker(
        OPERATOR_ACTOR, actor.agency_id or UUID(int=0), name="Bo", role="caseworker"
    )
    # Two cases: the notes the writes add would otherwise make each read decrypt more.
    case, written = (
        casenet.cases.open_case(actor, client=ClientDetails(name=name), summary="s", needs=[])
        for name in ("Maria", "Ana")
    )
    casenet.app.projections.ensure_current()

    def read() -> None:
        reader = casenet.directory.authenticate(token)
        assert reader is not None
        casenet.case_queries.read_case(reader, case.id)

    def write() -> None:
        casenet.cases.add_note(actor, written.id, category="general", text="x")

    return read, write


def _summary(reads: list[float], writes: list[float]) -> dict[str, float]:
    return {
        "read_p50": statistics.median(reads),
        "read_p99": _p(reads, 99),
        "write_p50": statistics.median(writes),
        "write_p99": _p(writes, 99),
    }


#: Rounds the samples of each size are split into, the sizes taking turns: a write is
#: mostly a commit's fsync, whose cost on this shared host drifts within minutes (the
#: same code on the same 1M store measured 0.68 and 1.43 ms), so sizes measured one
#: after the other compared the host's moments more than the stores.
ROUNDS = 5


@workload("scaling")
def scaling(options: Options) -> list[Row]:
    sizes = (2_000, 20_000) if options.quick else (10_000, 100_000, 1_000_000)
    samples = 100 if options.quick else 500
    rows: list[Row] = []
    for store, fresh in stores():
        measured: dict[int, dict[str, Any]] = {}
        with ExitStack() as stack:
            probes = {}
            for size in sizes:  # every size's store first, then the sizes take turns
                scratch = stack.enter_context(tempfile.TemporaryDirectory())
                url = stack.enter_context(fresh(Path(scratch)))
                environ = {"CASENET_DATABASE_URL": url, "CASENET_DATA_DIR": scratch}
                load_settings(environ)  # dev keys made once, shared with generate
                generate(environ, size)
                casenet = build_casenet(load_settings(environ))
                stack.callback(casenet.close)
                probes[size] = _latency_probes(casenet)
            # The fills leave hundreds of MB for the kernel to write back, and a commit's
            # fsync waits behind them: written out first, the stores are measured as
            # they stand, not in the wake of their fill.
            os.sync()
            reads: dict[int, list[float]] = {size: [] for size in sizes}
            writes: dict[int, list[float]] = {size: [] for size in sizes}
            for _ in range(ROUNDS):
                for size, (read, write) in probes.items():
                    reads[size] += _latencies(read, samples // ROUNDS)
                    writes[size] += _latencies(write, min(samples, 100) // ROUNDS)
        for size in sizes:
            measured[size] = _summary(reads[size], writes[size])
            print(f"scaling: {store}: {size:,} events: {measured[size]}", flush=True)
        small, large = measured[sizes[0]], measured[sizes[-1]]
        for kind in ("read", "write"):
            rows.append(
                Row(
                    workload="scaling",
                    store=store,
                    figure=f"{kind} p50 ms at {sizes[0]:,} / at {sizes[-1]:,} events",
                    value=small[f"{kind}_p50"],
                    ceiling=large[f"{kind}_p50"],
                    target=0.83,  # large within 20% of small: small/large >= 1/1.2
                    details={str(k): v for k, v in measured.items()},
                )
            )
    return rows
