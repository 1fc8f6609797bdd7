"""What each subcommand does, through the application services (``casenet.application``).

A command opens the services over the store for its own run (``services``), calls
them, and prints one result line per thing done; stdout keeps only those lines.
"""

from __future__ import annotations

import argparse
import base64
import errno
import functools
import secrets
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from casenet.application import OPERATOR_ACTOR, Casenet
from casenet.application.audit import (
    BundleInvalid,
    Scope,
    public_key,
    verify_bundle,
)
from casenet.application.operations import (
    EncryptionOff,
    ReadModelStopped,
    UnknownReadModel,
)
from casenet.bootstrap import build_casenet
from casenet.settings import Settings


class CommandError(Exception):
    """A command could not be carried out; the message is shown as one line."""


@contextmanager
def services(settings: Settings) -> Iterator[Casenet]:
    """The services over the store the settings name, for one command, closed after."""
    casenet = build_casenet(settings)
    try:
        yield casenet
    finally:
        casenet.close()


def check_port_free(host: str, port: int) -> None:
    """Bind the address and let it go: a taken port is one line here, not a granian
    worker failing after the banner (the socket allows TIME_WAIT reuse, as granian)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CommandError(f"port {port} on {host} is in use") from None
        reason = error.strerror or type(error).__name__
        raise CommandError(f"cannot listen on {host} port {port}: {reason}") from None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    """Check the port, open the store once (both to fail fast with one line), then hand
    over to granian."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from casenet.api.observability import server_logging
    from casenet.api.serving import SERVED_APP

    check_port_free(args.host, args.port)
    build_casenet(settings).close()
    url = f"http://{args.host}:{args.port}"
    print(f"casenet {settings.env} on {url} (store: {settings.database.display})")
    if "CASENET_OPERATOR_TOKEN" in settings.generated:
        print(
            f"operator token (dev, from {settings.data_dir / 'operator_token'}): "
            f"{settings.operator_token}"
        )
    sys.stdout.flush()
    Granian(
        SERVED_APP,  # create_app, then the worker's startup heap frozen (api/serving.py)
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        factory=True,
        # granian's own lines in casenet's level and format, on stderr; its access log
        # stays off (casenet's has the route template and the request id).
        log_level=LogLevels(settings.log_level),
        log_dictconfig=server_logging(settings),
        log_access=False,
    ).serve()


def cmd_agencies_add(args: argparse.Namespace, settings: Settings) -> None:
    with services(settings) as casenet:
        agency = casenet.agencies.register(
            OPERATOR_ACTOR, name=args.name, kind=args.kind, restricted=args.restricted
        )
        print(agency.id)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    """Opening the store creates or upgrades the tables; say which happened."""
    with services(settings) as casenet:
        schema = casenet.schema
    short = schema.fingerprint[:12]
    if not schema.changed:
        print(f"the tables are current (schema {short})")
    elif schema.previous is None:
        print(f"created the tables (schema {short})")
    else:
        print(f"upgraded the tables (schema {schema.previous[:12]} to {short})")


def cmd_agencies_list(args: argparse.Namespace, settings: Settings) -> None:
    """One line per agency, by id: ``ID KIND NAME [restricted]``."""
    with services(settings) as casenet:
        for agency in casenet.directory.every_agency():
            restricted = "restricted" if agency.restricted else "open"
            print(f"{agency.id} {agency.kind} {restricted} {agency.name}")


def cmd_workers_list(args: argparse.Namespace, settings: Settings) -> None:
    """One line per worker, in the order they were added: ``ID ROLE active|revoked NAME``."""
    with services(settings) as casenet:
        for worker in casenet.agencies.workers(OPERATOR_ACTOR, args.agency_id):
            state = "active" if worker.active else "revoked"
            print(f"{worker.id} {worker.role} {state} {worker.name}")


def cmd_workers_revoke(args: argparse.Namespace, settings: Settings) -> None:
    """Through the API's service: the token stops working in every process at once."""
    with services(settings) as casenet:
        agency, worker = casenet.agencies.revoke_worker_by_id(OPERATOR_ACTOR, args.worker_id)
        print(f"worker {worker.id} ({worker.role}) of agency {agency.id} revoked")


def cmd_workers_add(args: argparse.Namespace, settings: Settings) -> None:
    with services(settings) as casenet:
        worker, token = casenet.agencies.add_worker(
            OPERATOR_ACTOR, args.agency_id, name=args.name, role=args.role
        )
        print(f"worker {worker.id} ({worker.role})")
        print(f"token (shown once, stored only as a hash): {token}")


def _projection_names(casenet: Casenet, requested: list[str]) -> list[str]:
    try:
        return casenet.projections.names(requested)
    except UnknownReadModel as error:
        raise CommandError(str(error)) from None


def cmd_projections_rebuild(args: argparse.Namespace, settings: Settings) -> None:
    """Drop and replay read models from the log; an interrupted rebuild resumes."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with services(settings) as casenet:
        projections = casenet.projections
        names = _projection_names(casenet, args.names)
        head = projections.head()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # stdout keeps only the result lines
            transient=not sys.stderr.isatty(),
        ) as progress:
            # One pass over the log for every model named: read and decode once.
            # Resuming: the models start from the least advanced one's committed position.
            task = progress.add_task(
                ", ".join(names), total=head, completed=projections.resumed_from(names)
            )
            try:
                projections.rebuild(names, progress=functools.partial(progress.advance, task))
            except ReadModelStopped as error:  # the others were rebuilt; this one stopped
                raise CommandError(str(error)) from None
            progress.update(task, completed=head)
        for name in names:
            print(f"{name} rebuilt to position {projections.position(name)}")


def cmd_projections_status(args: argparse.Namespace, settings: Settings) -> None:
    with services(settings) as casenet:
        for status in casenet.projections.status():
            state = " (rebuilding)" if status.rebuilding else ""
            if status.stopped is not None:
                state += f" STOPPED: {status.stopped}"
            print(f"{status.name} position {status.position} lag {status.lag}{state}")


def cmd_projections_checksum(args: argparse.Namespace, settings: Settings) -> None:
    with services(settings) as casenet:
        for name in _projection_names(casenet, args.names):
            print(f"{name} {casenet.projections.checksum(name)}")


def cmd_projections_run(args: argparse.Namespace, settings: Settings) -> None:
    """Keep the read models current, as its own process (production)."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with services(settings) as casenet:
        print("keeping read models current; Ctrl-C or SIGTERM stops", flush=True)
        try:
            casenet.projections.run(stop, interval=args.interval)
        except KeyboardInterrupt:
            stop.set()


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> None:
    """Write a signed consent audit bundle (and, with --html, a readable report)."""
    if args.all:
        scope = Scope("all")
    else:
        scope = Scope("case", args.case) if args.case else Scope("client", args.client)
    with services(settings) as casenet:
        manifest = casenet.audit.export(args.out, scope, since=args.since, until=args.until)
        report = casenet.audit.write_report(args.out) if args.html else None
    counts = ", ".join(f"{f['records']} {f['name'].split('.')[0]}" for f in manifest["files"])
    print(f"wrote {args.out}: {counts}; store position {manifest['store_position']}")
    if report is not None:
        print(f"report: {report}")


def cmd_audit_verify(args: argparse.Namespace, settings: Settings | None) -> None:
    """Offline: needs only the bundle (a directory, or the tar the API serves) and the
    public key."""
    if args.public_key is not None:
        try:
            text = args.public_key.read_text()
        except (OSError, UnicodeDecodeError):
            raise CommandError(f"cannot read the public key file {args.public_key}") from None
    else:
        assert settings is not None
        text = public_key(settings.signing_key)
    bundle: Path = args.bundle
    try:
        verified = verify_bundle(bundle, text)
    except BundleInvalid as error:
        raise CommandError(f"bundle does not verify: {error}") from None
    files = ", ".join(f"{count} {name}" for name, count in verified.files.items())
    print(
        f"verified {verified.records} records ({files}); chain head {verified.chain_head[:16]}; "
        f"signed by key {verified.key_id}"
    )


def cmd_audit_public_key(args: argparse.Namespace, settings: Settings) -> None:
    print(public_key(settings.signing_key))


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
    with services(settings) as casenet, _encrypted():
        moved = casenet.keys.rotate()
        print(f"re-wrapped {moved} data keys under master key {casenet.keys.newest_master_key()}")
        _print_key_counts(casenet.keys.counts())


def cmd_keys_generate(args: argparse.Namespace, settings: Settings | None) -> None:
    """Print a new set of production secrets, as environment lines; stores nothing."""

    def key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    stamp = datetime.now(UTC).strftime("%Y%m%d")
    print(f"CASENET_MASTER_KEYS=k{stamp}:{key()}")
    print(f"CASENET_SIGNING_KEY={key()}")
    print(f"CASENET_OPERATOR_TOKEN={secrets.token_urlsafe(32)}")


def cmd_keys_status(args: argparse.Namespace, settings: Settings) -> None:
    with services(settings) as casenet, _encrypted():
        print(f"newest master key: {casenet.keys.newest_master_key()}")
        _print_key_counts(casenet.keys.counts())


@contextmanager
def _encrypted() -> Iterator[None]:
    """A store without field encryption has no keys: one line says so."""
    try:
        yield
    except EncryptionOff as error:
        raise CommandError(str(error)) from None


def _print_key_counts(counts: dict[str, int]) -> None:
    if not counts:
        print("no data keys yet")
    for master_key_id, count in counts.items():
        what = (
            "clients erased (no key)"
            if master_key_id == "(erased)"
            else (f"data keys wrapped by master key {master_key_id}")
        )
        print(f"{count:>9} {what}")


def cmd_clients_erase(args: argparse.Namespace, settings: Settings) -> None:
    with services(settings) as casenet:
        client = casenet.clients.erase(OPERATOR_ACTOR, args.client_id)
        print(f"client {client.id} erased: their data key is destroyed")
