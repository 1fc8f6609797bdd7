"""Fresh stores for benchmarks: a SQLite file, or a PostgreSQL database dropped after."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

POSTGRES_URL_VARIABLES = ("CASENET_BENCH_POSTGRES_URL", "CASENET_TEST_POSTGRES_URL")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def sqlite_database(data_dir: Path) -> Iterator[str]:
    """A fresh SQLite file (removed with the temporary directory)."""
    yield f"sqlite:///{data_dir / 'casenet.sqlite3'}"


def postgres_admin_url() -> str:
    """A role that may create databases: CASENET_BENCH_POSTGRES_URL, else the tests'."""
    for variable in POSTGRES_URL_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    return DEFAULT_POSTGRES_URL


def postgres_unreachable(admin_url: str) -> str | None:
    """Why PostgreSQL cannot be used (one line), or None when it can."""
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        parts = urlsplit(admin_url)
        return f"not reachable at {parts.hostname}:{parts.port or 5432} ({first})"
    return None


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the server, dropped afterwards."""
    dbname = f"casenet_bench_{secrets.token_hex(6)}"
    name = sql.Identifier(dbname)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{dbname}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
