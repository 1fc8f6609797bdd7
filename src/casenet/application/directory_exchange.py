"""A network started from an existing directory, and its directory handed on: HSDS 3.0
JSON in (``casenet directory import``), HSDS 3.0 JSON out (``casenet directory export``).

An import is checked whole before anything is written, so a bad file writes nothing;
importing the same file again writes nothing new (an organization is matched by its HSDS
id, which becomes its agency's id, or else by name; a service by its id or name).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import msgspec

from casenet.application.actor import Actor
from casenet.application.agencies import AgencyService, DirectoryQueries
from casenet.application.directory import ListedService, ServiceDirectory
from casenet.application.hsds import (
    OrganizationRead,
    hsds_organization,
    organizations_of,
    service_of,
)
from casenet.application.hsds_shapes import HsdsOrganization
from casenet.domain.agency import Agency
from casenet.domain.errors import InvalidInput, NotPermitted
from casenet.domain.service import Service, check_services
from casenet.domain.values import check_slug, check_text


@dataclass(frozen=True)
class ImportPlan:
    """One organization of the file: the agency it is (None: a new one) and its services,
    checked and with their ids settled."""

    organization: OrganizationRead
    agency: Agency | None
    services: tuple[Service, ...]


@dataclass(frozen=True)
class ImportSummary:
    created: int
    updated: int
    unchanged: int


class DirectoryExchange:
    """The operator's import and export of the directory as HSDS."""

    def __init__(
        self, agencies: AgencyService, directory: DirectoryQueries, services: ServiceDirectory
    ) -> None:
        self.agencies = agencies
        self.directory = directory
        self.services = services

    def export(self, actor: Actor) -> list[HsdsOrganization]:
        """Every agency with its services, as HSDS organizations (``organization_package``)."""
        if not actor.is_operator:
            raise NotPermitted("only the operator exports the directory")
        return [
            hsds_organization(agency, self._listed(agency))
            for agency in self.directory.every_agency()
        ]

    def import_document(self, actor: Actor, document: bytes) -> ImportSummary:
        """Create or update the agencies of an HSDS document; InvalidInput (naming the
        organization by its place in the file) before anything is written."""
        if not actor.is_operator:
            raise NotPermitted("only the operator imports a directory")
        try:
            organizations = organizations_of(document)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise InvalidInput("file", f"is not HSDS 3.0 JSON ({error})") from None
        plans = self._plan(organizations)
        created = updated = 0
        for plan in plans:
            if plan.agency is None:
                self.agencies.register(
                    actor,
                    name=plan.organization.name,
                    kind=plan.organization.attribute("kind") or "ngo",
                    restricted=plan.organization.attribute("restricted") == "true",
                    services=plan.services,
                    new_id=plan.organization.id,
                )
                created += 1
            elif plan.services != plan.agency.services:
                self.agencies.publish_imported(actor, plan.agency.id, plan.services)
                updated += 1
        return ImportSummary(created, updated, len(plans) - created - updated)

    def _plan(self, organizations: list[OrganizationRead]) -> list[ImportPlan]:
        by_name = {a.name.casefold(): a for a in self.directory.every_agency()}
        plans: list[ImportPlan] = []
        seen: set[str] = set()
        for at, org in enumerate(organizations, start=1):
            try:
                plans.append(self._plan_one(org, by_name, seen))
            except InvalidInput as error:
                raise InvalidInput(
                    f"organization {at} ({org.name[:60]!r}): {error.field}", error.message
                ) from None
        return plans

    def _plan_one(
        self, org: OrganizationRead, by_name: dict[str, Agency], seen: set[str]
    ) -> ImportPlan:
        check_text(org.name, "name", max_length=200)
        if org.name.casefold() in seen:
            raise InvalidInput("name", "appears twice in the file")
        seen.add(org.name.casefold())
        check_slug(org.attribute("kind") or "ngo", "kind")
        agency = self._existing(org.id, by_name.get(org.name.casefold()))
        current = agency.services if agency is not None else ()
        services = check_services([service_of(s) for s in org.services], current)
        for service in services:
            assert service.id is not None
            owner = self.services.owner_of(service.id)
            if owner is not None and (agency is None or owner != agency.id):
                raise InvalidInput("services.id", "is another agency's service")
        return ImportPlan(org, agency, services)

    def _existing(self, agency_id: UUID | None, named: Agency | None) -> Agency | None:
        if agency_id is not None:
            found = self.agencies.app.find(Agency, agency_id)
            if found is not None:
                return found
        return named

    def _listed(self, agency: Agency) -> list[ListedService]:
        return [
            ListedService(s, agency.id, agency.name, agency.restricted) for s in agency.services
        ]
