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
(ids only). Those rules live in :mod:`benchmarks._workday_ledger`, testable without gevent.
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
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from locust import FastHttpUser, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.log import setup_logging  # noqa: E402

from benchmarks._workday_ledger import Case, Consent, Feed, Ledger, Referral  # noqa: E402

#: The sections every consent of the day grants: a grantee sees general notes.
SECTIONS = ["identity", "summary", "notes.general"]
NEEDS = ["housing", "food", "income", "health", "mental_health", "legal", "employment"]
PAGE = 500
MAX_PAGES = 40


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

    @staticmethod
    def check(operation: str, misses: str | None) -> None:
        if misses is not None:
            LEDGER.stale(operation, misses)

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
            LEDGER.case_opened(answer[1]["id"], self.agency, time.monotonic())

    @task(18)
    def add_note(self) -> None:
        case = self.my_case()
        if case is None:
            return self.open_case()
        body = {"text": "Phoned the client; follow-up next week.", "category": "general"}
        # Two workers of the agency on one case at once: the later one is refused (409).
        answer = self.call("add_note", "POST", f"/v1/cases/{case.id}/notes", (201, 409), body)
        if answer and answer[0] == 201:
            version = int(answer[2].strip('W/"') or 0)  # the ETag: the case's version
            LEDGER.note_added(case, answer[1]["id"], version, time.monotonic())
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
            LEDGER.consent_granted(consent)
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
            LEDGER.consent_withdrawn(consent, int(answer[1]["version"]), time.monotonic())
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
            rid, now = answer[1]["id"], time.monotonic()
            LEDGER.referral_requested(Referral(rid, case.id, self.agency, receiver, now))
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
            LEDGER.referral_accepted(referral, int(answer[1]["version"]))
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
            self.check("read_case", LEDGER.case_misses(case, answer[1], started))
        return None

    @task(12)
    def read_shared_case(self) -> None:
        granted = LEDGER.granted_to[self.agency]
        if not granted:
            return self.read_shared_cases()
        consent = LEDGER.consents[self.rng.choice(granted)]
        started = time.monotonic()
        answer = self.call("read_shared_case", "GET", f"/v1/cases/{consent.case_id}", (200, 404))
        if answer and answer[0] in (200, 404):
            status, view = answer[0], answer[1]
            misses = LEDGER.shared_case_misses(consent.case_id, self.agency, status, view, started)
            self.check("read_shared_case", misses)
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
        self.check("read_shared_cases", LEDGER.shared_list_misses(self.agency, listed, started))

    @task(8)
    def read_inbox(self) -> None:
        started = time.monotonic()
        items = self.walk("read_inbox", "/v1/referrals?direction=incoming&status=requested")
        if items is None:
            return
        listed = {item["id"] for item in items}
        self.check("read_inbox", LEDGER.inbox_misses(self.agency, listed, started))

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
                feed.add(item)
            feed.cursor = page["next"]
            if not page["items"]:
                break
        self.check("follow_feed", LEDGER.feed_misses(self.agency, started))


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
