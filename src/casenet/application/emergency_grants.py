"""Emergency grants (rule 2b): create, revoke, review, and the lists the owner reads.

Only the owning agency may know an emergency grant exists: every lookup by id is
scoped to the caller's agency on the read model before anything is loaded, so a
grantee, an unrelated agency and a random id all meet the same NotFound.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from casenet.application.actor import CASE_WRITERS, SUPERVISOR, Actor
from casenet.application.case_queries import CASE_OVERSEERS, case_owned_by
from casenet.application.cases import CaseService
from casenet.application.consents import ConsentService
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.store import CasenetApplication
from casenet.domain.aggregate import shown, utcnow
from casenet.domain.emergency import EmergencyGrant
from casenet.domain.errors import InvalidInput, NotFound, check_expected_version
from casenet.infrastructure.projections import consents as consents_model

#: ``GET /v1/emergency-grants?review=``: not yet reviewed; and of those, past due.
PENDING = "pending"
OVERDUE = "overdue"
REVIEW_FILTERS = (PENDING, OVERDUE)


class EmergencyReviewView(msgspec.Struct, kw_only=True):
    """The review of an emergency grant, after the fact."""

    finding: str
    note: str | None
    reviewer_worker_id: UUID
    reviewed_at: datetime


class EmergencyGrantView(msgspec.Struct, kw_only=True):
    """An emergency grant as the owning agency sees it; ``status`` is computed now."""

    id: UUID
    version: int
    case_id: UUID
    client_id: UUID
    grantee_agency_id: UUID
    sections: list[str]
    basis: str
    justification: str | None
    minutes: int
    status: str
    created_at: datetime
    expires_at: datetime
    review_due_at: datetime
    created_by: UUID
    revoked_at: datetime | None
    review: EmergencyReviewView | UnsetType = UNSET


def render_emergency_grant(grant: EmergencyGrant, at: datetime | None = None) -> EmergencyGrantView:
    """The grant with its status at ``at`` (now by default)."""
    shown(grant)
    view = EmergencyGrantView(
        id=grant.id,
        version=grant.version,
        case_id=grant.case_id,
        client_id=grant.client_id,
        grantee_agency_id=grant.grantee_agency_id,
        sections=list(grant.sections),
        basis=grant.basis,
        justification=grant.justification,
        minutes=grant.minutes,
        status=grant.status_at(at or utcnow()),
        created_at=grant.created_at,
        expires_at=grant.expires_at,
        review_due_at=grant.review_due_at,
        created_by=grant.created_by_worker_id,
        revoked_at=grant.revoked_at,
    )
    if grant.finding is not None:
        assert grant.reviewer_worker_id is not None
        assert grant.reviewed_at is not None
        view.review = EmergencyReviewView(
            finding=grant.finding,
            note=grant.review_note,
            reviewer_worker_id=grant.reviewer_worker_id,
            reviewed_at=grant.reviewed_at,
        )
    return view


class EmergencyGrantService:
    """Only the owning agency creates, revokes, reviews and lists its emergency grants."""

    def __init__(
        self, app: CasenetApplication, cases: CaseService, consents: ConsentService
    ) -> None:
        self.app = app
        self.db = app.database
        self.cases = cases
        self.consents = consents

    def _require_owner(self, actor: Actor, case_id: UUID) -> None:
        """NotFound unless the actor's agency owns the case: a grantee learns nothing of
        the owner's emergency grants here (its own show in the case view)."""
        agency_id = actor.agency_id
        if agency_id is None:
            raise NotFound("case not found")
        if self.cases.queries.parties.owners_client(case_id, agency_id) is not None:
            return
        if not case_owned_by(self.app, case_id, agency_id):
            raise NotFound("case not found")

    def create(
        self,
        actor: Actor,
        case_id: UUID,
        *,
        grantee_agency_id: UUID,
        sections: list[str],
        basis: str,
        justification: str,
        minutes: int,
        new_id: UUID | None = None,
    ) -> EmergencyGrant:
        """Caseworkers and supervisors of the owner, to another agency of the network."""
        self._require_owner(actor, case_id)
        case = self.cases.owned_case(actor, case_id, personal=False)
        actor.require_role(CASE_WRITERS, "create an emergency grant")
        if (existing := self.app.find(EmergencyGrant, new_id)) is not None:
            return self.owned_grant(actor, existing.id)
        self.consents.check_agency_exists(grantee_agency_id, "grantee_agency_id")
        grant = EmergencyGrant.create(
            case_id=case.id,
            client_id=case.client_id,
            owner_agency_id=case.owner_agency_id,
            recording_agency_id=actor.require_agency(),
            grantee_agency_id=grantee_agency_id,
            sections=sections,
            basis=basis,
            justification=justification,
            minutes=minutes,
            worker_id=actor.require_worker(),
            new_id=new_id,
        )
        self.app.save(grant)
        return grant

    def owned_grant(self, actor: Actor, grant_id: UUID) -> EmergencyGrant:
        """The grant, for workers of the agency that owns its case; decided on the read
        model before the grant is loaded (no existence oracle)."""
        agency_id = actor.agency_id
        if agency_id is None or not self.app.projections.current(
            ["consents"],
            lambda: consents_model.emergency_grant_owned_by(self.db, grant_id, agency_id),
        ):
            raise NotFound("emergency grant not found")
        return self.app.get(EmergencyGrant, grant_id)

    def of_case(self, actor: Actor, case_id: UUID) -> list[EmergencyGrant]:
        """GET /v1/cases/{id}/emergency-grants: all of the case's, any status."""
        self._require_owner(actor, case_id)
        grant_ids = self.app.projections.current(
            ["consents"], lambda: consents_model.emergency_grant_ids_of_case(self.db, case_id)
        )
        return self._load(grant_ids)

    def _load(self, grant_ids: list[UUID]) -> list[EmergencyGrant]:
        """The grants, from one statement."""
        found = self.app.get_all(*((EmergencyGrant, g) for g in grant_ids)) if grant_ids else []
        return [g for g in found if isinstance(g, EmergencyGrant)]

    def revoke(
        self, actor: Actor, grant_id: UUID, *, reason: str, expected_version: int | None = None
    ) -> EmergencyGrant:
        """Caseworkers and supervisors of the owner; 409 unless it is active."""
        grant = self.owned_grant(actor, grant_id)
        actor.require_role(CASE_WRITERS, "revoke an emergency grant")
        check_expected_version(expected_version, grant.version)
        grant.revoke(
            recording_agency_id=actor.require_agency(),
            worker_id=actor.require_worker(),
            reason=reason,
        )
        self.app.save(grant)
        return grant

    def review(
        self,
        actor: Actor,
        grant_id: UUID,
        *,
        finding: str,
        note: str,
        expected_version: int | None = None,
    ) -> EmergencyGrant:
        """A supervisor of the owner who did not create it; a second review is 409."""
        grant = self.owned_grant(actor, grant_id)
        actor.require_role(frozenset({SUPERVISOR}), "review an emergency grant")
        check_expected_version(expected_version, grant.version)
        grant.review(
            reviewing_agency_id=actor.require_agency(),
            reviewer_worker_id=actor.require_worker(),
            finding=finding,
            note=note,
        )
        self.app.save(grant)
        return grant

    def awaiting_review(
        self, actor: Actor, *, review: str, limit: int | None, after: str | None
    ) -> Page[EmergencyGrantView]:
        """GET /v1/emergency-grants?review=: the agency's grants not yet reviewed
        (``pending``), or not reviewed and past ``review_due_at`` (``overdue``)."""
        agency_id = actor.require_agency()
        actor.require_role(CASE_OVERSEERS, "see the emergency grants awaiting review")
        if review not in REVIEW_FILTERS:
            raise InvalidInput("review", f"must be one of {', '.join(REVIEW_FILTERS)}")
        limit = check_limit(limit)
        cursor = decode_cursor(after, 2)
        now = utcnow()
        rows = self.app.projections.current(
            ["consents"],
            lambda: consents_model.grants_awaiting_review(
                self.db,
                agency_id,
                due_by=now if review == OVERDUE else None,
                after=cursor,
                limit=limit + 1,
            ),
        )
        page = page_of(rows, limit, lambda row: row)
        grants = self._load([UUID(grant_id) for _, grant_id in page.items])
        return Page([render_emergency_grant(g, now) for g in grants], page.next)
