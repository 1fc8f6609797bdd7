"""Consents: read, withdraw, and the receipt a client keeps."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody

from casenet.api.docs import ACTION, READ, problems
from casenet.api.http import CallerActor, IfMatch, Services, expected_version, with_etag
from casenet.api.structs import ConsentReceipt, Reason
from casenet.application.rendering import render_consent
from casenet.application.views import ConsentView
from casenet.domain.aggregate import utcnow

SECTION_WORDS = {
    "identity": "your name and date of birth",
    "contact": "your phone number and address",
    "needs": "the kinds of help you need",
    "summary": "the summary of your situation",
    "notes.general": "general notes about your case",
    "notes.health": "notes about your health",
    "notes.mental_health": "notes about your mental health",
    "notes.substance_use": "notes about alcohol or drug use",
    "notes.sexual_health": "notes about your sexual health",
    "notes.legal": "notes about legal matters",
    "notes.financial": "notes about money and benefits",
    "notes.family": "notes about your family",
}
PURPOSE_WORDS = {
    "referral": "so that they can take up a referral and help you",
    "care_coordination": "so that the agencies helping you can coordinate your care",
}
HOW_TO_WITHDRAW = (
    "You can withdraw this consent at any time, without giving a reason, by telling the "
    "agency that recorded it (in person, by phone or in writing). From the moment they "
    "record your withdrawal, the other agency can no longer see anything it covered. "
    "Withdrawing does not undo what was already seen; you can ask who saw what and when."
)


class ConsentController(Controller):
    """A client's consent, as the owning agency recorded it."""

    path = "/v1/consents"
    tags = ["consents"]

    @get(
        "/{consent_id:uuid}",
        operation_id="get_consent",
        summary="A consent",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def get_consent(
        self, consent_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> Response[ConsentView]:
        """Workers of the agency that owns the case."""
        consent = casenet.case_queries.consent(actor, consent_id)
        return with_etag(render_consent(consent), consent.version)

    @post(
        "/{consent_id:uuid}/withdraw",
        operation_id="withdraw_consent",
        summary="Record the client's withdrawal of a consent",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def withdraw(
        self,
        consent_id: FromPath[UUID],
        data: JSONBody[Reason],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[ConsentView]:
        """Effective for every read that starts after this answer."""
        consent = casenet.consents.withdraw(
            actor, consent_id, reason=data.reason, expected_version=expected_version(if_match)
        )
        return with_etag(render_consent(consent), consent.version)

    @get(
        "/{consent_id:uuid}/receipt",
        operation_id="get_consent_receipt",
        summary="A consent receipt for the client",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def receipt(
        self, consent_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> ConsentReceipt:
        """What was granted, to whom, why, until when, how, and how to withdraw it."""
        consent = casenet.case_queries.consent(actor, consent_id)
        grantee = casenet.directory.agency(consent.grantee_agency_id)
        return ConsentReceipt(
            consent_id=consent.id,
            case_id=consent.case_id,
            status=consent.status_at(utcnow()),
            sections=list(consent.sections),
            section_descriptions=[SECTION_WORDS[s] for s in consent.sections],
            grantee_agency_id=grantee.id,
            grantee_agency_name=grantee.name,
            purpose=consent.purpose,
            purpose_description=PURPOSE_WORDS[consent.purpose],
            valid_until=consent.valid_until,
            method=consent.method,
            recorded_at=consent.granted_at,
            recorded_by_worker_id=consent.recorded_by_worker_id,
            withdrawn_at=consent.withdrawn_at,
            how_to_withdraw=HOW_TO_WITHDRAW,
        )
