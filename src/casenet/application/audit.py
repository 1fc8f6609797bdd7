"""The consent audit export: what was consented, shared, read and erased, provably.

The export streams the notification log once, in order, up to the head at its start
(the store position the bundle reflects), keeps the records in scope, and writes a
signed bundle (``infrastructure.audit_bundle``). It reads events as stored and
decrypts nothing: records carry ids, times, statuses, sections and purposes only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic

from casenet.application.actor import AUDITOR, Actor
from casenet.application.store import CasenetApplication
from casenet.domain.agency import AgencyRegistered
from casenet.domain.aggregate import DomainEvent, utcnow
from casenet.domain.case import Case, CaseOpened
from casenet.domain.client import Client, ClientErased
from casenet.domain.consent import ConsentGranted, ConsentWithdrawn
from casenet.domain.disclosure import DisclosureRecorded
from casenet.domain.errors import InvalidInput, NotFound
from casenet.domain.referral import STATUS_OF_EVENT, ReferralRequested
from casenet.domain.visibility import CaseFacts, ConsentFacts, Grant, access_at
from casenet.infrastructure.audit_bundle import FILES, BundleWriter, read_records
from casenet.infrastructure.mapper import upcast
from casenet.infrastructure.projections.runner import normalise_time
from casenet.infrastructure.raw_log import stored_rows

#: Records buffered per file before they are encoded (in one call) and spooled.
_SPOOL_BATCH = 4096


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
class _Selection:
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


class AuditService:
    """Export bundles for auditors, data-protection officers and clients."""

    def __init__(self, app: CasenetApplication, signing_seed: bytes) -> None:
        self.app = app
        self._signing_seed = signing_seed

    def scope_for(self, actor: Actor, *, case_id: UUID | None, client_id: UUID | None) -> Scope:
        """The scope the actor may export: auditors their agency's cases, the operator all."""
        if (case_id is None) == (client_id is None):
            raise InvalidInput("case_id", "give exactly one of case_id or client_id")
        kind, subject = ("case", case_id) if case_id is not None else ("client", client_id)
        if actor.is_operator:
            return Scope(kind, subject)
        agency_id = actor.require_agency()
        if case_id is not None:
            case = self.app.get(Case, case_id)
            if case.owner_agency_id != agency_id:
                raise NotFound("case not found")
        else:
            assert client_id is not None
            client = self.app.get(Client, client_id)
            if client.registered_by_agency_id != agency_id:
                raise NotFound("client not found")
        actor.require_role({AUDITOR}, "export the audit")
        return Scope(kind, subject, owner_agency_id=agency_id)

    def export(
        self,
        out_dir: Path,
        scope: Scope,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Any]:
        """Write the bundle for ``scope`` into ``out_dir``; returns the signed manifest."""
        if since is not None and until is not None and since >= until:
            raise InvalidInput("from", "must be before to")
        out_dir.mkdir(parents=True, exist_ok=True)
        head = self.app.projections.head()
        generated_at = utcnow()
        selection = _Selection(scope)
        lower = None if since is None else normalise_time(since)
        upper = None if until is None else normalise_time(until)
        # One pass over the log, spooling each file's records to a scratch file so
        # that memory stays flat whatever the size of the log.
        with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
            spools = {name: _Spool(Path(scratch) / name) for name in FILES}
            try:
                rows = stored_rows(self.app.projections.db, self.app.recorder, _READERS, stop=head)
                for position, topic, aggregate_id, version, state in rows:
                    read = _READERS[topic]
                    record = read.record(selection, read.decode(state), aggregate_id)
                    if record is None:
                        continue
                    record.position, record.version = position, version
                    if read.dated and (
                        (lower is not None and record.at < lower)
                        or (upper is not None and record.at >= upper)
                    ):
                        continue
                    spools[read.file].add(record)
            finally:
                for spool in spools.values():
                    spool.close()
            writer = BundleWriter(out_dir, self._signing_seed)
            for name in FILES:
                writer.write_file(name, _read_spool(Path(scratch) / name))
        return writer.sign(
            {
                "scope": scope.describe(),
                "from": lower,
                "to": upper,
                "store_position": head,
                "generated_at": normalise_time(generated_at),
            }
        )


# --- what the export reads of each event, and the record it writes for it -----------------
#
# Stored states are decoded straight into small structs holding only the fields a record
# needs (the rest, ciphertexts included, is skipped unparsed); records are structs that
# the canonical encoder writes with sorted keys, as the bundle format wants.


class _Stored(msgspec.Struct, gc=False):
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


class _Record(msgspec.Struct, kw_only=True, gc=False):
    """Every record's common fields; position and version are set from the row."""

    type: str
    at: str
    position: int = 0
    version: int = 0


class _AgencyRecord(_Record, kw_only=True):
    agency_id: str
    name: str
    kind: str
    restricted: bool


class _CaseRecord(_Record, kw_only=True):
    case_id: str
    client_id: str
    owner_agency_id: str


class _ConsentGrantedRecord(_Record, kw_only=True):
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


class _ConsentWithdrawnRecord(_Record, kw_only=True):
    consent_id: str
    worker_id: str


class _DisclosureRecord(_Record, kw_only=True):
    disclosure_id: str
    case_id: str
    recipient_agency_id: str
    worker_id: str
    sections: list[str]
    consent_ids: list[str]
    purposes: list[str]


class _ReferralRequestedRecord(_Record, kw_only=True):
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


class _ReferralStatusRecord(_Record, kw_only=True):
    referral_id: str
    status: str
    outcome: str | None
    agency_id: str
    worker_id: str


class _ErasureRecord(_Record, kw_only=True):
    client_id: str
    worker_id: str | None


def _agency(sel: _Selection, s: _AgencyRegistered, id_: str) -> _Record | None:
    return _AgencyRecord(
        type="AgencyRegistered",
        at=s.at,
        agency_id=id_,
        name=s.name,
        kind=s.kind,
        restricted=s.restricted,
    )


def _case(sel: _Selection, s: _CaseOpened, id_: str) -> _Record | None:
    if not sel.takes_case(s, id_):
        return None
    sel.cases.add(id_)
    sel.clients.add(s.client_id)
    return _CaseRecord(
        type="CaseOpened",
        at=s.at,
        case_id=id_,
        client_id=s.client_id,
        owner_agency_id=s.owner_agency_id,
    )


def _consent_granted(sel: _Selection, s: _ConsentGranted, id_: str) -> _Record | None:
    if s.case_id not in sel.cases:
        return None
    sel.consents.add(id_)
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


def _consent_withdrawn(sel: _Selection, s: _ConsentWithdrawn, id_: str) -> _Record | None:
    if id_ not in sel.consents:
        return None
    return _ConsentWithdrawnRecord(
        type="ConsentWithdrawn", at=s.at, consent_id=id_, worker_id=s.recorded_by_worker_id
    )


def _disclosure(sel: _Selection, s: _DisclosureRecorded, id_: str) -> _Record | None:
    if s.case_id not in sel.cases:
        return None
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


def _referral_requested(sel: _Selection, s: _ReferralRequested, id_: str) -> _Record | None:
    if s.case_id not in sel.cases:
        return None
    sel.referrals.add(id_)
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


def _status_changed(event_type: type[DomainEvent]) -> Callable[..., _Record | None]:
    name, status = event_type.__name__, STATUS_OF_EVENT[event_type]  # type: ignore[index]

    def record(sel: _Selection, s: _ReferralStatusChanged, id_: str) -> _Record | None:
        if id_ not in sel.referrals:
            return None
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


def _erasure(sel: _Selection, s: _ClientErased, id_: str) -> _Record | None:
    if id_ not in sel.clients:
        return None
    return _ErasureRecord(
        type="ClientErased", at=s.at, client_id=id_, worker_id=s.erased_by_worker_id
    )


@dataclass(frozen=True)
class _Reader:
    """How the export reads one event type: its file, its decoding, its record."""

    file: str
    event_type: type[DomainEvent]
    stored: type[_Stored]
    record: Callable[[_Selection, Any, str], _Record | None]
    #: Kept only inside the export's time range (agencies and cases always are).
    dated: bool = True
    #: Stored state bytes -> ``stored``.
    decode: Callable[[bytes], Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decode", _decoding(self.event_type, self.stored))


def _decoding(event_type: type[DomainEvent], stored: type[_Stored]) -> Callable[[bytes], Any]:
    if event_type.class_version == 1:
        return msgspec.json.Decoder(stored).decode

    def upcast_first(state: bytes) -> Any:
        """A later version's shape: upcast the stored dict first, as the mapper does."""
        as_dict: dict[str, Any] = msgspec.json.decode(state)
        upcast(event_type, as_dict)
        return msgspec.convert(as_dict, stored)

    return upcast_first


_READERS: dict[str, _Reader] = {
    get_topic(reader.event_type): reader
    for reader in (
        _Reader("agencies.jsonl", AgencyRegistered, _AgencyRegistered, _agency, dated=False),
        _Reader("cases.jsonl", CaseOpened, _CaseOpened, _case, dated=False),
        _Reader("consents.jsonl", ConsentGranted, _ConsentGranted, _consent_granted),
        _Reader("consents.jsonl", ConsentWithdrawn, _ConsentWithdrawn, _consent_withdrawn),
        _Reader("disclosures.jsonl", DisclosureRecorded, _DisclosureRecorded, _disclosure),
        _Reader("referrals.jsonl", ReferralRequested, _ReferralRequested, _referral_requested),
        *(
            _Reader("referrals.jsonl", changed, _ReferralStatusChanged, _status_changed(changed))
            for changed in STATUS_OF_EVENT
        ),
        _Reader("erasures.jsonl", ClientErased, _ClientErased, _erasure),
    )
}


class _Spool:
    """One file's records in canonical JSON Lines, encoded a batch at a time."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("wb")
        self._pending: list[_Record] = []

    def add(self, record: _Record) -> None:
        self._pending.append(record)
        if len(self._pending) == _SPOOL_BATCH:
            self._flush()

    def _flush(self) -> None:
        self._handle.write(_LINES.encode_lines(self._pending))
        self._pending.clear()

    def close(self) -> None:
        if not self._handle.closed:
            self._flush()
            self._handle.close()


#: Canonical (sorted keys, compact) JSON Lines, as ``audit_bundle.canonical`` writes.
_LINES = msgspec.json.Encoder(order="sorted")


def _read_spool(path: Path) -> Iterator[bytes]:
    """The spooled records, as the canonical bytes they were written in."""
    with path.open("rb") as handle:
        for line in handle:
            yield line[:-1]


def access_from_bundle(bundle: Path, case_id: UUID, at: datetime) -> list[Grant]:
    """Point-in-time access computed from a bundle alone, with the same policy function
    the server uses (so the bundle answers "who could see what at T" offline)."""
    restricted = {
        r["agency_id"]: bool(r["restricted"]) for r in read_records(bundle, "agencies.jsonl")
    }
    case = next(
        (r for r in read_records(bundle, "cases.jsonl") if r["case_id"] == str(case_id)), None
    )
    if case is None:
        raise NotFound("case not in this bundle")
    granted: dict[str, dict[str, Any]] = {}
    withdrawn: dict[str, str] = {}
    for record in read_records(bundle, "consents.jsonl"):
        if record["type"] == "ConsentGranted" and record["case_id"] == str(case_id):
            granted[record["consent_id"]] = record
        elif record["type"] == "ConsentWithdrawn":
            withdrawn[record["consent_id"]] = record["at"]
    consents = [
        ConsentFacts(
            consent_id=UUID(cid),
            grantee_agency_id=UUID(r["grantee_agency_id"]),
            sections=tuple(r["sections"]),
            granted_at=datetime.fromisoformat(r["at"]),
            withdrawn_at=datetime.fromisoformat(withdrawn[cid]) if cid in withdrawn else None,
            valid_until=None
            if r["valid_until"] is None
            else datetime.fromisoformat(r["valid_until"]),
        )
        for cid, r in granted.items()
    ]
    owner = case["owner_agency_id"]
    facts = CaseFacts(case_id, UUID(owner), restricted.get(owner, False))
    return access_at(facts, consents, at)
