"""Agency services: register agencies, add and revoke workers, publish services."""

from __future__ import annotations

import hashlib
import secrets
from uuid import UUID

import msgspec

from casenet.application.actor import ADMIN, Actor
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.store import CasenetApplication
from casenet.domain.agency import Agency, Service, Worker
from casenet.domain.errors import NotFound, NotPermitted, TokenLost, check_expected_version
from casenet.infrastructure.projections import directory as directory_model
from casenet.infrastructure.projections.base import POSITIONS, ReadModelRebuilt
from casenet.infrastructure.projections.runner import READ_ATTEMPTS

#: Memo keys and values of :meth:`DirectoryQueries.authenticate` (see Database.memo).
_TOKEN = "worker-by-token-hash"  # noqa: S105  (a memo key, not a secret)
_UNKNOWN = "unknown"
#: The longest token the memo is keyed by as it is (issued ones have 43 characters).
_MEMO_TOKEN_MAX = 128


def hash_token(token: str) -> str:
    """Tokens are stored only as this hash; 256 random bits need no slow KDF."""
    return hashlib.sha256(token.encode()).hexdigest()


class AgencyService:
    """Run by the operator, and by each agency's admins for their own agency."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app

    def register(
        self,
        actor: Actor,
        *,
        name: str,
        kind: str,
        restricted: bool = False,
        services: list[Service] | tuple[Service, ...] = (),
        new_id: UUID | None = None,
    ) -> Agency:
        """``new_id``: a retried request's id (see the API's Idempotency-Key)."""
        if not actor.is_operator:
            raise NotPermitted("only the operator registers agencies")
        if (existing := self.app.find(Agency, new_id)) is not None:
            return existing
        agency = Agency.register(
            name=name, kind=kind, restricted=restricted, services=services, new_id=new_id
        )
        self.app.save(agency)
        return agency

    def administered(self, actor: Actor, agency_id: UUID) -> Agency:
        """The agency, for the operator or for an admin of that agency."""
        agency = self.app.get(Agency, agency_id)
        if actor.is_operator:
            return agency
        if actor.agency_id != agency_id:
            raise NotFound("agency not found")
        actor.require_role({ADMIN}, "administer an agency")
        return agency

    def add_worker(
        self, actor: Actor, agency_id: UUID, *, name: str, role: str, new_id: UUID | None = None
    ) -> tuple[Worker, str]:
        """Add a worker and return them with their bearer token (shown only this once)."""
        agency = self.administered(actor, agency_id)
        if new_id is not None and new_id in agency.workers:
            raise TokenLost("worker", "added", "show the token again")
        token = secrets.token_urlsafe(32)
        worker = agency.add_worker(
            name=name, role=role, token_hash=hash_token(token), new_id=new_id
        )
        self.app.save(agency)
        return worker, token

    def revoke_worker(self, actor: Actor, agency_id: UUID, worker_id: UUID) -> Agency:
        agency = self.administered(actor, agency_id)
        if worker_id not in agency.workers:
            # A path id the caller's agency has no such worker under: 404, like any other.
            raise NotFound("worker not found")
        agency.revoke_worker(worker_id)
        self.app.save(agency)
        return agency

    def replace_services(
        self,
        actor: Actor,
        agency_id: UUID,
        services: list[Service],
        expected_version: int | None = None,
    ) -> Agency:
        if actor.is_operator:
            # Only the agency's own admins speak for what it offers.
            raise NotPermitted("only an admin of the agency replaces its services")
        agency = self.administered(actor, agency_id)
        check_expected_version(expected_version, agency.version)
        agency.replace_services(services)
        self.app.save(agency)
        return agency


class DirectoryQueries:
    """Who is who: tokens to workers, and the directory of agencies and services."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app

    def authenticate(self, token: str) -> Actor | None:
        """The active worker whose token this is; None for an unknown or revoked token.

        The directory read model is caught up first, so a worker added a moment ago
        is known and a worker revoked a moment ago is not.
        """
        memo = self.app.database.memo()
        # The memo is keyed by the token itself, so that a hit hashes nothing (SHA-256
        # and its hex cost 7k instructions, a quarter of an authentication); it lives in
        # this thread's memory only, as the request's own copy of the token does. A
        # token longer than any issued is keyed by its hash, so that the memo's 4,096
        # entries stay small whatever callers send.
        key = token if len(token) <= _MEMO_TOKEN_MAX else hash_token(token)
        if memo is not None and (known := memo.get((_TOKEN, key))) is not None:
            # Nothing was committed since this thread last read this token: the worker,
            # their revocation and the directory's position are what they were then.
            return known if isinstance(known, Actor) else None
        actor = self._authenticate(hash_token(token))
        if memo is not None:
            memo[(_TOKEN, key)] = actor or _UNKNOWN
        return actor

    def _authenticate(self, token_hash: str) -> Actor | None:
        projections = self.app.projections
        # One round trip in the common case: the worker, and whether the directory is
        # current (its position against the log's head).
        head = projections.head_sql
        query = (
            f"SELECT w.worker_id, w.agency_id, w.role, p.position, {head} AS head "  # noqa: S608
            f"FROM {POSITIONS} p LEFT JOIN rm_workers w ON w.token_hash = %s AND w.active = 1 "
            "WHERE p.name = 'directory'"
        )
        params = (token_hash,)
        row = self.app.database.run(query, params, commit=False)[0]
        # The position comes from the same snapshot as the worker: once it is current,
        # so is the answer (a rebuild may empty the model between two tries: try again).
        tries = 0
        while projections.has_pending("directory", int(row["position"]), int(row["head"])):
            tries += 1
            if tries > READ_ATTEMPTS:
                raise ReadModelRebuilt("directory")
            projections.catch_up("directory", until=int(row["head"]))
            row = self.app.database.run(query, params, commit=False)[0]
        if row["worker_id"] is None:
            return None
        return Actor(UUID(row["agency_id"]), UUID(row["worker_id"]), row["role"])

    def agency(self, agency_id: UUID) -> Agency:
        return self.app.get(Agency, agency_id)

    def directory(
        self, *, service_type: str | None, area: str | None, limit: int | None, after: str | None
    ) -> Page[Agency]:
        """Agencies (by id) offering ``service_type`` in ``area``; both filters optional."""
        limit = check_limit(limit)
        cursor = decode_cursor(after, 1)
        rows = self.app.projections.current(  # never a model a rebuild emptied meanwhile
            ["directory"],
            lambda: directory_model.agencies_after(
                self.app.database, cursor[0] if cursor else None
            ),
        )
        matching: list[str] = []
        for row in rows:
            services = msgspec.json.decode(row.services, type=list[Service])
            if any(_offers(s, service_type, area) for s in services) or (
                service_type is None and area is None
            ):
                matching.append(row.agency_id)
            if len(matching) > limit:
                break
        page = page_of(matching, limit, lambda agency_id: (agency_id,))
        return Page([self.app.get(Agency, UUID(a)) for a in page.items], page.next)


def _offers(service: Service, service_type: str | None, area: str | None) -> bool:
    if service_type is not None and service.type != service_type:
        return False
    return area is None or (service.area or "").lower() == area.lower()
