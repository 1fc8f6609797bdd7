"""Agency services: register agencies, add and revoke workers, publish services."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Sequence
from uuid import UUID

import msgspec

from casenet.application.actor import ADMIN, Actor
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.store import CasenetApplication
from casenet.domain.agency import Agency, Service, Worker
from casenet.domain.errors import (
    InvalidInput,
    NotFound,
    NotPermitted,
    TokenLost,
    check_expected_version,
)
from casenet.infrastructure.projections import directory as directory_model
from casenet.infrastructure.projections.base import ReadModelStopped

_SERVICES = msgspec.json.Decoder(list[Service])


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
        self._publish_workers()
        return worker, token

    def revoke_worker(self, actor: Actor, agency_id: UUID, worker_id: UUID) -> Agency:
        agency = self.administered(actor, agency_id)
        if worker_id not in agency.workers:
            # A path id the caller's agency has no such worker under: 404, like any other.
            raise NotFound("worker not found")
        agency.revoke_worker(worker_id)
        self.app.save(agency)
        self._publish_workers()
        return agency

    def workers(self, actor: Actor, agency_id: UUID) -> list[Worker]:
        """The agency's workers, active and revoked, in the order they were added; for
        the operator or an admin of that agency (anyone else: as for an unknown id)."""
        return list(self.administered(actor, agency_id).workers.values())

    def revoke_worker_by_id(self, actor: Actor, worker_id: UUID) -> tuple[Agency, Worker]:
        """Revoke a worker knowing only their id (the operator's CLI): the directory says
        whose worker it is, the agency's own log decides, as :meth:`revoke_worker`."""
        db = self.app.database
        agency_id = self.app.projections.current(
            ["directory"], lambda: directory_model.agency_of_worker(db, worker_id)
        )
        if agency_id is None:
            raise NotFound("worker not found")
        agency = self.revoke_worker(actor, UUID(agency_id), worker_id)
        return agency, agency.workers[worker_id]

    def _publish_workers(self) -> None:
        """Bring the directory up to date after a change of workers, before the command
        returns: authentication reads the directory as it is (see
        :meth:`DirectoryQueries.authenticate`), so the write pays for the new token to
        work, or the revoked one to stop, at once in every process.

        Should this process die between the save and this, the change is in the log and
        the background runner of any server process applies it within its poll
        interval (``Projections.run_forever``, 0.1 s): that long, a new token may be
        refused and a revoked one accepted. A stopped directory is left as it is:
        authentication answers 503 until it runs again.
        """
        with contextlib.suppress(ReadModelStopped):
            self.app.projections.ensure_current(["directory"])

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
        self.check_ids_are_free(agency, services)
        agency.replace_services(services)
        self.app.save(agency)
        return agency

    def check_ids_are_free(self, agency: Agency, services: Sequence[Service]) -> None:
        """A service id sent that is not the agency's own must be no other agency's
        (the directory finds a service by its id alone)."""
        own = {s.id for s in agency.services}
        sent = [s.id for s in services if s.id is not None and s.id not in own]
        if not sent:
            return
        db = self.app.database
        owners = self.app.projections.current(
            ["directory"], lambda: [directory_model.service_by_id(db, id_) for id_ in sent]
        )
        if any(o is not None and o.agency_id != str(agency.id) for o in owners):
            raise InvalidInput("services.id", "is another agency's service")

    def publish_imported(
        self, actor: Actor, agency_id: UUID, services: list[Service] | tuple[Service, ...]
    ) -> Agency:
        """The operator's import (``casenet directory import``) sets what an agency offers
        from an existing directory; after it, the agency's admins keep it."""
        if not actor.is_operator:
            raise NotPermitted("only the operator imports a directory")
        agency = self.app.get(Agency, agency_id)
        agency.replace_services(services)
        self.app.save(agency)
        return agency


class DirectoryQueries:
    """Who is who: tokens to workers, and the directory of agencies and services."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app

    def authenticate(self, token: str) -> Actor | None:
        """The active worker whose token this is; None for an unknown or revoked token.

        The token's SHA-256, then one indexed statement; nothing is remembered between
        calls and no read model is caught up. The commands that add and revoke workers
        bring the directory up to date before they return (see ``_publish_workers``),
        and it lives in the shared database, so every process sees a new token work
        and a revoked one stop at once.

        Only a directory an operator is rebuilding (its rows replayed from nothing)
        cannot answer as it is: a token added late in the log would be unknown, one
        revoked late still active. Then it is read as any read model is, caught up
        first (``Projections.current``); a stopped directory answers 503.
        """
        token_hash = hash_token(token)
        db = self.app.database
        holder = directory_model.token_holder(db, token_hash)
        if holder.rebuilding or holder.stopped is not None:
            holder = self.app.projections.current(
                ["directory"], lambda: directory_model.token_holder(db, token_hash)
            )
        if holder.worker_id is None or holder.agency_id is None or holder.role is None:
            return None
        return Actor(UUID(holder.agency_id), UUID(holder.worker_id), holder.role)

    def agency(self, agency_id: UUID) -> Agency:
        return self.app.get(Agency, agency_id)

    def every_agency(self) -> list[Agency]:
        """Every agency of the network, by id (the operator's list; one read)."""
        rows = self.app.projections.current(
            ["directory"], lambda: directory_model.agencies_after(self.app.database, None)
        )
        if not rows:
            return []
        found = self.app.get_all(*[(Agency, UUID(row.agency_id)) for row in rows])
        return [agency for agency in found if isinstance(agency, Agency)]

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
            services = _SERVICES.decode(row.services)
            if any(_offers(s, service_type, area) for s in services) or (
                service_type is None and area is None
            ):
                matching.append(row.agency_id)
            if len(matching) > limit:
                break
        page = page_of(matching, limit, lambda agency_id: (agency_id,))
        return Page([self.app.get(Agency, UUID(a)) for a in page.items], page.next)


def _offers(service: Service, service_type: str | None, area: str | None) -> bool:
    """The first directory's filters over services of either shape: a need the service
    meets, an area it serves (case aside)."""
    if service_type is not None and service_type not in service.needs:
        return False
    return area is None or area.casefold() in (a.casefold() for a in service.areas)
