"""Referral services: refer a client, move the referral through its lifecycle, talk."""

from __future__ import annotations

from uuid import UUID

from casenet.application.actor import CASE_WRITERS, Actor
from casenet.application.cases import CaseService
from casenet.application.consents import ConsentService
from casenet.application.queries import ReferralQueries
from casenet.application.store import CasenetApplication
from casenet.domain.consent import Consent
from casenet.domain.errors import InvalidInput, NotFound, check_expected_version
from casenet.domain.referral import Message, Referral


class ReferralService:
    """The closed loop between the referring and the receiving agency."""

    def __init__(
        self,
        app: CasenetApplication,
        cases: CaseService,
        consents: ConsentService,
        queries: ReferralQueries,
    ) -> None:
        self.app = app
        self.queries = queries
        self.cases = cases
        self.consents = consents

    def request(
        self,
        actor: Actor,
        *,
        case_id: UUID,
        to_agency_id: UUID,
        service_type: str,
        reason: str,
        urgency: str,
        consent_id: UUID | None = None,
        new_id: UUID | None = None,
    ) -> Referral:
        case = self.cases.owned_case(actor, case_id, personal=False)
        actor.require_role(CASE_WRITERS, "refer a client")
        if (existing := self.app.find(Referral, new_id)) is not None:
            return self.party_referral(actor, existing.id)
        self.consents.check_agency_exists(to_agency_id, "to_agency_id")
        if consent_id is not None:
            self.check_consent_covers(consent_id, case_id, to_agency_id)
        referral = Referral.request(
            case_id=case.id,
            client_id=case.client_id,
            from_agency_id=case.owner_agency_id,
            to_agency_id=to_agency_id,
            service_type=service_type,
            reason=reason,
            urgency=urgency,
            worker_id=actor.require_worker(),
            consent_id=consent_id,
            new_id=new_id,
        )
        self.app.save(referral)
        return referral

    def check_consent_covers(self, consent_id: UUID, case_id: UUID, agency_id: UUID) -> None:
        try:
            consent = self.app.get(Consent, consent_id, personal=False)
        except NotFound:
            raise InvalidInput("consent_id", "no such consent") from None
        if consent.case_id != case_id or consent.grantee_agency_id != agency_id:
            raise InvalidInput("consent_id", "the consent is not for this case and agency")

    def party_referral(self, actor: Actor, referral_id: UUID) -> Referral:
        """The referral, if the actor's agency is one of its two parties."""
        return self.queries.party_referral(actor, referral_id)

    def move(
        self,
        actor: Actor,
        referral_id: UUID,
        action: str,
        *,
        reason: str | None = None,
        outcome: str | None = None,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Referral:
        """accept, reject, start, hold, complete, fail (receiving side) or cancel (referring)."""
        referral = self.party_referral(actor, referral_id)
        actor.require_role(CASE_WRITERS, f"{action} a referral")
        check_expected_version(expected_version, referral.version)
        referral.move(
            action,
            agency_id=actor.require_agency(),
            worker_id=actor.require_worker(),
            reason=reason,
            outcome=outcome,
            note=note,
        )
        self.app.save(referral)
        return referral

    def post_message(
        self, actor: Actor, referral_id: UUID, *, text: str, new_id: UUID | None = None
    ) -> tuple[Referral, Message]:
        referral = self.party_referral(actor, referral_id)
        if new_id is not None and (posted := referral.message(new_id)) is not None:
            return referral, posted  # a retry of a message that was posted
        message = referral.post_message(
            agency_id=actor.require_agency(),
            worker_id=actor.require_worker(),
            text=text,
            new_id=new_id,
        )
        self.app.save(referral)
        return referral, message
