"""The directory's services as the API shows them (``/v1/agencies``, ``/v1/services``)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from casenet.domain.service import CAPACITIES, Contact
from casenet.domain.vocabulary import NEED_CODES, word_of

Capacity = Annotated[str, word_of(CAPACITIES, "accepting")]
NeedWord = Annotated[str, word_of(NEED_CODES, "housing", description="A need (README: Needs).")]


class ServiceView(msgspec.Struct, kw_only=True):
    """A service (HSDS 3.0 in meaning). ``type`` and ``area`` are the first need and area:
    the shape of the first directory, kept for the clients that read it."""

    id: UUID
    agency_id: UUID
    name: str
    description: str
    needs: list[NeedWord]
    languages: list[str]
    areas: list[str]
    eligibility: str | None
    capacity: Capacity
    contacts: list[Contact]
    type: NeedWord
    area: str | None


class ServiceFound(ServiceView, kw_only=True):
    """A service the search found, with the agency that offers it. ``agency_restricted``:
    the agency never discloses a client's identifying sections, whatever a consent says."""

    agency_name: str
    agency_restricted: bool


class ServicePage(msgspec.Struct, kw_only=True):
    items: list[ServiceFound]
    next: str | None
