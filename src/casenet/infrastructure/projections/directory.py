"""The directory read model: agencies with their services, each service a row to search
by need, area, language, capacity and text; workers by token hash; and the queries that
read it (an agency's restriction, the directory's pages, the service search)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec

from casenet.domain.agency import AgencyRegistered, ServicesReplaced, WorkerAdded, WorkerRevoked
from casenet.domain.service import Service, with_ids
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


class ServiceRow(Row):
    """A row of ``rm_services``: one service, with keys to search it by (each a
    casefolded list between newlines, so a ``LIKE`` matches whole items)."""

    service_id: str
    agency_id: str
    ordinal: int
    needs_key: str
    languages_key: str
    areas_key: str
    text_key: str
    capacity: str
    body: str  # JSON of the service


def _key(items: tuple[str, ...]) -> str:
    return "\n" + "".join(f"{item.casefold()}\n" for item in items)


def service_rows(agency_id: str, services: list[Any]) -> list[ServiceRow]:
    """The rows of an agency's services as an event stored them (ids given to those
    recorded without, as the aggregate gives them)."""
    listed = with_ids(UUID(agency_id), msgspec.convert(services, list[Service]))
    return [
        ServiceRow(
            service_id=str(s.id),
            agency_id=agency_id,
            ordinal=at,
            needs_key=_key(s.needs),
            languages_key=_key(s.languages),
            areas_key=_key(s.areas),
            text_key=f"{s.name}\n{s.description}".casefold(),
            capacity=s.capacity,
            body=as_json(s),
        )
        for at, s in enumerate(listed)
    ]


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
    #: 2: services in the HSDS shape, and ``rm_services`` to search them.
    version = 2
    tables = ("rm_agencies", "rm_workers", "rm_services")
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
            "CREATE TABLE IF NOT EXISTS rm_services (service_id TEXT NOT NULL, agency_id TEXT "
            "NOT NULL, ordinal INTEGER NOT NULL, needs_key TEXT NOT NULL, languages_key TEXT "
            "NOT NULL, areas_key TEXT NOT NULL, text_key TEXT NOT NULL, capacity TEXT NOT NULL, "
            "body TEXT NOT NULL, PRIMARY KEY (service_id, agency_id))",
            "CREATE INDEX IF NOT EXISTS rm_services_agency ON rm_services (agency_id)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {
            "rm_agencies": "agency_id",
            "rm_workers": "worker_id",
            "rm_services": "service_id, agency_id",
        }

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        agencies: dict[str, AgencyRow] = {}  # registered in this batch
        changed: dict[str, AgencyChange] = {}  # of earlier batches
        workers: dict[str, WorkerRow] = {}  # added in this batch
        revoked: dict[str, None] = {}  # of earlier batches
        listed: dict[str, list[Any]] = {}  # each agency's last list of services in the batch
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
                listed[fact.aggregate_id] = s["services"]
                continue
            services = as_json(s["services"]) if kind is ServicesReplaced else None
            if kind is ServicesReplaced:
                listed[fact.aggregate_id] = s["services"]
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
        _write_batch(db, cursor, _Batch(agencies, changed, workers, revoked, listed))


class _Batch(msgspec.Struct):
    """What a batch did, folded: see :meth:`DirectoryModel.apply_batch`."""

    agencies: dict[str, AgencyRow]
    changed: dict[str, AgencyChange]
    workers: dict[str, WorkerRow]
    revoked: dict[str, None]
    listed: dict[str, list[Any]]


def _write_batch(db: Database, cursor: Any, batch: _Batch) -> None:
    """The UPDATEs and DELETEs of earlier batches' rows first, then the INSERTs."""
    db.write_many(
        cursor,
        "UPDATE rm_agencies SET services = COALESCE(%s, services), version = %s, "
        "updated_at = %s WHERE agency_id = %s",
        [(c.services, c.version, c.updated_at, id_) for id_, c in batch.changed.items()],
    )
    db.write_many(
        cursor,
        "UPDATE rm_workers SET active = 0 WHERE worker_id = %s",
        [(worker_id,) for worker_id in batch.revoked],
    )
    db.write_many(
        cursor,
        "DELETE FROM rm_services WHERE agency_id = %s",
        [(agency_id,) for agency_id in batch.listed if agency_id not in batch.agencies],
    )
    db.insert_rows(cursor, "rm_agencies", values(batch.agencies.values()))
    db.insert_rows(cursor, "rm_workers", values(batch.workers.values()))
    rows = [row for id_, listed in batch.listed.items() for row in service_rows(id_, listed)]
    db.insert_rows(cursor, "rm_services", values(rows))


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


class ServiceFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What a search asks of a service; None: anything. Text is compared casefolded."""

    need: str | None = None
    area: str | None = None
    language: str | None = None
    capacity: str | None = None
    text: str | None = None


class FoundService(Row):
    """A service the search found, with its agency."""

    service_id: str
    agency_id: str
    body: str  # JSON of the service
    agency_name: str
    restricted: int


def _like(value: str) -> str:
    """``value`` as a LIKE pattern that matches it literally."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(wanted: ServiceFilter) -> tuple[list[str], list[str]]:
    where: list[str] = []
    params: list[str] = []
    like = " LIKE %s ESCAPE '\\'"
    for column, item in (
        ("s.needs_key", wanted.need),
        ("s.areas_key", wanted.area),
    ):
        if item is not None:
            where.append(column + like)
            params.append(f"%\n{_like(item.casefold())}\n%")
    if wanted.language is not None:
        # BCP 47 lookup: ``pt`` finds ``pt`` and ``pt-BR``.
        tag = _like(wanted.language.casefold())
        where.append(f"(s.languages_key{like} OR s.languages_key{like})")
        params += [f"%\n{tag}\n%", f"%\n{tag}-%"]
    if wanted.capacity is not None:
        where.append("s.capacity = %s")
        params.append(wanted.capacity)
    if wanted.text is not None:
        where.append("s.text_key" + like)
        params.append(f"%{_like(wanted.text.casefold())}%")
    return where, params


def services_after(
    db: Database, wanted: ServiceFilter, after: tuple[str, str] | None, limit: int
) -> list[FoundService]:
    """Up to ``limit`` services matching ``wanted`` after the key ``after`` (service id,
    agency id), by that key."""
    where, params = _conditions(wanted)
    if after is not None:
        where.append("(s.service_id > %s OR (s.service_id = %s AND s.agency_id > %s))")
        params += [after[0], after[0], after[1]]
    query = (
        "SELECT s.service_id, s.agency_id, s.body, a.name, a.restricted FROM rm_services s "
        "JOIN rm_agencies a ON a.agency_id = s.agency_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY s.service_id, s.agency_id LIMIT {int(limit)}"
    )
    return [FoundService(*row) for row in db.read(query, tuple(params), tuples=True)]


def service_by_id(db: Database, service_id: UUID) -> FoundService | None:
    """The service with this id (the first agency's, should two share it)."""
    query = (
        "SELECT s.service_id, s.agency_id, s.body, a.name, a.restricted FROM rm_services s "
        "JOIN rm_agencies a ON a.agency_id = s.agency_id WHERE s.service_id = %s "
        "ORDER BY s.agency_id LIMIT 1"
    )
    rows = db.read(query, (str(service_id),), tuples=True)
    return FoundService(*rows[0]) if rows else None


def services_window(db: Database, offset: int, limit: int) -> tuple[int, list[FoundService]]:
    """How many services the directory holds, and ``limit`` of them from ``offset``, by
    id (the page-numbered lists of the HSDS API), read on one snapshot."""
    query = (
        "SELECT s.service_id, s.agency_id, s.body, a.name, a.restricted, "
        "(SELECT COUNT(*) FROM rm_services) FROM rm_services s "
        "JOIN rm_agencies a ON a.agency_id = s.agency_id "
        f"ORDER BY s.service_id, s.agency_id LIMIT {int(limit)} OFFSET {int(offset)}"
    )
    rows = db.read(query, (), tuples=True)
    if not rows:
        total = db.read("SELECT COUNT(*) FROM rm_services", (), tuples=True)[0][0]
        return int(total), []
    return int(rows[0][5]), [FoundService(*row[:5]) for row in rows]
