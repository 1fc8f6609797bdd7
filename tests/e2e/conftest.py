"""Real servers for the end-to-end tests: ``casenet serve`` processes over HTTP.

Only what needs a process is tested here (a restart, a kill, a signal, several processes
on one store, the CLI beside a server, the real server's socket and log); the API's
behaviour is tested in process, in ``tests/api``.

Each test module that asks for ``live_server`` gets one server per store (SQLite, then
PostgreSQL: ``module_database_url``, tests/conftest.py), started once for the module
(``python -m casenet.cli serve`` on a free port, its own data dir, a fresh database, a
known operator token, every other ``CASENET_`` variable stripped) and stopped after it.

* ``operator``: an :class:`~tests.support.http.Api` with the operator's token on
  ``live_server``; ``connect(server, token)`` one on any server ``new_server()`` made.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.http import Api

CASENET = [sys.executable, "-m", "casenet.cli"]
#: The operator token every test server is started with.
OPERATOR_TOKEN = "e2e-operator-" + secrets.token_urlsafe(32)
READY_TIMEOUT = 60.0


# --- the server process --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """One ``casenet serve`` process (granian: a main process and its worker, in their own
    process group) on a database and a data dir that outlive it: it can be killed and
    started again on the same store."""

    def __init__(self, database_url: str, data_dir: Path, log_dir: Path) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0
        self.log_path = log_dir / "server-0.log"
        #: One connection pool for every client of this server.
        self.http = httpx.Client(timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environ(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
        environ.update(
            CASENET_DATA_DIR=str(self.data_dir),
            CASENET_DATABASE_URL=self.database_url,
            CASENET_OPERATOR_TOKEN=OPERATOR_TOKEN,
        )
        return environ

    def start(self) -> None:
        assert self.process is None, "already running"
        self.starts += 1
        self.port = free_port()
        self.log_path = self.log_dir / f"server-{self.starts}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*CASENET, "serve", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environ(),
                start_new_session=True,  # its own process group: we can end all of it
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                pytest.fail(f"casenet serve exited with {code}:\n{self.log()}", pytrace=False)
            try:
                answer = httpx.get(f"{self.url}/health/ready", timeout=2)
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"casenet serve was not ready in time:\n{self.log()}", pytrace=False)
            time.sleep(0.1)

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # the group we started, by its id
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole server, main process and worker, with no chance to clean up."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=20)
        self._wait_group_gone()
        self.process = None

    def stop(self) -> None:
        """SIGTERM (a graceful stop), SIGKILL if it takes too long."""
        if self.process is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=20)
        self._wait_group_gone()
        self.process = None

    def _wait_group_gone(self) -> None:
        """The worker may outlive the main process by a moment; wait until it is gone."""
        assert self.process is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        self._signal_group(signal.SIGKILL)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return "(no log)"


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def new_server(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], LiveServer]]:
    """Make (not start) servers on this module's database and data dir; all are stopped
    after the module."""
    data_dir = tmp_path_factory.mktemp("data")
    made: list[LiveServer] = []

    def make() -> LiveServer:
        server = LiveServer(module_database_url, data_dir, tmp_path_factory.mktemp("logs"))
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
        server.http.close()


@pytest.fixture(scope="module")
def live_server(new_server: Callable[[], LiveServer]) -> LiveServer:
    """A running server for the module, on each store in turn."""
    server = new_server()
    server.start()
    return server


@pytest.fixture(scope="module")
def servers(new_server: Callable[[], LiveServer]) -> tuple[LiveServer, LiveServer]:
    """Two server processes on one store (started one after the other: the first
    writes the development keys both use)."""
    first, second = new_server(), new_server()
    first.start()
    second.start()
    return first, second


@pytest.fixture(scope="module")
def operator(live_server: LiveServer) -> Api:
    return Api(live_server, OPERATOR_TOKEN, role="operator", label="operator")


@pytest.fixture(scope="session")
def connect() -> Callable[..., Api]:
    """``connect(server, token=<the operator's>)``: an :class:`Api` on any server."""

    def make(server: LiveServer, token: str | None = OPERATOR_TOKEN, **identity: Any) -> Api:
        return Api(server, token, **identity)

    return make
