"""A client (the data subject): identity and contact, and their erasure."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, PersonalText, when
from casenet.domain.errors import ClientAlreadyErased, NotPermitted
from casenet.domain.values import check_optional_text, check_text


class ClientRegistered(DomainEvent, frozen=True, kw_only=True):
    """A client's identity (name, date of birth) and contact (phone, address)."""

    registered_by_agency_id: UUID
    name: PersonalText
    date_of_birth: PersonalText
    phone: PersonalText
    address: PersonalText

    #: The client is the aggregate itself: its id names the data key.
    subject_field: ClassVar[str] = "originator_id"


class ClientErased(DomainEvent, frozen=True, kw_only=True):
    """The client's data key was destroyed: their personal data is unreadable for ever."""

    erased_by_worker_id: UUID | None

    subject_field: ClassVar[str] = "originator_id"


class SubjectAccessProvided(DomainEvent, frozen=True, kw_only=True):
    """A copy of everything held about the client was made for them (GDPR Art. 15), at
    the request of a worker of the agency that registered them: who asked, and when."""

    requested_by_agency_id: UUID
    requested_by_worker_id: UUID

    subject_field: ClassVar[str] = "originator_id"


class SubjectAccess:
    """One copy made for the client: when, and who asked for it."""

    __slots__ = ("agency_id", "at", "worker_id")

    def __init__(self, event: SubjectAccessProvided) -> None:
        self.at = event.timestamp
        self.agency_id = event.requested_by_agency_id
        self.worker_id = event.requested_by_worker_id


class Client(Aggregate):
    """The person a case is about; registered by one agency."""

    registered_by_agency_id: UUID
    name: str | None
    date_of_birth: str | None
    phone: str | None
    address: str | None
    erased: bool
    erased_at: datetime | None
    subject_accesses: list[SubjectAccess]

    @classmethod
    def register(
        cls,
        *,
        agency_id: UUID,
        name: str,
        date_of_birth: str | None = None,
        phone: str | None = None,
        address: str | None = None,
        new_id: UUID | None = None,
    ) -> Client:
        check_text(name, "client.name", max_length=500)
        check_optional_text(date_of_birth, "client.date_of_birth", max_length=500)
        check_optional_text(phone, "client.phone", max_length=500)
        check_optional_text(address, "client.address", max_length=2_000)
        return cls._start(
            new_id or uuid4(),
            ClientRegistered,
            registered_by_agency_id=agency_id,
            name=name,
            date_of_birth=date_of_birth,
            phone=phone,
            address=address,
        )

    def erase(self, *, agency_id: UUID | None, worker_id: UUID | None) -> None:
        """Crypto-shred the client. ``agency_id`` None is the operator (the CLI)."""
        if agency_id is not None and agency_id != self.registered_by_agency_id:
            raise NotPermitted("only the agency that registered a client may erase them")
        if self.erased:
            raise ClientAlreadyErased("client", "erased", "erase again")
        self._record(ClientErased, erased_by_worker_id=worker_id)

    def provide_subject_access(self, *, agency_id: UUID, worker_id: UUID) -> None:
        """Record that a copy of the client's data is made for them (after an erasure
        too: what is left, and that it was erased, is theirs to know)."""
        if agency_id != self.registered_by_agency_id:
            raise NotPermitted("only the agency that registered a client answers their request")
        self._record(
            SubjectAccessProvided,
            requested_by_agency_id=agency_id,
            requested_by_worker_id=worker_id,
        )

    @when(ClientRegistered)
    def _registered(self, event: ClientRegistered) -> None:
        self.registered_by_agency_id = event.registered_by_agency_id
        self.name = event.name
        self.date_of_birth = event.date_of_birth
        self.phone = event.phone
        self.address = event.address
        self.erased = False
        self.erased_at = None
        self.subject_accesses = []

    @when(ClientErased)
    def _erased(self, event: ClientErased) -> None:
        self.erased = True
        self.erased_at = event.timestamp
        self.name = self.date_of_birth = self.phone = self.address = None

    @when(SubjectAccessProvided)
    def _subject_access_provided(self, event: SubjectAccessProvided) -> None:
        self.subject_accesses.append(SubjectAccess(event))
