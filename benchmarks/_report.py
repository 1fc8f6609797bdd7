"""How cost grows with the store, from the workloads' JSON: two tables and a plot.

``scaling`` keeps, per store and size, the p50 and p99 of an owner's read and of adding
a note; ``rebuild`` keeps, per store and size, the rebuild's rate, its ceiling's and its
peak memory. :func:`size_tables` renders both as Markdown tables for BENCHMARKS.md, and
:func:`plot` draws them side by side in ``docs/scaling.png`` (linked from there), from
whatever JSON the runs left in ``var/bench/``: a workload run alone redraws the plot
with the other's last figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Linked from BENCHMARKS.md, so kept in the repository beside it.
PLOT = Path("docs/scaling.png")
_OPERATIONS = {"read": "owner read", "write": "add note"}

Document = dict[str, Any]


def latencies(documents: dict[str, Document]) -> dict[str, dict[int, dict[str, float]]]:
    """Per store, per size: read/write p50/p99 in ms (from ``scaling``)."""
    found: dict[str, dict[int, dict[str, float]]] = {}
    for row in documents.get("scaling", {}).get("rows", []):
        found[row["store"]] = {int(size): summary for size, summary in row["details"].items()}
    return found


def rebuilds(documents: dict[str, Document]) -> dict[str, list[dict[str, float]]]:
    """Per store, per size in order: events, rebuild and ceiling events/s, peak MiB."""
    found: dict[str, list[dict[str, float]]] = {}
    for row in documents.get("rebuild", {}).get("rows", []):
        details = row["details"]
        if row.get("target") is None or "events" not in details:
            continue  # the library-read comparison and the memory rows
        found.setdefault(row["store"], []).append(
            {
                "events": details["events"],
                "rate": row["value"],
                "ceiling": row["ceiling"],
                "ratio": row["ratio"],
                "peak_rss_mib": details.get("peak_rss_mib", float("nan")),
            }
        )
    for points in found.values():
        points.sort(key=lambda point: point["events"])
    return found


def size_tables(documents: dict[str, Document]) -> list[str]:
    """Markdown lines: latency and rebuild against store size (none if not measured)."""
    lines: list[str] = []
    by_store = latencies(documents)
    sizes = sorted({size for sizes in by_store.values() for size in sizes})
    if sizes:
        lines += [
            "",
            "Latency against store size, p50 / p99 ms (`scaling`):",
            "",
            "| store | operation | " + " | ".join(f"{size:,} events" for size in sizes) + " |",
            "| --- | --- | " + " | ".join("---" for _ in sizes) + " |",
        ]
        for store, measured in by_store.items():
            for kind, operation in _OPERATIONS.items():
                cells = [
                    f"{measured[size][f'{kind}_p50']:.2f} / {measured[size][f'{kind}_p99']:.2f}"
                    if size in measured
                    else "-"
                    for size in sizes
                ]
                lines.append(f"| {store} | {operation} | " + " | ".join(cells) + " |")
    built = rebuilds(documents)
    if built:
        lines += [
            "",
            "Rebuild against store size (`rebuild`):",
            "",
            "| store | events | rebuild events/s | ceiling events/s | ratio | peak RSS MiB |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for store, points in built.items():
            for p in points:
                lines.append(
                    f"| {store} | {p['events']:,.0f} | {p['rate']:,.0f} | {p['ceiling']:,.0f} "
                    f"| {p['ratio']:.3f} | {p['peak_rss_mib']:.1f} |"
                )
    return lines


def plot(documents: dict[str, Document], out: Path = PLOT) -> Path | None:
    """Latency (left) and rebuild rate (right) against store size, as a PNG; the path,
    or None when there is nothing to draw or matplotlib (the bench extra) is missing."""
    by_store, built = latencies(documents), rebuilds(documents)
    if not by_store and not built:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        print("benchmarks: matplotlib not installed (pip install -e '.[bench]'): no plot")
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    for store, measured in by_store.items():
        sizes = sorted(measured)
        for kind, operation in _OPERATIONS.items():
            left.plot(
                sizes,
                [measured[size][f"{kind}_p50"] for size in sizes],
                marker="o",
                label=f"{store} {operation}",
            )
    left.set_title("p50 latency (flat is the target)")
    left.set_ylabel("ms")
    for store, points in built.items():
        events = [p["events"] for p in points]
        (line,) = right.plot(
            events, [p["rate"] for p in points], marker="o", label=f"{store} rebuild"
        )
        right.plot(
            events,
            [p["ceiling"] for p in points],
            marker="x",
            linestyle="--",
            color=line.get_color(),
            label=f"{store} read+decode (ceiling)",
        )
    right.set_title("rebuild rate, and its ceiling")
    right.set_ylabel("events/s")
    right.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1000:,.0f}k"))
    for axis in (left, right):
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("events in the store")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    print(f"benchmarks: plot written to {out}")
    return out
