"""The directory as Open Referral HSDS 3.0 JSON, both ways: what ``/v1/hsds/...`` and
``casenet directory export`` write, and what ``casenet directory import`` reads.

casenet's own words travel as HSDS ``attributes``: each need a taxonomy term of the
``casenet-needs`` taxonomy (link type ``need``), the capacity (link type ``capacity``),
and an organization's ``kind`` and ``restricted``. Every id HSDS asks for that casenet
has none of (an area, a language, a contact, a term) is derived from what it belongs to
(UUID 5), so the same directory is always written the same way.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

import msgspec

from casenet.application.directory import ListedService
from casenet.application.hsds_shapes import (
    HsdsAttribute,
    HsdsContact,
    HsdsLanguage,
    HsdsOrganization,
    HsdsOrganizationBrief,
    HsdsPhone,
    HsdsService,
    HsdsServiceArea,
    HsdsServiceBrief,
    HsdsTaxonomyTerm,
)
from casenet.domain.agency import Agency
from casenet.domain.service import CAPACITIES, Contact, Service
from casenet.domain.vocabulary import NEED_CODES, NEEDS

#: The namespace of the ids casenet derives for HSDS.
HSDS_IDS = UUID("0b6c3f0e-7a51-4d0c-8e57-4a39f1a2d6b4")
NEEDS_TAXONOMY = "casenet-needs"


def derived_id(*parts: object) -> UUID:
    return uuid5(HSDS_IDS, "/".join(str(part) for part in parts))


def _attribute(link_id: UUID, entity: str, link_type: str, value: str) -> HsdsAttribute:
    return HsdsAttribute(
        id=derived_id(link_id, link_type, value),
        link_id=link_id,
        link_type=link_type,
        link_entity=entity,
        value=value,
    )


def _need_attribute(service_id: UUID, need: str) -> HsdsAttribute:
    term = HsdsTaxonomyTerm(
        id=derived_id("need", need),
        code=need,
        name=need.replace("_", " ").capitalize(),
        description=NEEDS.get(need, need),
        taxonomy=NEEDS_TAXONOMY,
    )
    attribute = _attribute(service_id, "service", "need", need)
    return msgspec.structs.replace(attribute, taxonomy_term_id=term.id, taxonomy_term=term)


def _contact(service_id: UUID, at: int, contact: Contact) -> HsdsContact:
    contact_id = derived_id(service_id, "contact", at)
    phones = (
        []
        if contact.phone is None
        else [
            HsdsPhone(
                id=derived_id(contact_id, "phone"), contact_id=contact_id, number=contact.phone
            )
        ]
    )
    return HsdsContact(
        id=contact_id,
        service_id=service_id,
        name=contact.name,
        title=contact.title,
        email=contact.email,
        phones=phones,
    )


def hsds_service_brief(listed: ListedService) -> HsdsServiceBrief:
    """A service as ``service_list.json`` has it (the items of a list)."""
    service = listed.service
    return HsdsServiceBrief(
        id=listed.id,
        organization_id=listed.agency_id,
        name=service.name,
        description=service.description,
        status="active",
        eligibility_description=service.eligibility,
        wait_time="Waiting list" if service.capacity == "waitlist" else None,
    )


def hsds_service(listed: ListedService, *, with_organization: bool = True) -> HsdsService:
    """A service as ``service.json`` has it."""
    service, service_id = listed.service, listed.id
    brief = hsds_service_brief(listed)
    return HsdsService(
        **msgspec.structs.asdict(brief),
        service_areas=[
            HsdsServiceArea(id=derived_id(service_id, "area", a), service_id=service_id, name=a)
            for a in service.areas
        ],
        languages=[
            HsdsLanguage(id=derived_id(service_id, "language", t), service_id=service_id, code=t)
            for t in service.languages
        ],
        contacts=[_contact(service_id, at, c) for at, c in enumerate(service.contacts)],
        attributes=[_need_attribute(service_id, need) for need in service.needs]
        + [_attribute(service_id, "service", "capacity", service.capacity)],
        organization=_organization_brief(listed.agency_id, listed.agency_name)
        if with_organization
        else None,
    )


def _organization_brief(agency_id: UUID, name: str) -> HsdsOrganizationBrief:
    description = f"{name}, of the casenet network"
    return HsdsOrganizationBrief(id=agency_id, name=name, description=description)


def hsds_organization(agency: Agency, services: list[ListedService]) -> HsdsOrganization:
    """An agency as ``organization.json`` has it, with its services."""
    return HsdsOrganization(
        **msgspec.structs.asdict(_organization_brief(agency.id, agency.name)),
        attributes=[
            _attribute(agency.id, "organization", "kind", agency.kind),
            _attribute(agency.id, "organization", "restricted", str(agency.restricted).lower()),
        ],
        services=[hsds_service(s, with_organization=False) for s in services],
    )


# --- reading HSDS ----------------------------------------------------------------------


class _Term(msgspec.Struct, kw_only=True):
    code: str | None = None
    taxonomy: str | None = None


class _Attribute(msgspec.Struct, kw_only=True):
    link_type: str | None = None
    value: str | None = None
    taxonomy_term: _Term | None = None


class _Phone(msgspec.Struct, kw_only=True):
    number: str


class _Contact(msgspec.Struct, kw_only=True):
    name: str | None = None
    title: str | None = None
    email: str | None = None
    phones: list[_Phone] = msgspec.field(default_factory=list)


class _Named(msgspec.Struct, kw_only=True):
    name: str | None = None
    code: str | None = None


class ServiceRead(msgspec.Struct, kw_only=True):
    """What casenet reads of an HSDS service (anything else is ignored)."""

    id: UUID | None = None
    organization_id: UUID | None = None
    name: str
    description: str | None = None
    status: str | None = None
    eligibility_description: str | None = None
    service_areas: list[_Named] = msgspec.field(default_factory=list)
    languages: list[_Named] = msgspec.field(default_factory=list)
    contacts: list[_Contact] = msgspec.field(default_factory=list)
    attributes: list[_Attribute] = msgspec.field(default_factory=list)
    organization: OrganizationRead | None = None


class OrganizationRead(msgspec.Struct, kw_only=True):
    """What casenet reads of an HSDS organization."""

    id: UUID | None = None
    name: str
    description: str | None = None
    attributes: list[_Attribute] = msgspec.field(default_factory=list)
    services: list[ServiceRead] = msgspec.field(default_factory=list)

    def attribute(self, link_type: str) -> str | None:
        return next((a.value for a in self.attributes if a.link_type == link_type), None)


def _needs(attributes: list[_Attribute]) -> tuple[str, ...]:
    found: list[str] = []
    for a in attributes:
        term = a.taxonomy_term
        code = term.code if term is not None and term.code is not None else a.value
        in_taxonomy = term is not None and term.taxonomy == NEEDS_TAXONOMY
        if code and (a.link_type == "need" or in_taxonomy or code in NEED_CODES):
            found.append(code)
    return tuple(dict.fromkeys(found))


def service_of(hsds: ServiceRead) -> Service:
    """A casenet service from an HSDS one (its id kept); checked by the agency that
    records it."""
    capacity = next((a.value for a in hsds.attributes if a.link_type == "capacity"), None)
    if capacity not in CAPACITIES:
        capacity = "not_accepting" if hsds.status == "temporarily closed" else "accepting"
    return Service(
        id=hsds.id,
        name=hsds.name,
        description=hsds.description or hsds.name,
        needs=_needs(hsds.attributes),
        languages=tuple(x.code or x.name or "" for x in hsds.languages),
        areas=tuple(x.name or "" for x in hsds.service_areas),
        eligibility=hsds.eligibility_description,
        capacity=capacity,
        contacts=tuple(
            Contact(
                name=c.name or "",
                title=c.title,
                phone=c.phones[0].number if c.phones else None,
                email=c.email,
            )
            for c in hsds.contacts
        ),
    )


def organizations_of(document: bytes) -> list[OrganizationRead]:
    """The organizations of an HSDS JSON document: a list of organizations with their
    services (``organization_package``), or a list of services that each name their
    organization (``service_package``). ``msgspec.ValidationError`` (or ``DecodeError``)
    for anything else."""
    items = msgspec.json.decode(document, type=list[dict[str, Any]])
    if items and all("organization_id" in i or "organization" in i for i in items):
        services = msgspec.convert(items, list[ServiceRead])
        organizations: dict[str, OrganizationRead] = {}
        for service in services:
            org = service.organization or OrganizationRead(id=service.organization_id, name="")
            key = str(org.id or org.name)
            organizations.setdefault(key, OrganizationRead(id=org.id, name=org.name))
            organizations[key].services.append(service)
        return list(organizations.values())
    return msgspec.convert(items, list[OrganizationRead])
