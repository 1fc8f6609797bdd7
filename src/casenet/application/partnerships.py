"""Partnerships: an agency's admin asks another agency to work together; the other's
admin accepts or declines; either side ends it. Only the two agencies ever see it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from casenet.application.actor import ADMIN, Actor
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.store import CasenetApplication
from casenet.domain.agency import Agency
from casenet.domain.errors import IllegalTransition, InvalidInput, NotFound, check_expected_version
from casenet.domain.partnership import LIVE, Partnership, pair_partnership_id
from casenet.infrastructure.projections import partnerships as partnerships_model
from casenet.infrastructure.projections.partnerships import PartnershipRow

T = TypeVar("T")
MODELS = ["partnerships"]


class PartnershipService:
    """Request, answer, end and list partnerships; the partners an appeal reaches."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app

    def request(self, actor: Actor, agency_id: UUID) -> Partnership:
        """An admin asks ``agency_id``: 422 for itself or an unknown agency, 409 while
        the pair has a partnership requested or active."""
        requester = actor.require_agency()
        actor.require_role({ADMIN}, "ask for a partnership")
        if agency_id == requester:
            raise InvalidInput("agency_id", "must be another agency than the caller's")
        try:
            self.app.get(Agency, agency_id, personal=False)
        except NotFound:
            raise InvalidInput("agency_id", "is not an agency of the network") from None
        earlier = self._read(
            lambda: partnerships_model.pair_partnerships(self.app.database, requester, agency_id)
        )
        if any(row.status in LIVE for row in earlier):
            raise IllegalTransition("the agencies' partnership", "live", "ask again")
        partnership = Partnership.request(
            # The pair's n-th id: a request racing this one writes the same aggregate (409).
            partnership_id=pair_partnership_id(requester, agency_id, len(earlier)),
            requester=requester,
            partner=agency_id,
            worker_id=actor.require_worker(),
        )
        self.app.save(partnership)
        self.app.projections.ensure_current(MODELS)
        return partnership

    def visible(self, actor: Actor, partnership_id: UUID) -> Partnership:
        """The partnership, to a worker of either agency; as a random id to anyone else."""
        row = self._read(lambda: partnerships_model.partnership(self.app.database, partnership_id))
        agency_id = actor.agency_id
        if row is None or str(agency_id) not in (row.requester_agency_id, row.partner_agency_id):
            raise NotFound("partnership not found")
        return self.app.get(Partnership, partnership_id)

    def answer(
        self,
        actor: Actor,
        partnership_id: UUID,
        action: str,
        *,
        expected_version: int | None = None,
    ) -> Partnership:
        """``accept``, ``decline`` (the asked agency's admin) or ``end`` (either's)."""
        partnership = self.visible(actor, partnership_id)
        actor.require_role({ADMIN}, f"{action} a partnership")
        check_expected_version(expected_version, partnership.version)
        agency_id, worker_id = actor.require_agency(), actor.require_worker()
        if action == "accept":
            partnership.accept(agency_id=agency_id, worker_id=worker_id)
        elif action == "decline":
            partnership.decline(agency_id=agency_id, worker_id=worker_id)
        else:
            partnership.end(agency_id=agency_id, worker_id=worker_id)
        self.app.save(partnership)
        self.app.projections.ensure_current(MODELS)
        return partnership

    def of_agency(
        self, actor: Actor, *, limit: int | None, after: str | None
    ) -> Page[PartnershipRow]:
        """The caller's agency's partnerships requested or active, oldest first."""
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        cursor = decode_cursor(after, 1)
        if cursor is not None and not cursor[0].isdigit():
            raise InvalidInput("after", "is not a cursor this list gave")
        position = int(cursor[0]) if cursor else 0
        rows = self._read(
            lambda: partnerships_model.agency_partnerships(
                self.app.database, agency_id, after=position, limit=limit + 1
            )
        )
        return page_of(rows, limit, lambda r: (str(r.position),))

    def partners(self, agency_id: UUID) -> list[UUID]:
        """The agencies ``agency_id`` works with now (an appeal's reach, a relay's)."""
        return self._read(lambda: partnerships_model.active_partners(self.app.database, agency_id))

    def _read(self, read: Callable[[], T]) -> T:
        return self.app.projections.current(MODELS, read)
