"""``casenet network report``: the network's figures for the operator, to share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from casenet.cli.commands import CommandError, services
from casenet.domain.errors import InvalidInput
from casenet.settings import Settings


def add_network(subcommands: Any, instant: Callable[[str], datetime]) -> None:
    """The ``network`` subcommands (``instant`` parses ``--from`` and ``--to``)."""
    network = subcommands.add_parser(
        "network", help="the network's referral figures"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    report = network.add_parser(
        "report",
        help="per agency and service: referrals received, accepted, completed, answered "
        "late; counts below 5 withheld (the report is shared with the network)",
    )
    report.add_argument("--from", dest="since", type=instant, help="requested at or after")
    report.add_argument("--to", dest="until", type=instant, help="requested before")
    report.add_argument("--html", type=Path, metavar="FILE", help="also write a page with charts")
    report.set_defaults(run=cmd_network_report)


def cmd_network_report(args: argparse.Namespace, settings: Settings) -> None:
    """Print the table (and write the page): every agency's figures, small cells withheld."""
    with services(settings) as casenet:
        try:
            print(casenet.network.report_table(since=args.since, until=args.until))
        except InvalidInput as error:
            raise CommandError(str(error)) from None
        if args.html is None:
            return
        try:
            written = casenet.network.write_report(args.html, since=args.since, until=args.until)
        except OSError as error:
            raise CommandError(f"cannot write {args.html}: {error.strerror}") from None
    print(f"report: {written}")
