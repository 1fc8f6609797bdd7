"""The consent audit export through the services, on SQLite and on PostgreSQL.

A realistic history (three cases of two owners, one of them a restricted shelter;
consents granted, withdrawn and expiring; an emergency grant opened, read under,
reviewed and revoked; grantees reading cases and a referral, so that disclosures are
recorded; referrals through accepted, on hold, completed, rejected and cancelled),
every personal value a unique canary. Then:

* each scope (a case, a client, everything, an agency's auditor's) holds exactly the
  records of what happened in it, file by file, and none of another case;
* ``from``/``to`` keep exactly the records of their range (from inclusive, to exclusive);
* a bundle verifies with the casenet's public key, made before an erasure it still
  verifies after it, and made after it, it holds the erasure and otherwise the same
  records;
* no canary (name, date of birth, phone, address, summary, notes, evidence, reasons,
  messages, outcome note) is in any file of any bundle or its HTML report, before or
  after erasure, although the application still reads them back before it;
* point-in-time access computed from the bundle alone equals the server's
  ``CaseQueries.access`` at instants around every grant, withdrawal and expiry;
* the HTML report shows the case, every consent and every disclosure, without scripts
  or remote assets;
* an emergency grant is in the bundle (opened, revoked, reviewed: basis, sections,
  times, workers; never its justification, reason or note), a read under it names it
  and its basis, and the report tells it in plain words with its review.
"""

from __future__ import annotations

import base64
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.application.audit import Scope, access_from_bundle
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.emergency import EmergencyGrant
from casenet.domain.errors import InvalidInput, NotFound, NotPermitted
from casenet.domain.referral import Referral
from casenet.domain.sections import IDENTIFYING
from casenet.domain.wording import FINDING_WORDS, LEGAL_BASIS_WORDS, reader_time
from casenet.infrastructure.audit_bundle import (
    FILES,
    load_public_key,
    public_key_text,
    read_manifest,
    read_records,
    verify,
)
from casenet.infrastructure.audit_report import write_report
from casenet.infrastructure.projections.audit import PAGE_POSITIONS, page_of
from casenet.infrastructure.sql import Database
from casenet.settings import load_settings

MICROSECOND = timedelta(microseconds=1)


# --- the story ---------------------------------------------------------------------------


@dataclass
class CaseRecord:
    """What the story did to one case, as the bundle must show it."""

    case_id: UUID
    client_id: UUID
    owner: Actor
    overseer: Actor  # a supervisor of the owner: may ask for point-in-time access
    #: (type, consent id), and (type, emergency grant id) of emergency grants
    consents: list[tuple[str, UUID]] = field(default_factory=list)
    disclosures: list[tuple[UUID, tuple[str, ...], tuple[UUID, ...]]] = field(
        default_factory=list
    )  # (recipient agency, sections, consent ids)
    referrals: list[tuple[UUID, str]] = field(default_factory=list)  # (referral id, status)
    instants: list[datetime] = field(default_factory=list)  # around grants, withdrawals, expiry


@dataclass
class Story:
    casenet: Casenet
    agencies: dict[str, UUID] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    cases: dict[str, CaseRecord] = field(default_factory=dict)
    canaries: set[str] = field(default_factory=set)

    def canary(self) -> str:
        value = f"canary-{secrets.token_hex(8)}"
        self.canaries.add(value)
        return value

    def agency(self, key: str, kind: str, roles: tuple[str, ...], restricted: bool = False) -> None:
        agency = self.casenet.agencies.register(
            OPERATOR_ACTOR, name=f"{key.title()} agency", kind=kind, restricted=restricted
        )
        self.agencies[key] = agency.id
        for role in roles:
            worker, _ = self.casenet.agencies.add_worker(
                OPERATOR_ACTOR, agency.id, name=f"{key} {role}", role=role
            )
            self.actors[f"{key} {role}"] = Actor(agency.id, worker.id, role)

    def open_case(self, key: str, owner: str) -> CaseRecord:
        actor = self.actors[f"{owner} caseworker"]
        case = self.casenet.cases.open_case(
            actor,
            client=ClientDetails(
                name=self.canary(),
                date_of_birth=self.canary(),
                phone=self.canary(),
                address=self.canary(),
            ),
            summary=self.canary(),
            needs=["housing", "health"],
        )
        for category in ("general", "health"):
            self.casenet.cases.add_note(actor, case.id, category=category, text=self.canary())
        record = CaseRecord(case.id, case.client_id, actor, self.actors[f"{owner} supervisor"])
        record.instants.append(case.created_on - MICROSECOND)
        self.cases[key] = record
        return record

    def grant(self, case: CaseRecord, grantee: str, sections: list[str], **extra: Any) -> Consent:
        consent = self.casenet.consents.grant(
            case.owner,
            case.case_id,
            grantee_agency_id=self.agencies[grantee],
            sections=sections,
            purpose=extra.pop("purpose", "referral"),
            method="written",
            evidence=self.canary(),
            **extra,
        )
        case.consents.append(("ConsentGranted", consent.id))
        case.instants += around(consent.granted_at)
        if consent.valid_until is not None:
            case.instants += around(consent.valid_until)
        return consent

    def withdraw(self, case: CaseRecord, consent: Consent) -> None:
        withdrawn = self.casenet.consents.withdraw(case.owner, consent.id, reason=self.canary())
        assert withdrawn.withdrawn_at is not None
        case.consents.append(("ConsentWithdrawn", consent.id))
        case.instants += around(withdrawn.withdrawn_at)

    def emergency(
        self, case: CaseRecord, grantee: str, sections: list[str], basis: str
    ) -> EmergencyGrant:
        grant = self.casenet.emergency_grants.create(
            case.owner,
            case.case_id,
            grantee_agency_id=self.agencies[grantee],
            sections=sections,
            basis=basis,
            justification=self.canary(),
            minutes=600,
        )
        case.consents.append(("EmergencyGrantCreated", grant.id))
        case.instants += around(grant.created_at)
        return grant

    def review_emergency(self, case: CaseRecord, grant: EmergencyGrant) -> None:
        self.casenet.emergency_grants.review(
            case.overseer, grant.id, finding="justified", note=self.canary()
        )
        case.consents.append(("EmergencyGrantReviewed", grant.id))

    def revoke_emergency(self, case: CaseRecord, grant: EmergencyGrant) -> None:
        revoked = self.casenet.emergency_grants.revoke(case.owner, grant.id, reason=self.canary())
        assert revoked.revoked_at is not None
        case.consents.append(("EmergencyGrantRevoked", grant.id))
        case.instants += around(revoked.revoked_at)

    def read(self, case: CaseRecord, reader: str) -> None:
        """A grantee's read of the case: one disclosure of what it was shown."""
        actor = self.actors[f"{reader} caseworker"]
        view = self.casenet.case_queries.read_case(actor, case.case_id)
        assert view.sections
        case.disclosures.append(
            (actor.require_agency(), tuple(view.sections), tuple(view.shared_under))
        )

    def read_referral(self, case: CaseRecord, referral_id: UUID, reader: str) -> None:
        """The receiver reads the referral: a disclosure of the client's identifying
        sections it may see."""
        actor = self.actors[f"{reader} caseworker"]
        _, grant = self.casenet.case_queries.visible_case(actor, case.case_id)
        view = self.casenet.referral_queries.read(actor, referral_id)
        shown = tuple(s for s in grant.sections if s in IDENTIFYING)
        assert shown, "the story means this read to disclose something"
        assert view.client.name is not None  # type: ignore[union-attr]
        case.disclosures.append((actor.require_agency(), shown, grant.consent_ids))

    def refer(
        self,
        case: CaseRecord,
        to: str,
        steps: list[tuple[str, dict[str, Any]]],
        consent_id: UUID | None = None,
    ) -> Referral:
        referral = self.casenet.referrals.request(
            case.owner,
            case_id=case.case_id,
            to_agency_id=self.agencies[to],
            service_type="health",
            reason=self.canary(),
            urgency="urgent",
            consent_id=consent_id,
        )
        case.referrals.append((referral.id, "requested"))
        # The reason is disclosed to the receiver, and each message to the agency that
        # did not write it, under the referral's consent if it names one.
        told = ("referral",)
        under = () if consent_id is None else (consent_id,)
        owner_agency = case.owner.require_agency()
        case.disclosures.append((self.agencies[to], told, under))
        receiver = self.actors[f"{to} caseworker"]
        for action, options in steps:
            actor = case.owner if action == "cancel" else receiver
            if action == "message":
                self.casenet.referrals.post_message(actor, referral.id, text=self.canary())
                self.casenet.referrals.post_message(case.owner, referral.id, text=self.canary())
                case.disclosures.append((owner_agency, told, under))
                case.disclosures.append((self.agencies[to], told, under))
                continue
            if options.get("reason"):
                options = {**options, "reason": self.canary()}
            if options.get("note"):
                options = {**options, "note": self.canary()}
            referral = self.casenet.referrals.move(actor, referral.id, action, **options)
            case.referrals.append((referral.id, referral.status))
        return referral


def grow_past_pages(
    story: Story, pages: int, after_each: Callable[[], None] = lambda: None
) -> None:
    """Commands one at a time through the services until the log is ``pages`` page
    ends (``PAGE_POSITIONS``) further on, half-way into the next page: consents
    granted and cases read (audited), notes (not), and once a run of notes longer than
    a page, so that a page without an audited record is passed over too.
    ``after_each`` runs after every command."""
    casenet, alpha = story.casenet, story.cases["alpha"]
    projections = casenet.app.projections
    end = (page_of(projections.head()) + pages) * PAGE_POSITIONS + PAGE_POSITIONS // 2
    step = 0
    while projections.head() < end:
        step += 1
        if step == 5:
            case = casenet.app.get(Case, alpha.case_id)
            for _ in range(PAGE_POSITIONS + 10):
                case.add_note(
                    worker_id=alpha.owner.require_worker(),
                    category="general",
                    text=story.canary(),
                )
            casenet.app.save(case)
        elif step % 5 == 0:
            casenet.cases.add_note(
                alpha.owner, alpha.case_id, category="general", text=story.canary()
            )
        elif step % 3 == 0:
            story.read(alpha, "hospital")
        else:
            story.grant(alpha, "hospital", ["needs"])
        after_each()


def around(instant: datetime) -> list[datetime]:
    return [instant - MICROSECOND, instant, instant + MICROSECOND]


def tell(casenet: Casenet) -> Story:
    story = Story(casenet)
    story.agency("welfare", "ngo", ("caseworker", "supervisor", "auditor", "admin"))
    story.agency("hospital", "hospital", ("caseworker",))
    story.agency("school", "school", ("caseworker",))
    story.agency("shelter", "ngo", ("caseworker", "supervisor", "auditor"), restricted=True)
    soon = datetime.now(UTC) + timedelta(hours=1)

    alpha = story.open_case("alpha", "welfare")
    lasting = story.grant(alpha, "hospital", ["identity", "needs", "notes.health"])
    story.grant(alpha, "school", ["summary"], valid_until=soon, purpose="care_coordination")
    brief = story.grant(alpha, "hospital", ["contact"])
    story.read(alpha, "hospital")
    story.read(alpha, "school")
    story.withdraw(alpha, brief)
    story.read(alpha, "hospital")
    completed = story.refer(
        alpha,
        "hospital",
        [
            ("message", {}),
            ("accept", {}),
            ("start", {}),
            ("hold", {"reason": True}),
            ("start", {}),
            ("complete", {"outcome": "got_help", "note": True}),
        ],
        consent_id=lasting.id,
    )
    story.read_referral(alpha, completed.id, "hospital")
    story.refer(alpha, "school", [("reject", {"reason": True})])

    beta = story.open_case("beta", "welfare")
    needs = story.grant(beta, "school", ["needs"])
    story.read(beta, "school")
    story.withdraw(beta, needs)
    story.refer(beta, "hospital", [("accept", {}), ("cancel", {"reason": True})])
    emergency = story.emergency(beta, "hospital", ["summary", "notes.health"], "safeguarding")
    story.read(beta, "hospital")
    story.review_emergency(beta, emergency)
    story.revoke_emergency(beta, emergency)
    casenet.cases.close_case(beta.owner, beta.case_id, reason=story.canary())
    casenet.cases.reopen_case(beta.owner, beta.case_id, reason=story.canary())

    gamma = story.open_case("gamma", "shelter")  # restricted: never identifying sections
    story.grant(gamma, "hospital", ["identity", "contact", "needs"])
    story.read(gamma, "hospital")
    assert gamma.disclosures[-1][1] == ("needs",)
    story.refer(gamma, "hospital", [("accept", {})])
    return story


# --- reading bundles ---------------------------------------------------------------------


def bundle_bytes(bundle: Path) -> tuple[dict[str, bytes], list[Any], str]:
    """A bundle's files, its manifest's list of them (records, chunks) and chain head:
    what two exports of the same records must agree on, byte for byte."""
    manifest = read_manifest(bundle)
    files = {n: (bundle / n).read_bytes() for n in FILES}
    return files, manifest["files"], manifest["chain_head"]


Pages = dict[tuple[int, int], tuple[int, bytes]]


def stored_pages(db: Database) -> Pages:
    """The audit model's pages as stored: (file, page) -> (records, bytes)."""
    rows = db.run("SELECT file, page, records, data FROM rm_audit_pages", commit=False)
    return {(int(r["file"]), int(r["page"])): (int(r["records"]), bytes(r["data"])) for r in rows}


def positions_of_rows(db: Database) -> list[tuple[int, int]]:
    rows = db.run("SELECT file, position FROM rm_audit_records", commit=False)
    return [(int(r["file"]), int(r["position"])) for r in rows]


def pages_of_rows(db: Database) -> Pages:
    """Every page with lines, made from the model's rows (the lines in position order)."""
    rows = db.run(
        "SELECT file, position, line FROM rm_audit_records ORDER BY file, position", commit=False
    )
    lines: dict[tuple[int, int], list[bytes]] = {}
    for r in rows:
        lines.setdefault((int(r["file"]), page_of(int(r["position"]))), []).append(bytes(r["line"]))
    return {key: (len(found), b"".join(found)) for key, found in lines.items()}


def records(bundle: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: list(read_records(bundle, name)) for name in FILES}


def record_keys(bundle_records: dict[str, list[dict[str, Any]]]) -> dict[str, Counter[Any]]:
    """What each file says happened, in the terms the story keeps."""
    return {
        "cases.jsonl": Counter(r["case_id"] for r in bundle_records["cases.jsonl"]),
        "consents.jsonl": Counter(
            (r["type"], basis_id(r)) for r in bundle_records["consents.jsonl"]
        ),
        "disclosures.jsonl": Counter(
            (r["recipient_agency_id"], tuple(r["sections"]), tuple(r["consent_ids"]))
            for r in bundle_records["disclosures.jsonl"]
        ),
        "referrals.jsonl": Counter(
            (r["referral_id"], r["status"]) for r in bundle_records["referrals.jsonl"]
        ),
        "erasures.jsonl": Counter(r["client_id"] for r in bundle_records["erasures.jsonl"]),
    }


def expected_keys(cases: list[CaseRecord]) -> dict[str, Counter[Any]]:
    """What the story did in ``cases`` (no one erased yet)."""
    return {
        "cases.jsonl": Counter(str(c.case_id) for c in cases),
        "consents.jsonl": Counter((t, str(i)) for c in cases for t, i in c.consents),
        "disclosures.jsonl": Counter(
            (str(a), s, tuple(str(i) for i in ids)) for c in cases for a, s, ids in c.disclosures
        ),
        "referrals.jsonl": Counter((str(i), s) for c in cases for i, s in c.referrals),
        "erasures.jsonl": Counter(),
    }


def basis_id(record: dict[str, Any]) -> str:
    """The consent or the emergency grant a record of ``consents.jsonl`` is about."""
    return str(record["consent_id"] if "consent_id" in record else record["emergency_grant_id"])


def case_of_record(
    name: str, record: dict[str, Any], consent_case: dict[str, str], referral_case: dict[str, str]
) -> str | None:
    if "case_id" in record:
        return str(record["case_id"])
    if name == "consents.jsonl":
        return consent_case[basis_id(record)]
    if name == "referrals.jsonl":
        return referral_case[record["referral_id"]]
    return None


def cases_named(bundle_records: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Every case any record of the bundle belongs to."""
    consent_case = {
        basis_id(r): r["case_id"] for r in bundle_records["consents.jsonl"] if "case_id" in r
    }
    referral_case = {
        r["referral_id"]: r["case_id"]
        for r in bundle_records["referrals.jsonl"]
        if r["type"] == "ReferralRequested"
    }
    named = set()
    for name in ("cases.jsonl", "consents.jsonl", "disclosures.jsonl", "referrals.jsonl"):
        for record in bundle_records[name]:
            case = case_of_record(name, record, consent_case, referral_case)
            assert case is not None
            named.add(case)
    return named


def needles(canary: str) -> list[bytes]:
    """A canary as text, hex (either case) and base64 at each alignment."""
    raw = canary.encode()
    forms = [raw, raw.hex().encode(), raw.hex().upper().encode()]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        forms.append(encoded[4 if shift else 0 : 4 * ((shift + len(raw)) // 3)])
    return forms


def canaries_in(folder: Path, canaries: set[str]) -> dict[str, list[str]]:
    blobs = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    assert "manifest.json" in blobs
    return {
        canary: [name for name, blob in blobs.items() if any(n in blob for n in needles(canary))]
        for canary in canaries
        if any(any(n in blob for n in needles(canary)) for blob in blobs.values())
    }


def texts_in_log(casenet: Casenet) -> set[str]:
    """Every text value of every event of the log, as the application decrypts it."""
    texts: set[str] = set()
    start = 1
    while page := casenet.app.recorder.select_notifications(start=start, limit=500):
        for notification in page:
            event = casenet.app.mapper.to_domain_event(notification)
            texts.update(
                v
                for v in msgspec.structs.asdict(event).values()  # type: ignore[arg-type]
                if isinstance(v, str)
            )
        start = page[-1].id + 1
    return texts


def grant_tuples(grants: list[Any]) -> list[tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
    return [
        (str(g.agency_id), tuple(g.sections), g.basis, tuple(str(c) for c in g.consent_ids))
        for g in grants
    ]


# --- the contract ------------------------------------------------------------------------


class AuditExportContract:
    """Written once; each store's subclass gives ``database_url``."""

    @pytest.fixture
    def story(self, casenet: Casenet) -> Story:
        return tell(casenet)

    @pytest.fixture
    def public_key(self, casenet_environ: dict[str, str]) -> Any:
        return load_public_key(public_key_text(load_settings(casenet_environ).signing_key))

    @pytest.fixture
    def export(self, casenet: Casenet, tmp_path: Path, public_key: Any) -> Callable[..., Path]:
        """Export into a new folder, check it verifies and holds only bundle files."""
        made: list[Path] = []

        def run(scope: Scope, **range_: datetime | None) -> Path:
            out = tmp_path / f"bundle-{len(made)}"
            manifest = casenet.audit.export(out, scope, **range_)
            made.append(out)
            assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "manifest.json"])
            verified = verify(out, public_key)
            assert verified.files == {f["name"]: f["records"] for f in manifest["files"]}
            assert verified.scope == scope.describe()
            return out

        return run

    def test_each_scope_holds_exactly_the_records_of_its_cases(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        alpha, beta, gamma = (story.cases[k] for k in ("alpha", "beta", "gamma"))
        scopes = [
            (Scope("case", alpha.case_id), [alpha]),
            (Scope("case", gamma.case_id), [gamma]),
            (Scope("client", beta.client_id), [beta]),
            (Scope("all"), [alpha, beta, gamma]),
            (Scope("all", owner_agency_id=story.agencies["welfare"]), [alpha, beta]),
            (Scope("case", gamma.case_id, owner_agency_id=story.agencies["welfare"]), []),
        ]
        for scope, cases in scopes:
            bundle_records = records(export(scope))
            where = scope.describe()
            assert record_keys(bundle_records) == expected_keys(cases), where
            assert cases_named(bundle_records) == {str(c.case_id) for c in cases}, where
            # Every agency is in every bundle (names, kinds, restricted), in log order.
            agencies = bundle_records["agencies.jsonl"]
            assert [r["agency_id"] for r in agencies] == [str(a) for a in story.agencies.values()]
            assert [r["restricted"] for r in agencies] == [False, False, False, True]
            positions = [r["position"] for n in FILES for r in bundle_records[n]]
            assert len(positions) == len(set(positions)), where
            for name in FILES:
                in_file = [r["position"] for r in bundle_records[name]]
                assert in_file == sorted(in_file), (where, name)
        # The counts, spelled out once for the case with the most history.
        counts = {n: len(v) for n, v in records(export(Scope("case", alpha.case_id))).items()}
        assert counts == {
            "agencies.jsonl": 4,
            "cases.jsonl": 1,
            "consents.jsonl": 4,  # three granted, one withdrawn
            # Reads: hospital twice, school once, the referral once; the two referrals'
            # reasons; the two messages.
            "disclosures.jsonl": 8,
            "referrals.jsonl": 8,  # requested + 5 steps of the completed one, 2 rejected
            "erasures.jsonl": 0,
        }

    def test_the_read_model_gives_the_bytes_the_log_gives_in_every_scope_and_range(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        """The audit records read model against the export that reads the log record by
        record (what export falls back to while the model is rebuilt): the same files,
        chunks and chain, byte for byte, for every scope and range, and again after a
        rebuild of the model. Copies made for clients (subject access) are in it too,
        beside erasures; one made for a client with no case is in no bundle."""
        casenet = story.casenet
        alpha, beta = story.cases["alpha"], story.cases["beta"]
        supervisor = story.actors["welfare supervisor"]
        casenet.subject_access.copy_for_client(supervisor, alpha.client_id)
        story.casenet.clients.erase(OPERATOR_ACTOR, beta.client_id)
        casenet.subject_access.copy_for_client(supervisor, beta.client_id)
        # A client erased without a case: in no scope, so in no bundle.
        lone = Client.register(
            agency_id=story.agencies["welfare"],
            name=story.canary(),
            date_of_birth=None,
            phone=None,
            address=None,
        )
        casenet.app.save(lone)
        casenet.subject_access.copy_for_client(supervisor, lone.id)
        casenet.clients.erase(OPERATOR_ACTOR, lone.id)
        whole = records(export(Scope("all")))
        assert [(r["type"], r["client_id"]) for r in whole["erasures.jsonl"]] == [
            ("SubjectAccessProvided", str(alpha.client_id)),
            ("ClientErased", str(beta.client_id)),
            ("SubjectAccessProvided", str(beta.client_id)),
        ]
        assert {r["worker_id"] for r in whole["erasures.jsonl"][::2]} == {str(supervisor.worker_id)}
        assert whole["erasures.jsonl"][0]["agency_id"] == str(story.agencies["welfare"])
        timed = sorted(r["at"] for n in FILES[2:] for r in whole[n])
        middle = datetime.fromisoformat(timed[len(timed) // 2])
        asks: list[tuple[Scope, dict[str, datetime | None]]] = [
            (scope, range_)
            for scope in (
                Scope("all"),
                Scope("case", alpha.case_id),
                Scope("client", beta.client_id),
                Scope("all", owner_agency_id=story.agencies["welfare"]),
                Scope("client", alpha.client_id, owner_agency_id=story.agencies["shelter"]),
            )
            for range_ in ({}, {"since": middle}, {"until": middle})
        ]

        def made(bundle: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
            manifest = read_manifest(bundle)
            kept = {k: manifest[k] for k in ("files", "chain_head", "scope", "from", "to")}
            return {n: (bundle / n).read_bytes() for n in FILES}, kept

        from_model = [made(export(scope, **range_)) for scope, range_ in asks]
        assert any(files["erasures.jsonl"] for files, _ in from_model)
        assert sum(1 for files, _ in from_model if not any(files.values())) == 0
        projections = casenet.app.projections
        projections.reset("audit")  # rows gone, marked rebuilding: exports read the log
        tables = ("rm_audit_records", "rm_audit_pages", "rm_audit_subjects")
        for table in tables:
            rows = casenet.app.database.run(f"SELECT COUNT(*) AS n FROM {table}", commit=False)
            assert int(rows[0]["n"]) == 0, table
        from_log = [made(export(scope, **range_)) for scope, range_ in asks]
        assert from_log == from_model
        projections.rebuild("audit")
        assert [made(export(scope, **range_)) for scope, range_ in asks] == from_model

    def test_records_at_rest_are_the_bundle_lines_and_hold_only_ids(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        """Every row of the read model is a line of the "everything" bundle, and its
        pages are complete pages of those lines, joined: nothing else is stored about a
        record."""
        grow_past_pages(story, 2)
        bundle = export(Scope("all"))
        lines = {line for name in FILES for line in (bundle / name).read_bytes().splitlines(True)}
        db = story.casenet.app.database
        stored = [
            bytes(r["line"]) for r in db.run("SELECT line FROM rm_audit_records", commit=False)
        ]
        assert sorted(stored) == sorted(lines)
        pages = stored_pages(db)
        assert pages, "no page completed: a weak test"
        whole = pages_of_rows(db)
        # The complete pages, every one of them: those before the page of the last fact.
        last = max(page_of(position) for _, position in positions_of_rows(db))
        assert pages == {key: page for key, page in whole.items() if key[1] < last}
        assert canaries_in(bundle, story.canaries) == {}

    def test_live_batches_of_one_event_export_what_a_rebuild_exports(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        """Commands one at a time, the model caught up after each (live batches of one
        event) across several pages: in the middle of each page an export of everything
        (complete pages as stored, the open page from rows) equals the export that joins
        rows only; at the end the bundle and the checksum equal a one-batch rebuild's,
        and the export from the log."""
        casenet = story.casenet
        projections = casenet.app.projections
        projections.ensure_current(["audit"])
        since_ever = datetime(2000, 1, 1, tzinfo=UTC)  # every record: rows, joined per page
        exported: set[int] = set()

        def live() -> None:
            while projections.catch_up("audit", batch_size=1):
                pass
            head = projections.head()
            if head % PAGE_POSITIONS >= PAGE_POSITIONS // 3 and page_of(head) not in exported:
                exported.add(page_of(head))
                assert bundle_bytes(export(Scope("all"))) == bundle_bytes(
                    export(Scope("all"), since=since_ever)
                ), f"at {head}"

        grow_past_pages(story, 3, after_each=live)
        assert len(exported) >= 3
        db = casenet.app.database
        assert len({page for _, page in stored_pages(db)}) >= 2, "a weak test"
        live_bundle = bundle_bytes(export(Scope("all")))
        live_checksum = projections.checksum("audit")

        projections.reset("audit")  # marked rebuilding: the export reads the log
        assert bundle_bytes(export(Scope("all"))) == live_bundle
        projections.rebuild("audit")  # in one batch
        assert bundle_bytes(export(Scope("all"))) == live_bundle
        assert projections.checksum("audit") == live_checksum

    def test_a_store_of_the_code_before_exports_the_same_and_goes_on(
        self, story: Story, export: Callable[..., Path], open_casenet: Callable[[], Casenet]
    ) -> None:
        """The code before stored every page as far as it went, the last one too, and
        appended to it; the first start of this code drops that page (its lines are
        read from rows) and the model goes on as if it had always run this code."""
        grow_past_pages(story, 2)
        before = bundle_bytes(export(Scope("all")))
        db = story.casenet.app.database
        whole = pages_of_rows(db)
        last = max(page_of(position) for _, position in positions_of_rows(db))
        with db.cursor(commit=True) as cursor:
            cursor.execute("DELETE FROM rm_audit_pages")
            db.write_many(
                cursor,
                "INSERT INTO rm_audit_pages (file, page, records, data) VALUES (%s, %s, %s, %s)",
                [(file, page, records, data) for (file, page), (records, data) in whole.items()],
            )
            cursor.execute("UPDATE casenet_schema SET fingerprint = 'the code before'")

        open_casenet()  # the first start of this code

        assert stored_pages(db) == {key: page for key, page in whole.items() if key[1] < last}
        assert bundle_bytes(export(Scope("all"))) == before
        projections = story.casenet.app.projections
        grow_past_pages(story, 1, after_each=lambda: projections.ensure_current(["audit"]))
        live_bundle = bundle_bytes(export(Scope("all")))
        live_checksum = projections.checksum("audit")
        projections.rebuild("audit")
        assert bundle_bytes(export(Scope("all"))) == live_bundle
        assert projections.checksum("audit") == live_checksum

    def test_an_agencys_auditor_may_export_only_its_own_cases(self, story: Story) -> None:
        audit = story.casenet.audit
        alpha, gamma = story.cases["alpha"], story.cases["gamma"]
        auditor = story.actors["welfare auditor"]
        welfare = story.agencies["welfare"]
        assert audit.scope_for(auditor, case_id=alpha.case_id, client_id=None) == Scope(
            "case", alpha.case_id, owner_agency_id=welfare
        )
        assert audit.scope_for(auditor, case_id=None, client_id=alpha.client_id) == Scope(
            "client", alpha.client_id, owner_agency_id=welfare
        )
        assert audit.scope_for(OPERATOR_ACTOR, case_id=gamma.case_id, client_id=None) == Scope(
            "case", gamma.case_id
        )
        with pytest.raises(NotFound):
            audit.scope_for(auditor, case_id=gamma.case_id, client_id=None)
        with pytest.raises(NotFound):
            audit.scope_for(auditor, case_id=None, client_id=gamma.client_id)
        with pytest.raises(NotFound):  # a grantee of the case is not its owner
            audit.scope_for(
                story.actors["hospital caseworker"], case_id=alpha.case_id, client_id=None
            )
        with pytest.raises(NotPermitted):
            audit.scope_for(
                story.actors["welfare caseworker"], case_id=alpha.case_id, client_id=None
            )
        for case_id, client_id in ((None, None), (alpha.case_id, alpha.client_id)):
            with pytest.raises(InvalidInput):
                audit.scope_for(auditor, case_id=case_id, client_id=client_id)

    def test_from_and_to_keep_exactly_the_records_of_their_range(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        whole = records(export(Scope("all")))
        timed = sorted(
            r["at"] for n in FILES[2:] for r in whole[n]
        )  # consents, disclosures, referrals: the records a range filters
        assert len(timed) > 20
        since_text, until_text = timed[len(timed) // 3], timed[2 * len(timed) // 3]
        since, until = datetime.fromisoformat(since_text), datetime.fromisoformat(until_text)

        def kept(lower: str | None, upper: str | None) -> dict[str, list[dict[str, Any]]]:
            return {
                name: [
                    r
                    for r in rs
                    if name in ("agencies.jsonl", "cases.jsonl")  # context: always there
                    or ((lower is None or r["at"] >= lower) and (upper is None or r["at"] < upper))
                ]
                for name, rs in whole.items()
            }

        for lower, upper in ((since, None), (None, until), (since, until)):
            bundle = export(Scope("all"), since=lower, until=upper)
            lower_text = None if lower is None else since_text
            upper_text = None if upper is None else until_text
            got = records(bundle)
            assert got == kept(lower_text, upper_text), (lower, upper)
            assert 0 < sum(len(got[n]) for n in FILES[2:]) < len(timed)
            manifest = read_manifest(bundle)
            assert (manifest["from"], manifest["to"]) == (lower_text, upper_text)
        # The boundary record itself: in from, out of to.
        assert any(
            r["at"] == since_text
            for n in FILES[2:]
            for r in records(export(Scope("all"), since=since))[n]
        )
        assert all(
            r["at"] != until_text
            for n in FILES[2:]
            for r in records(export(Scope("all"), until=until))[n]
        )
        with pytest.raises(InvalidInput):
            story.casenet.audit.export(
                Path("/nonexistent/never"), Scope("all"), since=until, until=since
            )

    def test_erasure_is_recorded_and_changes_no_other_record(
        self, story: Story, export: Callable[..., Path], public_key: Any
    ) -> None:
        alpha = story.cases["alpha"]
        before = export(Scope("all"))
        before_case = export(Scope("case", alpha.case_id))
        before_bytes = {p.name: p.read_bytes() for p in before.iterdir()}
        story.casenet.clients.erase(OPERATOR_ACTOR, alpha.client_id)

        # Made before the erasure, the bundles still verify after it (and nothing in the
        # store could change them: they hold no ciphertext to lose).
        assert verify(before, public_key).records == sum(len(v) for v in records(before).values())
        verify(before_case, public_key)
        assert {p.name: p.read_bytes() for p in before.iterdir()} == before_bytes

        after = export(Scope("all"))
        old, new = records(before), records(after)
        assert old["erasures.jsonl"] == []
        [erasure] = new["erasures.jsonl"]
        assert erasure["client_id"] == str(alpha.client_id)
        assert erasure["type"] == "ClientErased"
        for name in FILES:
            if name != "erasures.jsonl":
                assert new[name] == old[name], name
        case_after = records(export(Scope("case", alpha.case_id)))
        assert [r["client_id"] for r in case_after["erasures.jsonl"]] == [str(alpha.client_id)]
        beta_after = records(export(Scope("case", story.cases["beta"].case_id)))
        assert beta_after["erasures.jsonl"] == []
        report = write_report(after).read_text()
        erased_at = f"<time datetime='{erasure['at']}'>{reader_time(erasure['at'])}</time>"
        assert f"The client's personal data was erased on {erased_at}" in report

    def test_no_personal_data_in_any_bundle_or_report_before_or_after_erasure(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        casenet = story.casenet
        alpha = story.cases["alpha"]
        # The canaries are real data: the application reads every one of them back.
        assert len(story.canaries) >= 40
        assert story.canaries <= texts_in_log(casenet)
        client = casenet.app.get(Client, alpha.client_id)
        case = casenet.app.get(Case, alpha.case_id)
        assert {client.name, client.phone, client.address, case.summary} <= story.canaries

        scopes = [Scope("all"), Scope("case", alpha.case_id), Scope("client", alpha.client_id)]
        bundles = [export(scope) for scope in scopes]
        casenet.clients.erase(OPERATOR_ACTOR, alpha.client_id)
        bundles += [export(scope) for scope in scopes]
        assert casenet.app.get(Client, alpha.client_id).name is None
        remaining = story.canaries & texts_in_log(casenet)
        assert 0 < len(remaining) < len(story.canaries)  # alpha's are erased, others not
        for bundle in bundles:
            write_report(bundle)
            assert (bundle / "report.html").stat().st_size > 1000
            assert canaries_in(bundle, story.canaries) == {}, bundle.name

    def test_point_in_time_access_from_the_bundle_equals_the_servers(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        bundle = export(Scope("all"))
        now = datetime.now(UTC)
        compared = Counter[str]()
        for key, case in story.cases.items():
            instants = [*case.instants, now, now + timedelta(days=365)]
            for at in instants:
                server = story.casenet.case_queries.access(case.overseer, case.case_id, at)
                from_bundle = access_from_bundle(bundle, case.case_id, at)
                assert grant_tuples(from_bundle) == grant_tuples(server.grants), (key, at)
                assert [g.consent_id for g in server.grants] == [
                    g.consent_ids[0] if g.consent_ids else None for g in from_bundle
                ]
                compared[f"{key}: {len(from_bundle)} grants"] += 1
        # The instants do meet every kind of answer: owner only, one and two grantees.
        alpha = story.cases["alpha"]
        owner_only = access_from_bundle(bundle, alpha.case_id, alpha.instants[0])
        assert [g.basis for g in owner_only] == ["owner"]
        assert {"alpha: 1 grants", "alpha: 2 grants", "alpha: 3 grants"} <= set(compared)
        assert "gamma: 2 grants" in compared
        # The restricted shelter's grant never holds identifying sections.
        gamma = story.cases["gamma"]
        grants = access_from_bundle(bundle, gamma.case_id, now)
        assert [g.sections for g in grants[1:]] == [("needs",)]
        # After the school's consent expired (valid_until passed) only the hospital sees.
        after_expiry = access_from_bundle(bundle, alpha.case_id, now + timedelta(hours=2))
        assert [str(g.agency_id) for g in after_expiry[1:]] == [str(story.agencies["hospital"])]
        with pytest.raises(NotFound):
            access_from_bundle(export(Scope("case", gamma.case_id)), alpha.case_id, now)

    def test_the_report_shows_cases_consents_and_disclosures_without_scripts(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        for scope, keys in (
            (Scope("case", story.cases["alpha"].case_id), ["alpha"]),
            (Scope("all"), ["alpha", "beta", "gamma"]),
        ):
            bundle = export(scope)
            html = write_report(bundle).read_text(encoding="utf-8")
            assert html.startswith("<!doctype html>")
            lowered = html.lower()
            assert "<script" not in lowered
            assert "http://" not in lowered
            assert "https://" not in lowered
            assert " src=" not in lowered
            assert "<link" not in lowered
            bundle_disclosures = records(bundle)["disclosures.jsonl"]
            for key in keys:
                case = story.cases[key]
                assert f"<h2 id='case-{case.case_id}'>Case <code>{case.case_id}</code></h2>" in html
                for _, consent_id in case.consents:
                    assert f"Reference {consent_id}." in html
                for r in bundle_disclosures:
                    if r["case_id"] == str(case.case_id):
                        assert f"<time datetime='{r['at']}'>" in html
            # One timeline row per disclosure, per withdrawal; the school's consent ends
            # in an hour, so no row says it ran out yet.
            assert (
                html.count("<tr class=disclosure>")
                == len(bundle_disclosures)
                == sum(len(story.cases[k].disclosures) for k in keys)
            )
            withdrawn = sum(
                1 for k in keys for t, _ in story.cases[k].consents if t == "ConsentWithdrawn"
            )
            assert html.count("<tr class=withdrawn>") == withdrawn
            assert "<tr class=expired>" not in html

    def test_an_emergency_grant_is_recorded_without_its_texts_and_told_in_plain_words(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        beta = story.cases["beta"]
        bundle = export(Scope("case", beta.case_id))
        bundle_records = records(bundle)
        emergency = [r for r in bundle_records["consents.jsonl"] if "emergency_grant_id" in r]
        created, reviewed, revoked = emergency
        grant_id = created["emergency_grant_id"]
        welfare, hospital = story.agencies["welfare"], story.agencies["hospital"]
        assert created == {
            "type": "EmergencyGrantCreated",
            "at": created["at"],
            "position": created["position"],
            "version": 1,
            "emergency_grant_id": grant_id,
            "case_id": str(beta.case_id),
            "client_id": str(beta.client_id),
            "owner_agency_id": str(welfare),
            "grantee_agency_id": str(hospital),
            "sections": ["summary", "notes.health"],
            "basis": "safeguarding",
            "minutes": 600,
            "expires_at": created["expires_at"],
            "review_due_at": created["review_due_at"],
            "worker_id": str(beta.owner.worker_id),
        }
        assert datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
            created["at"]
        ) == timedelta(minutes=600)
        assert (reviewed["type"], reviewed["finding"], reviewed["worker_id"]) == (
            "EmergencyGrantReviewed",
            "justified",
            str(beta.overseer.worker_id),
        )
        assert (revoked["type"], revoked["worker_id"]) == (
            "EmergencyGrantRevoked",
            str(beta.owner.worker_id),
        )
        assert {"justification", "note", "reason"}.isdisjoint({k for r in emergency for k in r})
        under = [r for r in bundle_records["disclosures.jsonl"] if "emergency_grant_ids" in r]
        assert [(r["emergency_grant_ids"], r["legal_bases"], r["consent_ids"]) for r in under] == [
            ([grant_id], ["safeguarding"], [])
        ]
        # Reads under consent keep the lines they had: no emergency fields on them.
        assert len(bundle_records["disclosures.jsonl"]) > len(under)

        html = write_report(bundle).read_text(encoding="utf-8")
        assert "Emergency grant 1 opened without the client&#x27;s consent" in html
        assert escape(LEGAL_BASIS_WORDS["safeguarding"]) in html
        assert f"Emergency grant 1 reviewed: {FINDING_WORDS['justified']}" in html
        assert "Emergency grant 1 revoked" in html
        assert "Under emergency grant 1." in html
        assert html.count("<tr class=emergency>") == 2  # opened, revoked
        assert html.count("<tr class=review>") == 1


class TestAuditExportOnSQLite(AuditExportContract):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestAuditExportOnPostgres(AuditExportContract):
    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url
