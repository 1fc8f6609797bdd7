"""A report of an audit bundle for people: one self-contained HTML page.

Written for a data-protection officer or the client's advocate: a short introduction
(what the bundle is, what it covers, what it deliberately leaves out), then per case
one timeline of everything that happened to it (``audit_timeline``), in plain words,
with times as people write them and agencies and workers by name; then how to check
the bundle without casenet (the manifest's SHA-256, the signing key's fingerprint, and
the ``sha256sum``/``openssl`` commands that check them). Plain HTML and inline CSS
that prints well: no script, no external asset, every value escaped. Everything comes
from the bundle's records (ids, times, statuses, sections, purposes) except worker
names, which the caller may give (the directory's, for the workers the records name):
so the report shows no personal data of any client either.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from casenet.domain.wording import reader_time
from casenet.infrastructure.audit_bundle import FILES, read_manifest
from casenet.infrastructure.audit_timeline import CaseHistory, Entry, agency_names, case_histories

_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #111;
  padding: 0 1em; }
h1 { font-size: 1.7em; margin-bottom: .2em; } h2 { font-size: 1.3em; margin-top: 2.2em;
  border-bottom: 2px solid #444; padding-bottom: .15em; }
h3 { font-size: 1.05em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #bbb; padding: .35em .5em; text-align: left; vertical-align: top; }
th { background: #eee; } tr { break-inside: avoid; }
td.when, .consents td:first-child { white-space: nowrap; } td.when { width: 11em; }
.muted, .details { color: #444; } .details { font-size: .92em; }
.intro { background: #f4f6f8; border: 1px solid #cfd6dd; padding: .6em 1.1em; }
code, .digest { font: .9em ui-monospace, monospace; overflow-wrap: anywhere; }
.digest { display: block; background: #f4f4f4; padding: .3em .5em; margin: .2em 0 .6em; }
pre { background: #f4f4f4; padding: .6em; white-space: pre-wrap; overflow-wrap: anywhere;
  font-size: .85em; }
.consent td:nth-child(2) { border-left: 4px solid #2b7a2b; }
.withdrawn td:nth-child(2) { border-left: 4px solid #a32020; }
.expired td:nth-child(2) { border-left: 4px solid #9a6a00; }
.disclosure td:nth-child(2) { border-left: 4px solid #2a5aa0; }
.emergency td:nth-child(2) { border-left: 4px solid #c45a00; }
.review td:nth-child(2) { border-left: 4px dashed #c45a00; }
.erasure td:nth-child(2) { border-left: 4px solid #000; font-weight: bold; }
.copy td:nth-child(2) { border-left: 4px dotted #2a5aa0; }
@media print { body { margin: 0; max-width: none; font-size: 11pt; }
  h2 { break-before: page; } th, .intro, pre, .digest { background: none; } }
"""


def write_report(
    bundle: Path,
    out: Path | None = None,
    *,
    worker_names: Mapping[str, str] | None = None,
    public_key: str | None = None,
) -> Path:
    """Write ``report.html`` beside the bundle's files (or to ``out``).

    ``worker_names``: worker id -> how to name them (else "a worker"); ``public_key``:
    the base64 key the bundle is signed with, to print its fingerprint (else only the
    manifest's short key id)."""
    manifest = read_manifest(bundle)
    agencies = agency_names(bundle)
    names = worker_names or {}
    histories = case_histories(bundle)

    def agency(agency_id: str | None) -> str:
        if agency_id is None:
            return ""
        return agencies.get(agency_id, "an agency not in this bundle")

    def worker(worker_id: str | None) -> str:
        if worker_id is None:
            return ""
        return names.get(worker_id, "a worker")

    now = str(manifest.get("generated_at") or "")
    parts = [_head(), _introduction(manifest, histories, agency)]
    for history in histories:
        parts.append(_case(history, history.timeline(agency, worker, now), agency, now))
    parts.append(_how_to_check(bundle, manifest, public_key))
    parts.append("</body></html>\n")
    target = out or bundle / "report.html"
    target.write_text("".join(parts), encoding="utf-8")
    return target


def _head() -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<title>Consent audit report</title>"
        f"<style>{_CSS}</style></head><body>"
    )


def _when(at: str) -> str:
    """A time in the reader's words, its exact instant kept for machines."""
    return f"<time datetime='{escape(at)}'>{escape(reader_time(at))}</time>"


def _introduction(manifest: dict[str, Any], histories: list[CaseHistory], agency: Any) -> str:
    """What this is, what it covers, and what it deliberately leaves out."""
    lower, upper = manifest.get("from"), manifest.get("to")
    period = (
        f"from {_when(lower) if lower else 'the start of the records'} "
        f"to {_when(upper) if upper else 'the moment it was made'}"
    )
    rows = "".join(
        f"<tr><td><a href='#case-{escape(h.case['case_id'])}'>"
        f"<code>{escape(h.case['case_id'])}</code></a></td>"
        f"<td>{escape(agency(h.case['owner_agency_id']))}</td>"
        f"<td>{len(h.consent_numbers())}</td><td>{len(h.disclosures)}</td>"
        f"<td>{'yes, ' + _when(h.erasure['at']) if h.erasure else 'no'}</td></tr>"
        for h in histories
    )
    return (
        "<h1>Consent audit report</h1>"
        f"<p class=muted>Made {_when(str(manifest.get('generated_at')))}.</p>"
        "<div class=intro>"
        "<p><b>What this is.</b> A record of how the information about a client was shared "
        "between agencies: when the client gave consent to share it (with whom, what, "
        "why and until when), when a consent was withdrawn or ran out, when an agency "
        "shared without consent in an emergency (on what legal basis, and how that was "
        "reviewed afterwards), each time another "
        "agency saw part of a case, each step of each referral, and whether the client's "
        "personal data was erased.</p>"
        f"<p><b>What it covers.</b> {escape(_describe_scope(manifest.get('scope', {})))}, "
        f"{period}. It has {len(histories)} case(s); each has its own timeline below, "
        "oldest first.</p>"
        "<p><b>What is deliberately not in it.</b> No personal data: no client's name, "
        "date of birth, address, phone number, notes or messages. A case and a client "
        "appear only as a reference number, so this report can be passed on without "
        "disclosing anything about the person. Agencies and their workers are named.</p>"
        "<p><b>Can it be trusted?</b> The records come from a bundle signed by casenet; "
        "the last section says how to check that it has not been changed.</p></div>"
        "<h3>Cases in this report</h3><table><tr><th>case reference</th><th>held by</th>"
        "<th>consents</th><th>times information was passed on</th><th>personal data "
        f"erased</th></tr>{rows}</table>"
    )


def _describe_scope(scope: dict[str, Any]) -> str:
    kind = scope.get("kind", "all")
    if kind == "case":
        return f"One case (reference {scope.get('id', '')})"
    if kind == "client":
        return f"Every case of one client (client reference {scope.get('id', '')})"
    return "Every case in the network"


def _consents(history: CaseHistory, agency: Any, now: str) -> str:
    """The case's consents as they stood when the bundle was made."""
    rows = "".join(
        f"<tr><td>Consent {number}</td><td>{escape(grantee)}</td><td>{escape(shares)}</td>"
        f"<td>{escape(status)}</td></tr>"
        for number, grantee, shares, status in history.consent_standing(agency, now)
    )
    if not rows:
        return "<p>No consent was given for this case.</p>"
    return (
        "<table class=consents><tr><th>consent</th><th>given to</th><th>covers</th>"
        f"<th>when the bundle was made</th></tr>{rows}</table>"
    )


def _case(history: CaseHistory, entries: list[Entry], agency: Any, now: str) -> str:
    case = history.case
    erased = ""
    if history.erasure is not None:
        erased = (
            f" The client's personal data was erased on {_when(history.erasure['at'])}; "
            "what was recorded below remains."
        )
    rows = "".join(
        f"<tr class={entry.kind}><td class=when>{_when(entry.at)}</td>"
        f"<td>{escape(entry.what)}"
        + (f"<div class=details>{escape(entry.details)}</div>" if entry.details else "")
        + f"</td><td>{escape(entry.who)}</td></tr>"
        for entry in entries
    )
    return (
        f"<h2 id='case-{escape(case['case_id'])}'>Case <code>{escape(case['case_id'])}</code>"
        "</h2>"
        f"<p>Held by <b>{escape(agency(case['owner_agency_id']))}</b> since "
        f"{_when(case['at'])}. Client reference <code>{escape(case['client_id'])}</code>."
        f"{erased}</p><h3>Consents</h3>{_consents(history, agency, now)}"
        "<h3>Timeline</h3><table class=timeline>"
        "<tr><th>when</th><th>what happened</th><th>by</th></tr>"
        f"{rows}</table>"
    )


def _how_to_check(bundle: Path, manifest: dict[str, Any], public_key: str | None) -> str:
    """The manifest's digest, the key's fingerprint, and the commands that check them."""
    digest = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    key_id = escape(str(manifest.get("key_id", "")))
    if public_key is not None:
        fingerprint = hashlib.sha256(base64.b64decode(public_key)).hexdigest()
        key = (
            f"<p>It is signed with the public key <code>{escape(public_key)}</code>, whose "
            "SHA-256 fingerprint is:</p>"
            f"<span class=digest id=fingerprint>{escape(fingerprint)}</span>"
            "<p>Compare the fingerprint with the one the network's operator gave you "
            "(not with this page: whoever changed a bundle could change its report).</p>"
        )
    else:
        key = (
            f"<p>It is signed with the key whose fingerprint begins <code>{key_id}</code>; "
            "ask the network's operator for the public key.</p>"
        )
    files = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td><code>"
        f"{hashlib.sha256((bundle / name).read_bytes()).hexdigest()}</code></td></tr>"
        for name in FILES
    )
    return (
        "<h2 id=how-to-check>How to check this bundle</h2>"
        "<p>The bundle's folder holds this report, <code>manifest.json</code> and six "
        "files of records. The manifest lists a SHA-256 hash of the records and is signed "
        "(Ed25519), so a changed, added or removed record shows. The manifest's SHA-256 "
        "digest is:</p>"
        f"<span class=digest id=manifest-digest>{digest}</span>"
        f"{key}"
        "<h3>With standard tools</h3><p>In the bundle's folder, on Linux or macOS "
        "(<code>jq</code> and OpenSSL 3), with the public key in place of "
        "<code>PUBLIC_KEY</code>:</p><pre>"
        "sha256sum manifest.json        # prints the digest above\n"
        "echo PUBLIC_KEY | base64 -d | sha256sum   # prints the fingerprint\n"
        "(printf '\\060\\052\\060\\005\\006\\003\\053\\145\\160\\003\\041\\000'; "
        "echo PUBLIC_KEY | base64 -d) \\\n"
        "  | openssl pkey -pubin -inform DER -out key.pem\n"
        "jq -r .signature manifest.json | base64 -d &gt; manifest.sig\n"
        "jq -cSj 'del(.signature)' manifest.json &gt; signed.json\n"
        "openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in signed.json "
        "-sigfile manifest.sig\n"
        "                               # prints: Signature Verified Successfully</pre>"
        "<p>That proves the manifest is the one casenet signed. That every record matches "
        "the manifest is checked by <code>casenet audit verify --public-key FILE "
        "FOLDER</code> (it needs only the folder and the public key, no server). When this "
        "report was written the record files had these SHA-256 digests:</p>"
        f"<table><tr><th>file</th><th>SHA-256</th></tr>{files}</table>"
    )
