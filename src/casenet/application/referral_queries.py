"""Reading referrals: the inbox, the outbox, and a referral as each party may see it.

As for cases (``case_queries``): the read model is asked first, scoped to the caller's
agency, and nothing is loaded for a referral the caller is not a party to.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import msgspec

from casenet.application.actor import Actor
from casenet.application.case_queries import CaseQueries
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.rendering import render_client, render_referral, render_referral_item
from casenet.application.store import CasenetApplication
from casenet.application.views import ClientView, ReferralListItem, ReferralView
from casenet.domain.client import Client
from casenet.domain.errors import InvalidInput, NotFound
from casenet.domain.referral import Referral
from casenet.domain.sections import IDENTIFYING
from casenet.infrastructure.projections import referrals as referrals_model
from casenet.infrastructure.projections.facts import normalise_time

#: ``?direction=``: whether the list is of referrals to the caller's agency.
DIRECTIONS = {"incoming": True, "outgoing": False}


class ReferralQueries:
    """Referral inbox, outbox, and the referral as each party may see it."""

    def __init__(self, app: CasenetApplication, cases: CaseQueries) -> None:
        self.app = app
        self.cases = cases

    def list(
        self,
        actor: Actor,
        *,
        direction: str,
        status: str | None,
        limit: int | None,
        after: str | None,
    ) -> Page[ReferralListItem]:
        """GET /v1/referrals: the agency's inbox (``incoming``) or outbox, oldest first."""
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        incoming = DIRECTIONS.get(direction)
        if incoming is None:
            raise InvalidInput("direction", "must be incoming or outgoing")
        cursor = decode_cursor(after, 2)
        rows = self.app.projections.current(
            ["referrals"],
            lambda: referrals_model.agency_referrals(
                self.app.database,
                agency_id,
                incoming=incoming,
                status=status,
                after=cursor,
                limit=limit + 1,
            ),
        )
        items = [render_referral_item(r) for r in rows]
        return page_of(items, limit, lambda i: (normalise_time(i.created_at), str(i.id)))

    def party_referral(self, actor: Actor, referral_id: UUID, *, personal: bool = True) -> Referral:
        """The referral, if the actor's agency is one of its two parties: checked on the
        read model before the referral is loaded (no existence oracle)."""
        agency_id = actor.agency_id
        if agency_id is None or not self.app.projections.current(
            ["referrals"],
            lambda: referrals_model.is_party(self.app.database, referral_id, agency_id),
        ):
            raise NotFound("referral not found")
        return self.app.get(Referral, referral_id, personal=personal)

    def read(self, actor: Actor, referral_id: UUID) -> ReferralView:
        """GET /v1/referrals/{id}: client sections for the receiver only as consent grants."""
        referral = self.party_referral(actor, referral_id)
        assert actor.agency_id is not None
        client_view: ClientView | msgspec.UnsetType = msgspec.UNSET
        try:
            case, grant = self.cases.visible_case(actor, referral.case_id, personal=False)
        except NotFound:
            pass
        else:
            client = self.app.get(Client, case.client_id)
            client_view = render_client(client, grant.sections)
            if client_view is not msgspec.UNSET:
                # What this view discloses is the client's identity and contact only.
                shown = tuple(s for s in grant.sections if s in IDENTIFYING)
                self.cases.record_disclosure(actor, case, replace(grant, sections=shown))
        return render_referral(referral, client_view)
