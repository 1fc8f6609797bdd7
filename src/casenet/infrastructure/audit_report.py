"""A human-readable report of an audit bundle: one self-contained HTML page.

Per case: the consent timeline (granted, withdrawn, expired; sections and agencies)
and the table of disclosures, then the referral steps. Plain HTML and inline CSS
that prints well, no external assets, no scripts. Everything comes from the bundle's
records, so the report shows no personal data either.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from pathlib import Path
from typing import Any

from casenet.infrastructure.audit_bundle import read_manifest, read_records

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #111; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #999; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #bbb; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #eee; } .muted { color: #555; } code { font-size: .9em; }
.granted { color: #075e07; } .withdrawn { color: #8a1c1c; } .expired { color: #6b4e00; }
@media print { body { margin: 0; max-width: none; } h2 { break-before: page; }
  th { background: none; } }
"""


def write_report(bundle: Path, out: Path | None = None) -> Path:
    """Write ``report.html`` beside the bundle's files (or to ``out``)."""
    manifest = read_manifest(bundle)
    agencies = {r["agency_id"]: r for r in read_records(bundle, "agencies.jsonl")}
    by_case = _records_by_case(bundle)
    erasures = {r["client_id"]: r for r in read_records(bundle, "erasures.jsonl")}

    def agency(agency_id: str | None) -> str:
        if agency_id is None:
            return ""
        name = agencies.get(agency_id, {}).get("name", "unknown agency")
        return f"{escape(name)} <span class=muted><code>{escape(agency_id[:8])}</code></span>"

    parts = [_header(manifest)]
    for case in read_records(bundle, "cases.jsonl"):
        case_id = case["case_id"]
        records = by_case.get(case_id, {})
        parts.append(f"<h2>Case <code>{escape(case_id)}</code></h2>")
        parts.append(
            f"<p>Owned by {agency(case['owner_agency_id'])}; opened {escape(case['at'])}; "
            f"client <code>{escape(case['client_id'])}</code>"
        )
        erased = erasures.get(case["client_id"])
        if erased is not None:
            parts.append(f" (erased {escape(erased['at'])}: personal data destroyed)")
        parts.append(".</p>")
        parts.append(_consent_timeline(records.get("consents", []), agency))
        parts.append(_disclosures(records.get("disclosures", []), agency))
        parts.append(_referrals(records.get("referrals", []), agency))
    parts.append("</body></html>\n")
    target = out or bundle / "report.html"
    target.write_text("".join(parts), encoding="utf-8")
    return target


def _records_by_case(bundle: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Each case's consent, disclosure and referral records (a withdrawal or a status
    change belongs to the case its grant or request named)."""
    by_case: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    consent_case: dict[str, str] = {}
    referral_case: dict[str, str] = {}
    for record in read_records(bundle, "consents.jsonl"):
        if record["type"] == "ConsentGranted":
            consent_case[record["consent_id"]] = record["case_id"]
        case_id = consent_case.get(record["consent_id"])
        if case_id is not None:
            by_case[case_id]["consents"].append(record)
    for record in read_records(bundle, "disclosures.jsonl"):
        by_case[record["case_id"]]["disclosures"].append(record)
    for record in read_records(bundle, "referrals.jsonl"):
        if record["type"] == "ReferralRequested":
            referral_case[record["referral_id"]] = record["case_id"]
        case_id = referral_case.get(record["referral_id"])
        if case_id is not None:
            by_case[case_id]["referrals"].append(record)
    return by_case


def _header(manifest: dict[str, Any]) -> str:
    """The page's head and what the bundle covers, from its manifest."""
    return "".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            "<title>casenet consent audit</title>",
            f"<style>{_CSS}</style></head><body>",
            "<h1>Consent audit report</h1>",
            "<p>Scope: <b>",
            escape(_describe_scope(manifest.get("scope", {}))),
            "</b>. Store position ",
            escape(str(manifest.get("store_position"))),
            ", generated ",
            escape(str(manifest.get("generated_at"))),
            ". Time range: ",
            escape(str(manifest.get("from") or "the beginning")),
            " to ",
            escape(str(manifest.get("to") or "the export")),
            ". Signed with key <code>",
            escape(str(manifest.get("key_id"))),
            "</code>; check it with <code>casenet audit verify</code>.</p>",
        ]
    )


def _describe_scope(scope: dict[str, Any]) -> str:
    kind = scope.get("kind", "all")
    return "every case" if kind == "all" else f"{kind} {scope.get('id', '')}"


def _consent_timeline(records: list[dict[str, Any]], agency: Any) -> str:
    granted = {r["consent_id"]: r for r in records if r["type"] == "ConsentGranted"}
    withdrawn = {r["consent_id"]: r["at"] for r in records if r["type"] == "ConsentWithdrawn"}
    rows = []
    for consent_id, r in granted.items():
        until = r["valid_until"]
        rows.append((r["at"], "granted", r, f"until {until}" if until else "no end date"))
        if consent_id in withdrawn:
            rows.append((withdrawn[consent_id], "withdrawn", r, ""))
        # Expiry is not an event: it shows where the clock passed valid_until first.
        if until and (consent_id not in withdrawn or until < withdrawn[consent_id]):
            rows.append((until, "expired", r, "valid_until reached"))
    if not rows:
        return "<h3>Consents</h3><p class=muted>No consents in this range.</p>"
    body = "".join(
        f"<tr><td>{escape(at)}</td><td class={kind}>{kind}</td>"
        f"<td>{agency(r.get('grantee_agency_id'))}</td>"
        f"<td>{escape(', '.join(r.get('sections', [])))}</td>"
        f"<td>{escape(r.get('purpose', ''))}</td><td>{escape(r.get('method', ''))} {escape(note)}"
        f"</td><td><code>{escape(r['consent_id'][:8])}</code></td></tr>"
        for at, kind, r, note in sorted(rows, key=lambda row: row[0])
    )
    return (
        "<h3>Consent timeline</h3><table><tr><th>when</th><th>what</th><th>to agency</th>"
        "<th>sections</th><th>purpose</th><th>how</th><th>consent</th></tr>"
        f"{body}</table>"
    )


def _disclosures(records: list[dict[str, Any]], agency: Any) -> str:
    if not records:
        return "<h3>Disclosures</h3><p class=muted>No other agency read this case.</p>"
    body = "".join(
        f"<tr><td>{escape(r['at'])}</td><td>{agency(r['recipient_agency_id'])}</td>"
        f"<td><code>{escape(r['worker_id'][:8])}</code></td>"
        f"<td>{escape(', '.join(r['sections']))}</td><td>{escape(', '.join(r['purposes']))}</td>"
        f"<td>{escape(', '.join(c[:8] for c in r['consent_ids']))}</td></tr>"
        for r in records
    )
    return (
        "<h3>Disclosures (who read what)</h3><table><tr><th>when</th><th>agency</th>"
        "<th>worker</th><th>sections</th><th>purpose</th><th>under consent</th></tr>"
        f"{body}</table>"
    )


def _referrals(records: list[dict[str, Any]], agency: Any) -> str:
    if not records:
        return ""
    body = "".join(
        f"<tr><td>{escape(r['at'])}</td><td><code>{escape(r['referral_id'][:8])}</code></td>"
        f"<td>{escape(r['status'])}{' (' + escape(r['outcome']) + ')' if r.get('outcome') else ''}"
        f"</td><td>{agency(r['agency_id'])}</td></tr>"
        for r in records
    )
    return (
        "<h3>Referral steps</h3><table><tr><th>when</th><th>referral</th><th>status</th>"
        f"<th>by agency</th></tr>{body}</table>"
    )
