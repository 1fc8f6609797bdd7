"""``casenet directory import|export``: a network started from an existing directory
(Open Referral HSDS 3.0 JSON), and its directory handed on (JSON, or HSDS's tabular
data package of CSV files)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from casenet.application import OPERATOR_ACTOR
from casenet.application.hsds_tabular import TABLES, datapackage, tables
from casenet.cli.commands import CommandError, services
from casenet.settings import Settings

#: A directory file larger than this is refused (a city's 211 directory is a few MB).
MAX_FILE = 64 * 1024 * 1024


def add_directory_exchange(subcommands: Any) -> None:
    """The ``directory`` subcommand: ``import FILE`` and ``export``."""
    directory = subcommands.add_parser(
        "directory", help="import or export the directory as Open Referral HSDS 3.0"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    load = directory.add_parser(
        "import",
        help="create or update agencies and services from HSDS JSON (an organization "
        "list with services, or a service package); importing again changes nothing",
    )
    load.add_argument("file", type=Path, metavar="FILE")
    load.set_defaults(run=cmd_directory_import)
    export = directory.add_parser("export", help="write the directory as HSDS 3.0")
    export.add_argument("--format", choices=["json", "csv"], default="json")
    export.add_argument(
        "--out",
        type=Path,
        help="json: a file (default: standard output); csv: a directory for "
        "datapackage.json and the CSV tables (required)",
    )
    export.set_defaults(run=cmd_directory_export)


def cmd_directory_import(args: argparse.Namespace, settings: Settings) -> None:
    """Check the whole file, then write: a bad file writes nothing (one line, exit 1)."""
    try:
        with args.file.open("rb") as file:
            document = file.read(MAX_FILE + 1)
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror}") from None
    if len(document) > MAX_FILE:
        raise CommandError(f"{args.file} is over {MAX_FILE // (1024 * 1024)} MiB")
    with services(settings) as casenet:
        summary = casenet.directory_exchange.import_document(OPERATOR_ACTOR, document)
    print(
        f"imported {args.file}: {summary.created} agencies created, {summary.updated} "
        f"updated, {summary.unchanged} unchanged"
    )


def cmd_directory_export(args: argparse.Namespace, settings: Settings) -> None:
    """JSON: an array of HSDS organizations with their services (``organization_package``);
    CSV: HSDS's tabular data package."""
    if args.format == "csv" and args.out is None:
        raise CommandError("--format csv writes several files: give --out DIRECTORY")
    with services(settings) as casenet:
        organizations = casenet.directory_exchange.export(OPERATOR_ACTOR)
    if args.format == "json":
        text = json.dumps(msgspec.to_builtins(organizations), indent=2, ensure_ascii=False)
        if args.out is None:
            sys.stdout.write(text + "\n")
        else:
            args.out.write_text(text + "\n", encoding="utf-8")
        return
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    package = json.dumps(datapackage(), indent=2)
    (out / "datapackage.json").write_text(package + "\n", encoding="utf-8")
    for table, rows in tables(organizations).items():
        with (out / f"{table}.csv").open("w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=[name for name, _ in TABLES[table]])
            writer.writeheader()
            writer.writerows(rows)
    print(f"wrote {out}/datapackage.json and {len(TABLES)} tables")
