"""An agency of the network: its workers, their roles, and the services it offers."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, when
from casenet.domain.errors import IllegalTransition, InvalidInput
from casenet.domain.service import Contact, Service, check_services, upcast_service, with_ids
from casenet.domain.values import check_choice, check_slug, check_text

__all__ = ["ROLES", "Agency", "Contact", "Service", "Worker"]

ROLES = ("caseworker", "supervisor", "admin", "auditor")


class AgencyRegistered(DomainEvent, frozen=True, kw_only=True):
    """Version 2: services in the HSDS shape (version 1's ``{type, description, area}``
    are upcast, see :func:`upcast_service`)."""

    name: str
    kind: str
    restricted: bool
    services: tuple[Service, ...]

    class_version: ClassVar[int] = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["services"] = [upcast_service(s) for s in state["services"]]


class WorkerAdded(DomainEvent, frozen=True, kw_only=True):
    """A worker of the agency; only a hash of their bearer token is kept."""

    worker_id: UUID
    name: str
    role: str
    token_hash: str


class WorkerRevoked(DomainEvent, frozen=True, kw_only=True):
    worker_id: UUID


class ServicesReplaced(DomainEvent, frozen=True, kw_only=True):
    """Version 2: services in the HSDS shape, as :class:`AgencyRegistered`."""

    services: tuple[Service, ...]

    class_version: ClassVar[int] = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["services"] = [upcast_service(s) for s in state["services"]]


class Worker:
    """A person who acts for an agency, with one role."""

    __slots__ = ("active", "id", "name", "role", "token_hash")

    def __init__(self, event: WorkerAdded) -> None:
        self.id = event.worker_id
        self.name = event.name
        self.role = event.role
        self.token_hash = event.token_hash
        self.active = True


class Agency(Aggregate):
    """An NGO, hospital department, school or welfare office in the network.

    A ``restricted`` agency (a domestic-violence shelter, say) never discloses the
    sections that identify a client, whatever a consent says.
    """

    name: str
    kind: str
    restricted: bool
    services: tuple[Service, ...]
    workers: dict[UUID, Worker]

    @classmethod
    def register(
        cls,
        *,
        name: str,
        kind: str,
        restricted: bool = False,
        services: list[Service] | tuple[Service, ...] = (),
        new_id: UUID | None = None,
    ) -> Agency:
        check_text(name, "name", max_length=200)
        check_slug(kind, "kind")
        return cls._start(
            new_id or uuid4(),
            AgencyRegistered,
            name=name,
            kind=kind,
            restricted=restricted,
            services=check_services(services, ()),
        )

    def add_worker(
        self, *, name: str, role: str, token_hash: str, new_id: UUID | None = None
    ) -> Worker:
        check_text(name, "name", max_length=200)
        check_choice(role, ROLES, "role")
        worker_id = new_id or uuid4()
        self._record(WorkerAdded, worker_id=worker_id, name=name, role=role, token_hash=token_hash)
        return self.workers[worker_id]

    def revoke_worker(self, worker_id: UUID) -> None:
        worker = self.workers.get(worker_id)
        if worker is None:
            raise InvalidInput("worker_id", "no such worker in this agency")
        if not worker.active:
            raise IllegalTransition("worker", "revoked", "revoke")
        self._record(WorkerRevoked, worker_id=worker_id)

    def replace_services(self, services: list[Service] | tuple[Service, ...]) -> None:
        self._record(ServicesReplaced, services=check_services(services, self.services))

    @when(AgencyRegistered)
    def _registered(self, event: AgencyRegistered) -> None:
        self.name = event.name
        self.kind = event.kind
        self.restricted = event.restricted
        self.services = with_ids(self.id, event.services)
        self.workers = {}

    @when(WorkerAdded)
    def _worker_added(self, event: WorkerAdded) -> None:
        self.workers[event.worker_id] = Worker(event)

    @when(WorkerRevoked)
    def _worker_revoked(self, event: WorkerRevoked) -> None:
        self.workers[event.worker_id].active = False

    @when(ServicesReplaced)
    def _services_replaced(self, event: ServicesReplaced) -> None:
        self.services = with_ids(self.id, event.services)
