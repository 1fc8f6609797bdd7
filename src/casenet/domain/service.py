"""A service an agency offers, as Open Referral's HSDS 3.0 means one: the needs it meets,
in which languages and areas, for whom, whether it takes people now, and the
professionals to call.

The first directory had ``{type, description, area}``; that shape is still accepted
(:meth:`Service.of_type`) and still replays (:func:`upcast_service`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4, uuid5

import msgspec

from casenet.domain.errors import InvalidInput
from casenet.domain.values import (
    check_choice,
    check_optional_text,
    check_text,
    forbidden_character,
)
from casenet.domain.vocabulary import check_need

#: Whether a service takes people now.
CAPACITIES = ("accepting", "waitlist", "not_accepting")

#: A well-formed BCP 47 language tag (RFC 5646's langtag, without grandfathered tags):
#: language, then optional script, region, variants, extensions, private use.
_BCP47 = re.compile(
    r"([a-z]{2,3}(-[a-z]{3}){0,3}|[a-z]{4,8})"  # language (with extlangs)
    r"(-[a-z]{4})?(-([a-z]{2}|[0-9]{3}))?"  # script, region
    r"(-([a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"  # variants
    r"(-[0-9a-wy-z](-[a-z0-9]{2,8})+)*"  # extensions
    r"(-x(-[a-z0-9]{1,8})+)?",  # private use
    re.ASCII | re.IGNORECASE,
)
_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{2,38}", re.ASCII)
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}")

#: Bounds that keep one agency's list readable in one response.
MAX_SERVICES = 200
MAX_ITEMS = 50

#: Ids of services recorded before services had ids: derived from the agency and the
#: service's place in its list, so every replay gives the same ones.
_LEGACY_IDS = UUID("6f1c2a54-2d0e-4b8f-9a57-0c3e1d7b9a21")


class Contact(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A professional to call about a service (never a client)."""

    name: str
    title: str | None = None
    phone: str | None = None
    email: str | None = None


class Service(msgspec.Struct, frozen=True, kw_only=True):
    """A service of an agency. ``id`` is None only in events recorded before services had
    ids; the agency gives those one (:func:`with_ids`)."""

    id: UUID | None = None
    name: str
    description: str
    needs: tuple[str, ...]
    languages: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    eligibility: str | None = None
    capacity: str = "accepting"
    contacts: tuple[Contact, ...] = ()

    @classmethod
    def of_type(cls, type: str, description: str, area: str | None = None) -> Service:
        """The first directory's shape: one need, one optional area, named for its need."""
        return cls(
            name=type.replace("_", " ").capitalize(),
            description=description,
            needs=(type,),
            areas=() if area is None else (area,),
        )

    @property
    def type(self) -> str:
        """The first need: what the first directory called the service's type."""
        return self.needs[0]

    @property
    def area(self) -> str | None:
        """The first area, or None: the first directory's one area."""
        return self.areas[0] if self.areas else None


def upcast_service(state: dict[str, Any]) -> dict[str, Any]:
    """A version 1 service (``{type, description, area}``) as version 2 has it."""
    area = state.get("area")
    return {
        "name": state["type"].replace("_", " ").capitalize(),
        "description": state["description"],
        "needs": [state["type"]],
        "areas": [] if area is None else [area],
    }


def with_ids(agency_id: UUID, services: Sequence[Service]) -> tuple[Service, ...]:
    """``services`` with an id each: one recorded without is given one derived from the
    agency and its place in the list (stable over every replay, on every store)."""
    return tuple(
        s
        if s.id is not None
        else msgspec.structs.replace(s, id=uuid5(_LEGACY_IDS, f"{agency_id}/{at}"))
        for at, s in enumerate(services)
    )


def check_language(tag: str, field: str) -> str:
    """A well-formed BCP 47 tag (``en``, ``pt-BR``, ``zh-Hant-TW``), as given."""
    if len(tag) > 35 or not _BCP47.fullmatch(tag):
        raise InvalidInput(field, "must be a BCP 47 language tag, such as en, sw or pt-BR")
    return tag


def check_contact(contact: Contact) -> Contact:
    check_text(contact.name, "services.contacts.name", max_length=200)
    check_optional_text(contact.title, "services.contacts.title", max_length=200)
    if contact.phone is not None and not _PHONE.fullmatch(contact.phone):
        raise InvalidInput("services.contacts.phone", "must be a phone number")
    if contact.email is not None and (
        forbidden_character(contact.email) is not None or not _EMAIL.fullmatch(contact.email)
    ):
        raise InvalidInput("services.contacts.email", "must be an email address")
    return contact


def check_service(service: Service) -> Service:
    # The needs first: a service of the first shape is named after its one need.
    if not service.needs:
        raise InvalidInput("services.needs", "must name at least one need")
    for need in service.needs:
        check_need(need, "services.needs")
    check_text(service.name, "services.name", max_length=200)
    check_text(service.description, "services.description", max_length=2_000)
    for bounded, field in (
        (service.needs, "needs"),
        (service.languages, "languages"),
        (service.areas, "areas"),
        (service.contacts, "contacts"),
    ):
        if len(bounded) > MAX_ITEMS:
            raise InvalidInput(f"services.{field}", f"must have at most {MAX_ITEMS} items")
    for tag in service.languages:
        check_language(tag, "services.languages")
    for area in service.areas:
        check_text(area, "services.areas", max_length=200)
    check_optional_text(service.eligibility, "services.eligibility", max_length=2_000)
    check_choice(service.capacity, CAPACITIES, "services.capacity")
    for contact in service.contacts:
        check_contact(contact)
    return service


def check_services(services: Sequence[Service], current: Sequence[Service]) -> tuple[Service, ...]:
    """The list an agency records: each service checked, names distinct (case aside),
    and each with an id: its own, else that of the current service of the same name
    (so sending a list again keeps its ids), else a new one."""
    if len(services) > MAX_SERVICES:
        raise InvalidInput("services", f"must have at most {MAX_SERVICES} services")
    by_name = {s.name.casefold(): s.id for s in current}
    names: set[str] = set()
    ids: set[UUID] = set()
    settled: list[Service] = []
    for service in services:
        check_service(service)
        name = service.name.casefold()
        if name in names:
            raise InvalidInput("services.name", "must differ from the agency's other services")
        service_id = service.id or by_name.get(name) or uuid4()
        if service_id in ids:
            raise InvalidInput("services.id", "must differ from the agency's other services")
        names.add(name)
        ids.add(service_id)
        settled.append(msgspec.structs.replace(service, id=service_id))
    return tuple(settled)
