"""The network's services: the search ("who can help with X here, in this language") and
the directory as Open Referral HSDS 3.0 JSON."""

from __future__ import annotations

from math import ceil
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import FromPath, QueryParameter

from casenet.api.docs import READ, problems
from casenet.api.http import After, CallerActor, Limit, Services
from casenet.api.service_structs import ServiceFound, ServicePage, ServiceView
from casenet.application.directory import ListedService, check_filter
from casenet.application.hsds import hsds_organization, hsds_service, hsds_service_brief
from casenet.application.hsds_shapes import HsdsOrganization, HsdsService, HsdsServicePage
from casenet.domain.service import CAPACITIES, Service
from casenet.domain.vocabulary import NEED_CODES

Query = Annotated[str | None, QueryParameter(required=False, max_length=200)]


def service_view(agency_id: UUID, service: Service) -> ServiceView:
    """A service of an agency as the API shows it (first shape's ``type``/``area`` too)."""
    assert service.id is not None  # every service of an agency has one (with_ids)
    return ServiceView(
        id=service.id,
        agency_id=agency_id,
        name=service.name,
        description=service.description,
        needs=list(service.needs),
        languages=list(service.languages),
        areas=list(service.areas),
        eligibility=service.eligibility,
        capacity=service.capacity,
        contacts=list(service.contacts),
        type=service.type,
        area=service.area,
    )


def found_view(listed: ListedService) -> ServiceFound:
    view = service_view(listed.agency_id, listed.service)
    return ServiceFound(
        **{name: getattr(view, name) for name in view.__struct_fields__},
        agency_name=listed.agency_name,
        agency_restricted=listed.restricted,
    )


class ServiceController(Controller):
    """Search the network's services."""

    path = "/v1/services"
    tags = ["directory"]

    @get(
        "/",
        operation_id="search_services",
        summary="Search the network: who can help with a need, here, in this language",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def search(
        self,
        actor: CallerActor,
        casenet: Services,
        need: Annotated[
            str | None,
            QueryParameter(name="need", required=False, schema_extra={"enum": list(NEED_CODES)}),
        ] = None,
        area: Query = None,
        language: Annotated[
            str | None,
            QueryParameter(name="language", required=False, max_length=35, description="BCP 47"),
        ] = None,
        capacity: Annotated[
            str | None,
            QueryParameter(
                name="capacity", required=False, schema_extra={"enum": list(CAPACITIES)}
            ),
        ] = None,
        q: Annotated[
            str | None,
            QueryParameter(
                name="q",
                required=False,
                max_length=200,
                description="Case-insensitive text in the name or description.",
            ),
        ] = None,
        limit: Limit = None,
        after: After = None,
    ) -> ServicePage:
        """Any worker; every filter optional. ``language=pt`` finds ``pt`` and ``pt-BR``."""
        wanted = check_filter(need=need, area=area, language=language, capacity=capacity, text=q)
        page = casenet.services.search(actor, wanted, limit=limit, after=after)
        return ServicePage(items=[found_view(s) for s in page.items], next=page.next)


class HsdsController(Controller):
    """The directory as Open Referral HSDS 3.0 JSON (validates against its compiled
    schemas: ``service.json``, ``service_list.json``, ``organization.json``)."""

    path = "/v1/hsds"
    tags = ["directory"]

    @get(
        "/services",
        operation_id="hsds_list_services",
        summary="Every service, as an HSDS 3.0 page",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def services(
        self,
        actor: CallerActor,
        casenet: Services,
        page: Annotated[int | None, QueryParameter(name="page", required=False, ge=1)] = None,
        per_page: Annotated[
            int | None, QueryParameter(name="per_page", required=False, ge=1, le=500)
        ] = None,
    ) -> HsdsServicePage:
        """Any worker; the HSDS API's page ``{total_items, total_pages, page_number, size,
        first_page, last_page, empty, contents}``, its items as ``service_list.json``."""
        total, listed = casenet.services.numbered_page(actor, page=page, per_page=per_page)
        number, size = page or 1, per_page or 50
        pages = ceil(total / size)
        return HsdsServicePage(
            total_items=total,
            total_pages=pages,
            page_number=number,
            size=size,
            first_page=number == 1,
            last_page=number >= pages,
            empty=not listed,
            contents=[hsds_service_brief(s) for s in listed],
        )

    @get(
        "/services/{service_id:uuid}",
        operation_id="hsds_get_service",
        summary="One service, as HSDS 3.0 (service.json)",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def service(
        self, service_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> HsdsService:
        """Any worker; an id the directory does not hold is 404."""
        return hsds_service(casenet.services.service(actor, service_id))

    @get(
        "/organizations/{agency_id:uuid}",
        operation_id="hsds_get_organization",
        summary="One agency and its services, as HSDS 3.0 (organization.json)",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def organization(
        self, agency_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> HsdsOrganization:
        """Any worker; restricted agencies too (they exist to be found; no address of any
        agency is kept)."""
        agency, listed = casenet.services.organization(actor, agency_id)
        return hsds_organization(agency, listed)
