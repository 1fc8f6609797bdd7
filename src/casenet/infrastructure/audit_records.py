"""What the consent audit export reads of each event, and the record it writes for it.

Stored states are decoded straight into small structs holding only the fields a record
needs, and records are structs the canonical encoder writes (``audit_shapes``). Which
records an export keeps follows the log's order: a case is in scope from its
``CaseOpened``, and what refers to it (consents, emergency grants, disclosures,
referrals, their changes, its client's erasure and the copies made for the client) is
kept after it. Emergency grants go to ``consents.jsonl`` beside consents (the bases a
case was shared on), and the copies of their data made for clients (GDPR Art. 15) to
``erasures.jsonl`` beside erasures (the client's own rights, exercised: both are keyed by
the client), as records of their own types, so the bundle's files and format stay as
they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.utils import get_topic

from casenet.domain.agency import AgencyRegistered
from casenet.domain.aggregate import DomainEvent
from casenet.domain.case import CaseOpened
from casenet.domain.client import ClientErased, SubjectAccessProvided
from casenet.domain.consent import ConsentGranted, ConsentWithdrawn
from casenet.domain.disclosure import DisclosureRecorded
from casenet.domain.emergency import (
    EmergencyGrantCreated,
    EmergencyGrantReviewed,
    EmergencyGrantRevoked,
)
from casenet.domain.referral import STATUS_OF_EVENT, ReferralRequested
from casenet.infrastructure.audit_bundle import canonical, record_line
from casenet.infrastructure.audit_shapes import (
    AgencyRecord,
    CaseRecord,
    ConsentGrantedRecord,
    ConsentWithdrawnRecord,
    DisclosureRecord,
    EmergencyGrantCreatedRecord,
    EmergencyGrantReviewedRecord,
    EmergencyGrantRevokedRecord,
    ErasureRecord,
    Record,
    ReferralRequestedRecord,
    ReferralStatusRecord,
    Selection,
    Stored,
    StoredAgencyRegistered,
    StoredCaseOpened,
    StoredClientErased,
    StoredConsentGranted,
    StoredConsentWithdrawn,
    StoredDisclosureRecorded,
    StoredEmergencyGrantCreated,
    StoredEmergencyGrantReviewed,
    StoredEmergencyGrantRevoked,
    StoredReferralRequested,
    StoredReferralStatusChanged,
    StoredSubjectAccessProvided,
    SubjectAccessRecord,
)
from casenet.infrastructure.mapper import state_decoder
from casenet.infrastructure.projections.facts import normalise_time


def _agency(s: StoredAgencyRegistered, id_: str) -> Record:
    return AgencyRecord(
        type="AgencyRegistered",
        at=s.at,
        agency_id=id_,
        name=s.name,
        kind=s.kind,
        restricted=s.restricted,
    )


def _keep_agency(sel: Selection, s: StoredAgencyRegistered, id_: str) -> bool:
    return True


def _case(s: StoredCaseOpened, id_: str) -> Record:
    return CaseRecord(
        type="CaseOpened",
        at=s.at,
        case_id=id_,
        client_id=s.client_id,
        owner_agency_id=s.owner_agency_id,
    )


def _keep_case(sel: Selection, s: StoredCaseOpened, id_: str) -> bool:
    if not sel.takes_case(s, id_):
        return False
    sel.cases.add(id_)
    sel.clients.add(s.client_id)
    return True


def _consent_granted(s: StoredConsentGranted, id_: str) -> Record:
    return ConsentGrantedRecord(
        type="ConsentGranted",
        at=s.at,
        consent_id=id_,
        case_id=s.case_id,
        client_id=s.client_id,
        owner_agency_id=s.owner_agency_id,
        grantee_agency_id=s.grantee_agency_id,
        sections=s.sections,
        purpose=s.purpose,
        method=s.method,
        valid_until=None if s.valid_until is None else normalise_time(s.valid_until),
        worker_id=s.recorded_by_worker_id,
    )


def _keep_consent_granted(sel: Selection, s: StoredConsentGranted, id_: str) -> bool:
    if s.case_id not in sel.cases:
        return False
    sel.consents.add(id_)
    return True


def _consent_withdrawn(s: StoredConsentWithdrawn, id_: str) -> Record:
    return ConsentWithdrawnRecord(
        type="ConsentWithdrawn", at=s.at, consent_id=id_, worker_id=s.recorded_by_worker_id
    )


def _keep_consent_withdrawn(sel: Selection, s: StoredConsentWithdrawn, id_: str) -> bool:
    return id_ in sel.consents


def _emergency_created(s: StoredEmergencyGrantCreated, id_: str) -> Record:
    return EmergencyGrantCreatedRecord(
        type="EmergencyGrantCreated",
        at=s.at,
        emergency_grant_id=id_,
        case_id=s.case_id,
        client_id=s.client_id,
        owner_agency_id=s.owner_agency_id,
        grantee_agency_id=s.grantee_agency_id,
        sections=s.sections,
        basis=s.basis,
        minutes=s.minutes,
        expires_at=normalise_time(s.expires_at),
        review_due_at=normalise_time(s.review_due_at),
        worker_id=s.created_by_worker_id,
    )


def _keep_emergency_created(sel: Selection, s: StoredEmergencyGrantCreated, id_: str) -> bool:
    if s.case_id not in sel.cases:
        return False
    sel.emergency_grants.add(id_)
    return True


def _emergency_revoked(s: StoredEmergencyGrantRevoked, id_: str) -> Record:
    return EmergencyGrantRevokedRecord(
        type="EmergencyGrantRevoked",
        at=s.at,
        emergency_grant_id=id_,
        worker_id=s.revoked_by_worker_id,
    )


def _emergency_reviewed(s: StoredEmergencyGrantReviewed, id_: str) -> Record:
    return EmergencyGrantReviewedRecord(
        type="EmergencyGrantReviewed",
        at=s.at,
        emergency_grant_id=id_,
        finding=s.finding,
        worker_id=s.reviewer_worker_id,
    )


def _keep_emergency_change(sel: Selection, s: Stored, id_: str) -> bool:
    return id_ in sel.emergency_grants


def _disclosure(s: StoredDisclosureRecorded, id_: str) -> Record:
    record = DisclosureRecord(
        type="DisclosureRecorded",
        at=s.at,
        disclosure_id=id_,
        case_id=s.case_id,
        recipient_agency_id=s.recipient_agency_id,
        worker_id=s.worker_id,
        sections=s.sections,
        consent_ids=s.consent_ids,
        purposes=s.purposes,
    )
    if s.emergency_grant_ids:
        record.emergency_grant_ids, record.legal_bases = s.emergency_grant_ids, s.legal_bases
    return record


def _keep_disclosure(sel: Selection, s: StoredDisclosureRecorded, id_: str) -> bool:
    return s.case_id in sel.cases


def _referral_requested(s: StoredReferralRequested, id_: str) -> Record:
    return ReferralRequestedRecord(
        type="ReferralRequested",
        at=s.at,
        referral_id=id_,
        case_id=s.case_id,
        from_agency_id=s.from_agency_id,
        to_agency_id=s.to_agency_id,
        service_type=s.service_type,
        urgency=s.urgency,
        consent_id=s.consent_id,
        status="requested",
        agency_id=s.from_agency_id,
        worker_id=s.worker_id,
    )


def _keep_referral_requested(sel: Selection, s: StoredReferralRequested, id_: str) -> bool:
    if s.case_id not in sel.cases:
        return False
    sel.referrals.add(id_)
    return True


def _status_changed(event_type: type[DomainEvent]) -> Callable[[Any, str], Record]:
    name, status = event_type.__name__, STATUS_OF_EVENT[event_type]  # type: ignore[index]

    def record(s: StoredReferralStatusChanged, id_: str) -> Record:
        return ReferralStatusRecord(
            type=name,
            at=s.at,
            referral_id=id_,
            status=status,
            outcome=s.outcome,
            agency_id=s.agency_id,
            worker_id=s.worker_id,
        )

    return record


def _keep_status_changed(sel: Selection, s: StoredReferralStatusChanged, id_: str) -> bool:
    return id_ in sel.referrals


def _erasure(s: StoredClientErased, id_: str) -> Record:
    return ErasureRecord(
        type="ClientErased", at=s.at, client_id=id_, worker_id=s.erased_by_worker_id
    )


def _keep_of_client(sel: Selection, s: Stored, id_: str) -> bool:
    """A client's erasure, or a copy made for them: kept if a case of theirs is."""
    return id_ in sel.clients


def _subject_access(s: StoredSubjectAccessProvided, id_: str) -> Record:
    return SubjectAccessRecord(
        type="SubjectAccessProvided",
        at=s.at,
        client_id=id_,
        agency_id=s.requested_by_agency_id,
        worker_id=s.requested_by_worker_id,
    )


@dataclass(frozen=True)
class Reader:
    """How the export reads one event type: its file, its decoding, its record."""

    file: str
    event_type: type[DomainEvent]
    stored: type[Stored]
    #: The record (position and version left for the caller to set).
    render: Callable[[Any, str], Record]
    #: Whether a selection keeps the event (and what it adds to the selection).
    keeps: Callable[[Selection, Any, str], bool]
    #: Kept only inside the export's time range (agencies and cases always are).
    dated: bool = True
    #: Stored state bytes -> ``stored``.
    decode: Callable[[bytes], Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decode", state_decoder(self.event_type, self.stored))

    def line(self, stored: Any, id_: str, position: int, version: int) -> bytes:
        """The record's bundle line: the one rendering of a record, whether the read
        model projects it or the export reads it from the log (so the two cannot
        drift). Its time is ``stored.at``."""
        record = self.render(stored, id_)
        record.position, record.version = position, version
        return record_line(canonical(record))


READERS: dict[str, Reader] = {
    get_topic(reader.event_type): reader
    for reader in (
        Reader(
            "agencies.jsonl",
            AgencyRegistered,
            StoredAgencyRegistered,
            _agency,
            _keep_agency,
            dated=False,
        ),
        Reader("cases.jsonl", CaseOpened, StoredCaseOpened, _case, _keep_case, dated=False),
        Reader(
            "consents.jsonl",
            ConsentGranted,
            StoredConsentGranted,
            _consent_granted,
            _keep_consent_granted,
        ),
        Reader(
            "consents.jsonl",
            ConsentWithdrawn,
            StoredConsentWithdrawn,
            _consent_withdrawn,
            _keep_consent_withdrawn,
        ),
        Reader(
            "consents.jsonl",
            EmergencyGrantCreated,
            StoredEmergencyGrantCreated,
            _emergency_created,
            _keep_emergency_created,
        ),
        Reader(
            "consents.jsonl",
            EmergencyGrantRevoked,
            StoredEmergencyGrantRevoked,
            _emergency_revoked,
            _keep_emergency_change,
        ),
        Reader(
            "consents.jsonl",
            EmergencyGrantReviewed,
            StoredEmergencyGrantReviewed,
            _emergency_reviewed,
            _keep_emergency_change,
        ),
        Reader(
            "disclosures.jsonl",
            DisclosureRecorded,
            StoredDisclosureRecorded,
            _disclosure,
            _keep_disclosure,
        ),
        Reader(
            "referrals.jsonl",
            ReferralRequested,
            StoredReferralRequested,
            _referral_requested,
            _keep_referral_requested,
        ),
        *(
            Reader(
                "referrals.jsonl",
                changed,
                StoredReferralStatusChanged,
                _status_changed(changed),
                _keep_status_changed,
            )
            for changed in STATUS_OF_EVENT
        ),
        Reader("erasures.jsonl", ClientErased, StoredClientErased, _erasure, _keep_of_client),
        Reader(
            "erasures.jsonl",
            SubjectAccessProvided,
            StoredSubjectAccessProvided,
            _subject_access,
            _keep_of_client,
        ),
    )
}
