"""ops/postgres/*.sql, run as an operator would: the roles, the tables, the privileges.

The scripts run through psql against the test server, under names of their own
(a fresh database and two fresh roles), and everything is dropped afterwards.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from casenet.application import OPERATOR_ACTOR, Actor, ClientDetails
from casenet.bootstrap import StoreUnavailable, build_casenet
from casenet.domain.client import Client
from casenet.infrastructure.idempotency import IdempotencyRecords
from casenet.infrastructure.keytable import KeyTable
from casenet.infrastructure.projections import Projections
from casenet.settings import load_settings

pytestmark = pytest.mark.postgres

OPS = Path(__file__).resolve().parents[2] / "ops" / "postgres"

#: What casenet creates in its database (the library's events table and its sequence,
#: casenet's data keys, idempotency records, projection positions and read models).
CASENET_TABLES = {
    "casenet_events",
    "casenet_data_keys",
    "casenet_schema",
    "casenet_idempotency",
    "casenet_projection_positions",
    "rm_agencies",
    "rm_workers",
    "rm_clients",
    "rm_cases",
    "rm_consents",
    "rm_referrals",
    "rm_referral_history",
    "rm_disclosures",
    "rm_feed",
    "rm_feed_parties",
    "rm_feed_client_parties",
    "rm_services",
    "rm_referral_times",
    "rm_audit_records",
    "rm_audit_pages",
    "rm_audit_subjects",
    "rm_emergency_grants",
    "rm_emergency_review_notices",
    "rm_emergency_disclosures",
    "rm_webhooks",
    "casenet_webhook_attempts",
    "casenet_webhook_cursors",
    "rm_partnerships",
    "rm_appeals",
    "rm_appeal_reach",
    "rm_appeal_responses",
}


@dataclass(frozen=True)
class Installation:
    """A casenet database made by the ops scripts, and URLs to reach it."""

    dbname: str
    owner_role: str
    app_role: str
    admin_url: str  # the test server's superuser, on the casenet database
    owner_url: str
    app_url: str


def url_as(base: str, user: str, password: str, dbname: str) -> str:
    parts = urlsplit(base)
    netloc = f"{quote(user)}:{quote(password)}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{dbname}"))


def with_database(base: str, dbname: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{dbname}"))


def psql(url: str, script: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    command = ["psql", url, "--no-psqlrc", "-X", "-q", "-f", str(script)]
    for name, value in variables.items():
        command += ["-v", f"{name}={value}"]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )


def environ_for(url: str, tmp_path: Path) -> dict[str, str]:
    return {"CASENET_DATABASE_URL": url, "CASENET_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def installation(postgres_url: str, tmp_path: Path) -> Iterator[Installation]:
    """Step 1 (create-database.sql), step 2 (casenet starts once as the owner), step 3
    (grant-app.sql): what ops/README.md tells an operator to do."""
    if shutil.which("psql") is None:
        pytest.skip("psql (PostgreSQL's client) is not installed")
    suffix = uuid4().hex[:12]
    names = {
        "dbname": f"casenet_test_{suffix}",
        "owner_role": f"casenet_test_owner_{suffix}",
        "app_role": f"casenet_test_app_{suffix}",
    }
    password = uuid4().hex
    try:
        created = psql(
            postgres_url,
            OPS / "create-database.sql",
            **names,
            owner_password=password,
            app_password=password,
        )
        assert created.returncode == 0, created.stderr
        ready = Installation(
            dbname=names["dbname"],
            owner_role=names["owner_role"],
            app_role=names["app_role"],
            admin_url=with_database(postgres_url, names["dbname"]),
            owner_url=url_as(postgres_url, names["owner_role"], password, names["dbname"]),
            app_url=url_as(postgres_url, names["app_role"], password, names["dbname"]),
        )
        build_casenet(load_settings(environ_for(ready.owner_url, tmp_path))).close()
        granted = psql(
            ready.admin_url,
            OPS / "grant-app.sql",
            owner_role=names["owner_role"],
            app_role=names["app_role"],
        )
        assert granted.returncode == 0, granted.stderr
        yield ready
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(names["dbname"])
                )
            )
            for role in (names["app_role"], names["owner_role"]):
                connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def without_table_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    """casenet as it would start with table creation switched off (not possible through
    its settings yet: see the xfail below): every CREATE at start-up becomes a no-op."""

    def skip(*_: object, **__: object) -> None:
        return None

    monkeypatch.setattr(PostgresApplicationRecorder, "create_table", skip)
    monkeypatch.setattr(Projections, "setup", skip)
    monkeypatch.setattr(KeyTable, "create_table", skip)
    monkeypatch.setattr(IdempotencyRecords, "create_table", skip)


def write_some_history(url: str, tmp_path: Path) -> None:
    """An agency, a worker, a client and a case: rows a refused UPDATE or DELETE would touch."""
    casenet = build_casenet(load_settings(environ_for(url, tmp_path)))
    try:
        agency = casenet.agencies.register(OPERATOR_ACTOR, name="Welfare", kind="ngo")
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name="W", role="caseworker"
        )
        casenet.cases.open_case(
            Actor(agency.id, worker.id, "caseworker"),
            client=ClientDetails(name="A client"), summary="Summary", needs=["housing"],
        )
    finally:
        casenet.close()


def refused(url: str, statement: str) -> str:
    """Run ``statement`` as the role in ``url``; the error PostgreSQL refused it with."""
    with psycopg.connect(url, autocommit=True) as connection:
        try:
            connection.execute(statement)
        except psycopg.Error as error:
            return type(error).__name__
    return "accepted"


def test_the_owner_owns_every_table_casenet_creates(installation: Installation) -> None:
    with psycopg.connect(installation.admin_url) as connection:
        rows = connection.execute(
            "SELECT c.relname, c.relkind, r.rolname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')"
        ).fetchall()
        database_owner = connection.execute(
            "SELECT r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE d.datname = current_database()"
        ).fetchone()

    tables = {name for name, kind, _ in rows if kind == "r"}
    sequences = {name for name, kind, _ in rows if kind == "S"}
    assert tables == CASENET_TABLES
    assert sequences == {"casenet_events_notification_id_seq"}
    assert {owner for *_, owner in rows} == {installation.owner_role}
    assert database_owner == (installation.owner_role,)


def test_the_app_role_runs_casenet_with_row_privileges_only(
    installation: Installation,
    without_table_creation: None,
    tmp_path: Path,
) -> None:
    casenet = build_casenet(load_settings(environ_for(installation.app_url, tmp_path)))
    try:
        welfare = casenet.agencies.register(OPERATOR_ACTOR, name="Welfare", kind="ngo")
        hospital = casenet.agencies.register(OPERATOR_ACTOR, name="Hospital", kind="hospital")
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, welfare.id, name="W", role="caseworker"
        )
        actor = Actor(welfare.id, worker.id, "caseworker")
        case = casenet.cases.open_case(
            actor, client=ClientDetails(name="A client"), summary="Summary", needs=["housing"]
        )
        casenet.cases.add_note(actor, case.id, category="health", text="A note")
        consent = casenet.consents.grant(
            actor, case.id, grantee_agency_id=hospital.id, sections=["needs"],
            purpose="referral", method="verbal",
        )
        casenet.referrals.request(
            actor, case_id=case.id, to_agency_id=hospital.id, service_type="health",
            reason="Needs care", urgency="routine", consent_id=consent.id,
        )
        casenet.consents.withdraw(actor, consent.id, reason="Changed her mind")
        casenet.clients.erase(OPERATOR_ACTOR, case.client_id)
        projections = casenet.app.projections
        for name in projections.names():
            projections.catch_up(name)
            projections.rebuild(name)  # clears the read model's rows, then replays
        head = casenet.app.recorder.max_notification_id()
        positions = projections.positions()
        checksums = {name: projections.checksum(name) for name in projections.names()}
        erased = casenet.app.get(Client, case.client_id)
    finally:
        casenet.close()

    assert head == 11  # ten commands; the referral also records its disclosure
    assert set(positions) == set(checksums)
    assert {position for position, _ in positions.values()} == {head}
    assert erased.erased
    assert erased.name is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE casenet_events SET topic = topic",
        "DELETE FROM casenet_events",
        "TRUNCATE casenet_events",
        "DELETE FROM casenet_data_keys",
        "DROP TABLE rm_cases",
        "ALTER TABLE casenet_events DISABLE TRIGGER ALL",
        "CREATE TABLE casenet_extra (x int)",
        "SELECT * FROM es_insert_events_uuid(ARRAY[]::stored_event_uuid[])",
    ],
)
def test_the_app_role_cannot_rewrite_history_or_change_the_schema(
    installation: Installation, statement: str, tmp_path: Path
) -> None:
    write_some_history(installation.owner_url, tmp_path)

    assert refused(installation.app_url, statement) == "InsufficientPrivilege"


def test_the_owner_cannot_rewrite_history_by_accident(
    installation: Installation, tmp_path: Path
) -> None:
    write_some_history(installation.owner_url, tmp_path)

    assert refused(installation.owner_url, "UPDATE casenet_events SET topic = topic") == (
        "InsufficientPrivilege"
    )
    assert refused(installation.owner_url, "DELETE FROM casenet_events") == "InsufficientPrivilege"
    assert refused(installation.owner_url, "TRUNCATE casenet_events") == "InsufficientPrivilege"
    assert refused(installation.owner_url, "DELETE FROM casenet_data_keys") == (
        "InsufficientPrivilege"
    )


def test_the_app_role_starts_casenet_through_its_settings_alone(
    installation: Installation, tmp_path: Path
) -> None:
    failure = ""
    try:
        build_casenet(load_settings(environ_for(installation.app_url, tmp_path))).close()
    except StoreUnavailable as error:
        failure = str(error)
    gc.collect()  # finalise the half-opened store here, not inside a later test

    assert failure == ""
