"""Request and response bodies of the REST API that are not application views."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from casenet.application.views import (
    CaseListItem,
    ConsentView,
    DisclosureView,
    FeedItem,
    MessageView,
    ReferralListItem,
    SharedCase,
)
from casenet.domain.agency import Service

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["housing"])]
Date = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["1984-03-02"])]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: an unknown field is a mistake worth a 400."""


class ServiceIn(Body):
    type: Code
    description: ShortText
    area: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None

    def to_domain(self) -> Service:
        return Service(type=self.type, description=self.description, area=self.area)


class AgencyCreate(Body):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Eastside Welfare"])]
    kind: Code
    restricted: bool = False
    services: list[ServiceIn] = msgspec.field(default_factory=list)


class AgencyView(msgspec.Struct, kw_only=True):
    """An agency as the directory shows it."""

    id: UUID
    version: int
    name: str
    kind: str
    restricted: bool
    services: list[Service]


class ServicesReplace(Body):
    services: list[ServiceIn]


class WorkerCreate(Body):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    role: Annotated[str, msgspec.Meta(examples=["caseworker"])]


class WorkerCreated(msgspec.Struct, kw_only=True):
    """The new worker; ``token`` is shown this once and stored only as a hash."""

    id: UUID
    name: str
    role: str
    agency_id: UUID
    token: str


class WorkerView(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    role: str
    agency_id: UUID
    active: bool


class Me(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The caller: a worker of an agency, or the operator."""

    role: str
    worker: WorkerView | None = None
    agency: AgencyView | None = None


class ClientIn(Body):
    name: Name
    date_of_birth: Date | None = None
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=50)] | None = None
    address: ShortText | None = None


class CaseCreate(Body):
    client: ClientIn
    summary: Text
    needs: list[Code] = msgspec.field(default_factory=list)


class NoteCreate(Body):
    text: Text
    category: Annotated[str, msgspec.Meta(examples=["health"])]


class Reason(Body):
    reason: ShortText


class ConsentCreate(Body):
    grantee_agency_id: UUID
    sections: Annotated[
        list[str], msgspec.Meta(min_length=1, examples=[["identity", "notes.health"]])
    ]
    purpose: Annotated[str, msgspec.Meta(examples=["referral"])]
    method: Annotated[str, msgspec.Meta(examples=["written"])]
    valid_until: datetime | None = None
    evidence: ShortText | None = None


class ConsentReceipt(msgspec.Struct, kw_only=True):
    """What the client consented to, in words they can keep."""

    consent_id: UUID
    case_id: UUID
    status: str
    sections: list[str]
    section_descriptions: list[str]
    grantee_agency_id: UUID
    grantee_agency_name: str
    purpose: str
    purpose_description: str
    valid_until: datetime | None
    method: str
    recorded_at: datetime
    recorded_by_worker_id: UUID
    withdrawn_at: datetime | None
    how_to_withdraw: str


class ReferralCreate(Body):
    case_id: UUID
    to_agency_id: UUID
    service_type: Code
    reason: Text
    urgency: Annotated[str, msgspec.Meta(examples=["routine"])]
    consent_id: UUID | None = None


class Complete(Body):
    outcome: Annotated[str, msgspec.Meta(examples=["got_help"])]
    note: Text | None = None


class MessageCreate(Body):
    text: Text


class Erasure(msgspec.Struct, kw_only=True):
    client_id: UUID
    erased: bool


class AgencyPage(msgspec.Struct, kw_only=True):
    items: list[AgencyView]
    next: str | None


class CasePage(msgspec.Struct, kw_only=True):
    items: list[CaseListItem]
    next: str | None


class SharedCasePage(msgspec.Struct, kw_only=True):
    items: list[SharedCase]
    next: str | None


class ConsentPage(msgspec.Struct, kw_only=True):
    items: list[ConsentView]
    next: str | None


class ReferralPage(msgspec.Struct, kw_only=True):
    items: list[ReferralListItem]
    next: str | None


class MessagePage(msgspec.Struct, kw_only=True):
    items: list[MessageView]
    next: str | None


class DisclosurePage(msgspec.Struct, kw_only=True):
    items: list[DisclosureView]
    next: str | None


class FeedPage(msgspec.Struct, kw_only=True):
    items: list[FeedItem]
    next: str | None
