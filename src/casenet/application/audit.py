"""The consent audit export: what was consented, shared, read and erased, provably.

The export streams the notification log once, in order, up to the head at its start
(the store position the bundle reflects), keeps the records in scope, and writes a
signed bundle (``infrastructure.audit_bundle``). It reads events as stored and
decrypts nothing: records carry ids, times, statuses, sections and purposes only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

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
from casenet.infrastructure.audit_bundle import FILES, BundleWriter, canonical, read_records
from casenet.infrastructure.projections.runner import StoredFact, normalise_time, to_fact

_FOLLOWED: frozenset[type[DomainEvent]] = frozenset(
    {
        AgencyRegistered,
        CaseOpened,
        ConsentGranted,
        ConsentWithdrawn,
        DisclosureRecorded,
        ReferralRequested,
        ClientErased,
        *STATUS_OF_EVENT,
    }
)
_BATCH = 2_000


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

    def takes_case(self, state: dict[str, Any], case_id: str) -> bool:
        owner = self.scope.owner_agency_id
        if owner is not None and state["owner_agency_id"] != str(owner):
            return False
        if self.scope.kind == "case":
            return case_id == str(self.scope.id)
        if self.scope.kind == "client":
            return bool(state["client_id"] == str(self.scope.id))
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
            spools = {name: (Path(scratch) / name).open("wb") for name in _FILE_OF.values()}
            try:
                for fact in self._facts(head):
                    record = self._record(fact, selection)
                    if record is None:
                        continue
                    if fact.event_type not in (AgencyRegistered, CaseOpened) and (
                        (lower is not None and record["at"] < lower)
                        or (upper is not None and record["at"] >= upper)
                    ):
                        continue
                    spools[_FILE_OF[fact.event_type]].write(canonical_line(record))
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

    def _facts(self, head: int) -> Iterator[StoredFact]:
        position = 0
        while position < head:
            notifications = self.app.recorder.select_notifications(
                start=position + 1, limit=_BATCH, stop=head
            )
            if not notifications:
                return
            for notification in notifications:
                fact = to_fact(notification, _FOLLOWED)
                if fact is not None:
                    yield fact
            position = notifications[-1].id

    def _record(self, fact: StoredFact, sel: _Selection) -> dict[str, Any] | None:
        s, kind, base = fact.state, fact.event_type, _base(fact)
        if kind is AgencyRegistered:
            return {
                **base,
                "agency_id": fact.aggregate_id,
                "name": s["name"],
                "kind": s["kind"],
                "restricted": s["restricted"],
            }
        if kind is CaseOpened:
            if not sel.takes_case(s, fact.aggregate_id):
                return None
            sel.cases.add(fact.aggregate_id)
            sel.clients.add(s["client_id"])
            return {
                **base,
                "case_id": fact.aggregate_id,
                "client_id": s["client_id"],
                "owner_agency_id": s["owner_agency_id"],
            }
        if kind is ConsentGranted:
            if s["case_id"] not in sel.cases:
                return None
            sel.consents.add(fact.aggregate_id)
            return {
                **base,
                "consent_id": fact.aggregate_id,
                "case_id": s["case_id"],
                "client_id": s["client_id"],
                "owner_agency_id": s["owner_agency_id"],
                "grantee_agency_id": s["grantee_agency_id"],
                "sections": s["sections"],
                "purpose": s["purpose"],
                "method": s["method"],
                "valid_until": None
                if s["valid_until"] is None
                else normalise_time(s["valid_until"]),
                "worker_id": s["recorded_by_worker_id"],
            }
        if kind is ConsentWithdrawn:
            if fact.aggregate_id not in sel.consents:
                return None
            return {
                **base,
                "consent_id": fact.aggregate_id,
                "worker_id": s["recorded_by_worker_id"],
            }
        if kind is DisclosureRecorded:
            if s["case_id"] not in sel.cases:
                return None
            return {
                **base,
                "disclosure_id": fact.aggregate_id,
                "case_id": s["case_id"],
                "recipient_agency_id": s["recipient_agency_id"],
                "worker_id": s["worker_id"],
                "sections": s["sections"],
                "consent_ids": s["consent_ids"],
                "purposes": s["purposes"],
            }
        if kind is ReferralRequested:
            if s["case_id"] not in sel.cases:
                return None
            sel.referrals.add(fact.aggregate_id)
            return {
                **base,
                "referral_id": fact.aggregate_id,
                "case_id": s["case_id"],
                "from_agency_id": s["from_agency_id"],
                "to_agency_id": s["to_agency_id"],
                "service_type": s["service_type"],
                "urgency": s["urgency"],
                "consent_id": s["consent_id"],
                "status": "requested",
                "agency_id": s["from_agency_id"],
                "worker_id": s["worker_id"],
            }
        if kind is ClientErased:
            if fact.aggregate_id not in sel.clients:
                return None
            return {**base, "client_id": fact.aggregate_id, "worker_id": s["erased_by_worker_id"]}
        if fact.aggregate_id not in sel.referrals:
            return None
        return {
            **base,
            "referral_id": fact.aggregate_id,
            "status": STATUS_OF_EVENT[kind],  # type: ignore[index]
            "outcome": s.get("outcome"),
            "agency_id": s["agency_id"],
            "worker_id": s["worker_id"],
        }


def _base(fact: StoredFact) -> dict[str, Any]:
    return {
        "position": fact.position,
        "type": fact.event_type.__name__,
        "at": fact.at,
        "version": fact.version,
    }


_FILE_OF: dict[type[DomainEvent], str] = {
    AgencyRegistered: "agencies.jsonl",
    CaseOpened: "cases.jsonl",
    ConsentGranted: "consents.jsonl",
    ConsentWithdrawn: "consents.jsonl",
    DisclosureRecorded: "disclosures.jsonl",
    ReferralRequested: "referrals.jsonl",
    ClientErased: "erasures.jsonl",
    **dict.fromkeys(STATUS_OF_EVENT, "referrals.jsonl"),
}


def canonical_line(record: dict[str, Any]) -> bytes:
    return canonical(record) + b"\n"


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
