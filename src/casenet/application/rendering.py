"""Rendering: the one place where a domain object or a read model's row becomes a view.

Every function here is pure (no I/O, no clock but the consent's status, which is
computed at the request's instant): the policy has already decided what the caller
may see (a ``Grant``), and rendering leaves out every section outside it. A sealed
aggregate (loaded without its personal fields) refuses to be rendered (``shown``).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from casenet.application.views import (
    CaseListItem,
    CaseView,
    ClientView,
    ConsentView,
    DisclosureView,
    FeedItem,
    NoteView,
    ReferralListItem,
    ReferralView,
    StatusChangeView,
)
from casenet.domain.aggregate import shown, utcnow
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.referral import REQUESTED, Referral, response_due
from casenet.domain.sections import (
    CONTACT,
    IDENTITY,
    NEEDS,
    NOTE_SECTIONS,
    REFERRAL,
    SUMMARY,
    note_section,
)
from casenet.domain.visibility import CONSENT, OWNER, Grant, consent_status
from casenet.infrastructure.projections.cases import CaseListRow
from casenet.infrastructure.projections.disclosures import DisclosureListRow
from casenet.infrastructure.projections.facts import parse_time
from casenet.infrastructure.projections.feed import FeedRow
from casenet.infrastructure.projections.referrals import ReferralRow


def render_client(client: Client, sections: tuple[str, ...]) -> ClientView | msgspec.UnsetType:
    """The client's identity and contact, as far as ``sections`` reach; UNSET for none."""
    shown(client)
    identity, contact = IDENTITY in sections, CONTACT in sections
    if identity and contact:
        return ClientView(
            name=client.name,
            date_of_birth=client.date_of_birth,
            phone=client.phone,
            address=client.address,
        )
    if identity:
        return ClientView(name=client.name, date_of_birth=client.date_of_birth)
    if contact:
        return ClientView(phone=client.phone, address=client.address)
    return msgspec.UNSET


def render_case(case: Case, client: Client, grant: Grant) -> CaseView:
    """The case view with every section outside ``grant`` left out."""
    shown(case)
    sections = grant.sections
    version, updated_at = case.version, case.modified_on
    if grant.basis != OWNER:
        version, updated_at = visible_version(case, sections)
    view = CaseView(
        id=case.id,
        version=version,
        status=case.status,
        owner_agency_id=case.owner_agency_id,
        client_id=case.client_id,
        erased=client.erased,
        created_at=case.created_on,
        updated_at=updated_at,
        sections=list(sections),
        shared_under=list(grant.consent_ids),
        client=render_client(client, sections),
    )
    if grant.basis != OWNER:
        view.shared_under_emergency = list(grant.emergency_ids)
    if SUMMARY in sections:
        view.summary = None if client.erased else case.summary
    if NEEDS in sections:
        view.needs = list(case.needs)
    # Sections are SECTIONS' own (a grant names no other): a note section is one of
    # NOTE_SECTIONS. A set test in C, where a generator of startswith cost 9.7k.
    if not NOTE_SECTIONS.isdisjoint(sections):
        view.notes = [
            NoteView(
                id=n.id,
                category=n.category,
                text=None if client.erased else n.text,
                author_worker_id=n.author_worker_id,
                created_at=n.created_at,
            )
            for n in case.notes
            if note_section(n.category) in sections
        ]
    return view


def visible_version(case: Case, sections: tuple[str, ...]) -> tuple[int, datetime]:
    """A grantee's ``version`` and ``updated_at`` of the case: those of the last change
    it can see (the opening, a closing or reopening, a note in a section it is granted).
    A change it cannot see (a note in another section) moves neither, so neither tells
    it that anything happened there (API.md, "What a grantee can tell"). It moves with
    every change the grantee can see, but may go back when a grant narrows; the ETag
    (a digest of the view) is what tells any two views apart."""
    version, at = case.status_changed
    for note in case.notes:
        if note.version > version and note_section(note.category) in sections:
            version, at = note.version, note.created_at
    return version, at


def render_consent(consent: Consent) -> ConsentView:
    """The consent as the owning agency sees it, its status as of now."""
    shown(consent)
    return ConsentView(
        id=consent.id,
        version=consent.version,
        case_id=consent.case_id,
        client_id=consent.client_id,
        grantee_agency_id=consent.grantee_agency_id,
        sections=list(consent.sections),
        purpose=consent.purpose,
        method=consent.method,
        evidence=consent.evidence,
        valid_until=consent.valid_until,
        status=consent_status(
            consent.granted_at, consent.withdrawn_at, consent.valid_until, utcnow()
        ),
        granted_at=consent.granted_at,
        withdrawn_at=consent.withdrawn_at,
        recorded_by_worker_id=consent.recorded_by_worker_id,
        given_by=consent.given_by,
        representative_name=consent.representative_name,
    )


def render_referral(referral: Referral, client: ClientView | msgspec.UnsetType) -> ReferralView:
    """The referral as either party sees it; ``client`` as the receiver's consent shows it."""
    shown(referral)
    return ReferralView(
        id=referral.id,
        version=referral.version,
        case_id=referral.case_id,
        client_id=referral.client_id,
        from_agency_id=referral.from_agency_id,
        to_agency_id=referral.to_agency_id,
        service_type=referral.service_type,
        reason=referral.reason,
        urgency=referral.urgency,
        consent_id=referral.consent_id,
        status=referral.status,
        created_at=referral.created_on,
        updated_at=referral.modified_on,
        history=[
            StatusChangeView(
                status=h.status,
                at=h.at,
                agency_id=h.agency_id,
                worker_id=h.worker_id,
                outcome=h.outcome,
            )
            for h in referral.history
        ],
        response_due_at=referral.response_due_at,
        overdue=referral.is_overdue_at(utcnow()),
        outcome=referral.outcome,
        outcome_note=referral.outcome_note,
        client=client,
    )


# --- read models' rows ---------------------------------------------------------------


def _time(value: str) -> datetime:
    parsed = parse_time(value)
    assert parsed is not None
    return parsed


def render_case_item(row: CaseListRow, client_name: str | None) -> CaseListItem:
    """A row of the owner's case list; ``client_name`` decrypted by the caller."""
    return CaseListItem(
        id=UUID(row.case_id),
        version=int(row.version),
        status=row.status,
        client_id=UUID(row.client_id),
        client_name=client_name,
        erased=bool(row.erased),
        needs=msgspec.json.decode(row.needs),
        note_count=int(row.note_count),
        created_at=_time(row.created_at),
        updated_at=_time(row.updated_at),
    )


def render_disclosure(row: DisclosureListRow) -> DisclosureView:
    """One entry of the accounting of disclosures."""
    consent_ids = msgspec.json.decode(row.consent_ids, type=list[UUID])
    legal_bases: list[str] = msgspec.json.decode(row.legal_bases)
    return DisclosureView(
        id=UUID(row.disclosure_id),
        case_id=UUID(row.case_id),
        at=_time(row.at),
        recipient_agency_id=UUID(row.recipient_agency_id),
        worker_id=UUID(row.worker_id),
        sections=msgspec.json.decode(row.sections),
        purposes=msgspec.json.decode(row.purposes),
        consent_ids=consent_ids,
        # Under an emergency grant its legal basis is what the accounting must show
        # (rule 2b), even where a consent covers some of it; only a referral that names
        # no consent discloses without either.
        basis=legal_bases[0] if legal_bases else CONSENT if consent_ids else REFERRAL,
        emergency_grant_ids=msgspec.json.decode(row.emergency_grant_ids, type=list[UUID]),
        legal_bases=legal_bases,
    )


def render_referral_item(row: ReferralRow) -> ReferralListItem:
    """A referral in an inbox or outbox (its due time from when it was requested)."""
    due = response_due(_time(row.created_at), row.urgency)
    return ReferralListItem(
        id=UUID(row.referral_id),
        version=int(row.version),
        case_id=UUID(row.case_id),
        from_agency_id=UUID(row.from_agency_id),
        to_agency_id=UUID(row.to_agency_id),
        service_type=row.service_type,
        urgency=row.urgency,
        status=row.status,
        message_count=int(row.message_count),
        created_at=_time(row.created_at),
        updated_at=_time(row.updated_at),
        response_due_at=due,
        overdue=row.status == REQUESTED and utcnow() > due,
        outcome=row.outcome,
    )


def render_feed_item(row: FeedRow) -> FeedItem:
    """An item of an agency's feed (redacted for it when it was projected)."""
    fields = msgspec.json.decode(row.body)
    fields |= {"type": row.type, "at": row.at, "position": int(row.position)}
    return msgspec.convert(fields, FeedItem)
