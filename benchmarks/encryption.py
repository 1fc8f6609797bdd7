"""What field encryption costs on the command path, on SQLite and on PostgreSQL.

One unit of work is what a caseworker does for a new client: open a case (the client's
registration and the case: 2 events, and, encrypted, the client's new data key), add
three notes and record a consent (4 events, one save each). The figure is events/s
with encryption; the ceiling is events/s of the same work with personal fields stored
in the clear (``build_casenet(settings, encrypt=False)``), on the same kind of store,
in the same run. Each measurement starts on a fresh store (a new SQLite file, a new
PostgreSQL database), the two modes alternate, and the best of several rounds counts,
so that neither warm caches nor a noisy neighbour decide. Target: encryption costs
less than 10% (ratio >= 0.90).
"""

from __future__ import annotations

import base64
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from benchmarks import Options, Row, workload
from benchmarks.stores import (
    postgres_admin_url,
    postgres_database,
    postgres_unreachable,
    sqlite_database,
)
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.bootstrap import build_casenet
from casenet.settings import load_settings

NAME = "encryption"
TARGET = 0.90
EVENTS_PER_UNIT = 6  # ClientRegistered, CaseOpened, 3 x CaseNoteAdded, ConsentGranted


@dataclass(frozen=True)
class Size:
    units: int  # timed units of work per measurement
    warmup: int  # untimed units first (connections, caches, the first key)
    rounds: int  # measurements per mode; the best counts


QUICK = Size(units=80, warmup=5, rounds=3)
FULL = Size(units=400, warmup=20, rounds=5)

#: A fresh, empty database of one store, as a URL; removed afterwards.
FreshDatabase = Callable[[Path], AbstractContextManager[str]]


@workload(NAME)
def encryption(options: Options) -> list[Row]:
    """Events/s of the command path with encryption (figure) and without (ceiling)."""
    size = QUICK if options.quick else FULL
    master_keys = f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    rows = [measure("sqlite", sqlite_database, size, master_keys)]
    admin_url = postgres_admin_url()
    unreachable = postgres_unreachable(admin_url)
    if unreachable:
        print(f"note: {NAME}: PostgreSQL skipped: {unreachable}")
    else:
        rows.append(
            measure("postgresql", lambda d: postgres_database(admin_url), size, master_keys)
        )
    return rows


def measure(store: str, fresh_database: FreshDatabase, size: Size, master_keys: str) -> Row:
    """Best of ``size.rounds`` rounds; in each, the two modes take turns unit by unit."""
    rounds: list[dict[bool, float]] = []
    for _ in range(size.rounds):
        rounds.append(interleaved_round(fresh_database, size, master_keys))
    encrypted = [r[True] for r in rounds]
    clear = [r[False] for r in rounds]
    return Row(
        workload=NAME,
        store=store,
        figure="events/s encrypted vs clear",
        value=max(encrypted),
        ceiling=max(clear),
        target=TARGET,
        details={
            "events_per_unit": EVENTS_PER_UNIT,
            "units_per_round": size.units,
            "warmup_units": size.warmup,
            "rounds": size.rounds,
            "encrypted_events_per_second": encrypted,
            "clear_events_per_second": clear,
            "ratio_per_round": [e / c for e, c in zip(encrypted, clear, strict=True)],
            "median_ratio": statistics.median(e / c for e, c in zip(encrypted, clear, strict=True)),
        },
    )


def interleaved_round(
    fresh_database: FreshDatabase, size: Size, master_keys: str
) -> dict[bool, float]:
    """Events/s with and without encryption, each on a fresh store of the same kind.

    The two stores are open side by side and the modes alternate unit by unit (and
    which goes first alternates too), so a slow second of the disk or the server
    lands on both rather than deciding the ratio.
    """
    with ExitStack() as stack:
        runs: dict[bool, _Run] = {}
        for encrypt in (True, False):
            directory = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="casenet-bench-"))
            )
            url = stack.enter_context(fresh_database(directory))
            runs[encrypt] = stack.enter_context(_Run.open(url, directory, master_keys, encrypt))
        for run in runs.values():
            for _ in range(size.warmup):
                run.one_client()
        elapsed = {True: 0.0, False: 0.0}
        for unit in range(size.units):
            for encrypt in (True, False) if unit % 2 == 0 else (False, True):
                started = time.perf_counter()
                runs[encrypt].one_client()
                elapsed[encrypt] += time.perf_counter() - started
    return {mode: size.units * EVENTS_PER_UNIT / seconds for mode, seconds in elapsed.items()}


@dataclass
class _Run:
    """One casenet on one fresh store, with a network to work in."""

    casenet: Casenet
    caseworker: Actor
    grantee_id: UUID

    @classmethod
    @contextmanager
    def open(cls, url: str, directory: Path, master_keys: str, encrypt: bool) -> Iterator[_Run]:
        settings = load_settings(
            {
                "CASENET_DATABASE_URL": url,
                "CASENET_DATA_DIR": str(directory / "data"),
                "CASENET_MASTER_KEYS": master_keys,
            }
        )
        casenet = build_casenet(settings, encrypt=encrypt)
        try:
            caseworker, grantee_id = set_up_network(casenet)
            yield cls(casenet, caseworker, grantee_id)
        finally:
            casenet.close()

    def one_client(self) -> None:
        one_client(self.casenet, self.caseworker, self.grantee_id)


def set_up_network(casenet: Casenet) -> tuple[Actor, UUID]:
    owner = casenet.agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
    grantee = casenet.agencies.register(OPERATOR_ACTOR, name="City Hospital", kind="hospital")
    worker, _ = casenet.agencies.add_worker(
        OPERATOR_ACTOR, owner.id, name="Wanjiru", role="caseworker"
    )
    return Actor(owner.id, worker.id, "caseworker"), grantee.id


def one_client(casenet: Casenet, caseworker: Actor, grantee_id: UUID) -> None:
    """The unit of work: 6 events in 5 saves, personal text in 5 of them."""
    token = secrets.token_hex(6)
    case = casenet.cases.open_case(
        caseworker,
        client=ClientDetails(
            name=f"Client {token}",
            date_of_birth="1984-02-29",
            phone="+254 700 000000",
            address=f"{token} River Road",
        ),
        summary="Her job clashes with her husband's hospital appointments",
        needs=["employment", "health"],
    )
    for category in ("general", "health", "family"):
        casenet.cases.add_note(
            caseworker, case.id, category=category, text=f"Called the client ({category})"
        )
    casenet.consents.grant(
        caseworker,
        case.id,
        grantee_agency_id=grantee_id,
        sections=["identity", "needs"],
        purpose="referral",
        method="written",
        evidence="Signed form, scanned",
    )


# --- stores ------------------------------------------------------------------------------
