"""Referral services: refer a client, move the referral through its lifecycle, talk."""

from __future__ import annotations

from uuid import UUID, uuid5

from casenet.application.actor import CASE_WRITERS, Actor
from casenet.application.cases import CaseService
from casenet.application.consents import ConsentService
from casenet.application.referral_queries import ReferralQueries
from casenet.application.store import CasenetApplication
from casenet.domain.consent import Consent
from casenet.domain.disclosure import Disclosure
from casenet.domain.errors import check_expected_version
from casenet.domain.referral import Message, Referral
from casenet.domain.sections import REFERRAL


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
        purpose = REFERRAL
        if consent_id is not None:
            purpose = self.check_consent_covers(consent_id, case_id, to_agency_id)
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
        # The reason goes to the receiving agency: a disclosure, in the same write.
        disclosure = self._disclosure(
            referral, to_agency_id, actor.require_worker(), purpose, referral.id
        )
        self.app.save(referral, disclosure)
        return referral

    def check_consent_covers(self, consent_id: UUID, case_id: UUID, agency_id: UUID) -> str:
        """The consent's purpose if it is one of this case's, granted to ``agency_id``; a
        consent of another case or agency answers exactly as a random id does."""
        return self.queries.cases.covering_consent(consent_id, case_id, agency_id)

    def _disclosure(
        self, referral: Referral, recipient: UUID, worker_id: UUID, purpose: str, about: UUID
    ) -> Disclosure:
        """What a referral tells ``recipient`` (its reason or a message): section
        ``referral``, under the referral's consent if it names one. Its id is derived
        from what it discloses (``about``), so a retried write records it once."""
        return Disclosure.record(
            case_id=referral.case_id,
            client_id=referral.client_id,
            owner_agency_id=referral.from_agency_id,
            recipient_agency_id=recipient,
            worker_id=worker_id,
            sections=(REFERRAL,),
            consent_ids=() if referral.consent_id is None else (referral.consent_id,),
            purposes=(purpose,),
            new_id=uuid5(about, "disclosure"),
        )

    def _purpose(self, referral: Referral) -> str:
        """The purpose a referral's disclosures serve: its consent's, else ``referral``.
        (The consent is the referral's own, named when it was requested: loading it,
        sealed, tells either party nothing new.)"""
        if referral.consent_id is None:
            return REFERRAL
        return self.app.get(Consent, referral.consent_id, personal=False).purpose

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
        agency_id = actor.require_agency()
        message = referral.post_message(
            agency_id=agency_id,
            worker_id=actor.require_worker(),
            text=text,
            new_id=new_id,
        )
        # The message goes to the agency that did not write it: a disclosure, in the
        # same write.
        refers = agency_id == referral.from_agency_id
        recipient = referral.to_agency_id if refers else referral.from_agency_id
        disclosure = self._disclosure(
            referral, recipient, message.worker_id, self._purpose(referral), message.id
        )
        self.app.save(referral, disclosure)
        return referral, message
