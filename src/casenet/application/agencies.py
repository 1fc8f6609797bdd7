"""Agency services: register agencies, add and revoke workers, publish services."""

from __future__ import annotations

import hashlib
import secrets
from uuid import UUID

from casenet.application.actor import ADMIN, Actor
from casenet.application.store import CasenetApplication
from casenet.domain.agency import Agency, Service, Worker
from casenet.domain.errors import NotFound, NotPermitted, check_expected_version


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
    ) -> Agency:
        if not actor.is_operator:
            raise NotPermitted("only the operator registers agencies")
        agency = Agency.register(name=name, kind=kind, restricted=restricted, services=services)
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
        self, actor: Actor, agency_id: UUID, *, name: str, role: str
    ) -> tuple[Worker, str]:
        """Add a worker and return them with their bearer token (shown only this once)."""
        agency = self.administered(actor, agency_id)
        token = secrets.token_urlsafe(32)
        worker = agency.add_worker(name=name, role=role, token_hash=hash_token(token))
        self.app.save(agency)
        return worker, token

    def revoke_worker(self, actor: Actor, agency_id: UUID, worker_id: UUID) -> Agency:
        agency = self.administered(actor, agency_id)
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
