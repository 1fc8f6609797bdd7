"""Real servers for the end-to-end API tests: ``casenet serve`` processes over HTTP.

Each test module that asks for ``live_server`` gets one server per store (SQLite, then
PostgreSQL), started once for the module (``python -m casenet.cli serve`` on a free
port, its own data dir, a fresh database, a known operator token, every other
``CASENET_`` variable stripped) and stopped after it. Tests talk to it with httpx.

Helpers reach the tests as fixtures (the test directories are not packages):

* ``operator``: an :class:`Api` with the operator's token; ``operator.agency(...)``
  registers an agency, ``operator.worker(agency_id, role)`` returns an :class:`Api`
  for a new worker of it;
* ``id_routes``: every operation of the served OpenAPI document whose path has an id
  parameter, as :class:`Route` objects that know a valid body for their operation.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import httpx
import psycopg
import pytest
from psycopg import sql

CASENET = [sys.executable, "-m", "casenet.cli"]
#: The operator token every test server is started with.
OPERATOR_TOKEN = "e2e-operator-" + secrets.token_urlsafe(32)
READY_TIMEOUT = 60.0
TEST_DATABASE_PREFIX = "casenet_test_"  # as tests/conftest.py: leftovers may be dropped

STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


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


# --- a client ------------------------------------------------------------------------


class Api:
    """An httpx client of the live server with one bearer token (or none)."""

    def __init__(self, server: LiveServer, token: str | None, **identity: Any) -> None:
        self.server = server
        self.token = token
        self.identity = identity  # agency_id, worker_id, role, label

    @property
    def agency_id(self) -> str:
        return str(self.identity["agency_id"])

    @property
    def worker_id(self) -> str:
        return str(self.identity["worker_id"])

    @property
    def role(self) -> str:
        return str(self.identity.get("role", "operator"))

    def __repr__(self) -> str:
        return f"<{self.identity.get('label', self.role)}>"

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        all_headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        all_headers.update(headers or {})
        if json_body is not None:
            kwargs["json"] = json_body
        return self.server.http.request(
            method, self.server.url + path, headers=all_headers, **kwargs
        )

    def expect(self, status: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (
            f"{self!r} {method} {path}: expected {status}, got {response.status_code}: "
            f"{response.text[:500]}"
        )
        return response

    def get(self, path: str, status: int = 200, **kwargs: Any) -> Any:
        return self.expect(status, "GET", path, **kwargs).json()

    def post(self, path: str, body: Any = None, status: int = 201, **kwargs: Any) -> Any:
        return self.expect(status, "POST", path, json_body=body, **kwargs).json()

    def walk(self, path: str, limit: int = 1) -> list[Any]:
        """Every item of a list, page by page (``limit`` a page), following ``next``."""
        items: list[Any] = []
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}limit={limit}"
        for _ in range(10_000):
            page = self.get(url)
            assert len(page["items"]) <= limit
            items.extend(page["items"])
            if page["next"] is None:
                return items
            assert page["items"], f"an empty page with a next cursor: {url}"
            url = f"{path}{separator}limit={limit}&after={page['next']}"
        raise AssertionError(f"{path}: the cursor never ends")

    # operator's helpers

    def agency(self, name: str, kind: str = "ngo", **extra: Any) -> dict[str, Any]:
        agency: dict[str, Any] = self.post("/v1/agencies", {"name": name, "kind": kind, **extra})
        return agency

    def worker(self, agency: dict[str, Any] | str, role: str, name: str = "") -> Api:
        agency_id = agency if isinstance(agency, str) else agency["id"]
        created = self.post(
            f"/v1/agencies/{agency_id}/workers", {"name": name or f"{role} worker", "role": role}
        )
        label = f"{agency['name'] if isinstance(agency, dict) else agency_id} {role}"
        return Api(
            self.server,
            created["token"],
            agency_id=agency_id,
            worker_id=created["id"],
            role=role,
            label=label,
        )


# --- routes with id path parameters, from the served OpenAPI document ---------------

#: The path parameters that name a resource by id.
ID_PARAMETERS = frozenset(
    {"case_id", "consent_id", "referral_id", "client_id", "agency_id", "worker_id", "note_id"}
)


def request_body(operation_id: str, agency_id: str) -> dict[str, Any] | None:
    """A body the operation accepts (so that what is tested is authorization, not body
    validation); ``agency_id`` is a real agency where the body names one. KeyError for an
    operation this table does not know."""
    reason = {"reason": "The client asked for it."}
    return {
        # agencies
        "add_worker": {"name": "Eve Intruder", "role": "caseworker"},
        "revoke_worker": None,
        "replace_services": {
            "services": [{"type": "housing", "description": "Emergency beds", "area": "north"}]
        },
        "get_agency": None,
        # cases
        "get_case": None,
        "add_note": {"text": "Seen at the drop-in today.", "category": "general"},
        "close_case": reason,
        "reopen_case": reason,
        "get_case_access": None,
        "grant_consent": {
            "grantee_agency_id": agency_id,
            "sections": ["identity", "notes.health"],
            "purpose": "referral",
            "method": "verbal",
        },
        "list_case_consents": None,
        # consents
        "get_consent": None,
        "withdraw_consent": reason,
        "get_consent_receipt": None,
        # referrals
        "get_referral": None,
        "accept_referral": None,
        "reject_referral": reason,
        "start_referral": None,
        "hold_referral": reason,
        "complete_referral": {"outcome": "got_help"},
        "fail_referral": reason,
        "cancel_referral": reason,
        "post_referral_message": {"text": "Any news?"},
        "list_referral_messages": None,
        # clients
        "erase_client": None,
    }[operation_id]


@dataclass(frozen=True)
class Route:
    """One operation on a path with id parameters."""

    method: str
    template: str
    operation_id: str
    parameters: tuple[str, ...]
    has_body: bool
    headers: tuple[str, ...] = ()  # the header parameters it documents

    def path(self, ids: dict[str, str]) -> str:
        path = self.template
        for name in self.parameters:
            path = path.replace("{" + name + "}", ids[name])
        return path

    def random_path(self) -> str:
        return self.path({name: str(uuid4()) for name in self.parameters})

    def body(self, agency_id: str) -> dict[str, Any] | None:
        return request_body(self.operation_id, agency_id)

    def call(
        self, api: Api, path: str, agency_id: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = self.body(agency_id)
        return api.request(self.method, path, json_body=body, headers=headers)

    def header_variants(self) -> list[dict[str, str]]:
        """No headers, then each documented header with a plausible value (a fresh
        Idempotency-Key each time: a key names one request)."""
        variants: list[dict[str, str]] = [{}]
        if "If-Match" in self.headers:
            variants += [{"If-Match": '"1"'}, {"If-Match": '"999"'}]
        if "Idempotency-Key" in self.headers:
            variants.append({"Idempotency-Key": "fresh"})
        return variants

    def __str__(self) -> str:
        return f"{self.method} {self.template} ({self.operation_id})"


#: Headers that differ between any two answers, whatever was asked: when, and which request.
VOLATILE_HEADERS = frozenset({"date", "x-request-id", "request-id"})


def comparable_headers(response: httpx.Response) -> list[tuple[str, str]]:
    """Every header of ``response`` but the volatile ones, names lowercased, in order."""
    return [
        (name.lower(), value)
        for name, value in response.headers.multi_items()
        if name.lower() not in VOLATILE_HEADERS
    ]


@dataclass
class Probe:
    """Calls a route with real ids and with random ones: the answers must not differ."""

    failures: list[str] = field(default_factory=list)

    def indistinguishable(
        self,
        route: Route,
        api: Api,
        ids: dict[str, str],
        agency_id: str,
        headers: dict[str, str] | None = None,
    ) -> tuple[httpx.Response, httpx.Response]:
        def fresh() -> dict[str, str]:
            return {k: (str(uuid4()) if v == "fresh" else v) for k, v in (headers or {}).items()}

        real = route.call(api, route.path(ids), agency_id, fresh())
        random = route.call(api, route.random_path(), agency_id, fresh())
        self.same(f"{api!r} {route} {headers or ''}", real, random)
        return real, random

    def same(self, where: str, real: httpx.Response, random: httpx.Response) -> None:
        """Record a failure unless ``real`` is a refusal identical to ``random``: status,
        body byte for byte, and every header but the volatile ones."""
        if 200 <= real.status_code < 300:
            self.failures.append(f"{where}: {real.status_code} {real.text[:200]}")
        elif (real.status_code, real.content) != (random.status_code, random.content):
            self.failures.append(
                f"{where}: real ids {real.status_code} {real.text[:200]} "
                f"but random ids {random.status_code} {random.text[:200]}"
            )
        elif comparable_headers(real) != comparable_headers(random):
            self.failures.append(
                f"{where}: headers differ: {comparable_headers(real)} "
                f"vs {comparable_headers(random)}"
            )

    def check(self) -> None:
        assert not self.failures, "\n".join(self.failures)


def routes_from(openapi: dict[str, Any]) -> list[Route]:
    routes = []
    for template, operations in sorted(openapi["paths"].items()):
        for method, operation in sorted(operations.items()):
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            parameters = operation.get("parameters", [])
            path_ids = tuple(p["name"] for p in parameters if p["in"] == "path")
            if not path_ids:
                continue
            unknown = set(path_ids) - ID_PARAMETERS
            assert not unknown, f"{method} {template}: unknown path parameters {unknown}"
            required_queries = [
                p["name"] for p in parameters if p["in"] == "query" and p.get("required")
            ]
            assert not required_queries, f"{template}: required {required_queries}"
            route = Route(
                method=method.upper(),
                template=template,
                operation_id=operation["operationId"],
                parameters=path_ids,
                has_body="requestBody" in operation,
                headers=tuple(p["name"] for p in parameters if p["in"] == "header"),
            )
            try:
                body = route.body(str(uuid4()))
            except KeyError:
                pytest.fail(f"no request body in the table for {route}", pytrace=False)
            assert (body is not None) == route.has_body, f"the body table is wrong for {route}"
            routes.append(route)
    return routes


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module", params=STORES)
def e2e_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database of this module's own, on each store in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'casenet.sqlite3'}"
        return
    postgres_url: str = request.getfixturevalue("postgres_url")  # skips without a server
    dbname = f"{TEST_DATABASE_PREFIX}e2e_{uuid4().hex[:12]}"
    identifier = sql.Identifier(dbname)
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
    try:
        yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{dbname}"))
    finally:
        with psycopg.connect(postgres_url, autocommit=True, connect_timeout=5) as connection:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
            connection.execute(drop)


@pytest.fixture(scope="module")
def new_server(
    e2e_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], LiveServer]]:
    """Make (not start) servers on this module's database and data dir; all are stopped
    after the module."""
    data_dir = tmp_path_factory.mktemp("data")
    made: list[LiveServer] = []

    def make() -> LiveServer:
        server = LiveServer(e2e_database_url, data_dir, tmp_path_factory.mktemp("logs"))
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
def operator(live_server: LiveServer) -> Api:
    return Api(live_server, OPERATOR_TOKEN, role="operator", label="operator")


@pytest.fixture(scope="session")
def connect() -> Callable[..., Api]:
    """``connect(server, token=<the operator's>)``: an :class:`Api` on any server."""

    def make(server: LiveServer, token: str | None = OPERATOR_TOKEN, **identity: Any) -> Api:
        return Api(server, token, **identity)

    return make


@pytest.fixture(scope="module")
def openapi(live_server: LiveServer) -> dict[str, Any]:
    answer = httpx.get(f"{live_server.url}/schema/openapi.json", timeout=30)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = json.loads(answer.content)
    return document


@pytest.fixture(scope="module")
def id_routes(openapi: dict[str, Any]) -> list[Route]:
    """Every operation on a path with an id parameter, as the server documents it."""
    return routes_from(openapi)


@pytest.fixture
def probe() -> Probe:
    return Probe()
