"""The network's directory of services: "who can help with X here, in this language",
and the same directory as Open Referral HSDS 3.0 (``casenet.application.hsds``).

Restricted agencies (a domestic-violence refuge, say) are listed like any other: they
exist to be found by the agencies that refer to them, and the directory holds nothing of
their clients. It holds no address of any agency (casenet keeps no locations), so a
refuge's whereabouts are never in it; ``restricted`` is shown so that a referring worker
knows the refuge will disclose no identifying section of a client, whatever a consent says.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import msgspec

from casenet.application.actor import Actor
from casenet.application.pages import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from casenet.application.store import CasenetApplication
from casenet.domain.agency import Agency
from casenet.domain.errors import InvalidInput, NotFound
from casenet.domain.service import CAPACITIES, Service, check_language
from casenet.domain.values import check_choice, check_text
from casenet.domain.vocabulary import check_need
from casenet.infrastructure.projections import directory as directory_model
from casenet.infrastructure.projections.directory import ServiceFilter

_SERVICE = msgspec.json.Decoder(Service)


@dataclass(frozen=True)
class ListedService:
    """A service of the directory, with the agency that offers it."""

    service: Service
    agency_id: UUID
    agency_name: str
    restricted: bool

    @property
    def id(self) -> UUID:
        assert self.service.id is not None  # every listed service has one (with_ids)
        return self.service.id


def check_filter(
    *,
    need: str | None,
    area: str | None,
    language: str | None,
    capacity: str | None,
    text: str | None,
) -> ServiceFilter:
    """A search's filters, each checked as the field it matches is (422 naming it)."""
    if need is not None:
        check_need(need, "need")
    if area is not None:
        check_text(area, "area", max_length=200)
    if language is not None:
        check_language(language, "language")
    if capacity is not None:
        check_choice(capacity, CAPACITIES, "capacity")
    if text is not None:
        check_text(text, "q", max_length=200)
    return ServiceFilter(need=need, area=area, language=language, capacity=capacity, text=text)


def _listed(row: directory_model.FoundService) -> ListedService:
    return ListedService(
        service=_SERVICE.decode(row.body),
        agency_id=UUID(row.agency_id),
        agency_name=row.agency_name,
        restricted=bool(row.restricted),
    )


class ServiceDirectory:
    """Any worker's view of the network's services (read from the directory model)."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app

    def search(
        self, actor: Actor, wanted: ServiceFilter, *, limit: int | None, after: str | None
    ) -> Page[ListedService]:
        """Services matching ``wanted``, by id, a page at a time."""
        del actor  # any worker, or the operator, reads the whole directory
        limit = check_limit(limit)
        cursor = decode_cursor(after, 2)
        key = (cursor[0], cursor[1]) if cursor else None
        db = self.app.database
        rows = self.app.projections.current(
            ["directory"], lambda: directory_model.services_after(db, wanted, key, limit + 1)
        )
        found = [_listed(row) for row in rows[:limit]]
        last = found[-1] if len(rows) > limit else None
        return Page(found, encode_cursor(str(last.id), str(last.agency_id)) if last else None)

    def service(self, actor: Actor, service_id: UUID) -> ListedService:
        """One service by id; NotFound for an id the directory does not hold."""
        del actor
        db = self.app.database
        row = self.app.projections.current(
            ["directory"], lambda: directory_model.service_by_id(db, service_id)
        )
        if row is None:
            raise NotFound("service not found")
        return _listed(row)

    def numbered_page(
        self, actor: Actor, *, page: int | None, per_page: int | None
    ) -> tuple[int, list[ListedService]]:
        """Page ``page`` (from 1) of every service, ``per_page`` a page (the HSDS API's
        pages), and how many services there are in all."""
        del actor
        number = 1 if page is None else page
        if not 1 <= number <= 1_000_000:
            raise InvalidInput("page", "must be between 1 and 1000000")
        size = DEFAULT_LIMIT if per_page is None else per_page
        if not 1 <= size <= MAX_LIMIT:
            raise InvalidInput("per_page", f"must be between 1 and {MAX_LIMIT}")
        db = self.app.database
        total, rows = self.app.projections.current(
            ["directory"],
            lambda: directory_model.services_window(db, (number - 1) * size, size),
        )
        return total, [_listed(row) for row in rows]

    def owner_of(self, service_id: UUID) -> UUID | None:
        """The agency that lists a service of this id; None if none does."""
        db = self.app.database
        row = self.app.projections.current(
            ["directory"], lambda: directory_model.service_by_id(db, service_id)
        )
        return None if row is None else UUID(row.agency_id)

    def organization(self, actor: Actor, agency_id: UUID) -> tuple[Agency, list[ListedService]]:
        """An agency and its services, as the directory lists them."""
        del actor
        agency = self.app.get(Agency, agency_id)
        listed = [
            ListedService(s, agency.id, agency.name, agency.restricted) for s in agency.services
        ]
        return agency, listed
