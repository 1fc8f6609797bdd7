"""What the consent audit export reads of each event, and the record it writes for it.

Stored states are decoded straight into small structs holding only the fields a record
needs (the rest, ciphertexts included, is skipped unparsed); records are structs that
the canonical encoder writes with sorted keys, as the bundle format wants. Which
records an export keeps follows the log's order: a case is in scope from its
``CaseOpened``, and what refers to it (consents, disclosures, referrals, their
changes, its client's erasure) is kept after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic

from casenet.domain.agency import AgencyRegistered
from casenet.domain.aggregate import DomainEvent
from casenet.domain.case import CaseOpened
from casenet.domain.client import ClientErased
from casenet.domain.consent import ConsentGranted, ConsentWithdrawn
from casenet.domain.disclosure import DisclosureRecorded
from casenet.domain.referral import STATUS_OF_EVENT, ReferralRequested
from casenet.infrastructure.audit_bundle import canonical, record_line
from casenet.infrastructure.mapper import upcast
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

    def takes_case(self, opened: _CaseOpened, case_id: str) -> bool:
        owner = self.scope.owner_agency_id
        if owner is not None and opened.owner_agency_id != str(owner):
            return False
        if self.scope.kind == "case":
            return case_id == str(self.scope.id)
        if self.scope.kind == "client":
            return opened.client_id == str(self.scope.id)
        return True


class _Stored(msgspec.Struct, gc=False):
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


class _AgencyRegistered(_Stored):
    name: str
    kind: str
    restricted: bool


class _CaseOpened(_Stored):
    client_id: str
    owner_agency_id: str


class _ConsentGranted(_Stored):
    case_id: str
    client_id: str
    owner_agency_id: str
    grantee_agency_id: str
    sections: list[str]
    purpose: str
    method: str
    valid_until: str | None
    recorded_by_worker_id: str


class _ConsentWithdrawn(_Stored):
    recorded_by_worker_id: str


class _DisclosureRecorded(_Stored):
    case_id: str
    recipient_agency_id: str
    worker_id: str
    sections: list[str]
    consent_ids: list[str]
    purposes: list[str]


class _ReferralRequested(_Stored):
    case_id: str
    from_agency_id: str
    to_agency_id: str
    service_type: str
    urgency: str
    consent_id: str | None
    worker_id: str


class _ReferralStatusChanged(_Stored):
    agency_id: str
    worker_id: str
    outcome: str | None = None


class _ClientErased(_Stored):
    erased_by_worker_id: str | None


class Record(msgspec.Struct, kw_only=True, gc=False):
    """Every record's common fields; position and version are set from the row."""

    type: str
    at: str
    position: int = 0
    version: int = 0


class _AgencyRecord(Record, kw_only=True):
    agency_id: str
    name: str
    kind: str
    restricted: bool


class _CaseRecord(Record, kw_only=True):
    case_id: str
    client_id: str
    owner_agency_id: str


class _ConsentGrantedRecord(Record, kw_only=True):
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


class _ConsentWithdrawnRecord(Record, kw_only=True):
    consent_id: str
    worker_id: str


class _DisclosureRecord(Record, kw_only=True):
    disclosure_id: str
    case_id: str
    recipient_agency_id: str
    worker_id: str
    sections: list[str]
    consent_ids: list[str]
    purposes: list[str]


class _ReferralRequestedRecord(Record, kw_only=True):
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


class _ReferralStatusRecord(Record, kw_only=True):
    referral_id: str
    status: str
    outcome: str | None
    agency_id: str
    worker_id: str


class _ErasureRecord(Record, kw_only=True):
    client_id: str
    worker_id: str | None


# Each event type has a rendering (the record, the same whatever the scope: the audit
# records read model stores its line once) and a rule for whether a selection keeps it
# (the export from the log applies it as it reads, in log order).


def _agency(s: _AgencyRegistered, id_: str) -> Record:
    return _AgencyRecord(
        type="AgencyRegistered",
        at=s.at,
        agency_id=id_,
        name=s.name,
        kind=s.kind,
        restricted=s.restricted,
    )


def _keep_agency(sel: Selection, s: _AgencyRegistered, id_: str) -> bool:
    return True


def _case(s: _CaseOpened, id_: str) -> Record:
    return _CaseRecord(
        type="CaseOpened",
        at=s.at,
        case_id=id_,
        client_id=s.client_id,
        owner_agency_id=s.owner_agency_id,
    )


def _keep_case(sel: Selection, s: _CaseOpened, id_: str) -> bool:
    if not sel.takes_case(s, id_):
        return False
    sel.cases.add(id_)
    sel.clients.add(s.client_id)
    return True


def _consent_granted(s: _ConsentGranted, id_: str) -> Record:
    return _ConsentGrantedRecord(
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


def _keep_consent_granted(sel: Selection, s: _ConsentGranted, id_: str) -> bool:
    if s.case_id not in sel.cases:
        return False
    sel.consents.add(id_)
    return True


def _consent_withdrawn(s: _ConsentWithdrawn, id_: str) -> Record:
    return _ConsentWithdrawnRecord(
        type="ConsentWithdrawn", at=s.at, consent_id=id_, worker_id=s.recorded_by_worker_id
    )


def _keep_consent_withdrawn(sel: Selection, s: _ConsentWithdrawn, id_: str) -> bool:
    return id_ in sel.consents


def _disclosure(s: _DisclosureRecorded, id_: str) -> Record:
    return _DisclosureRecord(
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


def _keep_disclosure(sel: Selection, s: _DisclosureRecorded, id_: str) -> bool:
    return s.case_id in sel.cases


def _referral_requested(s: _ReferralRequested, id_: str) -> Record:
    return _ReferralRequestedRecord(
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


def _keep_referral_requested(sel: Selection, s: _ReferralRequested, id_: str) -> bool:
    if s.case_id not in sel.cases:
        return False
    sel.referrals.add(id_)
    return True


def _status_changed(event_type: type[DomainEvent]) -> Callable[[Any, str], Record]:
    name, status = event_type.__name__, STATUS_OF_EVENT[event_type]  # type: ignore[index]

    def record(s: _ReferralStatusChanged, id_: str) -> Record:
        return _ReferralStatusRecord(
            type=name,
            at=s.at,
            referral_id=id_,
            status=status,
            outcome=s.outcome,
            agency_id=s.agency_id,
            worker_id=s.worker_id,
        )

    return record


def _keep_status_changed(sel: Selection, s: _ReferralStatusChanged, id_: str) -> bool:
    return id_ in sel.referrals


def _erasure(s: _ClientErased, id_: str) -> Record:
    return _ErasureRecord(
        type="ClientErased", at=s.at, client_id=id_, worker_id=s.erased_by_worker_id
    )


def _keep_erasure(sel: Selection, s: _ClientErased, id_: str) -> bool:
    return id_ in sel.clients


@dataclass(frozen=True)
class Reader:
    """How the export reads one event type: its file, its decoding, its record."""

    file: str
    event_type: type[DomainEvent]
    stored: type[_Stored]
    #: The record (position and version left for the caller to set).
    render: Callable[[Any, str], Record]
    #: Whether a selection keeps the event (and what it adds to the selection).
    keeps: Callable[[Selection, Any, str], bool]
    #: Kept only inside the export's time range (agencies and cases always are).
    dated: bool = True
    #: Stored state bytes -> ``stored``.
    decode: Callable[[bytes], Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decode", decoding(self.event_type, self.stored))

    def line(self, stored: Any, id_: str, position: int, version: int) -> bytes:
        """The record's bundle line: the one rendering of a record, whether the read
        model projects it or the export reads it from the log (so the two cannot
        drift). Its time is ``stored.at``."""
        record = self.render(stored, id_)
        record.position, record.version = position, version
        return record_line(canonical(record))


def decoding(event_type: type[DomainEvent], stored: type[_Stored]) -> Callable[[bytes], Any]:
    """Stored state bytes of ``event_type`` -> ``stored``, upcast first if the event
    has had more than one version."""
    if event_type.class_version == 1:
        return msgspec.json.Decoder(stored).decode

    def upcast_first(state: bytes) -> Any:
        """A later version's shape: upcast the stored dict first, as the mapper does."""
        as_dict: dict[str, Any] = msgspec.json.decode(state)
        upcast(event_type, as_dict)
        return msgspec.convert(as_dict, stored)

    return upcast_first


READERS: dict[str, Reader] = {
    get_topic(reader.event_type): reader
    for reader in (
        Reader(
            "agencies.jsonl",
            AgencyRegistered,
            _AgencyRegistered,
            _agency,
            _keep_agency,
            dated=False,
        ),
        Reader("cases.jsonl", CaseOpened, _CaseOpened, _case, _keep_case, dated=False),
        Reader(
            "consents.jsonl",
            ConsentGranted,
            _ConsentGranted,
            _consent_granted,
            _keep_consent_granted,
        ),
        Reader(
            "consents.jsonl",
            ConsentWithdrawn,
            _ConsentWithdrawn,
            _consent_withdrawn,
            _keep_consent_withdrawn,
        ),
        Reader(
            "disclosures.jsonl",
            DisclosureRecorded,
            _DisclosureRecorded,
            _disclosure,
            _keep_disclosure,
        ),
        Reader(
            "referrals.jsonl",
            ReferralRequested,
            _ReferralRequested,
            _referral_requested,
            _keep_referral_requested,
        ),
        *(
            Reader(
                "referrals.jsonl",
                changed,
                _ReferralStatusChanged,
                _status_changed(changed),
                _keep_status_changed,
            )
            for changed in STATUS_OF_EVENT
        ),
        Reader("erasures.jsonl", ClientErased, _ClientErased, _erasure, _keep_erasure),
    )
}
