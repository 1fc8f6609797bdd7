"""The full topology, run as a whole (issue 21): 3 API processes, 2 projection workers,
reads routed to the hot standby (``benchmarks/topology.py``), PostgreSQL only.

* The referral story and the authorization matrix (``tests/api``), unchanged, over HTTP
  against the topology: every request on a new connection, so consecutive requests land
  on different API processes, none of which keeps a read model current by itself.
* Drill: a projection worker SIGKILLed while its batch's transaction is open, under a
  burst of writes; the other catches up (lag 0 within 5 s of the burst's end) and every
  read model's checksum equals a rebuild's.
* Drill: the replica gone mid-load (reads and writes from several threads): 0 errors,
  reads answered by the primary. The standby on this machine is shared by every test
  run, so by default it is not stopped: casenet reaches it through
  ``benchmarks/proxy.py`` and the proxy is killed (new connections refused, open ones
  cut), then started again on its port. ``CASENET_TEST_REPLICA_OUTAGE=standby`` stops
  the standby itself (``ops/standby.sh stop``) and starts it again (``start``, which
  waits until it streams), whatever the test's outcome.

In CI (``CI=true``) a missing PostgreSQL or standby is a failure (tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from benchmarks.topology import Topology, end_group
from tests.api import test_api_authorization_matrix as matrix
from tests.api import test_api_referral_story as story
from tests.conftest import fresh_database
from tests.support.http import Api, Probe, Route, routes_from

from casenet.application import Casenet

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# The story and the matrix, each in its own module's order (the story's first test checks
# that the hospital sees nothing yet: it must run before the others share with it).
net = story.net
test_the_referral_story = story.test_the_referral_story
test_etag_and_if_match = story.test_etag_and_if_match
test_idempotency_key = story.test_idempotency_key
test_every_list_walks_with_limit_1_to_the_end_without_duplicates = (
    story.test_every_list_walks_with_limit_1_to_the_end_without_duplicates
)
test_errors_are_problem_json_without_traces = story.test_errors_are_problem_json_without_traces
world = matrix.world
test_the_matrix_covers_every_id_route_of_the_served_document = (
    matrix.test_the_matrix_covers_every_id_route_of_the_served_document
)
test_an_outsider_cannot_tell_real_ids_from_random_ones = (
    matrix.test_an_outsider_cannot_tell_real_ids_from_random_ones
)
test_the_ids_are_real_for_the_owner = matrix.test_the_ids_are_real_for_the_owner
test_the_directory_entry_is_public_and_discloses_no_case = (
    matrix.test_the_directory_entry_is_public_and_discloses_no_case
)
test_b_still_sees_its_referral_but_not_the_client = (
    matrix.test_b_still_sees_its_referral_but_not_the_client
)
test_a_referral_naming_anothers_consent_answers_as_a_random_consent_id = (
    matrix.test_a_referral_naming_anothers_consent_answers_as_a_random_consent_id
)

#: Seconds every read model must be back at lag 0 after writes stop (issue 21).
CATCH_UP = 5.0
#: How the replica is taken away mid-load: ``proxy`` (default) or ``standby``.
OUTAGE_VARIABLE = "CASENET_TEST_REPLICA_OUTAGE"
STANDBY_SCRIPT = str(Path(__file__).resolve().parents[2] / "ops" / "standby.sh")


# --- the topology ------------------------------------------------------------------------


class TopologyServer:
    """The topology as the story and the matrix see an app server (``tests/api``): a
    client, the URL, the services on the store (``world`` writes one event there), and
    the log (the API processes' own)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.url = topology.url
        # No keep-alive: each request a new connection, to whichever process accepts it.
        self.http = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))

    @property
    def casenet(self) -> Casenet:
        return self.topology.casenet()

    def log(self) -> str:
        return (self.topology.log_dir / "server.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def topology(
    postgres_url: str, replica_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    data_dir = tmp_path_factory.mktemp("topology")
    with (
        fresh_database(postgres_url) as database_url,
        Topology(database_url, [replica_server_url], data_dir=data_dir) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def app_server(topology: Topology) -> Iterator[TopologyServer]:
    served = TopologyServer(topology)
    yield served
    served.http.close()


@pytest.fixture(scope="module")
def operator(app_server: TopologyServer) -> Api:
    return Api(app_server, app_server.topology.operator_token, role="operator", label="operator")


@pytest.fixture(scope="module")
def id_routes(app_server: TopologyServer) -> list[Route]:
    answer = app_server.http.get(f"{app_server.url}/schema/openapi.json")
    assert answer.status_code == 200, answer.text
    return routes_from(answer.json())


@pytest.fixture
def probe() -> Probe:
    return Probe()


def metric_samples(topology: Topology, name: str, tries: int = 12) -> list[float]:
    """``name``'s value as each of ``tries`` requests to ``/metrics`` saw it (each a new
    connection: the API processes answer in turn, each with its own counters)."""
    pattern = re.compile(rf"^{re.escape(name)} ([0-9.e+]+)$", re.MULTILINE)
    values = []
    for _ in range(tries):
        answer = httpx.get(
            f"{topology.url}/metrics",
            headers={"Authorization": f"Bearer {topology.operator_token}"},
        )
        assert answer.status_code == 200, answer.text
        values.extend(float(found) for found in pattern.findall(answer.text))
    return values


def test_the_api_processes_read_from_the_replica(topology: Topology, operator: Api) -> None:
    """The standby served reads (the story's and the matrix's above, and these)."""
    assert topology.api_workers == 3
    assert len(topology.projection_workers) == 2
    for _ in range(12):
        operator.get("/v1/agencies")
    assert max(metric_samples(topology, "casenet_replica_reads_total"), default=0) > 0


# --- drill: a projection worker killed mid-batch -------------------------------------------


class Load:
    """One thread per step, each running its step until stopped; what went wrong."""

    def __init__(self, steps: list[Callable[[], list[str]]]) -> None:
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.done = 0
        self._threads = [threading.Thread(target=self._run, args=(step,)) for step in steps]

    def _run(self, step: Callable[[], list[str]]) -> None:
        while not self.stop.is_set():
            try:
                self.failures.extend(step())
            except httpx.TransportError as error:
                self.failures.append(f"transport: {type(error).__name__}")
            self.done += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def writer(operator: Api, label: str) -> Callable[[], list[str]]:
    """A step that writes a note to a case of a fresh caseworker and reads the case back
    (on a new connection: another process): the note is there (read your writes)."""
    agency = operator.agency(f"{label} NGO", "ngo")
    worker = operator.worker(agency, "caseworker")
    case = worker.post("/v1/cases", {"client": {"name": f"{label} client"}, "summary": "s"})
    path = f"/v1/cases/{case['id']}"

    def step() -> list[str]:
        note = worker.request(
            "POST", f"{path}/notes", json_body={"text": "n", "category": "general"}
        )
        if note.status_code != 201:
            return [f"note: {note.status_code} {note.text[:200]}"]
        seen = worker.request("GET", path)
        if seen.status_code != 200:
            return [f"read: {seen.status_code} {seen.text[:200]}"]
        if note.json()["id"] not in {n["id"] for n in seen.json()["notes"]}:
            return ["read: the note written before it is missing"]
        return []

    return step


def test_a_projection_worker_killed_mid_batch_leaves_the_other_to_catch_up(
    topology: Topology, operator: Api
) -> None:
    assert len(topology.projection_workers) == 2
    with Load([writer(operator, f"Burst {i}") for i in range(6)]) as load:
        deadline = time.monotonic() + 30
        victim = None
        while victim is None:  # the first worker seen with its batch's transaction open
            assert time.monotonic() < deadline, "no worker was ever caught mid-batch"
            victim = next((i for i in (0, 1) if topology.mid_transaction(i)), None)
        topology.kill_projection_worker(victim)
        time.sleep(1.0)  # the burst goes on, with one worker
    other = topology.projection_workers[1 - victim]
    assert topology.projection_workers[victim].returncode == -signal.SIGKILL
    assert other.poll() is None
    assert load.failures == []

    took = topology.wait_current(timeout=CATCH_UP)
    print(f"{load.done} writes; lag back to 0 in {took:.2f} s after the burst")
    assert other.poll() is None  # it was the other that caught up
    before = topology.checksums()
    assert topology.rebuilt_checksums() == before


# --- drill: the replica gone mid-load -----------------------------------------------------------


class Proxy:
    """``benchmarks/proxy.py`` in front of the standby, that can be killed and restarted on
    its port (a replica that goes away and comes back, while the real one streams on)."""

    def __init__(self, replica_server_url: str) -> None:
        parts = urlsplit(replica_server_url)
        self.target = f"{parts.hostname}:{parts.port or 5432}"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.start()
        host = parts.netloc.rsplit("@", 1)
        netloc = f"{host[0]}@127.0.0.1:{self.port}" if len(host) == 2 else f"127.0.0.1:{self.port}"
        self.url = urlunsplit(parts._replace(netloc=netloc))

    def start(self) -> None:
        command = [sys.executable, "-m", "benchmarks.proxy", "--target", self.target]
        command += ["--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, start_new_session=True)
        assert self.process.stdout is not None
        words = self.process.stdout.readline().split()
        assert words[:1] == [b"listening"], words
        self.port = int(words[1])

    def kill(self) -> None:
        assert self.process is not None
        end_group(self.process, signal.SIGKILL)


class StandbyOutage:
    """The hot standby itself stopped (``ops/standby.sh stop``: ``pg_ctl -m fast``) and
    started again (``ops/standby.sh start`` waits until it streams). It is shared by
    every test run on the machine: only when ``CASENET_TEST_REPLICA_OUTAGE=standby``."""

    def __init__(self, replica_server_url: str) -> None:
        self.url = replica_server_url
        self.environ = {**os.environ, "CASENET_STANDBY_PORT": str(urlsplit(self.url).port)}

    def _standby(self, command: str) -> None:
        subprocess.run([STANDBY_SCRIPT, command], env=self.environ, check=True, capture_output=True)

    def kill(self) -> None:
        self._standby("stop")

    def start(self) -> None:
        self._standby("start")


@pytest.fixture
def outage_topology(
    postgres_url: str, replica_server_url: str, tmp_path: Path
) -> Iterator[tuple[Topology, Proxy | StandbyOutage]]:
    """A topology whose replica can be taken away: through a proxy (by default), or the
    standby itself (``CASENET_TEST_REPLICA_OUTAGE=standby``); brought back afterwards."""
    mode = os.environ.get(OUTAGE_VARIABLE, "proxy")
    assert mode in ("proxy", "standby"), f"{OUTAGE_VARIABLE} is proxy or standby"
    outage = Proxy(replica_server_url) if mode == "proxy" else StandbyOutage(replica_server_url)
    try:
        with (
            fresh_database(postgres_url) as database_url,
            Topology(database_url, [outage.url], data_dir=tmp_path) as running,
        ):
            yield running, outage
    finally:
        if isinstance(outage, Proxy):
            outage.kill()
        else:
            outage.start()  # whatever happened: the others' tests need it


def test_the_replica_gone_mid_load_costs_no_request(
    outage_topology: tuple[Topology, Proxy | StandbyOutage],
) -> None:
    topology, replica = outage_topology
    server = TopologyServer(topology)
    operator = Api(server, topology.operator_token, role="operator")
    steps = [writer(operator, f"Load {i}") for i in range(4)]
    with Load(steps) as load:
        time.sleep(1.5)
        served_before = max(metric_samples(topology, "casenet_replica_reads_total", 6))
        replica.kill()  # the replica is gone: refused, and every open connection cut
        done_at_kill, deadline = load.done, time.monotonic() + 60
        while load.done - done_at_kill < 40 and not load.failures:  # answered by the primary
            assert time.monotonic() < deadline, f"{load.done - done_at_kill} steps in 60 s"
            time.sleep(0.1)
    assert load.failures == []
    assert served_before > 0  # the reads had gone to the replica
    assert max(metric_samples(topology, 'casenet_replica_fallbacks_total{reason="down"}')) > 0

    replica.start()  # back, on its port: the load goes on as before
    with Load(steps[:2]) as load:
        time.sleep(2.0)
    assert load.failures == []
    topology.wait_current(timeout=CATCH_UP)
    server.http.close()
