"""The audit report a data-protection officer reads, on each store.

Made from real bundles of the audit export's story (``test_audit_export``: its agencies,
cases, consents, reads, referrals and erasure), through ``AuditService.write_report`` as
``casenet audit export --html`` makes it:

* times in the reader's words, agencies and workers by name, sections in plain words,
  no code or jargon a reader would stumble on;
* one timeline per case that merges every record of the case, in time order;
* the manifest's digest and the key's fingerprint equal to ones computed here, and the
  page's ``sha256sum``/``openssl`` commands, run as printed, verify the signature (and
  fail on an edited manifest);
* every value escaped (an agency and a worker named like markup), nothing that loads.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from test_audit_export import AuditExportContract, Story, records

from casenet.application import OPERATOR_ACTOR, Actor
from casenet.application.audit import Scope
from casenet.domain.wording import reader_time
from casenet.infrastructure.audit_bundle import read_manifest

ROW = re.compile(r"<tr class=(\w+)><td class=when><time datetime='([^']+)'>")


def visible_text(html: str) -> str:
    """What a reader sees: no tags, attributes or style sheet; whitespace collapsed."""
    body = html.split("<body>", 1)[1]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def case_sections(html: str) -> dict[str, str]:
    """Each case's part of the report, by case id."""
    parts = html.split("<h2 id='case-")[1:]
    return {part.split("'", 1)[0]: part.split("<h2 id=how-to-check>")[0] for part in parts}


class AuditReportContract:
    """Written once; each store's subclass gives ``database_url``."""

    story = AuditExportContract.story
    public_key = AuditExportContract.public_key
    export = AuditExportContract.export

    @pytest.fixture
    def report(self, story: Story, export: Callable[..., Path]) -> tuple[Path, str]:
        """Every case, after alpha's client was erased: (bundle, the report's HTML)."""
        story.casenet.clients.erase(OPERATOR_ACTOR, story.cases["alpha"].client_id)
        bundle = export(Scope("all"))
        html = story.casenet.audit.write_report(bundle).read_text(encoding="utf-8")
        return bundle, html

    def test_times_names_and_sections_are_in_the_readers_words(
        self, story: Story, report: tuple[Path, str]
    ) -> None:
        bundle, html = report
        text = visible_text(html)
        found = records(bundle)
        assert re.search(r"\d{4}-\d\d-\d\dT\d\d", text) is None  # no ISO instant shown
        timed = [r for name in found if name != "agencies.jsonl" for r in found[name]]
        for r in timed:
            assert f"<time datetime='{r['at']}'>{reader_time(r['at'])}</time>" in html
        # Workers by name and role, each one the records name; no worker id anywhere.
        workers = {r["worker_id"] for r in timed if r.get("worker_id")}
        by_id = {str(a.worker_id): key for key, a in story.actors.items()}
        assert len(workers) >= 4
        for worker_id in workers:
            key = by_id[worker_id]
            assert f"{key} ({key.split()[-1]})" in text
            assert worker_id[:8] not in html
        assert "a worker" not in text
        # Agencies by name.
        for agency in found["agencies.jsonl"]:
            assert agency["name"] in text
        assert "an agency not in this bundle" not in text
        # Sections, purposes, methods, statuses, outcomes in words; no codes, no jargon.
        for words in ("health notes", "phone number and address", "summary of the situation"):
            assert words in text
        for code in ("notes.", "care_coordination", "got_help", "in_progress", "on_hold"):
            assert code not in text, code
        assert "Outcome: the client got help." in text
        assert "store position" not in text.lower()
        assert "What is deliberately not in it. No personal data" in text

    def test_one_timeline_per_case_merges_every_record_in_time_order(
        self, story: Story, report: tuple[Path, str]
    ) -> None:
        bundle, html = report
        found = records(bundle)
        sections = case_sections(html)
        assert set(sections) == {str(c.case_id) for c in story.cases.values()}
        for key, case in story.cases.items():
            rows = ROW.findall(sections[str(case.case_id)])
            assert [at for _, at in rows] == sorted(at for _, at in rows), key
            kinds = Counter(kind for kind, _ in rows)
            granted = [t for t, _ in case.consents if t == "ConsentGranted"]
            withdrawn = [t for t, _ in case.consents if t == "ConsentWithdrawn"]
            # An emergency grant's opening and revocation, and its review.
            emergency = [t for t, _ in case.consents if t.startswith("EmergencyGrantRe")]
            opened = [t for t, _ in case.consents if t == "EmergencyGrantCreated"]
            reviews = [t for t in emergency if t == "EmergencyGrantReviewed"]
            referral_ids = {str(r) for r, _ in case.referrals}
            steps = [r for r in found["referrals.jsonl"] if r["referral_id"] in referral_ids]
            assert (
                kinds
                == Counter(
                    case=1,
                    consent=len(granted),
                    withdrawn=len(withdrawn),
                    emergency=len(opened) + len(emergency) - len(reviews),
                    review=len(reviews),
                    disclosure=len(case.disclosures),
                    referral=len(steps),
                    erasure=1 if key == "alpha" else 0,
                )
                - Counter()
            ), key  # no "expired": the school's consent ends in an hour
        # Merged, not one table per kind: alpha's reads come before and after the
        # withdrawal, its referral steps between reads, the erasure last.
        alpha = [kind for kind, _ in ROW.findall(sections[str(story.cases["alpha"].case_id)])]
        assert alpha[:8] == [
            "case",
            "consent",
            "consent",
            "consent",
            "disclosure",
            "disclosure",
            "withdrawn",
            "disclosure",
        ]
        assert alpha[-1] == "erasure"
        assert "referral" in alpha[alpha.index("withdrawn") :]

    def test_the_digest_and_fingerprint_are_the_bundles_and_the_commands_check_them(
        self, report: tuple[Path, str], public_key: Any
    ) -> None:
        bundle, html = report
        digest = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
        fingerprint = hashlib.sha256(public_key.public_bytes_raw()).hexdigest()
        assert f"<span class=digest id=manifest-digest>{digest}</span>" in html
        assert f"<span class=digest id=fingerprint>{fingerprint}</span>" in html
        assert read_manifest(bundle)["key_id"] == fingerprint[:16]
        if not (shutil.which("jq") and shutil.which("openssl")):
            pytest.skip("jq and openssl are needed to run the page's commands")
        [commands] = re.findall(r"<pre>(.*?)</pre>", html, re.S)
        key_text = re.search(r"public key <code>([^<]+)</code>", html)
        assert key_text is not None
        script = unescape(commands).replace("PUBLIC_KEY", key_text.group(1))

        def run() -> str:
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=bundle,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            return done.stdout + done.stderr

        out = run()
        assert f"{digest}  manifest.json" in out
        assert f"{fingerprint}  -" in out
        assert "Signature Verified Successfully" in out
        # An edited manifest (one digit of a file's chain) no longer verifies.
        manifest = (bundle / "manifest.json").read_text()
        link = read_manifest(bundle)["chain_head"]
        edited = link[:-1] + ("0" if link[-1] != "0" else "1")
        (bundle / "manifest.json").write_text(manifest.replace(link, edited))
        assert "Signature Verification Failure" in run()

    def test_every_value_is_escaped_and_nothing_loads(
        self, story: Story, export: Callable[..., Path]
    ) -> None:
        casenet = story.casenet
        evil = casenet.agencies.register(
            OPERATOR_ACTOR, name="<script>alert(1)</script>", kind="ngo"
        )
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, evil.id, name="<img src=x onerror=alert(2)>", role="caseworker"
        )
        alpha = story.cases["alpha"]
        story.agencies["evil"] = evil.id
        story.actors["evil caseworker"] = Actor(evil.id, worker.id, "caseworker")
        story.grant(alpha, "evil", ["needs"])
        story.read(alpha, "evil")
        html = casenet.audit.write_report(export(Scope("case", alpha.case_id))).read_text()
        assert "&lt;script&gt;alert(1)&lt;/script&gt; may see the kinds of help needed" in html
        assert "&lt;img src=x onerror=alert(2)&gt; (caseworker)" in html
        lowered = html.lower()
        for needle in ("<script", "<img", "http://", "https://", "<link", "url("):
            assert needle not in lowered, needle
        assert re.search(r"<[^>]*\ssrc=", lowered) is None  # no element loads anything


class TestAuditReportOnSQLite(AuditReportContract):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestAuditReportOnPostgres(AuditReportContract):
    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url
