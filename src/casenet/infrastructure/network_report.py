"""The network's figures for people: a plain-text table for the terminal, and one
self-contained HTML page for a network coordinator to put on the screen in a meeting.

Both take the figures as ``GET /v1/network/metrics`` serves them (plain JSON values)
and agency names by id. Small cells are withheld in them as for any agency (the
application passes figures with every count below 5 already ``null``): the report is
shown to the whole network, and three referrals to a small clinic for substance use
could point at a client. The page is plain HTML with inline CSS and a small inline SVG
chart per service type: no script, no external asset, every value escaped, times as
people write them (``reader_time``). It prints on A4 landscape, where the ten columns of
a table fit; on a narrow screen a table scrolls in its own box, not the whole page.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from casenet.domain.vocabulary import NEEDS
from casenet.domain.wording import reader_time

COUNTS = ("received", "accepted", "rejected", "completed", "got_help", "overdue")
MEDIANS = ("median_hours_to_accept", "median_hours_to_complete")
HEADINGS = {
    "received": "Received",
    "accepted": "Accepted",
    "rejected": "Turned down",
    "completed": "Completed",
    "got_help": "Got help",
    "overdue": "Answered late",
    "median_hours_to_accept": "Hours to accept (median)",
    "median_hours_to_complete": "Hours to complete (median)",
}
#: What a withheld cell shows, and why (the table's and the page's footnote).
WITHHELD = "<5"
WHY_WITHHELD = (
    "<5: fewer than 5 referrals. Small numbers are withheld, with the times worked out "
    "from them, so that no client can be picked out: this report is shared with the network."
)
#: The least length of a chart's scale: a bar of 1 never fills the width.
SMALL_CELL_SHOWN = 5
#: The bars of each agency in a chart: figure, colour.
BARS = (("received", "#8a8f98"), ("accepted", "#2a5aa0"), ("got_help", "#2b7a2b"))


def service_words(code: str) -> str:
    """A service type as a heading: ``mental_health`` -> ``Mental health``."""
    return code.replace("_", " ").capitalize()


#: The count each median is worked out from.
MEDIAN_OF = {"median_hours_to_accept": "accepted", "median_hours_to_complete": "completed"}


def _cell(item: Mapping[str, Any], name: str) -> str:
    """A figure as the table shows it: ``<5`` where withheld, ``-`` for no time at all."""
    value = item[name]
    if name in MEDIAN_OF:
        if value is not None:
            return f"{value:.1f}"
        return WITHHELD if item[MEDIAN_OF[name]] is None else "-"
    return WITHHELD if value is None else str(value)


def _period(figures: Mapping[str, Any]) -> str:
    since, until = figures.get("from"), figures.get("to")
    now = reader_time(figures["at"])
    if since is None and until is None:
        return f"All referrals requested so far, as they stood on {now}."
    start = f" from {reader_time(since)}" if since else ""
    end = f" to {reader_time(until)}" if until else ""
    return f"Referrals requested{start}{end}, as they stood on {now}."


def table(figures: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The figures as a table of plain text, one line per agency and service type."""
    header = ["Agency", "Service", *(HEADINGS[c] for c in COUNTS), "Hours to accept", "To complete"]
    rows = [header]
    for item in _ordered(figures["items"], names):
        rows.append(
            [
                names.get(item["agency_id"], item["agency_id"]),
                service_words(item["service_type"]),
                *(_cell(item, c) for c in (*COUNTS, *MEDIANS)),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            v.ljust(w) if i < 2 else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    if len(rows) == 1:
        lines.append("(no referrals in this period)")
    return "\n".join([_period(figures), "", *lines, "", WHY_WITHHELD])


def _ordered(items: list[dict[str, Any]], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """By service type, then agency name (as people look them up)."""
    return sorted(
        items, key=lambda i: (i["service_type"], names.get(i["agency_id"], ""), i["agency_id"])
    )


_CSS = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #111;
  padding: 0 1em; }
h1 { font-size: 1.7em; margin-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 2px solid #444; }
.what { color: #444; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #bbb; padding: .3em .4em; } th { background: #eee; }
th { font-weight: 600; hyphens: auto; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.intro, .note { background: #f4f6f8; border: 1px solid #cfd6dd; padding: .5em 1em; }
svg { display: block; margin: .5em 0 1em; max-width: 100%; height: auto; }
svg text { font: 14px system-ui, sans-serif; fill: #111; } svg text.name { font-weight: 600; }
td:first-child { min-width: 7em; }
.wide { overflow-x: auto; }
@page { size: A4 landscape; margin: 1.2cm; }
@media print { body { margin: 0; max-width: none; font-size: 11pt; }
  section { break-inside: avoid; } th, .intro, .note { background: none; } }
"""


def page(figures: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The whole HTML page: an introduction, then per service type a chart and a table."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for item in _ordered(figures["items"], names):
        by_service.setdefault(item["service_type"], []).append(item)
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>Referrals across the network</title><style>{_CSS}</style></head><body>",
        "<h1>Referrals across the network</h1>",
        f"<p class=intro>{escape(_period(figures))} For each service, how many referrals "
        "each agency received, how many it accepted, and how many clients got the help "
        "they were referred for. An agency should accept or turn down a referral within "
        "a day when it is urgent and within a week otherwise; “answered late” counts "
        f"those it did not.</p><p class=note>{escape(WHY_WITHHELD)}</p>",
    ]
    if not by_service:
        parts.append("<p>No referrals were requested in this period.</p>")
    for service, items in by_service.items():
        parts.append(_service(service, items, names))
    parts.append("</body></html>\n")
    return "".join(parts)


def _service(service: str, items: list[dict[str, Any]], names: Mapping[str, str]) -> str:
    what = NEEDS.get(service, "")
    head = "".join(f"<th>{escape(HEADINGS[c])}</th>" for c in (*COUNTS, *MEDIANS))
    rows = "".join(
        f"<tr><td>{escape(names.get(i['agency_id'], 'an agency'))}</td>"
        + "".join(f"<td class=n>{escape(_cell(i, c))}</td>" for c in (*COUNTS, *MEDIANS))
        + "</tr>"
        for i in items
    )
    return (
        f"<section><h2>{escape(service_words(service))}</h2>"
        + (f"<p class=what>{escape(what)}</p>" if what else "")
        + _chart(service, items, names)
        + f"<div class=wide><table><tr><th>Agency</th>{head}</tr>{rows}</table></div></section>"
    )


def _chart(service: str, items: list[dict[str, Any]], names: Mapping[str, str]) -> str:
    """Per agency, its name over three bars: received, accepted, got help; a withheld
    figure is said in words, and an agency with fewer than 5 referrals in one line."""
    width, bar, line = 560, 14, 20
    scale = max([i["received"] or 0 for i in items] + [SMALL_CELL_SHOWN])
    title = f"{service_words(service)}: referrals received, accepted, and clients who got help"
    parts, y = [_legend()], 34
    for item in items:
        name = names.get(item["agency_id"], "an agency")
        parts.append(f"<text x='0' y='{y + 13}' class=name>{escape(name)}</text>")
        y += line
        if item["received"] is None:
            parts.append(f"<text x='0' y='{y + 12}' fill='#555'>fewer than 5 referrals</text>")
            y += line + 8
            continue
        for figure, colour in BARS:
            value = item[figure]
            if value is None:
                text = f"{HEADINGS[figure]}: fewer than 5"
                parts.append(f"<text x='0' y='{y + 12}' fill='#555'>{escape(text)}</text>")
            else:
                length = max(1, round((width - 40) * value / scale))
                parts.append(
                    f"<rect x='0' y='{y}' width='{length}' height='{bar}' fill='{colour}'/>"
                    f"<text x='{length + 5}' y='{y + 12}'>{value}</text>"
                )
            y += bar + 3
        y += 12
    return (
        f"<svg role=img viewBox='0 0 {width} {y}' width='{width}' height='{y}'>"
        f"<title>{escape(title)}</title>{''.join(parts)}</svg>"
    )


def _legend() -> str:
    out, x = [], 0
    for figure, colour in BARS:
        words = HEADINGS[figure]
        out.append(
            f"<rect x='{x}' y='6' width='14' height='14' fill='{colour}'/>"
            f"<text x='{x + 19}' y='18'>{escape(words)}</text>"
        )
        x += 19 + 9 * len(words) + 22
    return "".join(out)


def write_page(target: Path, figures: Mapping[str, Any], names: Mapping[str, str]) -> Path:
    """Write :func:`page` to ``target``; the path written."""
    target.write_text(page(figures, names), encoding="utf-8")
    return target
