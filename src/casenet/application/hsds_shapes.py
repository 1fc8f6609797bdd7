"""What casenet writes of Open Referral HSDS 3.0: the objects of its compiled schemas
(``service.json``, ``service_list.json``, ``organization.json``, the API's ``Page``),
with the fields casenet has. A field casenet has no value for is left out, never null.

HSDS: "Human Services Data Specification: an Open Referral resource
(https://openreferral.org/)", CC BY-SA 4.0.
"""

from __future__ import annotations

from uuid import UUID

import msgspec


class Shape(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An HSDS object: absent fields are omitted."""


class HsdsPhone(Shape):
    id: UUID
    contact_id: UUID
    number: str


class HsdsContact(Shape):
    """A professional to call about the service."""

    id: UUID
    service_id: UUID
    name: str
    title: str | None = None
    email: str | None = None
    phones: list[HsdsPhone] = msgspec.field(default_factory=list)


class HsdsServiceArea(Shape):
    id: UUID
    service_id: UUID
    name: str


class HsdsLanguage(Shape):
    """A language the service is offered in (``code``: a BCP 47 tag)."""

    id: UUID
    service_id: UUID
    code: str


class HsdsTaxonomyTerm(Shape):
    """A need of casenet's vocabulary, as a term of the ``casenet-needs`` taxonomy."""

    id: UUID
    code: str
    name: str
    description: str
    taxonomy: str


class HsdsAttribute(Shape):
    """casenet's own words about a service or organization: a need (with its term), the
    capacity, an agency's kind and whether it is restricted."""

    id: UUID
    link_id: UUID
    link_type: str
    link_entity: str
    value: str
    taxonomy_term_id: UUID | None = None
    taxonomy_term: HsdsTaxonomyTerm | None = None


class HsdsOrganizationBrief(Shape):
    id: UUID
    name: str
    description: str


class HsdsServiceBrief(Shape):
    """A service as HSDS lists it (``service_list.json``)."""

    id: UUID
    organization_id: UUID
    name: str
    description: str
    status: str
    eligibility_description: str | None = None
    wait_time: str | None = None


class HsdsService(HsdsServiceBrief, kw_only=True):
    """A service as HSDS shows one (``service.json``)."""

    service_areas: list[HsdsServiceArea]
    languages: list[HsdsLanguage]
    contacts: list[HsdsContact]
    attributes: list[HsdsAttribute]
    organization: HsdsOrganizationBrief | None = None


class HsdsOrganization(HsdsOrganizationBrief, kw_only=True):
    """An agency with its services (``organization.json``)."""

    attributes: list[HsdsAttribute]
    services: list[HsdsService]


class HsdsServicePage(msgspec.Struct, kw_only=True):
    """A page of the HSDS API: ``contents`` are ``service_list.json`` items."""

    total_items: int
    total_pages: int
    page_number: int
    size: int
    first_page: bool
    last_page: bool
    empty: bool
    contents: list[HsdsServiceBrief]
