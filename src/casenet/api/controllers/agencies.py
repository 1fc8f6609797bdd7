"""Agencies, workers, the directory, and the caller."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from casenet.api.controllers.directory import service_view
from casenet.api.docs import ACTION, READ, WRITE, problems
from casenet.api.http import (
    After,
    CallerActor,
    IdempotencyKey,
    IfMatch,
    Limit,
    Services,
    expected_version,
    idempotent,
    with_etag,
)
from casenet.api.structs import (
    AgencyCreate,
    AgencyPage,
    AgencyView,
    Me,
    ServicesReplace,
    WorkerCreate,
    WorkerCreated,
    WorkerList,
    WorkerView,
)
from casenet.domain.agency import Agency, Worker


def agency_view(agency: Agency) -> AgencyView:
    return AgencyView(
        id=agency.id,
        version=agency.version,
        name=agency.name,
        kind=agency.kind,
        restricted=agency.restricted,
        services=[service_view(agency.id, s) for s in agency.services],
    )


def worker_view(agency_id: FromPath[UUID], worker: Worker) -> WorkerView:
    return WorkerView(
        id=worker.id, name=worker.name, role=worker.role, agency_id=agency_id, active=worker.active
    )


class AgencyController(Controller):
    """The network's agencies and their workers."""

    path = "/v1/agencies"
    tags = ["agencies"]

    @post(
        "/",
        operation_id="register_agency",
        summary="Register an agency (operator)",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[AgencyCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AgencyView]:
        """Register an agency; a ``restricted`` one never discloses identifying sections."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            agency = casenet.agencies.register(
                actor,
                name=data.name,
                kind=data.kind,
                restricted=data.restricted,
                services=[s.to_domain() for s in data.services],
                new_id=new_id,
            )
            location = f"/v1/agencies/{agency.id}"
            return with_etag(agency_view(agency), agency.version, 201, Location=location), None

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/",
        operation_id="list_agencies",
        summary="The directory: agencies and the services they offer",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def directory(
        self,
        actor: CallerActor,
        casenet: Services,
        service_type: Annotated[
            str | None, QueryParameter(name="service_type", required=False)
        ] = None,
        area: Annotated[str | None, QueryParameter(name="area", required=False)] = None,
        limit: Limit = None,
        after: After = None,
    ) -> AgencyPage:
        """Any worker may read the directory; filters are optional."""
        page = casenet.directory.directory(
            service_type=service_type, area=area, limit=limit, after=after
        )
        return AgencyPage(items=[agency_view(a) for a in page.items], next=page.next)

    @get(
        "/{agency_id:uuid}",
        operation_id="get_agency",
        summary="One agency of the directory",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def get_agency(
        self, agency_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> Response[AgencyView]:
        """Any worker may read an agency's directory entry."""
        agency = casenet.directory.agency(agency_id)
        return with_etag(agency_view(agency), agency.version)

    @post(
        "/{agency_id:uuid}/workers",
        operation_id="add_worker",
        summary="Add a worker; the token is shown once",
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def add_worker(
        self,
        request: Request[Any, Any, Any],
        agency_id: FromPath[UUID],
        data: JSONBody[WorkerCreate],
        actor: CallerActor,
        casenet: Services,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[WorkerCreated]:
        """The operator, or an admin of that agency, adds a worker with one role."""

        def create(new_id: UUID | None) -> tuple[Response[Any], UUID | None]:
            worker, token = casenet.agencies.add_worker(
                actor, agency_id, name=data.name, role=data.role, new_id=new_id
            )
            created = WorkerCreated(
                id=worker.id, name=worker.name, role=worker.role, agency_id=agency_id, token=token
            )
            return Response(created, status_code=201), None

        return idempotent(casenet, actor, idempotency_key, request, data, create)

    @get(
        "/{agency_id:uuid}/workers",
        operation_id="list_workers",
        summary="The agency's workers, active and revoked (never their tokens)",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def list_workers(
        self, agency_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> WorkerList:
        """The operator, or an admin of that agency; to anyone else's admin the agency is
        404, as a random id."""
        workers = casenet.agencies.workers(actor, agency_id)
        return WorkerList(items=[worker_view(agency_id, w) for w in workers])

    @delete(
        "/{agency_id:uuid}/workers/{worker_id:uuid}",
        operation_id="revoke_worker",
        summary="Revoke a worker: the token stops working at once",
        status_code=200,
        sync_to_thread=True,
        responses=problems(400, 401, 403, 404, 409),
    )
    def revoke_worker(
        self,
        agency_id: FromPath[UUID],
        worker_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
    ) -> WorkerView:
        """The operator, or an admin of that agency."""
        agency = casenet.agencies.revoke_worker(actor, agency_id, worker_id)
        return worker_view(agency.id, agency.workers[worker_id])

    @put(
        "/{agency_id:uuid}/services",
        operation_id="replace_services",
        summary="Replace the agency's service list",
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def replace_services(
        self,
        agency_id: FromPath[UUID],
        data: JSONBody[ServicesReplace],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[AgencyView]:
        """An admin of the agency speaks for what it offers."""
        agency = casenet.agencies.replace_services(
            actor,
            agency_id,
            [s.to_domain() for s in data.services],
            expected_version=expected_version(if_match),
        )
        return with_etag(agency_view(agency), agency.version)


class MeController(Controller):
    """Who the token belongs to."""

    path = "/v1/me"
    tags = ["agencies"]

    @get(
        "/",
        operation_id="get_me",
        summary="The caller: worker, role, agency",
        sync_to_thread=True,
        responses=problems(401),
    )
    def me(self, actor: CallerActor, casenet: Services) -> Me:
        """Any valid token; the operator has no agency."""
        if actor.agency_id is None or actor.worker_id is None:
            return Me(role=actor.role)
        agency = casenet.directory.agency(actor.agency_id)
        return Me(
            role=actor.role,
            worker=worker_view(agency.id, agency.workers[actor.worker_id]),
            agency=agency_view(agency),
        )
