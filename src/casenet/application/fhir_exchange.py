"""What the FHIR API (``/fhir``) reads and changes, through the same queries, policy
and services as the REST API: a FHIR resource is a mapping (``casenet.fhir``) of a
view this module returns, and a Task's status moves by :meth:`ReferralService.move`,
the service behind ``POST /v1/referrals/{id}/accept`` and the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import msgspec

from casenet.application.actor import CASE_WRITERS, Actor
from casenet.application.case_queries import CaseQueries
from casenet.application.referral_queries import ReferralQueries
from casenet.application.referrals import ReferralService
from casenet.application.rendering import render_consent, render_referral
from casenet.application.store import CasenetApplication
from casenet.application.views import CaseView, ConsentView, ReferralView
from casenet.domain.consent import Consent
from casenet.domain.errors import IllegalTransition, InvalidInput, NotFound, NotPermitted
from casenet.domain.referral import LIFECYCLE, REQUESTED
from casenet.infrastructure.projections import referrals as referrals_model


@dataclass(frozen=True)
class OwnedConsent:
    """A consent's view and the agency that owns its case (the FHIR Consent's manager)."""

    view: ConsentView
    owner_agency_id: UUID


@dataclass(frozen=True)
class CaseRecord:
    """A case as the caller's agency may see it, with the consents and referrals of it
    that agency may see: the owner all of them; a grantee the consents it reads under
    and the referrals made to it."""

    case: CaseView
    consents: list[OwnedConsent] = field(default_factory=list)
    referrals: list[ReferralView] = field(default_factory=list)


@dataclass(frozen=True)
class TaskMove:
    """A Task's new status as the referral action that reaches it (None: ``requested``,
    which no action reaches), with what the action takes."""

    target_status: str
    action: str | None
    #: The id the Task names itself by, if it does (it must be the referral's).
    task_id: str | None = None
    reason: str | None = None
    outcome: str | None = None
    note: str | None = None


class FhirExchange:
    """The reads and the one write of ``/fhir``."""

    def __init__(
        self,
        app: CasenetApplication,
        cases: CaseQueries,
        referral_queries: ReferralQueries,
        referrals: ReferralService,
    ) -> None:
        self.app = app
        self.cases = cases
        self.referral_queries = referral_queries
        self.referrals = referrals

    def referral(self, actor: Actor, referral_id: UUID) -> ReferralView:
        """The referral for either party, without the client (a Task or ServiceRequest
        shows no client section, so nothing is disclosed by reading one)."""
        referral = self.referral_queries.party_referral(actor, referral_id)
        return render_referral(referral, msgspec.UNSET)

    def consent(self, actor: Actor, consent_id: UUID) -> OwnedConsent:
        """A consent, for the agency that owns its case (as ``GET /v1/consents/{id}``)."""
        consent = self.cases.consent(actor, consent_id)
        return OwnedConsent(render_consent(consent), consent.owner_agency_id)

    def case_record(self, actor: Actor, case_id: UUID) -> CaseRecord:
        """The case as ``GET /v1/cases/{id}`` gives it (a grantee's read recorded as a
        disclosure), its consents and referrals as above; NotFound as for that read."""
        case = self.cases.read_case(actor, case_id)
        owner = actor.agency_id is not None and case.owner_agency_id.int == actor.agency_id.int
        if owner:
            consents = [
                OwnedConsent(view, case.owner_agency_id)
                for view in self.cases.consents_of_case(actor, case_id)
            ]
        else:  # the consents the policy says it reads under: granted to its agency
            consents = [
                OwnedConsent(render_consent(self.app.get(Consent, c)), case.owner_agency_id)
                for c in case.shared_under
            ]
        referral_ids = self.app.projections.current(
            ["referrals"], lambda: referrals_model.referral_ids_of_case(self.app.database, case_id)
        )
        referrals = []
        for referral_id in referral_ids:
            try:
                referrals.append(self.referral(actor, referral_id))
            except NotFound:
                continue  # a referral to another agency: not the caller's to see
        return CaseRecord(case, consents, referrals)

    def move_task(
        self, actor: Actor, referral_id: UUID, move: TaskMove, expected_version: int | None
    ) -> ReferralView:
        """``PUT /fhir/Task/{id}``: the referral moved to ``move.target_status`` by
        :meth:`ReferralService.move`. Idempotent: a referral already there (with the same
        outcome) is left as it is and answered as it is, whatever ``expected_version``
        (nothing is written, so no change can be lost), once the caller is shown to be
        one who could have moved it (404, then 403, as for a move)."""
        referral = self.referral_queries.party_referral(actor, referral_id)
        actor.require_role(CASE_WRITERS, "move a referral")
        if move.task_id is not None and move.task_id != str(referral_id):
            raise InvalidInput("id", "must be the id of the Task in the URL")
        if referral.status == move.target_status:
            side = LIFECYCLE[move.action][2] if move.action else None
            if side is not None and referral.party_of(actor.require_agency()) != side:
                raise NotPermitted(f"only the {side} agency may {move.action} a referral")
            if move.outcome is not None and move.outcome != referral.outcome:
                raise IllegalTransition("referral", referral.status, "complete")
            return render_referral(referral, msgspec.UNSET)
        if move.action is None:  # back to requested: no action leads there
            raise IllegalTransition("referral", referral.status, f"go back to {REQUESTED}")
        self.referrals.move(
            actor,
            referral_id,
            move.action,
            reason=move.reason,
            outcome=move.outcome,
            note=move.note,
            expected_version=expected_version,
        )
        return self.referral(actor, referral_id)
