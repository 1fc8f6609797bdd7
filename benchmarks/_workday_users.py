"""The working day's users, in a process of their own: ``python -m benchmarks._workday_users``.

Reads a JSON plan on stdin (URL, seconds, seed, and one entry per user: its token and
agency), runs a locust :class:`Worker` per entry for that long, and prints one JSON
document on stdout: locust's figures per operation, every write that answered 2xx
(aggregate id and version, for :mod:`benchmarks.workday` to look up in the log), the
status counts and the stale reads.

Its own process because locust (gevent) patches the interpreter that imports it; the
module's name starts with ``_`` so that ``python -m benchmarks`` never imports it.

Each user works for one agency and picks operations from a fixed mix with the run's seed.
Every write that answers is written down with the moment its answer arrived; every read
checks that it reflects each write that had answered before the read started (a note in
the case, a consent's effect for the grantee, a referral in the receiving agency's inbox,
a feed item). A read that does not is a stale read; what it missed is kept as a sample
(ids only).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import itertools  # noqa: E402  (after the patch, as gevent requires)
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from locust import FastHttpUser, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.log import setup_logging  # noqa: E402

#: The sections every consent of the day grants: a grantee sees general notes.
SECTIONS = ["identity", "summary", "notes.general"]
NEEDS = ["housing", "food", "income", "health", "mental_health", "legal", "employment"]
PAGE = 500
MAX_PAGES = 40
SAMPLES = 20


# --- what the users did, and when it answered -----------------------------------------


@dataclass
class Case:
    id: str
    owner: int
    #: (answered at, id) of each note; (answered at, version) of each acknowledged write.
    notes: list[tuple[float, str]] = field(default_factory=list)
    versions: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class Consent:
    id: str
    case_id: str
    owner: int
    grantee: int
    granted_at: float
    withdraw_sent: float | None = None
    withdrawn_at: float | None = None


@dataclass
class Referral:
    id: str
    case_id: str
    sender: int
    receiver: int
    requested_at: float
    accept_sent: float | None = None


@dataclass
class Feed:
    """One agency's follower: where it is in the feed, and what it has seen."""

    cursor: str | None = None
    busy: bool = False
    seen: set[tuple[str, str]] = field(default_factory=set)  # (type, id)


class Ledger:
    """Every write that answered, and the checks a read makes against them."""

    def __init__(self, agencies: int) -> None:
        self.cases: dict[str, Case] = {}
        self.cases_of: list[list[str]] = [[] for _ in range(agencies)]
        self.consents: dict[str, Consent] = {}
        self.consents_of: list[list[str]] = [[] for _ in range(agencies)]  # by owner
        self.granted_to: list[list[str]] = [[] for _ in range(agencies)]  # by grantee
        self.grants_sent: Counter[tuple[str, int]] = Counter()  # (case, grantee)
        self.referrals: dict[str, Referral] = {}
        self.referred_to: list[list[str]] = [[] for _ in range(agencies)]
        self.feeds = [Feed() for _ in range(agencies)]
        #: [kind, aggregate id, version, owner agency] of every 2xx write.
        self.acknowledged: list[tuple[str, str, int, int]] = []
        self.statuses: Counter[int] = Counter()
        self.unexpected: Counter[str] = Counter()
        self.transport_errors = 0
        self.stale_reads: Counter[str] = Counter()
        self.stale_samples: list[str] = []

    def stale(self, operation: str, what: str) -> None:
        self.stale_reads[operation] += 1
        if len(self.stale_samples) < SAMPLES:
            self.stale_samples.append(f"{operation}: {what}")

    def consents_for(self, case_id: str, grantee: int) -> list[Consent]:
        return [
            c
            for c in map(self.consents.get, self.granted_to[grantee])
            if c and c.case_id == case_id
        ]

    def must_see(self, case_id: str, grantee: int, started: float) -> list[str]:
        """The consents that must let ``grantee`` see the case in a read started then:
        answered before it, and no withdrawal sent (one in flight may win the race)."""
        return [
            c.id
            for c in self.consents_for(case_id, grantee)
            if c.granted_at < started and c.withdraw_sent is None
        ]

    def must_not_see(self, case_id: str, grantee: int, started: float) -> bool:
        """Whether every grant ever sent for the pair was withdrawn before the read."""
        consents = self.consents_for(case_id, grantee)
        return (
            bool(consents)
            and self.grants_sent[(case_id, grantee)] == len(consents)
            and all(c.withdrawn_at is not None and c.withdrawn_at < started for c in consents)
        )


PLAN: dict[str, Any] = {}
LEDGER = Ledger(0)
_next_user = itertools.count()


# --- the user ---------------------------------------------------------------------------


class Worker(FastHttpUser):
    """A caseworker of one agency, working through the fixed mix without pause."""

    wait_time = constant(0)

    def on_start(self) -> None:
        index = next(_next_user)
        me = PLAN["users"][index % len(PLAN["users"])]
        self.agency: int = me["agency"]
        self.others = [a for a in range(PLAN["agencies"]) if a != self.agency]
        self.headers = {"Authorization": f"Bearer {me['token']}"}
        self.rng = random.Random(PLAN["seed"] * 1000 + index)  # noqa: S311  (a fixed mix, not a secret)

    # One request: the status counted, 2xx or not; None on a transport error.
    def call(
        self, operation: str, method: str, path: str, expect: tuple[int, ...], body: Any = None
    ) -> tuple[int, Any, str] | None:
        with self.client.request(
            method, path, name=operation, json=body, headers=self.headers, catch_response=True
        ) as response:
            status = response.status_code or 0
            if status == 0:
                LEDGER.transport_errors += 1
                response.failure("transport error")
                return None
            LEDGER.statuses[status] += 1
            if status not in expect:
                LEDGER.unexpected[f"{operation} {status}"] += 1
                response.failure(f"status {status}")
                return status, None, ""
            response.success()
            payload = response.json() if response.text else None
            return status, payload, response.headers.get("etag", "")

    def my_case(self) -> Case | None:
        mine = LEDGER.cases_of[self.agency]
        return LEDGER.cases[self.rng.choice(mine)] if mine else None

    # --- writes ---------------------------------------------------------------------

    @task(6)
    def open_case(self) -> None:
        body = {
            "client": {"name": f"Client {self.rng.randrange(10**6)}", "phone": "555 0100"},
            "summary": "Came in for help at the front desk.",
            "needs": self.rng.sample(NEEDS, 2),
        }
        answer = self.call("open_case", "POST", "/v1/cases", (201,), body)
        if answer and answer[1]:
            now, view = time.monotonic(), answer[1]
            LEDGER.cases[view["id"]] = Case(view["id"], self.agency, versions=[(now, 1)])
            LEDGER.cases_of[self.agency].append(view["id"])
            LEDGER.acknowledged.append(("case", view["id"], 1, self.agency))

    @task(18)
    def add_note(self) -> None:
        case = self.my_case()
        if case is None:
            return self.open_case()
        body = {"text": "Phoned the client; follow-up next week.", "category": "general"}
        # Two workers of the agency on one case at once: the later one is refused (409).
        answer = self.call("add_note", "POST", f"/v1/cases/{case.id}/notes", (201, 409), body)
        if answer and answer[0] == 201:
            now, version = time.monotonic(), int(answer[2].strip('W/"') or 0)
            case.notes.append((now, answer[1]["id"]))
            case.versions.append((now, version))
            LEDGER.acknowledged.append(("case", case.id, version, self.agency))
        return None

    @task(8)
    def grant_consent(self) -> None:
        case = self.my_case()
        if case is None or not self.others:
            return self.open_case()
        grantee = self.rng.choice(self.others)
        LEDGER.grants_sent[(case.id, grantee)] += 1
        body = {
            "grantee_agency_id": PLAN["agency_ids"][grantee],
            "sections": SECTIONS,
            "purpose": "care_coordination",
            "method": "verbal",
        }
        answer = self.call("grant_consent", "POST", f"/v1/cases/{case.id}/consents", (201,), body)
        if answer and answer[1]:
            consent = Consent(answer[1]["id"], case.id, self.agency, grantee, time.monotonic())
            LEDGER.consents[consent.id] = consent
            LEDGER.consents_of[self.agency].append(consent.id)
            LEDGER.granted_to[grantee].append(consent.id)
            LEDGER.acknowledged.append(("consent", consent.id, 1, self.agency))
        return None

    @task(4)
    def withdraw_consent(self) -> None:
        active = [
            c
            for c in map(LEDGER.consents.get, LEDGER.consents_of[self.agency])
            if c and c.withdraw_sent is None
        ]
        if not active:
            return self.grant_consent()
        consent = self.rng.choice(active)
        consent.withdraw_sent = time.monotonic()
        path = f"/v1/consents/{consent.id}/withdraw"
        answer = self.call("withdraw_consent", "POST", path, (200,), {"reason": "Client asked."})
        if answer and answer[1]:
            consent.withdrawn_at = time.monotonic()
            version = int(answer[1]["version"])
            LEDGER.acknowledged.append(("consent", consent.id, version, self.agency))
        return None

    @task(6)
    def refer(self) -> None:
        case = self.my_case()
        if case is None or not self.others:
            return self.open_case()
        receiver = self.rng.choice(self.others)
        active = LEDGER.must_see(case.id, receiver, time.monotonic())
        body = {
            "case_id": case.id,
            "to_agency_id": PLAN["agency_ids"][receiver],
            "service_type": self.rng.choice(NEEDS),
            "reason": "Needs a place to stay this week.",
            "urgency": self.rng.choice(["routine", "urgent"]),
            "consent_id": active[0] if active else None,
        }
        answer = self.call("refer", "POST", "/v1/referrals", (201,), body)
        if answer and answer[1]:
            rid = answer[1]["id"]
            LEDGER.referrals[rid] = Referral(rid, case.id, self.agency, receiver, time.monotonic())
            LEDGER.referred_to[receiver].append(rid)
            LEDGER.acknowledged.append(("referral", rid, 1, self.agency))
        return None

    @task(4)
    def accept_referral(self) -> None:
        waiting = [
            r
            for r in map(LEDGER.referrals.get, LEDGER.referred_to[self.agency])
            if r and r.accept_sent is None
        ]
        if not waiting:
            return self.read_inbox()
        referral = self.rng.choice(waiting)
        referral.accept_sent = time.monotonic()
        answer = self.call("accept_referral", "POST", f"/v1/referrals/{referral.id}/accept", (200,))
        if answer and answer[1]:
            version = int(answer[1]["version"])
            LEDGER.acknowledged.append(("referral", referral.id, version, referral.sender))
        return None

    # --- reads, each checking the writes that answered before it started ----------------

    @task(16)
    def read_case(self) -> None:
        case = self.my_case()
        if case is None:
            return self.open_case()
        started = time.monotonic()
        answer = self.call("read_case", "GET", f"/v1/cases/{case.id}", (200,))
        if answer and answer[1]:
            view = answer[1]
            seen = {note["id"] for note in view["notes"]}
            missed = [i for at, i in case.notes if at < started and i not in seen]
            floor = max((v for at, v in case.versions if at < started), default=0)
            if missed or view["version"] < floor:
                LEDGER.stale("read_case", f"case {case.id}: notes {missed}, version {floor}")
        return None

    @task(12)
    def read_shared_case(self) -> None:
        granted = LEDGER.granted_to[self.agency]
        if not granted:
            return self.read_shared_cases()
        consent = LEDGER.consents[self.rng.choice(granted)]
        started = time.monotonic()
        answer = self.call("read_shared_case", "GET", f"/v1/cases/{consent.case_id}", (200, 404))
        if answer is None or answer[0] not in (200, 404):
            return None
        must_see = LEDGER.must_see(consent.case_id, self.agency, started)
        if answer[0] == 404 and must_see:
            LEDGER.stale("read_shared_case", f"case {consent.case_id} 404 under {must_see}")
        elif answer[0] == 200 and LEDGER.must_not_see(consent.case_id, self.agency, started):
            LEDGER.stale("read_shared_case", f"case {consent.case_id} shown after withdrawal")
        elif answer[0] == 200 and must_see:
            view = answer[1]
            notes = {note["id"] for note in view["notes"] or []}
            case = LEDGER.cases[consent.case_id]
            missed = [i for at, i in case.notes if at < started and i not in notes]
            unlisted = set(must_see) - set(view["shared_under"])
            if missed or unlisted:
                LEDGER.stale("read_shared_case", f"case {case.id}: {missed} {sorted(unlisted)}")
        return None

    def walk(self, operation: str, path: str) -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = []
        url = f"{path}&limit={PAGE}"
        for _ in range(MAX_PAGES):
            answer = self.call(operation, "GET", url, (200,))
            if not answer or not answer[1]:
                return None
            items += answer[1]["items"]
            if answer[1]["next"] is None:
                return items
            url = f"{path}&limit={PAGE}&after={answer[1]['next']}"
        return None

    @task(6)
    def read_shared_cases(self) -> None:
        started = time.monotonic()
        items = self.walk("read_shared_cases", "/v1/shared-cases?")
        if items is None:
            return
        listed = {item["case_id"] for item in items}
        pairs = {LEDGER.consents[c].case_id for c in list(LEDGER.granted_to[self.agency])}
        missed = [c for c in pairs if c not in listed and LEDGER.must_see(c, self.agency, started)]
        shown = [c for c in listed & pairs if LEDGER.must_not_see(c, self.agency, started)]
        if missed or shown:
            LEDGER.stale("read_shared_cases", f"missing {missed[:3]}, withdrawn {shown[:3]}")

    @task(8)
    def read_inbox(self) -> None:
        started = time.monotonic()
        items = self.walk("read_inbox", "/v1/referrals?direction=incoming&status=requested")
        if items is None:
            return
        listed = {item["id"] for item in items}
        missed = [
            r.id
            for r in map(LEDGER.referrals.get, list(LEDGER.referred_to[self.agency]))
            if r and r.requested_at < started and r.accept_sent is None and r.id not in listed
        ]
        if missed:
            LEDGER.stale("read_inbox", f"referrals {missed[:3]} not in the inbox")

    @task(8)
    def follow_feed(self) -> None:
        feed = LEDGER.feeds[self.agency]
        if feed.busy:  # another user of the agency is following it right now
            return self.read_shared_cases()
        feed.busy = True
        try:
            self._follow(feed)
        finally:
            feed.busy = False
        return None

    def _follow(self, feed: Feed) -> None:
        started = time.monotonic()
        for _ in range(MAX_PAGES):
            after = f"&after={feed.cursor}" if feed.cursor else ""
            answer = self.call("follow_feed", "GET", f"/v1/feed?limit={PAGE}{after}", (200,))
            if not answer or not answer[1]:
                return
            page = answer[1]
            for item in page["items"]:
                key = item.get("referral_id") or item.get("consent_id") or item["id"]
                feed.seen.add((item["type"], key))
            feed.cursor = page["next"]
            if not page["items"]:
                break
        expected = [
            ("referral_requested", r.id)
            for r in map(LEDGER.referrals.get, list(LEDGER.referred_to[self.agency]))
            if r and r.requested_at < started
        ]
        for c in map(LEDGER.consents.get, list(LEDGER.granted_to[self.agency])):
            if c and c.granted_at < started:
                expected.append(("consent_granted", c.id))
            if c and c.withdrawn_at is not None and c.withdrawn_at < started:
                expected.append(("consent_withdrawn", c.id))
        missed = [e for e in expected if e not in feed.seen]
        if missed:
            LEDGER.stale("follow_feed", f"agency {self.agency} feed lacks {missed[:3]}")


# --- the run ------------------------------------------------------------------------------


def operation_figures(environment: Environment) -> dict[str, dict[str, float]]:
    figures = {}
    for (name, _method), entry in sorted(environment.stats.entries.items()):
        figures[name] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.50),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
        }
    return figures


def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Run the plan's users for its seconds; what they did, as JSON-ready data."""
    global LEDGER
    PLAN.update(plan)
    LEDGER = Ledger(plan["agencies"])
    random.seed(plan["seed"])  # locust picks each next task with the module's random
    environment = Environment(user_classes=[Worker], events=events, host=plan["url"])
    runner = environment.create_local_runner()
    started = time.monotonic()
    runner.start(len(plan["users"]), spawn_rate=len(plan["users"]))
    gevent.spawn_later(plan["seconds"], runner.quit)
    runner.greenlet.join()
    stopped = time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        # What the generator itself took of the machine's cores it shares with the servers.
        "generator_cpu_seconds": usage.ru_utime + usage.ru_stime,
        "seconds": stopped - started,
        "stopped_at": stopped,  # CLOCK_MONOTONIC: the parent compares its own with it
        "requests": environment.stats.total.num_requests,
        "operations": operation_figures(environment),
        "statuses": {str(k): v for k, v in sorted(LEDGER.statuses.items())},
        "unexpected": dict(LEDGER.unexpected),
        "transport_errors": LEDGER.transport_errors,
        "stale_reads": dict(LEDGER.stale_reads),
        "stale_samples": LEDGER.stale_samples,
        # Exceptions a user's task raised (a bug here, or a body that is not the API's).
        "generator_errors": [
            f"{error['count']}x {error['msg']}" for error in runner.exceptions.values()
        ],
        "acknowledged": LEDGER.acknowledged,
    }


def main() -> int:
    setup_logging("WARNING")
    result = run(json.load(sys.stdin))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
