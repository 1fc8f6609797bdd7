"""Appeals (rule 7): a call for help that carries no client data, posted by a
caseworker or supervisor, reaching the agency's partners or the whole network; relayed
by the agencies it reached to their partners (at most three hops); answered by them.

Who may see an appeal is decided on the read model first (the author, or an agency it
reached), so an appeal it never reached answers as a random id, whatever the role.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from casenet.application.actor import CASE_WRITERS, Actor
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.partnerships import PartnershipService
from casenet.application.store import CasenetApplication
from casenet.domain.aggregate import utcnow
from casenet.domain.appeal import NETWORK, REACHES, STATUSES, Appeal, AppealResponse
from casenet.domain.errors import InvalidInput, NotFound, check_expected_version
from casenet.domain.values import check_choice
from casenet.domain.vocabulary import NEED_CODES
from casenet.infrastructure.projections import appeals as appeals_model
from casenet.infrastructure.projections import directory as directory_model
from casenet.infrastructure.projections.appeals import AppealRow
from casenet.infrastructure.projections.facts import normalise_time

T = TypeVar("T")
MODELS = ["appeals"]


class AppealService:
    """Post, list, read, answer, relay and close appeals."""

    def __init__(self, app: CasenetApplication, partnerships: PartnershipService) -> None:
        self.app = app
        self.partnerships = partnerships

    def post(
        self,
        actor: Actor,
        *,
        need: str,
        title: str,
        text: str,
        area: str | None,
        expires_at: datetime,
        reach: str,
        new_id: UUID | None = None,
    ) -> Appeal:
        """A new appeal, reaching the author's partners (``partners``) or every agency
        of the network (``network``) as they are now."""
        agency_id = actor.require_agency()
        actor.require_role(CASE_WRITERS, "post an appeal")
        check_choice(need, NEED_CODES, "need")
        check_choice(reach, REACHES, "reach")
        if reach == NETWORK:
            rows = self.app.projections.current(
                ["directory"], lambda: directory_model.agencies_after(self.app.database, None)
            )
            reached = [UUID(row.agency_id) for row in rows]
        else:
            reached = self.partnerships.partners(agency_id)
        appeal = Appeal.post(
            agency_id=agency_id,
            worker_id=actor.require_worker(),
            need=need,
            title=title,
            text=text,
            area=area,
            expires_at=expires_at,
            reach=reach,
            reached=reached,
            now=utcnow(),
            new_id=new_id,
        )
        self.app.save(appeal)
        self.app.projections.ensure_current(MODELS)
        return appeal

    def visible(self, actor: Actor, appeal_id: UUID) -> Appeal:
        """The appeal, to a worker of its agency or of one it reached; else 404."""
        agency_id = actor.agency_id
        if agency_id is None or not self._read(
            lambda: appeals_model.reached(self.app.database, appeal_id, agency_id)
        ):
            raise NotFound("appeal not found")
        appeal = self.app.get(Appeal, appeal_id)
        appeal.check_visible_to(agency_id)
        return appeal

    def appeals(
        self, actor: Actor, *, status: str | None, limit: int | None, after: str | None
    ) -> Page[AppealRow]:
        """The appeals that reached the caller's agency, and its own, oldest first."""
        agency_id = actor.require_agency()
        if status is not None:
            check_choice(status, STATUSES, "status")
        limit = check_limit(limit)
        cursor = decode_cursor(after, 1)
        if cursor is not None and not cursor[0].isdigit():
            raise InvalidInput("after", "is not a cursor this list gave")
        position = int(cursor[0]) if cursor else 0
        now = normalise_time(utcnow())
        rows = self._read(
            lambda: appeals_model.agency_appeals(
                self.app.database,
                agency_id,
                status=status,
                now=now,
                after=position,
                limit=limit + 1,
            )
        )
        return page_of(rows, limit, lambda r: (str(r.position),))

    def respond(
        self, actor: Actor, appeal_id: UUID, *, answer: str, text: str | None
    ) -> tuple[Appeal, AppealResponse]:
        """Any worker of an agency it reached; 409 once it is closed or expired."""
        appeal = self.visible(actor, appeal_id)
        response = appeal.respond(
            agency_id=actor.require_agency(),
            worker_id=actor.require_worker(),
            answer=answer,
            text=text,
            now=utcnow(),
        )
        self.app.save(appeal)
        self.app.projections.ensure_current(MODELS)
        return appeal, response

    def relay(self, actor: Actor, appeal_id: UUID) -> tuple[Appeal, int]:
        """Pass it to the caller's agency's partners; how many it newly reached."""
        appeal = self.visible(actor, appeal_id)
        agency_id = actor.require_agency()
        reached = appeal.relay(
            agency_id=agency_id,
            worker_id=actor.require_worker(),
            partners=self.partnerships.partners(agency_id),
            now=utcnow(),
        )
        if reached:
            self.app.save(appeal)
            self.app.projections.ensure_current(MODELS)
        return appeal, reached

    def close(
        self, actor: Actor, appeal_id: UUID, *, reason: str, expected_version: int | None = None
    ) -> Appeal:
        """A worker of the appealing agency; 409 once closed or expired."""
        appeal = self.visible(actor, appeal_id)
        actor.require_role(CASE_WRITERS, "close an appeal")
        check_expected_version(expected_version, appeal.version)
        appeal.close(
            agency_id=actor.require_agency(),
            worker_id=actor.require_worker(),
            reason=reason,
            now=utcnow(),
        )
        self.app.save(appeal)
        self.app.projections.ensure_current(MODELS)
        return appeal

    def _read(self, read: Callable[[], T]) -> T:
        return self.app.projections.current(MODELS, read)
