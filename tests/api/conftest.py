"""The API in process: ``create_app`` over a real store, called through Litestar's ``TestClient``.

Each test module that asks for ``app_server`` gets one application per store (SQLite,
then PostgreSQL: ``module_database_url``, tests/conftest.py), built once for the module
over a fresh database, its own data dir and a known operator token, exactly as
``casenet serve`` builds it, and served by a ``TestClient`` used as a context manager:
the lifespan runs (the background projection runner starts, and stops after the
module), as in a server. No process, no socket: what needs one is in ``tests/e2e``.

* ``operator``: an :class:`~tests.support.http.Api` with the operator's token;
  ``operator.agency(...)`` registers an agency, ``operator.worker(agency_id, role)``
  returns an :class:`~tests.support.http.Api` for a new worker of it;
* ``id_routes``: every operation of the served OpenAPI document whose path has an id
  parameter, as :class:`~tests.support.http.Route` objects that know a valid body;
* a module that sets ``module_database_url`` to run on ``MODULE_STORES_WITH_REPLICA``
  (tests/support/replicas.py) also runs with ``CASENET_REPLICA_URLS`` naming the hot standby:
  its GET requests' reads are served there;
* ``app_server.log()``: every log record the application wrote while the module ran,
  formatted with its traceback if it has one (what the server's log would hold).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from tests.support.http import Api, Probe, Route, routes_from
from tests.support.replicas import REPLICA_OF

from casenet.api.app import create_app
from casenet.application import Casenet
from casenet.bootstrap import build_casenet
from casenet.settings import Settings, load_settings

#: The operator token every in-process application is built with.
OPERATOR_TOKEN = "api-operator-" + secrets.token_urlsafe(32)
#: The loggers the application writes to: the root (casenet's loggers propagate to it)
#: and Litestar's own, which does not propagate.
LOGGERS = ("", "litestar")


class LogLines(logging.Handler):
    """Every record, formatted as a log file would hold it (with its traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class AppServer:
    """The application in process: a :class:`~tests.support.http.Server` for ``Api``."""

    http: TestClient[Any]
    settings: Settings
    casenet: Casenet
    logs: LogLines = field(default_factory=LogLines)
    #: Requests go to paths: the client's base URL is the application.
    url: str = ""

    def log(self) -> str:
        return "\n".join(self.logs.lines)


def settings_for(
    database_url: str, data_dir: Path, extra: dict[str, str] | None = None
) -> Settings:
    """What ``casenet serve`` loads with these variables (and ``extra``) and no others."""
    return load_settings(
        {
            "CASENET_DATABASE_URL": database_url,
            "CASENET_DATA_DIR": str(data_dir),
            "CASENET_OPERATOR_TOKEN": OPERATOR_TOKEN,
            **(extra or {}),
        }
    )


@pytest.fixture(scope="module")
def app_server(
    request: pytest.FixtureRequest,
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AppServer]:
    """The application for the module, on each store in turn, its lifespan running.
    A module's ``APP_ENVIRON`` (a dict of ``CASENET_*`` variables) adds to its settings."""
    extra = dict(getattr(request.module, "APP_ENVIRON", None) or {})
    if module_database_url in REPLICA_OF:  # the module's postgres+replica run
        extra["CASENET_REPLICA_URLS"] = REPLICA_OF[module_database_url]
    settings = settings_for(module_database_url, tmp_path_factory.mktemp("data"), extra)
    casenet = build_casenet(settings)
    try:
        app = create_app(settings, casenet)  # configures logging: capture after it
        with TestClient(app) as client:
            served = AppServer(client, settings, casenet)
            for name in LOGGERS:
                logging.getLogger(name).addHandler(served.logs)
            try:
                yield served
            finally:
                for name in LOGGERS:
                    logging.getLogger(name).removeHandler(served.logs)
    finally:
        casenet.close()


@pytest.fixture(scope="module")
def operator(app_server: AppServer) -> Api:
    return Api(app_server, OPERATOR_TOKEN, role="operator", label="operator")


@pytest.fixture(scope="module")
def openapi(app_server: AppServer) -> dict[str, Any]:
    """The OpenAPI document as a client downloads it."""
    answer = app_server.http.get("/schema/openapi.json")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


@pytest.fixture(scope="module")
def id_routes(openapi: dict[str, Any]) -> list[Route]:
    """Every operation on a path with an id parameter, as the application documents it."""
    return routes_from(openapi)


@pytest.fixture
def probe() -> Probe:
    return Probe()
