"""The client's copy of everything casenet holds about them (GDPR Art. 15), as data.

Built from the aggregates and their events, decrypted: the events give what the
aggregates keep no more (the reason given for each past step). Pure: what is shown
was decided by ``subject_access`` (all of it: the copy is the client's own).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from uuid import UUID

import msgspec

from casenet.application.receipts import ConsentReceipt, consent_receipt
from casenet.domain.aggregate import DomainEvent
from casenet.domain.case import Case, CaseClosed, CaseReopened
from casenet.domain.consent import Consent, ConsentWithdrawn
from casenet.domain.emergency import EmergencyGrant, EmergencyGrantRevoked
from casenet.domain.referral import (
    STATUS_OF_EVENT,
    Referral,
    ReferralCompleted,
    ReferralMessagePosted,
    ReferralRequested,
    ReferralStatusChanged,
)
from casenet.domain.wording import FINDING_WORDS, LEGAL_BASIS_WORDS, in_words, sections_in_words


class AgencyRef(msgspec.Struct, kw_only=True):
    """An agency, by id and by the name the client knows it by."""

    id: UUID
    name: str


class SubjectClient(msgspec.Struct, kw_only=True):
    """The client's identity and contact; each null once erased (or never given)."""

    name: str | None
    date_of_birth: str | None
    phone: str | None
    address: str | None


class Step(msgspec.Struct, kw_only=True):
    """A step in a case's or a referral's life: who took it, when, and why."""

    status: str
    at: datetime
    agency: AgencyRef
    reason: str | None = None
    outcome: str | None = None


class SubjectNote(msgspec.Struct, kw_only=True):
    id: UUID
    category: str
    text: str | None
    created_at: datetime


class SubjectCase(msgspec.Struct, kw_only=True):
    id: UUID
    owner_agency: AgencyRef
    status: str
    created_at: datetime
    summary: str | None
    needs: list[str]
    notes: list[SubjectNote]
    history: list[Step]


class SubjectConsent(msgspec.Struct, kw_only=True):
    """A consent: its receipt (who gave it, to whom, what, why, until when), how it was
    evidenced, and why it was withdrawn."""

    receipt: ConsentReceipt
    evidence: str | None
    withdrawal_reason: str | None


class SubjectReview(msgspec.Struct, kw_only=True):
    finding: str
    finding_description: str
    note: str | None
    reviewed_at: datetime


class SubjectEmergencyGrant(msgspec.Struct, kw_only=True):
    """Sharing without the client's consent (rule 2b): with whom, what, on what legal
    basis, why, for how long, and what the review after the fact found."""

    id: UUID
    case_id: UUID
    agency: AgencyRef
    sections: list[str]
    section_descriptions: list[str]
    basis: str
    basis_description: str
    justification: str | None
    status: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    review: SubjectReview | None


class SubjectDisclosure(msgspec.Struct, kw_only=True):
    """A read by another agency (the accounting of disclosures): when, who, what, and on
    what basis (``consent``, ``referral``, or an emergency grant's legal basis), naming
    the consents or emergency grants of this copy it was made under."""

    at: datetime
    case_id: UUID
    agency: AgencyRef
    sections: list[str]
    section_descriptions: list[str]
    basis: str
    purposes: list[str]
    consent_ids: list[UUID]
    emergency_grant_ids: list[UUID]


class SubjectMessage(msgspec.Struct, kw_only=True):
    at: datetime
    agency: AgencyRef
    text: str | None


class SubjectReferral(msgspec.Struct, kw_only=True):
    id: UUID
    case_id: UUID
    from_agency: AgencyRef
    to_agency: AgencyRef
    service_type: str
    urgency: str
    reason: str | None
    status: str
    outcome: str | None
    outcome_note: str | None
    created_at: datetime
    history: list[Step]
    messages: list[SubjectMessage]


class SubjectAccessRequest(msgspec.Struct, kw_only=True):
    """A copy made for the client: when, and which agency's worker asked for it."""

    at: datetime
    agency_id: UUID
    worker_id: UUID


class SubjectAccess(msgspec.Struct, kw_only=True):
    """Everything casenet holds about one client, for the client. After erasure
    ``erased`` is true, ``erased_at`` says when, and every personal value is null."""

    client_id: UUID
    produced_at: datetime
    registered_by: AgencyRef
    erased: bool
    erased_at: datetime | None
    client: SubjectClient
    cases: list[SubjectCase]
    consents: list[SubjectConsent]
    emergency_grants: list[SubjectEmergencyGrant]
    disclosures: list[SubjectDisclosure]
    referrals: list[SubjectReferral]
    #: Every copy made, this one included.
    requests: list[SubjectAccessRequest]


Names = Callable[[UUID], AgencyRef]
Histories = Mapping[UUID, list[DomainEvent]]


def subject_case(case: Case, events: list[DomainEvent], agency: Names) -> SubjectCase:
    """A case with its notes, and each closing and reopening with its reason."""
    history = [
        Step(
            status="closed" if isinstance(e, CaseClosed) else "open",
            at=e.timestamp,
            agency=agency(case.owner_agency_id),
            reason=e.reason,
        )
        for e in events
        if isinstance(e, CaseClosed | CaseReopened)
    ]
    return SubjectCase(
        id=case.id,
        owner_agency=agency(case.owner_agency_id),
        status=case.status,
        created_at=case.created_on,
        summary=case.summary,
        needs=list(case.needs),
        notes=[
            SubjectNote(id=n.id, category=n.category, text=n.text, created_at=n.created_at)
            for n in case.notes
        ],
        history=history,
    )


def subject_consent(
    consent: Consent, events: list[DomainEvent], agency: Names, now: datetime
) -> SubjectConsent:
    withdrawals = [e.reason for e in events if isinstance(e, ConsentWithdrawn)]
    return SubjectConsent(
        receipt=consent_receipt(consent, agency(consent.grantee_agency_id).name, now),
        evidence=consent.evidence,
        withdrawal_reason=withdrawals[0] if withdrawals else None,
    )


def subject_emergency_grant(
    grant: EmergencyGrant, events: list[DomainEvent], agency: Names, now: datetime
) -> SubjectEmergencyGrant:
    revocations = [e.reason for e in events if isinstance(e, EmergencyGrantRevoked)]
    review = None
    if grant.finding is not None and grant.reviewed_at is not None:
        review = SubjectReview(
            finding=grant.finding,
            finding_description=in_words(FINDING_WORDS, grant.finding),
            note=grant.review_note,
            reviewed_at=grant.reviewed_at,
        )
    return SubjectEmergencyGrant(
        id=grant.id,
        case_id=grant.case_id,
        agency=agency(grant.grantee_agency_id),
        sections=list(grant.sections),
        section_descriptions=sections_in_words(grant.sections),
        basis=grant.basis,
        basis_description=in_words(LEGAL_BASIS_WORDS, grant.basis),
        justification=grant.justification,
        status=grant.status_at(now),
        created_at=grant.created_at,
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        revocation_reason=revocations[0] if revocations else None,
        review=review,
    )


def subject_referral(
    referral: Referral, events: list[DomainEvent], agency: Names
) -> SubjectReferral:
    """A referral with every step (and the reason given for it) and every message."""
    history, messages = [], []
    for e in events:
        if isinstance(e, ReferralRequested):
            history.append(
                Step(status="requested", at=e.timestamp, agency=agency(e.from_agency_id))
            )
        elif isinstance(e, ReferralStatusChanged):
            history.append(
                Step(
                    status=STATUS_OF_EVENT[type(e)],
                    at=e.timestamp,
                    agency=agency(e.agency_id),
                    reason=e.reason,
                    outcome=e.outcome if isinstance(e, ReferralCompleted) else None,
                )
            )
        elif isinstance(e, ReferralMessagePosted):
            messages.append(SubjectMessage(at=e.timestamp, agency=agency(e.agency_id), text=e.text))
    return SubjectReferral(
        id=referral.id,
        case_id=referral.case_id,
        from_agency=agency(referral.from_agency_id),
        to_agency=agency(referral.to_agency_id),
        service_type=referral.service_type,
        urgency=referral.urgency,
        reason=referral.reason,
        status=referral.status,
        outcome=referral.outcome,
        outcome_note=referral.outcome_note,
        created_at=referral.created_on,
        history=history,
        messages=messages,
    )
