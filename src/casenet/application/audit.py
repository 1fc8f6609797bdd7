"""The consent audit export: what was consented, shared, read and erased, provably.

The export reads the audit records read model (``projections.audit``: each record's
bundle line, rendered once when its event was projected) up to the log's head at its
start (the store position the bundle reflects), in bulk and in log order, and writes a
signed ``casenet-audit/3`` bundle (``infrastructure.audit_bundle``) without touching a
record. While that read model is rebuilt (or if it stopped) it reads the log itself
instead, rendering each record with the same function the read model uses
(``audit_records.Reader.line``), into the same bytes: ``AuditService._source`` is the
one place that chooses. Nothing is decrypted: records carry ids, times, statuses,
sections and purposes only.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from casenet.application.actor import AUDITOR, Actor
from casenet.application.case_queries import case_owned_by, client_registered_by
from casenet.application.store import CasenetApplication
from casenet.domain.agency import Agency
from casenet.domain.aggregate import utcnow
from casenet.domain.errors import InvalidInput, NotFound
from casenet.domain.visibility import CaseFacts, ConsentFacts, EmergencyFacts, Grant, access_at
from casenet.infrastructure.audit_bundle import (
    FILES,
    BundleInvalid,
    BundleWriter,
    Verified,
    load_public_key,
    public_key_text,
    read_records,
    verify,
)
from casenet.infrastructure.audit_records import READERS
from casenet.infrastructure.audit_report import write_report
from casenet.infrastructure.audit_shapes import Scope, Selection
from casenet.infrastructure.audit_timeline import worker_ids
from casenet.infrastructure.projections.audit import page_of
from casenet.infrastructure.projections.audit_export import begin_export, exported_chunks
from casenet.infrastructure.projections.base import ReadModelStopped
from casenet.infrastructure.projections.facts import normalise_time
from casenet.infrastructure.raw_log import stored_rows

__all__ = [
    "AuditService",
    "BundleInvalid",
    "Scope",
    "Verified",
    "access_from_bundle",
    "public_key",
    "verify_bundle",
    "write_report",
]

#: The read model that holds every record's line (``projections.audit``).
AUDIT_MODEL = "audit"


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
        # Scoped to the caller's agency on the read models: nothing is loaded (no oracle).
        if case_id is not None:
            if not case_owned_by(self.app, case_id, agency_id):
                raise NotFound("case not found")
        else:
            assert client_id is not None
            if not client_registered_by(self.app, client_id, agency_id):
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
        projections = self.app.projections
        head = projections.head()
        generated_at = utcnow()
        lower = None if since is None else normalise_time(since)
        upper = None if until is None else normalise_time(until)
        try:
            projections.ensure_current([AUDIT_MODEL])
            stopped = False
        except ReadModelStopped:
            stopped = True  # the log holds every record too: read it instead
        writer = BundleWriter(out_dir, self._signing_seed)
        db = projections.db
        with db.cursor(commit=False) as cursor:
            begin_export(db, cursor)
            position = None if stopped else self._model_position(cursor, head)
            head, chunks = self._source(cursor, position, out_dir, scope, lower, upper, head)
            writer.write_files(chunks)
        return writer.sign(
            {
                "scope": scope.describe(),
                "from": lower,
                "to": upper,
                "store_position": head,
                "generated_at": normalise_time(generated_at),
            }
        )

    def write_report(self, bundle: Path) -> Path:
        """Write the bundle's ``report.html``, naming the workers its records name (as
        the directory names them now: the bundle holds their ids) and printing the
        fingerprint of this casenet's public key.

        Only the workers the records name, of the agencies those records name: a
        bundle an agency's auditor takes away does not become the network's staff list.
        """
        wanted = worker_ids(bundle)
        agency_ids = {
            UUID(r[key])
            for name in FILES[1:]
            for r in read_records(bundle, name)
            for key in ("owner_agency_id", "recipient_agency_id", "agency_id")
            if r.get(key)
        }
        wanted_agencies = [(Agency, agency_id) for agency_id in sorted(agency_ids)]
        agencies = self.app.get_all(*wanted_agencies) if wanted_agencies else []
        names = {
            str(worker.id): f"{worker.name} ({worker.role})"
            for agency in agencies
            if isinstance(agency, Agency)
            for worker in agency.workers.values()
            if str(worker.id) in wanted
        }
        return write_report(
            bundle, worker_names=names, public_key=public_key_text(self._signing_seed)
        )

    def _source(
        self,
        cursor: Any,
        model_position: int | None,
        out_dir: Path,
        scope: Scope,
        lower: str | None,
        upper: str | None,
        head: int,
    ) -> tuple[int, Iterator[tuple[str, int, bytes]]]:
        """Where the records come from, and the store position the bundle reflects.

        The audit read model, when it holds every record up to ``head`` (at
        ``model_position``, at ``head`` or a little after, and none after it); else (it
        is being rebuilt, or it stopped) the log itself, so that export never waits for
        a rebuild nor fails on a stopped model. Either way every line is made by the
        one rendering (``Reader.line``) and chunked per page, so the bytes are equal."""
        if model_position is None:
            return head, chunks_from_log(self.app, out_dir, scope, lower, upper, head)
        stop = max(head, model_position)
        db = self.app.projections.db
        return stop, exported_chunks(db, cursor, scope, lower=lower, upper=upper, stop=stop)

    def _model_position(self, cursor: Any, head: int) -> int | None:
        """The audit records read model's position in this transaction's snapshot, if
        it holds every record up to ``head`` (None while it is being rebuilt)."""
        projections = self.app.projections
        state = projections.table.state_in(cursor, AUDIT_MODEL)
        position = state.position
        if state.rebuilding:
            return None
        if position >= head or not projections.has_pending(AUDIT_MODEL, position, head):
            return position
        return None  # another runner moved it back (a reset) since it was caught up


def chunks_from_log(
    app: CasenetApplication,
    scratch_in: Path,
    scope: Scope,
    lower: str | None,
    upper: str | None,
    head: int,
) -> Iterator[tuple[str, int, bytes]]:
    """Every file's lines for ``scope`` and ``[lower, upper)``, read from the log up to
    ``head``, as the read model gives them: file by file, a chunk per page.

    One pass over the log (in position order, which mixes the files), spooling each
    file's lines to a scratch file in ``scratch_in``, so that memory stays flat
    whatever the size of the log."""
    with tempfile.TemporaryDirectory(dir=scratch_in) as scratch:
        spools = {name: _Spool(Path(scratch) / name) for name in FILES}
        try:
            for name, position, line in lines_from_log(app, scope, lower, upper, head):
                spools[name].add(position, line)
        finally:
            for spool in spools.values():
                spool.close()
        for name in FILES:
            for records, data in spools[name].chunks():
                yield name, records, data


def lines_from_log(
    app: CasenetApplication, scope: Scope, lower: str | None, upper: str | None, head: int
) -> Iterator[tuple[str, int, bytes]]:
    """(file, position, line) of every record in ``scope`` and ``[lower, upper)``, read
    from the log up to ``head`` and selected in log order."""
    selection = Selection(scope)
    rows = stored_rows(app.projections.db, app.recorder, READERS, stop=head)
    for position, topic, aggregate_id, version, state in rows:
        read = READERS[topic]
        stored = read.decode(state)
        if not read.keeps(selection, stored, aggregate_id):
            continue
        if read.dated and (
            (lower is not None and stored.at < lower) or (upper is not None and stored.at >= upper)
        ):
            continue
        yield read.file, position, read.line(stored, aggregate_id, position, version)


class _Spool:
    """One file's lines, and how many fall in each page (``projections.audit.page_of``:
    the bundle's chunks)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._handle = path.open("wb")
        self._pages: list[list[int]] = []  # [page, records]

    def add(self, position: int, line: bytes) -> None:
        self._handle.write(line)
        page = page_of(position)
        if self._pages and self._pages[-1][0] == page:
            self._pages[-1][1] += 1
        else:
            self._pages.append([page, 1])

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        """The spooled lines, a page's at a time: (count, bytes)."""
        with self._path.open("rb") as handle:
            for _, records in self._pages:
                yield records, b"".join(handle.readline() for _ in range(records))

    def close(self) -> None:
        self._handle.close()


def access_from_bundle(bundle: Path, case_id: UUID, at: datetime) -> list[Grant]:
    """Point-in-time access computed from a bundle alone, with the same policy function
    the server uses (so the bundle answers "who could see what at T" offline), its
    consents and its emergency grants alike."""
    restricted = {
        r["agency_id"]: bool(r["restricted"]) for r in read_records(bundle, "agencies.jsonl")
    }
    case = next(
        (r for r in read_records(bundle, "cases.jsonl") if r["case_id"] == str(case_id)), None
    )
    if case is None:
        raise NotFound("case not in this bundle")
    granted: dict[str, dict[str, Any]] = {}
    created: dict[str, dict[str, Any]] = {}
    ended: dict[str, str] = {}  # a consent's withdrawal, an emergency grant's revocation
    for record in read_records(bundle, "consents.jsonl"):
        kind = record["type"]
        if kind == "ConsentGranted" and record["case_id"] == str(case_id):
            granted[record["consent_id"]] = record
        elif kind == "EmergencyGrantCreated" and record["case_id"] == str(case_id):
            created[record["emergency_grant_id"]] = record
        elif kind == "ConsentWithdrawn":
            ended[record["consent_id"]] = record["at"]
        elif kind == "EmergencyGrantRevoked":
            ended[record["emergency_grant_id"]] = record["at"]

    def ended_at(id_: str) -> datetime | None:
        return datetime.fromisoformat(ended[id_]) if id_ in ended else None

    consents = [
        ConsentFacts(
            consent_id=UUID(cid),
            grantee_agency_id=UUID(r["grantee_agency_id"]),
            sections=tuple(r["sections"]),
            granted_at=datetime.fromisoformat(r["at"]),
            withdrawn_at=ended_at(cid),
            valid_until=None
            if r["valid_until"] is None
            else datetime.fromisoformat(r["valid_until"]),
        )
        for cid, r in granted.items()
    ]
    emergencies = [
        EmergencyFacts(
            grant_id=UUID(gid),
            grantee_agency_id=UUID(r["grantee_agency_id"]),
            sections=tuple(r["sections"]),
            legal_basis=r["basis"],
            created_at=datetime.fromisoformat(r["at"]),
            revoked_at=ended_at(gid),
            expires_at=datetime.fromisoformat(r["expires_at"]),
        )
        for gid, r in created.items()
    ]
    owner = case["owner_agency_id"]
    facts = CaseFacts(case_id, UUID(owner), restricted.get(owner, False))
    return access_at(facts, consents, at, emergencies)


def public_key(signing_seed: bytes) -> str:
    """The base64 public key of the signing key, to hand to auditors."""
    return public_key_text(signing_seed)


def verify_bundle(bundle: Path, public_key_base64: str) -> Verified:
    """Check a bundle offline, needing only it (a directory, or the tar the API serves)
    and the public key; :class:`BundleInvalid` names the first place that fails."""
    with tempfile.TemporaryDirectory(prefix="casenet-verify-") as scratch:
        if bundle.is_file():
            bundle = _unpack_bundle(bundle, Path(scratch))
        return verify(bundle, load_public_key(public_key_base64))


def _unpack_bundle(archive: Path, scratch: Path) -> Path:
    """The bundle inside a tar from ``GET /v1/audit/export``, unpacked into ``scratch``."""
    if not tarfile.is_tarfile(archive):
        raise BundleInvalid(f"{archive}: neither a bundle directory nor a tar of one")
    try:
        with tarfile.open(archive) as tar:
            # The data filter refuses absolute paths, links out of the folder, devices.
            tar.extractall(scratch, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise BundleInvalid(f"{archive}: cannot unpack ({type(error).__name__})") from None
    if (scratch / "manifest.json").exists():
        return scratch
    folders = [p for p in scratch.iterdir() if (p / "manifest.json").is_file()]
    if len(folders) != 1:
        raise BundleInvalid(f"{archive}: the tar holds no bundle (no manifest.json)")
    return folders[0]
