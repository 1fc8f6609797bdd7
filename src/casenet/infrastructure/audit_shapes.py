"""The shapes of the audit export: what it covers (its scope, and the ids a reading of
the log selects), what it reads of each event's stored state, and the record it writes
for it (``audit_records`` says which event becomes which record).

Stored states are decoded straight into these small structs holding only the fields a
record needs (the rest, ciphertexts included, is skipped unparsed); records are structs
that the canonical encoder writes with sorted keys, as the bundle format wants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from casenet.infrastructure.projections.facts import normalise_time


@dataclass(frozen=True)
class Scope:
    """What an export covers: one case, one client's cases, or everything."""

    kind: str  # "case", "client" or "all"
    id: UUID | None = None
    #: Restrict to cases this agency owns (an agency's auditor); None for the operator.
    owner_agency_id: UUID | None = None

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"kind": self.kind}
        if self.id is not None:
            described["id"] = str(self.id)
        if self.owner_agency_id is not None:
            described["owner_agency_id"] = str(self.owner_agency_id)
        return described


@dataclass
class Selection:
    """The ids in scope, grown as the log is read in order (creation comes first)."""

    scope: Scope
    cases: set[str] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)
    consents: set[str] = field(default_factory=set)
    referrals: set[str] = field(default_factory=set)
    emergency_grants: set[str] = field(default_factory=set)

    def takes_case(self, opened: StoredCaseOpened, case_id: str) -> bool:
        owner = self.scope.owner_agency_id
        if owner is not None and opened.owner_agency_id != str(owner):
            return False
        if self.scope.kind == "case":
            return case_id == str(self.scope.id)
        if self.scope.kind == "client":
            return opened.client_id == str(self.scope.id)
        return True


class Stored(msgspec.Struct, gc=False):
    """The fields of a stored state that a record needs; every event has its time.
    (Not tracked by the garbage collector: strings and lists of strings, no cycles.)"""

    timestamp: str

    @property
    def at(self) -> str:
        """The timestamp normalised (see ``normalise_time``), without parsing it when it
        already is: msgspec writes UTC instants with their microseconds that way."""
        text = self.timestamp
        if len(text) == 27 and text[-1] == "Z" and text[10] == "T" and text[19] == ".":
            return text
        return normalise_time(text)


class StoredAgencyRegistered(Stored):
    name: str
    kind: str
    restricted: bool


class StoredCaseOpened(Stored):
    client_id: str
    owner_agency_id: str


class StoredConsentGranted(Stored):
    case_id: str
    client_id: str
    owner_agency_id: str
    grantee_agency_id: str
    sections: list[str]
    purpose: str
    method: str
    valid_until: str | None
    recorded_by_worker_id: str


class StoredConsentWithdrawn(Stored):
    recorded_by_worker_id: str


class StoredDisclosureRecorded(Stored):
    case_id: str
    recipient_agency_id: str
    worker_id: str
    sections: list[str]
    consent_ids: list[str]
    purposes: list[str]
    emergency_grant_ids: list[str] = msgspec.field(default_factory=list)
    legal_bases: list[str] = msgspec.field(default_factory=list)


class StoredEmergencyGrantCreated(Stored):
    case_id: str
    client_id: str
    owner_agency_id: str
    grantee_agency_id: str
    sections: list[str]
    basis: str
    minutes: int
    expires_at: str
    review_due_at: str
    created_by_worker_id: str


class StoredEmergencyGrantRevoked(Stored):
    revoked_by_worker_id: str


class StoredEmergencyGrantReviewed(Stored):
    finding: str
    reviewer_worker_id: str


class StoredReferralRequested(Stored):
    case_id: str
    from_agency_id: str
    to_agency_id: str
    service_type: str
    urgency: str
    consent_id: str | None
    worker_id: str


class StoredReferralStatusChanged(Stored):
    agency_id: str
    worker_id: str
    outcome: str | None = None


class StoredClientErased(Stored):
    erased_by_worker_id: str | None


class StoredSubjectAccessProvided(Stored):
    requested_by_agency_id: str
    requested_by_worker_id: str


class Record(msgspec.Struct, kw_only=True, gc=False):
    """Every record's common fields; position and version are set from the row."""

    type: str
    at: str
    position: int = 0
    version: int = 0


class AgencyRecord(Record, kw_only=True):
    agency_id: str
    name: str
    kind: str
    restricted: bool


class CaseRecord(Record, kw_only=True):
    case_id: str
    client_id: str
    owner_agency_id: str


class ConsentGrantedRecord(Record, kw_only=True):
    consent_id: str
    case_id: str
    client_id: str
    owner_agency_id: str
    grantee_agency_id: str
    sections: list[str]
    purpose: str
    method: str
    valid_until: str | None
    worker_id: str


class ConsentWithdrawnRecord(Record, kw_only=True):
    consent_id: str
    worker_id: str


class DisclosureRecord(Record, kw_only=True):
    """A read (or a referral's disclosure); one under emergency grants also names them
    and their legal bases (absent otherwise: a consent-based read's line is as it was)."""

    disclosure_id: str
    case_id: str
    recipient_agency_id: str
    worker_id: str
    sections: list[str]
    consent_ids: list[str]
    purposes: list[str]
    emergency_grant_ids: list[str] | UnsetType = UNSET
    legal_bases: list[str] | UnsetType = UNSET


class EmergencyGrantCreatedRecord(Record, kw_only=True):
    """An emergency grant (rule 2b), without its justification (personal, like every
    text the bundle leaves out)."""

    emergency_grant_id: str
    case_id: str
    client_id: str
    owner_agency_id: str
    grantee_agency_id: str
    sections: list[str]
    basis: str
    minutes: int
    expires_at: str
    review_due_at: str
    worker_id: str


class EmergencyGrantRevokedRecord(Record, kw_only=True):
    """Its revocation (the reason left out)."""

    emergency_grant_id: str
    worker_id: str


class EmergencyGrantReviewedRecord(Record, kw_only=True):
    """Its review: the finding and the reviewer (the note left out)."""

    emergency_grant_id: str
    finding: str
    worker_id: str


class ReferralRequestedRecord(Record, kw_only=True):
    referral_id: str
    case_id: str
    from_agency_id: str
    to_agency_id: str
    service_type: str
    urgency: str
    consent_id: str | None
    status: str
    agency_id: str
    worker_id: str


class ReferralStatusRecord(Record, kw_only=True):
    referral_id: str
    status: str
    outcome: str | None
    agency_id: str
    worker_id: str


class ErasureRecord(Record, kw_only=True):
    client_id: str
    worker_id: str | None


class SubjectAccessRecord(Record, kw_only=True):
    """A copy of everything held about the client was made for them (GDPR Art. 15):
    a disclosure to the client, at the request of a worker of the registering agency."""

    client_id: str
    agency_id: str
    worker_id: str


# Each event type has a rendering (the record, the same whatever the scope: the audit
# records read model stores its line once) and a rule for whether a selection keeps it
# (the export from the log applies it as it reads, in log order).
