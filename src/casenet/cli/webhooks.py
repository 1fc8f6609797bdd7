"""``casenet webhooks deliver``: the webhook delivery worker as its own process."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from casenet.cli.commands import services
from casenet.settings import Settings


def add_webhooks(subcommands: Any) -> None:
    """The ``webhooks`` subcommand and its one action."""
    webhooks = subcommands.add_parser(
        "webhooks", help="push delivery of the feed to agencies' webhooks"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    deliver = webhooks.add_parser(
        "deliver",
        help="deliver webhooks (a separate process; any number may run beside the servers)",
    )
    deliver.add_argument(
        "--interval", type=float, default=0.5, help="seconds between looks when nothing is due"
    )
    deliver.set_defaults(run=cmd_webhooks_deliver)


def cmd_webhooks_deliver(args: argparse.Namespace, settings: Settings) -> None:
    """Deliver what is due, for ever; SIGTERM or Ctrl-C stops after the current attempt."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with services(settings) as casenet:
        print("delivering webhooks; Ctrl-C or SIGTERM stops", flush=True)
        try:
            casenet.webhook_worker().run(stop, interval=args.interval)
        except KeyboardInterrupt:
            stop.set()
