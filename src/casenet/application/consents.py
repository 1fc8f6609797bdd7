"""Consent services: record a client's consent to disclose, and its withdrawal."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from casenet.application.actor import CASE_WRITERS, Actor
from casenet.application.cases import CaseService
from casenet.application.store import CasenetApplication
from casenet.domain.agency import Agency
from casenet.domain.consent import SELF, Consent
from casenet.domain.errors import InvalidInput, NotFound, check_expected_version


class ConsentService:
    """Only the owning agency records consents: no re-disclosure by a grantee."""

    def __init__(self, app: CasenetApplication, cases: CaseService) -> None:
        self.app = app
        self.cases = cases

    def grant(
        self,
        actor: Actor,
        case_id: UUID,
        *,
        grantee_agency_id: UUID,
        sections: list[str],
        purpose: str,
        method: str,
        valid_until: datetime | None = None,
        evidence: str | None = None,
        given_by: str = SELF,
        representative_name: str | None = None,
        new_id: UUID | None = None,
    ) -> Consent:
        """``given_by``: the client (``self``) or who consented for them, named by
        ``representative_name`` (personal: encrypted at rest like the client's data)."""
        case = self.cases.owned_case(actor, case_id, personal=False)
        actor.require_role(CASE_WRITERS, "record a consent")
        if (existing := self.app.find(Consent, new_id)) is not None:
            return self.owned_consent(actor, existing.id)
        self.check_agency_exists(grantee_agency_id, "grantee_agency_id")
        consent = Consent.grant(
            case_id=case.id,
            client_id=case.client_id,
            owner_agency_id=case.owner_agency_id,
            recording_agency_id=actor.require_agency(),
            grantee_agency_id=grantee_agency_id,
            sections=sections,
            purpose=purpose,
            method=method,
            worker_id=actor.require_worker(),
            valid_until=valid_until,
            evidence=evidence,
            given_by=given_by,
            representative_name=representative_name,
            new_id=new_id,
        )
        self.app.save(consent)
        self.cases.queries.parties.remember_granted(consent)
        return consent

    def check_agency_exists(self, agency_id: UUID, field: str) -> Agency:
        try:
            return self.app.get(Agency, agency_id)
        except NotFound:
            raise InvalidInput(field, "no such agency") from None

    def owned_consent(self, actor: Actor, consent_id: UUID) -> Consent:
        """The consent, if the actor's agency owns its case; else it does not exist for them."""
        return self.cases.queries.consent(actor, consent_id)

    def withdraw(
        self, actor: Actor, consent_id: UUID, *, reason: str, expected_version: int | None = None
    ) -> Consent:
        consent = self.owned_consent(actor, consent_id)
        actor.require_role(CASE_WRITERS, "record a withdrawal")
        check_expected_version(expected_version, consent.version)
        consent.withdraw(
            recording_agency_id=actor.require_agency(),
            worker_id=actor.require_worker(),
            reason=reason,
        )
        self.app.save(consent)
        return consent
