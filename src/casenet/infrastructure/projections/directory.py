"""The directory read model: agencies with their services, and workers by token hash;
and the queries that read it (an agency's restriction, the directory's pages)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from casenet.domain.agency import AgencyRegistered, ServicesReplaced, WorkerAdded, WorkerRevoked
from casenet.infrastructure.projections.base import POSITIONS, ReadModel, Row, as_json, values
from casenet.infrastructure.projections.facts import StoredFact
from casenet.infrastructure.sql import Database


class AgencyRow(Row):
    """A row of ``rm_agencies``."""

    agency_id: str
    name: str
    kind: str
    restricted: int
    services: str  # JSON
    version: int
    created_at: str
    updated_at: str


class AgencyChange(Row):
    """What a batch did to an agency of an earlier batch (services None: unchanged)."""

    services: str | None
    version: int
    updated_at: str


class WorkerRow(Row):
    """A row of ``rm_workers``."""

    worker_id: str
    agency_id: str
    name: str
    role: str
    token_hash: str
    active: int
    created_at: str


class DirectoryModel(ReadModel):
    """Agencies with their services (the directory), and workers by token hash."""

    name = "directory"
    tables = ("rm_agencies", "rm_workers")
    follows = (AgencyRegistered, ServicesReplaced, WorkerAdded, WorkerRevoked)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_agencies (agency_id TEXT PRIMARY KEY, name TEXT "
            "NOT NULL, kind TEXT NOT NULL, restricted INTEGER NOT NULL, services TEXT NOT NULL, "
            "version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS rm_workers (worker_id TEXT PRIMARY KEY, agency_id TEXT "
            "NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, "
            "active INTEGER NOT NULL, created_at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_workers_agency ON rm_workers (agency_id)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_agencies": "agency_id", "rm_workers": "worker_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        agencies: dict[str, AgencyRow] = {}  # registered in this batch
        changed: dict[str, AgencyChange] = {}  # of earlier batches
        workers: dict[str, WorkerRow] = {}  # added in this batch
        revoked: dict[str, None] = {}  # of earlier batches
        for fact in facts:
            s, kind = fact.state, fact.event_type
            if kind is AgencyRegistered:
                agencies[fact.aggregate_id] = AgencyRow(
                    agency_id=fact.aggregate_id,
                    name=s["name"],
                    kind=s["kind"],
                    restricted=int(s["restricted"]),
                    services=as_json(s["services"]),
                    version=fact.version,
                    created_at=fact.at,
                    updated_at=fact.at,
                )
                continue
            services = as_json(s["services"]) if kind is ServicesReplaced else None
            if kind is WorkerAdded:
                worker_id = s["worker_id"]
                workers[worker_id] = WorkerRow(
                    worker_id=worker_id,
                    agency_id=fact.aggregate_id,
                    name=s["name"],
                    role=s["role"],
                    token_hash=s["token_hash"],
                    active=1,
                    created_at=fact.at,
                )
            elif kind is WorkerRevoked:
                if (worker := workers.get(s["worker_id"])) is not None:
                    worker.active = 0
                else:
                    revoked[s["worker_id"]] = None
            # Every event of an agency moves its version and time.
            if (agency := agencies.get(fact.aggregate_id)) is not None:
                if services is not None:
                    agency.services = services
                agency.version, agency.updated_at = fact.version, fact.at
            elif (change := changed.get(fact.aggregate_id)) is not None:
                if services is not None:
                    change.services = services
                change.version, change.updated_at = fact.version, fact.at
            else:
                changed[fact.aggregate_id] = AgencyChange(services, fact.version, fact.at)
        db.write_many(
            cursor,
            "UPDATE rm_agencies SET services = COALESCE(%s, services), version = %s, "
            "updated_at = %s WHERE agency_id = %s",
            [(c.services, c.version, c.updated_at, id_) for id_, c in changed.items()],
        )
        db.write_many(
            cursor,
            "UPDATE rm_workers SET active = 0 WHERE worker_id = %s",
            [(worker_id,) for worker_id in revoked],
        )
        db.insert_rows(cursor, "rm_agencies", values(agencies.values()))
        db.insert_rows(cursor, "rm_workers", values(workers.values()))


# --- the queries that read it --------------------------------------------------------


class AgencyServicesRow(Row):
    """An agency and the services it offers (some of ``rm_agencies``)."""

    agency_id: str
    services: str  # JSON


def is_restricted(db: Database, agency_id: UUID) -> bool:
    """Whether the agency is restricted (never discloses identifying sections); False
    for an agency the directory does not know."""
    query = "SELECT restricted FROM rm_agencies WHERE agency_id = %s"
    rows = db.read(query, (str(agency_id),), tuples=True)
    return bool(rows and rows[0][0])


def agencies_after(db: Database, after: str | None) -> list[AgencyServicesRow]:
    """Every agency whose id sorts after ``after``, by id, with its services."""
    query = "SELECT agency_id, services FROM rm_agencies WHERE agency_id > %s ORDER BY agency_id"
    return [AgencyServicesRow(*row) for row in db.read(query, (after or "",), tuples=True)]


def agency_of_worker(db: Database, worker_id: UUID) -> str | None:
    """The id of the agency ``worker_id`` works for (active or revoked); None if unknown."""
    query = "SELECT agency_id FROM rm_workers WHERE worker_id = %s"
    rows = db.read(query, (str(worker_id),), tuples=True)
    return str(rows[0][0]) if rows else None


class TokenHolder(Row):
    """The active worker of a token hash (None fields: no such worker), beside the
    directory's state: whether a rebuild is refilling it, and why it stopped if it did."""

    worker_id: str | None
    agency_id: str | None
    role: str | None
    rebuilding: int
    stopped: str | None


#: One statement, by the unique index on the hash and the positions table's primary key.
_TOKEN_HOLDER = (
    "SELECT w.worker_id, w.agency_id, w.role, p.rebuilding, p.stopped "
    f"FROM {POSITIONS} p LEFT JOIN rm_workers w ON w.token_hash = %s AND w.active = 1 "
    "WHERE p.name = 'directory'"
)


def token_holder(db: Database, token_hash: str) -> TokenHolder:
    """Who holds the token whose SHA-256 (hex) is ``token_hash``."""
    return TokenHolder(*db.read(_TOKEN_HOLDER, (token_hash,), tuples=True)[0])
