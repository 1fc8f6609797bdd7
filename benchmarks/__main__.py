"""``python -m benchmarks [--quick] [WORKLOAD ...]``: run workloads, print a table, keep JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import benchmarks
from benchmarks import WORKLOADS, Options, Row, target_text
from benchmarks._report import plot, size_tables

OUTPUT_DIR = Path("var/bench")


def discover() -> None:
    """Import every module of the package, so each registers its workloads."""
    for module in pkgutil.iter_modules(benchmarks.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"benchmarks.{module.name}")


def main(argv: Sequence[str] | None = None) -> int:
    discover()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure figures against ceilings taken in the same run.",
    )
    parser.add_argument("--quick", action="store_true", help="a size for CI: well under a minute")
    parser.add_argument(
        "workloads", nargs="*", metavar="WORKLOAD", help=f"any of: {', '.join(WORKLOADS)}"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.workloads if name not in WORKLOADS]
    if unknown:
        parser.error(f"no workload named {unknown[0]!r}; known: {', '.join(WORKLOADS)}")
    options = Options(quick=args.quick)
    rows: list[Row] = []
    for name in args.workloads or list(WORKLOADS):
        started = time.perf_counter()
        produced = WORKLOADS[name](options)
        write_json(name, options, produced, time.perf_counter() - started)
        rows.extend(produced)
    print_table(rows)
    if options.quick:
        # A smoke run (CI's): its figures are kept apart and change no checked-in file.
        print(f"quick run: results in {output_dir(options)}; BENCHMARKS.md left as it is")
    else:
        refresh_markdown()
    return 0


def output_dir(options: Options) -> Path:
    """Where a run's JSON goes: quick runs beside, never over, the full run's."""
    return OUTPUT_DIR / "quick" if options.quick else OUTPUT_DIR


MARKDOWN = Path("BENCHMARKS.md")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def machine() -> str:
    """Cores, CPU model, Python and PostgreSQL versions: what the figures were taken on."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    postgres = "not reachable"
    try:
        import psycopg

        from benchmarks.stores import postgres_admin_url

        with psycopg.connect(postgres_admin_url(), connect_timeout=3) as connection:
            row = connection.execute("SHOW server_version").fetchone()
            postgres = str(row[0]) if row else postgres
    except Exception as error:  # noqa: BLE001  (a report without PostgreSQL is still useful)
        postgres = f"not reachable ({type(error).__name__})"
    return (
        f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, "
        f"PostgreSQL {postgres}"
    )


def refresh_markdown() -> None:
    """Rewrite the results block of BENCHMARKS.md from every var/bench/*.json."""
    if not MARKDOWN.exists():
        return
    lines = [
        BEGIN,
        f"Last refreshed {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
        "| workload | store | figure | value | ceiling | ratio | target | run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    documents = {}
    for path in sorted(OUTPUT_DIR.glob("*.json")):
        document = json.loads(path.read_text())
        if not isinstance(document, dict) or "rows" not in document:
            continue  # written by a workload run on its own, in its own shape
        documents[path.stem] = document
        run = "quick" if document.get("quick") else "full"
        for row in document["rows"]:
            target = target_text(row.get("target"), row.get("condition"))
            verdict = (
                "-"
                if target is None
                else f"{target} " + ("met" if row.get("meets_target") else "**missed**")
            )
            lines.append(
                f"| {row['workload']} | {row['store']} | {row['figure']} | {number(row['value'])} "
                f"| {number(row['ceiling'])} | {row['ratio']:.3f} | {verdict} | {run} |"
            )
    lines += size_tables(documents)
    lines.append(END)
    plot(documents)
    text = MARKDOWN.read_text()
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        MARKDOWN.write_text(before + "\n".join(lines) + after)


def write_json(name: str, options: Options, rows: list[Row], seconds: float) -> Path:
    directory = output_dir(options)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    document = {
        "workload": name,
        "quick": options.quick,
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(seconds, 3),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rows": [
            {**asdict(row), "ratio": row.ratio, "meets_target": row.meets_target} for row in rows
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def number(value: float) -> str:
    """Rates as whole numbers; small figures (milliseconds) with two decimals."""
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def print_table(rows: list[Row]) -> None:
    header = ("workload", "store", "figure", "value", "ceiling", "ratio", "target")
    lines = [
        (
            row.workload,
            row.store,
            row.figure,
            number(row.value),
            number(row.ceiling),
            f"{row.ratio:.3f}",
            "-"
            if row.target_text is None
            else f"{row.target_text} " + ("ok" if row.meets_target else "MISSED"),
        )
        for row in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    for line in (header, *lines):
        cells = (str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())


if __name__ == "__main__":
    sys.exit(main())
