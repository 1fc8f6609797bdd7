"""No request touches the store on the event loop, on both stores.

One request waiting on the database on the event loop makes every other request of the
process wait with it (issue 16: on PostgreSQL 1 ms away, owner reads fell to a quarter).
So every route handler and dependency that reaches the application services runs in a
worker thread. Three checks:

* structural: every casenet route handler is sync and runs in a thread
  (``sync_to_thread=True``), but for an explicit few that touch nothing and the feed,
  which waits on the loop and reads in a thread each time; every sync dependency runs
  in a thread, but for an explicit few that touch nothing;
* behavioural: with every service and store method reporting a call made on a thread
  that runs an event loop, a tour of the API (reads, writes, errors, probes) makes none;
* timing: with the services' calls taking 200 ms each, ten concurrent owner reads take
  about as long as one, not ten times as long (a generous bound: half of serial).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from casenet.api.app import create_app
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.settings import load_settings

#: casenet handlers that may run on the event loop: they touch no service and no store.
ON_THE_LOOP = {("GET", "/health/live")}
#: Async handlers that hand each of their store reads to a thread themselves (the feed's
#: wait sleeps on the loop between reads, holding no thread: application/feed_queries.py).
OWN_THREADS = {("GET", "/v1/feed")}
#: Sync dependencies that may run on the event loop: they return an object, no I/O.
NO_IO_DEPENDENCIES = {"casenet"}
#: Service methods that may be called on the event loop: no I/O (a place among the feed's
#: waiters is a semaphore's).
NO_IO_METHODS = {"FeedQueries.waiting"}
#: Each service call's delay in the timing test, and how many owner reads run at once.
DELAY = 0.2
CONCURRENT = 10

OPERATOR_TOKEN = "operator-token-for-the-event-loop-tests-0123456789"


def app_over(casenet: Casenet) -> Litestar:
    settings = load_settings(
        {"CASENET_ENV": "development", "CASENET_OPERATOR_TOKEN": OPERATOR_TOKEN}
    )
    return create_app(settings, casenet)


def test_every_handler_and_dependency_that_may_touch_the_store_runs_in_a_thread(
    casenet: Casenet,
) -> None:
    app = app_over(casenet)
    assert app.openapi_config is not None
    schema = app.openapi_config.path
    on_the_loop: list[str] = []
    seen = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.http_methods == {"OPTIONS"} or route.path.startswith(schema):
                continue  # Litestar's own: answers from the routes' metadata
            seen += handler.include_in_schema is not False  # /metrics is checked, not counted
            for method in handler.http_methods:
                if (method, route.path) in ON_THE_LOOP:
                    continue
                if (method, route.path) in OWN_THREADS:
                    assert not handler.has_sync_callable, route.path
                    continue
                if not handler.sync_to_thread:
                    on_the_loop.append(f"handler {method} {route.path}")
            for name, provider in handler.resolve_dependencies().items():
                # Litestar wraps a sync provider it runs in a thread as an async one.
                if provider.has_sync_callable and name not in NO_IO_DEPENDENCIES:
                    on_the_loop.append(f"dependency {name} of {route.path}")
    paths = app.openapi_schema.paths or {}
    methods = ("get", "put", "post", "delete", "patch")
    documented = sum(getattr(item, m) is not None for item in paths.values() for m in methods)
    assert seen == documented  # every operation of the API was looked at
    assert on_the_loop == []


class LoopWatch:
    """Wraps every public method of the services (and of the store objects the API
    reaches through ``casenet.app``) to record the calls made on a thread that runs
    an event loop; ``delay``: each service call sleeps that long first."""

    def __init__(self, casenet: Casenet, delay: float = 0.0) -> None:
        self.on_the_loop: list[str] = []
        self._depth = threading.local()  # only the outermost call sleeps
        app = casenet.app
        services = [s for s in vars(casenet).values() if s is not app]
        store = [app, *(getattr(app, n, None) for n in ("database", "projections", "idempotency"))]
        for target in services:
            self._wrap(target, delay)
        for target in store:
            if target is not None:
                self._wrap(target, 0.0)

    def _wrap(self, target: object, delay: float) -> None:
        for name, _ in inspect.getmembers(type(target), inspect.isfunction):
            if not name.startswith("_"):
                label = f"{type(target).__name__}.{name}"
                setattr(target, name, self._watched(getattr(target, name), label, delay))

    def _watched(self, method: Callable[..., Any], label: str, delay: float) -> Any:
        def watched(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # a worker thread: no loop here
            else:
                if label not in NO_IO_METHODS:
                    self.on_the_loop.append(label)
            depth = getattr(self._depth, "n", 0)
            if delay and depth == 0:
                time.sleep(delay)
            self._depth.n = depth + 1
            try:
                return method(*args, **kwargs)
            finally:
                self._depth.n = depth

        return watched


def test_the_watch_sees_a_call_made_on_the_loop(casenet: Casenet) -> None:
    watch = LoopWatch(casenet)

    async def on_the_loop() -> None:
        casenet.directory.authenticate("not-a-token")

    asyncio.run(on_the_loop())
    seen = list(watch.on_the_loop)
    casenet.directory.authenticate("not-a-token")  # no loop in this thread

    assert seen[0] == "DirectoryQueries.authenticate"  # and what it called, on the loop too
    assert watch.on_the_loop == seen


class Network:
    def __init__(self, casenet: Casenet) -> None:
        agencies = casenet.agencies
        welfare = agencies.register(OPERATOR_ACTOR, name="Eastside Welfare", kind="ngo")
        hospital = agencies.register(OPERATOR_ACTOR, name="City Hospital", kind="hospital")
        worker, self.owner_token = agencies.add_worker(
            OPERATOR_ACTOR, welfare.id, name="Wanjiru", role="caseworker"
        )
        _, self.grantee_token = agencies.add_worker(
            OPERATOR_ACTOR, hospital.id, name="Baraka", role="caseworker"
        )
        owner = Actor(welfare.id, worker.id, "caseworker")
        client = ClientDetails(name="Maria", date_of_birth="1980-04-02", phone="5", address="x")
        case = casenet.cases.open_case(owner, client=client, summary="Housing", needs=["housing"])
        casenet.consents.grant(
            owner,
            case.id,
            grantee_agency_id=hospital.id,
            sections=["summary"],
            purpose="referral",
            method="verbal",
        )
        self.welfare_id, self.case_path = welfare.id, f"/v1/cases/{case.id}"


async def get(app: Litestar, path: str, token: str) -> int:
    """The status of ``GET path`` sent straight to the ASGI app (several at once share
    the caller's event loop, as a server's requests do; a test client would send them
    one at a time)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"x"), (b"authorization", f"Bearer {token}".encode())],
    }
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    return int(sent[0]["status"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def network(casenet: Casenet) -> Network:
    return Network(casenet)


def test_a_tour_of_the_api_touches_nothing_on_the_event_loop(
    casenet: Casenet, network: Network
) -> None:
    watch = LoopWatch(casenet)
    owner, grantee = bearer(network.owner_token), bearer(network.grantee_token)
    operator = bearer(OPERATOR_TOKEN)
    body = {"client": {"name": "Amina"}, "summary": "Needs a slot", "needs": ["housing"]}

    with TestClient(app_over(casenet)) as client:
        added = client.post(
            f"/v1/agencies/{network.welfare_id}/workers",
            json={"name": "Otieno", "role": "caseworker"},
            headers=operator,
        )
        answers = [
            added,
            client.get(network.case_path, headers=owner),
            client.get(network.case_path, headers=grantee),
            client.post("/v1/cases", json=body, headers=owner),
            client.get("/v1/cases", headers=owner),
            client.get("/v1/shared-cases", headers=grantee),
            client.get("/v1/feed", headers=grantee),
            # an empty answer held open: reads again, from a thread, while it waits
            client.get("/v1/feed?after=999999999&wait=1", headers=grantee),
            client.get("/v1/me", headers=bearer(added.json()["token"])),
            client.delete(
                f"/v1/agencies/{network.welfare_id}/workers/{added.json()['id']}",
                headers=operator,
            ),
            client.get(network.case_path, headers=bearer("not-a-token")),
            client.get("/health/ready"),
            client.get("/health/live"),
        ]
    statuses = [answer.status_code for answer in answers]

    assert statuses == [201, 200, 200, 201, 200, 200, 200, 200, 200, 200, 401, 200, 200]
    assert watch.on_the_loop == []


def test_concurrent_owner_reads_wait_for_the_store_together_not_in_turn(
    casenet: Casenet, network: Network
) -> None:
    watch = LoopWatch(casenet, delay=DELAY)
    app = app_over(casenet)

    async def reads() -> tuple[float, list[int]]:
        first = await get(app, network.case_path, network.owner_token)  # learns the owner
        started = time.perf_counter()
        statuses = await asyncio.gather(
            *(get(app, network.case_path, network.owner_token) for _ in range(CONCURRENT))
        )
        return time.perf_counter() - started, [first, *statuses]

    elapsed, statuses = asyncio.run(reads())

    assert statuses == [200] * (CONCURRENT + 1)
    assert watch.on_the_loop == []
    # Each read waits on two service calls (authentication, the read): 0.4 s. In turn,
    # ten take 4 s; together, about 0.4 s.
    serial = CONCURRENT * 2 * DELAY
    assert elapsed < serial / 2, f"{CONCURRENT} reads took {elapsed:.2f} s"
