"""Request and response bodies of the REST API that are not application views."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Annotated, Any, ClassVar
from uuid import UUID

import msgspec

from casenet.api.service_structs import Capacity, ServiceView
from casenet.application.receipts import ConsentReceipt as ConsentReceipt
from casenet.application.subject_access_views import SubjectAccess as SubjectAccess
from casenet.application.views import (
    CaseListItem,
    ConsentView,
    DisclosureView,
    FeedItem,
    MessageView,
    ReferralListItem,
    SharedCase,
)
from casenet.domain.agency import ROLES, Contact, Service
from casenet.domain.consent import GIVERS, METHODS, PURPOSES, SELF
from casenet.domain.errors import InvalidInput
from casenet.domain.referral import OUTCOMES, URGENCIES
from casenet.domain.sections import NOTE_CATEGORIES, SECTIONS
from casenet.domain.values import check_characters, check_choice, check_instant
from casenet.domain.vocabulary import NEED_CODES, word_of

_PLAIN = "No control characters but tab, newline and carriage return (else 422)."
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000, description=_PLAIN)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000, description=_PLAIN)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=500, description=_PLAIN)]
# Codes and dates keep the pattern they are documented with, but Python's "$" also
# matches before a final newline: the domain checks codes whole (``check_slug``) and
# ``ClientIn`` the date, so "housing\n" is a 422 naming the field, never recorded.
Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["ngo"])]
Date = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", examples=["1984-03-02"])
]
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Closed vocabularies: each an ``enum`` in the document (casenet.api.docs); a request
# with another word is a 422 that lists the allowed ones (``Body``), and the domain
# checks again.
Role = Annotated[str, word_of(ROLES, "caseworker")]
Need = Annotated[str, word_of(NEED_CODES, "housing", description="A need (README: Needs).")]
NoteCategory = Annotated[str, word_of(NOTE_CATEGORIES, "health")]
Section = Annotated[str, word_of(SECTIONS, "identity")]
Purpose = Annotated[str, word_of(PURPOSES, "referral")]
Method = Annotated[str, word_of(METHODS, "written")]
GivenBy = Annotated[
    str,
    word_of(
        GIVERS,
        SELF,
        description="Who gave the consent: the client (`self`), or who may for them.",
    ),
]
Urgency = Annotated[str, word_of(URGENCIES, "routine")]
Outcome = Annotated[str, word_of(OUTCOMES, "got_help")]
#: A timestamp with an offset, between 1900-01-01 and 2200-01-01 UTC (else 422).
Instant = Annotated[
    datetime,
    msgspec.Meta(
        description="RFC 3339 with an offset, between 1900-01-01 and 2200-01-01 UTC.",
        examples=["2027-06-30T23:59:59Z"],
    ),
]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: an unknown field is a mistake worth a 400.

    Once decoded, every text of the body is checked for control characters and every
    instant for its offset and range (the domain's own rules, :mod:`casenet.domain.values`),
    so a 422 names the field; accepted instants are turned to UTC here.
    """

    #: How the fields of this body are named in an error (``client.`` for ``name`` in
    #: ``{"client": {"name": ...}}``).
    field_prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            field = f"{self.field_prefix}{name}"
            if isinstance(value, str):
                check_characters(value, field)
            elif isinstance(value, datetime):
                setattr(self, name, check_instant(value, field))
            elif isinstance(value, list):
                _check_items(value, field)
            words = vocabularies(type(self)).get(name)
            if words is not None and value is not None:  # an optional field left out
                for word in value if isinstance(value, list) else [value]:
                    check_choice(word, words, field)


@cache
def vocabularies(struct: type[msgspec.Struct]) -> dict[str, tuple[str, ...]]:
    """The fields of ``struct`` that hold words of a closed vocabulary (``word_of``),
    or lists of them: field name -> the words."""
    found: dict[str, tuple[str, ...]] = {}
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        words = vocabulary_of(field.type)
        if words is not None:
            found[field.name] = words
    return found


def vocabulary_of(kind: msgspec.inspect.Type) -> tuple[str, ...] | None:
    """The words a field of this type draws from (through ``| None`` and ``list``)."""
    if isinstance(kind, msgspec.inspect.UnionType):
        arms = [arm for arm in kind.types if not isinstance(arm, msgspec.inspect.NoneType)]
        return vocabulary_of(arms[0]) if len(arms) == 1 else None
    if isinstance(kind, msgspec.inspect.ListType):
        return vocabulary_of(kind.item_type)
    if isinstance(kind, msgspec.inspect.Metadata):
        words = (kind.extra or {}).get("vocabulary")
        return tuple(words) if words is not None else vocabulary_of(kind.type)
    return None


def _check_items(values: list[Any], field: str) -> None:
    for item in values:
        if isinstance(item, str):
            check_characters(item, field)


class ContactIn(Body):
    """A professional to call about a service (never a client)."""

    field_prefix = "services.contacts."

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, description=_PLAIN)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=40, examples=["+254 20 272 6300"])] | None = None
    email: Annotated[str, msgspec.Meta(max_length=254, examples=["desk@example.org"])] | None = None


Area = Annotated[str, msgspec.Meta(min_length=1, max_length=200, description=_PLAIN)]
Language = Annotated[str, msgspec.Meta(max_length=35, examples=["sw"], description="BCP 47")]


class ServiceIn(Body):
    """A service: the HSDS shape (``name``, ``needs``, ...), or the first directory's
    ``{type, description, area?}``, which stays accepted and means one need, one area."""

    field_prefix = "services."

    description: ShortText
    id: UUID | None = None
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, description=_PLAIN)] | None = (
        None
    )
    needs: Annotated[list[Need], msgspec.Meta(min_length=1, max_length=50)] | None = None
    languages: Annotated[list[Language], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )
    areas: Annotated[list[Area], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    eligibility: ShortText | None = None
    capacity: Capacity | None = None
    contacts: Annotated[list[ContactIn], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )
    type: Annotated[Need, msgspec.Meta(description="The first directory's shape.")] | None = None
    area: Area | None = None

    def to_domain(self) -> Service:
        if self.type is not None:
            newer = (self.name, self.needs, self.eligibility, self.capacity)
            if any(v is not None for v in newer) or self.areas or self.languages or self.contacts:
                raise InvalidInput("services.type", "is the first shape: send needs instead")
            return Service.of_type(type=self.type, description=self.description, area=self.area)
        if self.name is None or self.needs is None:
            raise InvalidInput(
                "services.name" if self.name is None else "services.needs", "is required"
            )
        if self.area is not None:
            raise InvalidInput("services.area", "is the first shape: send areas instead")
        return Service(
            id=self.id,
            name=self.name,
            description=self.description,
            needs=tuple(self.needs),
            languages=tuple(self.languages),
            areas=tuple(self.areas),
            eligibility=self.eligibility,
            capacity=self.capacity or "accepting",
            contacts=tuple(Contact(**msgspec.structs.asdict(c)) for c in self.contacts),
        )


class AgencyCreate(Body):
    name: Annotated[
        str,
        msgspec.Meta(
            min_length=1, max_length=200, examples=["Eastside Welfare"], description=_PLAIN
        ),
    ]
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
    services: list[ServiceView]


class ServicesReplace(Body):
    services: list[ServiceIn]


class WorkerCreate(Body):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, description=_PLAIN)]
    role: Role


class WorkerCreated(msgspec.Struct, kw_only=True):
    """The new worker; ``token`` is shown this once and stored only as a hash."""

    id: UUID
    name: str
    role: Role
    agency_id: UUID
    token: str


class WorkerView(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    role: Role
    agency_id: UUID
    active: bool


class WorkerList(msgspec.Struct, kw_only=True):
    """An agency's workers, active and revoked, in the order they were added; never a
    token (only its hash is stored, and that is not shown either)."""

    items: list[WorkerView]


class Me(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The caller: a worker of an agency, or the operator."""

    role: str
    worker: WorkerView | None = None
    agency: AgencyView | None = None


class ClientIn(Body):
    field_prefix = "client."

    name: Name
    date_of_birth: Date | None = None
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=50, description=_PLAIN)] | None = (
        None
    )
    address: ShortText | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.date_of_birth is not None and not _DATE.fullmatch(self.date_of_birth):
            raise InvalidInput("client.date_of_birth", "must be a date: YYYY-MM-DD")


class CaseCreate(Body):
    client: ClientIn
    summary: Text
    needs: list[Need] = msgspec.field(default_factory=list)


class NoteCreate(Body):
    text: Text
    category: NoteCategory


class Reason(Body):
    reason: ShortText


class ConsentCreate(Body):
    grantee_agency_id: UUID
    sections: Annotated[
        list[Section], msgspec.Meta(min_length=1, examples=[["identity", "notes.health"]])
    ]
    purpose: Purpose
    method: Method
    valid_until: Instant | None = None
    evidence: ShortText | None = None
    given_by: GivenBy = SELF
    #: Required unless ``given_by`` is ``self`` (then refused): personal, encrypted.
    representative_name: Name | None = None


class ReferralCreate(Body):
    case_id: UUID
    to_agency_id: UUID
    service_type: Need
    reason: Text
    urgency: Urgency
    consent_id: UUID | None = None


class Complete(Body):
    outcome: Outcome
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
    """A page of the feed; ``next`` is never null: where to resume from, for ever."""

    items: list[FeedItem]
    next: str
