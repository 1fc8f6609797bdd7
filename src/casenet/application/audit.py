"""The consent audit export: what was consented, shared, read and erased, provably.

The export streams the notification log once, in order, up to the head at its start
(the store position the bundle reflects), keeps the records in scope, and writes a
signed bundle (``infrastructure.audit_bundle``). It reads events as stored and
decrypts nothing: records carry ids, times, statuses, sections and purposes only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from casenet.application.actor import AUDITOR, Actor
from casenet.application.audit_records import READERS, Record, Scope, Selection
from casenet.application.store import CasenetApplication
from casenet.domain.aggregate import utcnow
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.errors import InvalidInput, NotFound
from casenet.domain.visibility import CaseFacts, ConsentFacts, Grant, access_at
from casenet.infrastructure.audit_bundle import FILES, BundleWriter, read_records
from casenet.infrastructure.projections.runner import normalise_time
from casenet.infrastructure.raw_log import stored_rows

__all__ = ["AuditService", "Scope", "access_from_bundle"]

#: Records buffered per file before they are encoded (in one call) and spooled.
_SPOOL_BATCH = 4096


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
        selection = Selection(scope)
        lower = None if since is None else normalise_time(since)
        upper = None if until is None else normalise_time(until)
        # One pass over the log, spooling each file's records to a scratch file so
        # that memory stays flat whatever the size of the log.
        with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
            spools = {name: _Spool(Path(scratch) / name) for name in FILES}
            try:
                rows = stored_rows(self.app.projections.db, self.app.recorder, READERS, stop=head)
                for position, topic, aggregate_id, version, state in rows:
                    read = READERS[topic]
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


class _Spool:
    """One file's records in canonical JSON Lines, encoded a batch at a time."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("wb")
        self._pending: list[Record] = []

    def add(self, record: Record) -> None:
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
