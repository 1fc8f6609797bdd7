"""The full topology on one machine: N API processes, M projection workers, replicas.

Used by the end-to-end tests (``tests/e2e/test_topology.py``) and by the bench::

    with Topology(primary_url, replica_urls=[standby_url], data_dir=tmp) as topology:
        api = httpx.Client(base_url=topology.url)  # token: topology.operator_token
        topology.kill_projection_worker(0)         # SIGKILL, mid-batch or not
        topology.wait_current()                    # every read model's lag back to 0
        assert topology.checksums() == topology.rebuilt_checksums()

On entering, it opens the store once (``casenet migrate``: the tables, and the
development keys in ``data_dir`` every process then shares), waits until each replica
has replayed that, starts ``casenet serve --workers N`` on a free port with
``CASENET_PROJECTIONS_IN_SERVER=false`` (and ``CASENET_REPLICA_URLS`` when replicas are
given), and M ``casenet projections run`` processes, and waits for ``/health/ready``.
Each process has its own process group and log (``data_dir/logs``); leaving stops
every group (SIGTERM, then SIGKILL).

A replica URL names a server (a hot standby fed by streaming replication): the
primary's database name replaces its own, since a standby holds every database of its
primary.

Try it by hand: ``python -m benchmarks.topology [--replica-url URL]`` makes a fresh
database on ``CASENET_BENCH_POSTGRES_URL`` (else the tests' PostgreSQL), starts the
topology on it and prints the URL and the operator token until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from casenet.application import Casenet
from casenet.bootstrap import build_casenet
from casenet.settings import load_settings

CASENET = [sys.executable, "-m", "casenet.cli"]
HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
#: Seconds between a projection worker's looks at the log (the CLI's default is 0.2).
PROJECTION_INTERVAL = 0.1


class TopologyError(RuntimeError):
    """A part of the topology did not start (the message ends with its log's tail)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def on_database(server_url: str, database_url: str) -> str:
    """``server_url`` naming ``database_url``'s database (same role and password)."""
    return urlunsplit(urlsplit(server_url)._replace(path=urlsplit(database_url).path))


def wait_for_replay(primary_url: str, replica_url: str, timeout: float = 60.0) -> float:
    """Wait until the replica has replayed the primary's WAL as it is now (the database
    may not exist there yet: it comes by replication too); the seconds it took."""
    started = time.monotonic()
    with psycopg.connect(primary_url, autocommit=True, connect_timeout=5) as primary:
        row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    last = "not reached"
    while time.monotonic() - started < timeout:
        try:
            with psycopg.connect(replica_url, autocommit=True, connect_timeout=5) as replica:
                while time.monotonic() - started < timeout:
                    done = replica.execute(
                        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= %s::pg_lsn",
                        (target,),
                    ).fetchone()
                    assert done is not None
                    if not done[0]:
                        raise TopologyError("the replica is not a standby (not in recovery)")
                    if done[1]:
                        return time.monotonic() - started
                    time.sleep(0.05)
        except psycopg.OperationalError as error:
            last = (str(error).strip().splitlines() or [type(error).__name__])[0]
            time.sleep(0.1)
    raise TopologyError(f"the replica did not replay WAL {target} in {timeout:.0f} s: {last}")


def end_group(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` to the process's group, wait, SIGKILL what outlives 20 s, and wait
    until the whole group is gone (granian's workers may outlive its main process)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class Topology:
    """``api_workers`` API processes (one ``casenet serve``), ``projection_workers``
    ``casenet projections run`` processes, reads routed to ``replica_urls``; a context
    manager that starts them on entering and stops them all on leaving."""

    def __init__(
        self,
        primary_url: str,
        replica_urls: Sequence[str] = (),
        *,
        api_workers: int = 3,
        projection_workers: int = 2,
        data_dir: Path,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.primary_url = primary_url
        self.replica_urls = tuple(on_database(url, primary_url) for url in replica_urls)
        self.api_workers = api_workers
        self.data_dir = Path(data_dir)
        self.log_dir = self.data_dir / "logs"
        #: Extra ``CASENET_*`` variables for every process (a log level, a limit).
        self.extra = dict(environ or {})
        self.operator_token = "topology-" + secrets.token_urlsafe(32)
        self.port = 0
        self.server: subprocess.Popen[bytes] | None = None
        #: The projection workers, by the index :meth:`kill_projection_worker` takes;
        #: a killed one stays in the list (its ``returncode`` says it is gone).
        self.projection_workers: list[subprocess.Popen[bytes]] = []
        self._wanted_projection_workers = projection_workers
        self._casenet: Casenet | None = None
        self._monitor: psycopg.Connection[tuple[object, ...]] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def environ(self) -> dict[str, str]:
        """The environment of every process: no ``CASENET_*`` variable but these."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
        environ.update(
            CASENET_DATABASE_URL=self.primary_url,
            CASENET_DATA_DIR=str(self.data_dir),
            CASENET_OPERATOR_TOKEN=self.operator_token,
            CASENET_PROJECTIONS_IN_SERVER="false",
        )
        if self.replica_urls:
            environ["CASENET_REPLICA_URLS"] = ",".join(self.replica_urls)
        environ.update(self.extra)
        return environ

    # --- starting and stopping ---------------------------------------------------------

    def __enter__(self) -> Topology:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        migrate = subprocess.run(  # noqa: S603  (our own interpreter and module)
            [*CASENET, "migrate"], env=self.environ(), capture_output=True, timeout=120
        )
        if migrate.returncode != 0:
            raise TopologyError(f"casenet migrate failed: {migrate.stderr.decode()[-2000:]}")
        for replica in self.replica_urls:
            wait_for_replay(self.primary_url, replica)
        self.port = free_port()
        self.server = self._spawn(
            "server", "serve", "--host", HOST, "--port", str(self.port),
            "--workers", str(self.api_workers),
        )  # fmt: skip
        for _ in range(self._wanted_projection_workers):
            self.start_projection_worker()
        self._wait_ready()

    def stop(self) -> None:
        """Stop every process (SIGTERM to each group, SIGKILL past 20 s)."""
        if self._casenet is not None:
            self._casenet.close()
            self._casenet = None
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
        for process in [*self.projection_workers, *([self.server] if self.server else [])]:
            if process.returncode is None:
                end_group(process)
        self.server = None

    def _spawn(self, log_name: str, *arguments: str) -> subprocess.Popen[bytes]:
        # Named in pg_stat_activity (libpq's PGAPPNAME): see :meth:`mid_transaction`.
        environ = {**self.environ(), "PGAPPNAME": f"casenet-{log_name}"}
        with (self.log_dir / f"{log_name}.log").open("ab") as log:
            return subprocess.Popen(  # noqa: S603  (our own interpreter and module)
                [*CASENET, *arguments],
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: ended as a whole
            )

    def _wait_ready(self) -> None:
        assert self.server is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.server.poll() is not None:
                raise TopologyError(f"casenet serve exited: {self.log('server')}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TopologyError(f"casenet serve was not ready: {self.log('server')}")
            time.sleep(0.1)

    def log(self, name: str) -> str:
        """The tail of a process's log: ``server`` or ``projections-<i>``."""
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    # --- projection workers --------------------------------------------------------------

    def start_projection_worker(self) -> subprocess.Popen[bytes]:
        """Start one more ``casenet projections run``; returned once it runs its loop."""
        index = len(self.projection_workers)
        name = f"projections-{index}"
        process = self._spawn(name, "projections", "run", "--interval", str(PROJECTION_INTERVAL))
        self.projection_workers.append(process)
        deadline = time.monotonic() + READY_TIMEOUT
        while "keeping read models current" not in self.log(name):
            if process.poll() is not None or time.monotonic() > deadline:
                raise TopologyError(f"{name} did not start: {self.log(name)}")
            time.sleep(0.05)
        return process

    def mid_transaction(self, index: int) -> bool:
        """Whether projection worker ``index`` has a transaction open that has written
        (a batch being applied, not yet committed), as ``pg_stat_activity`` shows it."""
        if self._monitor is None:
            self._monitor = psycopg.connect(self.primary_url, autocommit=True)
        row = self._monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND backend_xid IS NOT NULL AND datname = current_database()",
            (f"casenet-projections-{index}",),
        ).fetchone()
        return row is not None and row[0] != 0

    def kill_projection_worker(self, index: int) -> None:
        """SIGKILL projection worker ``index``: no chance to finish its batch."""
        end_group(self.projection_workers[index], signal.SIGKILL)

    # --- the read models ------------------------------------------------------------------

    def casenet(self) -> Casenet:
        """The application services on the primary, as any ``casenet`` command opens
        them (opened once, closed on leaving): for what no HTTP route shows."""
        if self._casenet is None:
            self._casenet = build_casenet(load_settings(self.environ()))
        return self._casenet

    def lag(self) -> dict[str, int]:
        """Each read model's lag behind the log (``casenet projections status``)."""
        return {status.name: status.lag for status in self.casenet().projections.status()}

    def wait_current(self, timeout: float = 5.0) -> float:
        """Wait until every read model's lag is 0; the seconds it took (TopologyError
        past ``timeout``, naming the models still behind)."""
        started = time.monotonic()
        while any((lags := self.lag()).values()):
            if time.monotonic() - started > timeout:
                behind = {name: lag for name, lag in lags.items() if lag}
                raise TopologyError(f"read models still behind after {timeout} s: {behind}")
            time.sleep(0.05)
        return time.monotonic() - started

    def checksums(self) -> dict[str, str]:
        """Each read model's checksum (``casenet projections checksum``)."""
        projections = self.casenet().projections
        return {name: projections.checksum(name) for name in projections.names([])}

    def rebuilt_checksums(self) -> dict[str, str]:
        """Rebuild every read model from the log (``casenet projections rebuild``, in
        place, beside the running processes) and return the checksums it made: equal to
        :meth:`checksums` taken before, if the live models were right."""
        rebuild = subprocess.run(  # noqa: S603  (our own interpreter and module)
            [*CASENET, "projections", "rebuild"],
            env=self.environ(),
            capture_output=True,
            timeout=600,
        )
        if rebuild.returncode != 0:
            raise TopologyError(f"the rebuild failed: {rebuild.stderr.decode()[-2000:]}")
        return self.checksums()


@contextlib.contextmanager
def fresh_topology(
    replica_urls: Sequence[str] = (), *, api_workers: int = 3, projection_workers: int = 2
) -> Iterator[Topology]:  # pragma: no cover  (the command below)
    """A topology on a fresh database of the bench's PostgreSQL, dropped afterwards."""
    from benchmarks.stores import postgres_admin_url, postgres_database

    with (
        tempfile.TemporaryDirectory(prefix="casenet-topology-") as scratch,
        postgres_database(postgres_admin_url()) as database_url,
        Topology(
            database_url,
            replica_urls,
            api_workers=api_workers,
            projection_workers=projection_workers,
            data_dir=Path(scratch),
        ) as topology,
    ):
        yield topology


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:  # pragma: no cover  (run by hand)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.topology", description=__doc__)
    parser.add_argument("--replica-url", action="append", default=[], help="a hot standby")
    parser.add_argument("--api-workers", type=int, default=3)
    parser.add_argument("--projection-workers", type=int, default=2)
    args = parser.parse_args(argv)
    with fresh_topology(
        args.replica_url,
        api_workers=args.api_workers,
        projection_workers=args.projection_workers,
    ) as topology:
        print(f"casenet topology on {topology.url}", flush=True)
        print(f"operator token: {topology.operator_token}", flush=True)
        print(f"logs: {topology.log_dir} (Ctrl-C stops everything)", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)  # a `kill` stops everything too
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
