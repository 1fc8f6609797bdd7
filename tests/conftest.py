"""Fixtures shared by every test: the stores (SQLite and PostgreSQL) and a casenet on them.

Store-independent behaviour is written once and run on both back ends, in either style:

* a test that takes the ``casenet`` (or ``database_url``) fixture runs twice, once per
  store, through the parametrised ``database_url`` fixture below;
* a contract class (the eventsourcing library's style) leaves ``database_url`` to its
  subclasses, one per store::

      class ApplicationContract:
          def test_something(self, casenet): ...

      class TestSQLite(ApplicationContract):
          @pytest.fixture
          def database_url(self, sqlite_url: str) -> str:
              return sqlite_url

      @pytest.mark.postgres
      class TestPostgres(ApplicationContract):
          @pytest.fixture
          def database_url(self, postgres_database_url: str) -> str:
              return postgres_database_url

PostgreSQL comes from ``CASENET_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``, a role that may create databases);
each test gets a fresh database, dropped afterwards. Without a server, PostgreSQL tests
are skipped on a developer's machine and fail in CI (``CI=true``).

A hot standby of that server (``CASENET_TEST_REPLICA_URL``, default
``postgresql://postgres@127.0.0.1:5433/postgres``; ``ops/standby.sh`` makes one) serves
the read-replica tests: ``replica_url`` is this test's database there, waited for until
it has arrived by replication. Missing, it is a skip, and a failure in CI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql
from tests.support.replicas import MODULE_STORES, REPLICA_OF

from casenet.application import Casenet
from casenet.bootstrap import build_casenet
from casenet.settings import load_settings, parse_database_url

POSTGRES_URL_VARIABLE = "CASENET_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REPLICA_URL_VARIABLE = "CASENET_TEST_REPLICA_URL"
DEFAULT_REPLICA_URL = "postgresql://postgres@127.0.0.1:5433/postgres"
#: Prefix of the databases the tests create; a leftover one can be dropped safely.
TEST_DATABASE_PREFIX = "casenet_test_"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return parse_database_url(url).display
    except Exception:  # noqa: BLE001  (a malformed URL is shown as its scheme only)
        return f"{urlsplit(url).scheme}://..."


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` on the same server, as the same role."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def admin_connection(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection (CREATE/DROP DATABASE refuse to run in a transaction)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


# --- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's URL (a role that may create databases), checked once."""
    url = os.environ.get(POSTGRES_URL_VARIABLE) or DEFAULT_POSTGRES_URL
    try:
        with admin_connection(url) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        reason = (
            f"PostgreSQL is not reachable at {safe_url(url)} "
            f"(set {POSTGRES_URL_VARIABLE}): {first_line}"
        )
        if in_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return url


@contextmanager
def fresh_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the server of ``postgres_url``; dropped (WITH (FORCE))
    afterwards."""
    dbname = f"{TEST_DATABASE_PREFIX}{uuid4().hex[:12]}"
    identifier = sql.Identifier(dbname)
    with admin_connection(postgres_url) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
    try:
        yield with_database(postgres_url, dbname)
    finally:
        with admin_connection(postgres_url) as connection:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
            connection.execute(drop)


@pytest.fixture
def postgres_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database for this test alone (:func:`fresh_database`)."""
    with fresh_database(postgres_url) as url:
        yield url


# --- SQLite ------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of this test's own (created on first use)."""
    return f"sqlite:///{tmp_path / 'store' / 'casenet.sqlite3'}"


# --- either store ------------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each store in turn; contract subclasses override this."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_database_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(scope="module", params=MODULE_STORES)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database shared by one test module, on each store in turn: for the API
    and end-to-end layers, whose modules build one network and test it from every side."""
    yield from module_store(request, tmp_path_factory)


@pytest.fixture(scope="session")
def module_stores() -> Callable[[pytest.FixtureRequest, pytest.TempPathFactory], Iterator[str]]:
    """What ``module_database_url`` yields, for a module that overrides it with other
    stores (``MODULE_STORES_WITH_REPLICA``, tests/support/replicas.py)."""
    return module_store


def module_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The database of ``module_database_url`` for the store ``request.param`` names
    (``postgres+replica``: on the primary, waited for on the standby, in :data:`REPLICA_OF`)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'casenet.sqlite3'}"
        return
    postgres: str = request.getfixturevalue("postgres_url")  # skips without a server
    standby = request.getfixturevalue("replica_server_url") if "replica" in request.param else ""
    dbname = f"{TEST_DATABASE_PREFIX}m_{uuid4().hex[:12]}"
    identifier = sql.Identifier(dbname)
    with admin_connection(postgres) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
    url = with_database(postgres, dbname)
    try:
        if standby:
            REPLICA_OF[url] = arrived_on_standby(standby, dbname)
        yield url
    finally:
        REPLICA_OF.pop(url, None)
        with admin_connection(postgres) as connection:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
            connection.execute(drop)


# --- a hot standby of the PostgreSQL server (read replicas) -------------------------------


@pytest.fixture(scope="session")
def replica_server_url(postgres_url: str) -> str:
    """The hot standby's URL (``CASENET_TEST_REPLICA_URL``, default port 5433), checked
    once: it answers and is in recovery. Missing: a skip, a failure in CI."""
    url = os.environ.get(REPLICA_URL_VARIABLE) or DEFAULT_REPLICA_URL
    try:
        with admin_connection(url) as connection:
            row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
        reason = "" if row and row[0] else f"{safe_url(url)} is not a hot standby"
    except psycopg.Error as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        reason = f"no hot standby at {safe_url(url)} (ops/standby.sh): {first_line}"
    if reason:
        if in_ci():
            pytest.fail(f"CI=true and {reason} (set {REPLICA_URL_VARIABLE})", pytrace=False)
        pytest.skip(reason)
    return url


def arrived_on_standby(standby: str, dbname: str, seconds: float = 30.0) -> str:
    """The URL of ``dbname`` on the standby once it has arrived there by replication."""
    url = with_database(standby, dbname)
    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg.connect(url, connect_timeout=5).close()
            return url
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def replica_url(postgres_database_url: str, replica_server_url: str) -> str:
    """This test's PostgreSQL database (``postgres_database_url``) on the hot standby."""
    return arrived_on_standby(replica_server_url, urlsplit(postgres_database_url).path[1:])


@pytest.fixture
def another_database_url(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A second fresh database on the same store as ``database_url`` (another network:
    where an export is imported), dropped after the test."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'another' / 'casenet.sqlite3'}"
        return
    postgres: str = request.getfixturevalue("postgres_url")
    dbname = f"{TEST_DATABASE_PREFIX}{uuid4().hex[:12]}"
    identifier = sql.Identifier(dbname)
    with admin_connection(postgres) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
    try:
        yield with_database(postgres, dbname)
    finally:
        with admin_connection(postgres) as connection:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier)
            connection.execute(drop)


# --- casenet -----------------------------------------------------------------------------


@pytest.fixture
def casenet_environ(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a development casenet on this test's database."""
    return {
        "CASENET_DATABASE_URL": database_url,
        "CASENET_DATA_DIR": str(tmp_path / "data"),
        "CASENET_ENV": "development",
    }


@pytest.fixture
def open_casenet(casenet_environ: dict[str, str]) -> Iterator[Callable[[], Casenet]]:
    """Build another casenet on the same database and keys (a restart, another process).

    Every instance it builds is closed after the test.
    """
    opened: list[Casenet] = []

    def open_one() -> Casenet:
        instance = build_casenet(load_settings(casenet_environ))
        opened.append(instance)
        return instance

    yield open_one
    for instance in reversed(opened):
        instance.close()


@pytest.fixture
def casenet(open_casenet: Callable[[], Casenet]) -> Casenet:
    """The application services over this test's database, closed after the test."""
    return open_casenet()
