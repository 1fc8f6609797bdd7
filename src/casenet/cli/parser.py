"""The command line: every subcommand, its arguments, and the command that runs it."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn
from uuid import UUID

from casenet import __version__
from casenet.cli import commands
from casenet.cli.demo import cmd_demo
from casenet.cli.directory import add_directory_exchange
from casenet.cli.network import add_network
from casenet.cli.webhooks import add_webhooks
from casenet.domain.errors import InvalidInput
from casenet.domain.values import check_instant

#: ``add_subparsers()``'s result (argparse does not name its type publicly).
Subcommands = Any


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 1, like every error."""

    def error(self, message: str) -> NoReturn:
        print(f"casenet: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(1)


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id: {value!r}") from None


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (1 to 65535): {value!r}")
    return int(value)


def _positive(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 1024:
        raise argparse.ArgumentTypeError(f"not a number from 1 to 1024: {value!r}")
    return int(value)


def _instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp: {value!r}") from None
    try:
        return check_instant(instant, "timestamp")
    except InvalidInput as error:
        raise argparse.ArgumentTypeError(f"{error.message}: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The ``casenet`` command line; each subcommand's ``run`` is what carries it out."""
    parser = _Parser(
        prog="casenet",
        description="Run and administer a casenet: the consent-bound referral network.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected failure"
    )
    parser.add_argument("--version", action="version", version=f"casenet {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(subcommands)
    subcommands.add_parser(
        "migrate", help="create or upgrade the tables; says which it did"
    ).set_defaults(run=commands.cmd_migrate)
    _add_directory(subcommands)
    _add_projections(subcommands)
    subcommands.add_parser(
        "demo", help="seed a small network and print a token per worker"
    ).set_defaults(run=cmd_demo)
    _add_audit(subcommands)
    _add_keys(subcommands)
    clients = subcommands.add_parser("clients", help="clients' personal data").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    erase = clients.add_parser(
        "erase", help="crypto-shred a client's personal data (cannot be undone)"
    )
    erase.add_argument("client_id", type=_uuid)
    erase.set_defaults(run=commands.cmd_clients_erase)
    add_webhooks(subcommands)
    add_network(subcommands, _instant)
    add_directory_exchange(subcommands)
    return parser


def _add_serve(subcommands: Subcommands) -> None:
    serve = subcommands.add_parser("serve", help="serve the REST API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--workers", type=_positive, default=1, help="worker processes")
    serve.set_defaults(run=commands.cmd_serve)


def _add_directory(subcommands: Subcommands) -> None:
    agencies = subcommands.add_parser("agencies", help="register and list agencies").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add_agency = agencies.add_parser("add", help="register an agency; prints its id")
    add_agency.add_argument("name")
    add_agency.add_argument("--kind", required=True, help="ngo, hospital, school, welfare, ...")
    add_agency.add_argument(
        "--restricted", action="store_true", help="never disclose identifying sections"
    )
    add_agency.set_defaults(run=commands.cmd_agencies_add)
    agencies.add_parser(
        "list", help="every agency: id, kind, name, restricted or not"
    ).set_defaults(run=commands.cmd_agencies_list)

    workers = subcommands.add_parser("workers", help="add, list and revoke workers").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add_worker = workers.add_parser("add", help="add a worker; prints the token once")
    add_worker.add_argument("agency_id", type=_uuid)
    add_worker.add_argument("name")
    add_worker.add_argument(
        "--role", required=True, choices=["caseworker", "supervisor", "admin", "auditor"]
    )
    add_worker.set_defaults(run=commands.cmd_workers_add)
    list_workers = workers.add_parser(
        "list", help="an agency's workers, active and revoked (never a token)"
    )
    list_workers.add_argument("agency_id", type=_uuid)
    list_workers.set_defaults(run=commands.cmd_workers_list)
    revoke = workers.add_parser("revoke", help="revoke a worker: the token stops at once")
    revoke.add_argument("worker_id", type=_uuid)
    revoke.set_defaults(run=commands.cmd_workers_revoke)


def _add_projections(subcommands: Subcommands) -> None:
    projections = subcommands.add_parser(
        "projections", help="read models: rebuild, status, checksum, run"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild = projections.add_parser(
        "rebuild", help="drop and replay read models from the log (resumable)"
    )
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="default: every read model")
    rebuild.set_defaults(run=commands.cmd_projections_rebuild)
    projections.add_parser("status", help="each read model's position and lag").set_defaults(
        run=commands.cmd_projections_status
    )
    checksum = projections.add_parser(
        "checksum", help="NAME SHA256 per read model: equal for equal content"
    )
    checksum.add_argument("names", nargs="*", metavar="NAME")
    checksum.set_defaults(run=commands.cmd_projections_checksum)
    run = projections.add_parser("run", help="keep read models current (a separate process)")
    run.add_argument("--interval", type=float, default=0.2, help="seconds between polls")
    run.set_defaults(run=commands.cmd_projections_run)


def _add_audit(subcommands: Subcommands) -> None:
    audit = subcommands.add_parser(
        "audit", help="consent audit bundles: export, verify, public-key"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    export = audit.add_parser("export", help="write a signed consent audit bundle")
    export.add_argument("--out", type=Path, required=True, help="directory to write")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--case", type=_uuid, help="one case")
    which.add_argument("--client", type=_uuid, help="every case of one client")
    which.add_argument("--all", action="store_true", help="every case")
    export.add_argument("--from", dest="since", type=_instant, help="events at or after")
    export.add_argument("--to", dest="until", type=_instant, help="events before")
    export.add_argument("--html", action="store_true", help="also write report.html")
    export.set_defaults(run=commands.cmd_audit_export)
    verify_cmd = audit.add_parser("verify", help="check a bundle offline")
    verify_cmd.add_argument("bundle", type=Path)
    verify_cmd.add_argument(
        "--public-key", type=Path, help="file with the base64 public key (default: this casenet's)"
    )
    verify_cmd.set_defaults(run=commands.cmd_audit_verify, needs_settings=False)
    audit.add_parser("public-key", help="print the public key to hand to auditors").set_defaults(
        run=commands.cmd_audit_public_key
    )


def _add_keys(subcommands: Subcommands) -> None:
    keys = subcommands.add_parser("keys", help="manage master and data keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    keys.add_parser(
        "rotate", help="re-wrap every data key under the newest master key"
    ).set_defaults(run=commands.cmd_keys_rotate)
    keys.add_parser("status", help="how many data keys each master key wraps").set_defaults(
        run=commands.cmd_keys_status
    )
    keys.add_parser(
        "generate", help="print new production secrets (CASENET_MASTER_KEYS=... lines)"
    ).set_defaults(run=commands.cmd_keys_generate, needs_settings=False)
