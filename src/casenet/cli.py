"""The ``casenet`` command: what the operator of a network runs.

Every subcommand has ``--help``; an error, a usage error too, is one readable line on
stderr and exit status 1. A failure nobody foresaw is one line as well, naming the
command and the kind of error but not its message (which may quote stored values);
``casenet --debug COMMAND`` shows its traceback.
"""

from __future__ import annotations

import argparse
import base64
import functools
import secrets
import sys
import tarfile
import tempfile
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn
from uuid import UUID

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.application.audit import Scope
from casenet.bootstrap import StoreUnavailable, build_casenet
from casenet.domain.agency import Service
from casenet.domain.errors import DomainError, InvalidInput
from casenet.domain.values import check_instant
from casenet.infrastructure.audit_bundle import (
    BundleInvalid,
    load_public_key,
    public_key_text,
    verify,
)
from casenet.infrastructure.audit_report import write_report
from casenet.infrastructure.crypto import KeyManagementError, KeyRing
from casenet.infrastructure.projections import Projections, ReadModelStopped
from casenet.settings import Settings, SettingsError, load_settings


class CommandError(Exception):
    """A command could not be carried out; the message is shown as one line."""


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


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    """Open the store once (to fail fast with one line), then hand over to granian."""
    from granian import Granian
    from granian.constants import Interfaces

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
        "casenet.api.app:create_app",
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        factory=True,
        log_access=False,
    ).serve()


def cmd_agencies_add(args: argparse.Namespace, settings: Settings) -> None:
    with _Services(settings) as casenet:
        agency = casenet.agencies.register(
            OPERATOR_ACTOR, name=args.name, kind=args.kind, restricted=args.restricted
        )
        print(agency.id)


def cmd_workers_add(args: argparse.Namespace, settings: Settings) -> None:
    with _Services(settings) as casenet:
        worker, token = casenet.agencies.add_worker(
            OPERATOR_ACTOR, args.agency_id, name=args.name, role=args.role
        )
        print(f"worker {worker.id} ({worker.role})")
        print(f"token (shown once, stored only as a hash): {token}")


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

    with _Services(settings) as casenet:
        projections = casenet.app.projections
        names = _projection_names(projections, args.names)
        head = projections.head()
        positions = projections.positions()
        # Resuming: the models start from the least advanced one's committed position.
        resumed = (
            min(positions[n][0] for n in names if positions[n][1])
            if any(positions[n][1] for n in names)
            else 0
        )
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # stdout keeps only the result lines
            transient=not sys.stderr.isatty(),
        ) as progress:
            # One pass over the log for every model named: read and decode once.
            task = progress.add_task(", ".join(names), total=head, completed=resumed)
            try:
                projections.rebuild(names, progress=functools.partial(progress.advance, task))
            except ReadModelStopped as error:  # the others were rebuilt; this one stopped
                raise CommandError(str(error)) from None
            progress.update(task, completed=head)
        for name in names:
            print(f"{name} rebuilt to position {projections.positions()[name][0]}")


def cmd_projections_status(args: argparse.Namespace, settings: Settings) -> None:
    with _Services(settings) as casenet:
        for status in casenet.app.projections.status():
            state = " (rebuilding)" if status.rebuilding else ""
            if status.stopped is not None:
                state += f" STOPPED: {status.stopped}"
            print(f"{status.name} position {status.position} lag {status.lag}{state}")


def cmd_projections_checksum(args: argparse.Namespace, settings: Settings) -> None:
    with _Services(settings) as casenet:
        projections = casenet.app.projections
        for name in _projection_names(projections, args.names):
            print(f"{name} {projections.checksum(name)}")


def cmd_projections_run(args: argparse.Namespace, settings: Settings) -> None:
    """Keep the read models current, as its own process (production)."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with _Services(settings) as casenet:
        print("keeping read models current; Ctrl-C or SIGTERM stops", flush=True)
        try:
            casenet.app.projections.run_forever(stop, interval=args.interval)
        except KeyboardInterrupt:
            stop.set()


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    """Seed a small network so a newcomer can try the API at once; never over real data."""
    if settings.is_production:
        raise CommandError("demo is refused when CASENET_ENV=production")
    with _Services(settings) as casenet:
        if casenet.directory.directory(service_type=None, area=None, limit=1, after=None).items:
            raise CommandError(
                f"demo is refused: the store at {settings.database.display} already has "
                "agencies (demo seeds an empty store only)"
            )
        for line in seed_demo(casenet):
            print(line)


def seed_demo(casenet: Casenet) -> list[str]:
    """A welfare NGO, a hospital social-work department and a school, with a case, a
    consent and a referral; returns the lines to print (a token per worker)."""
    agencies = casenet.agencies
    ngo = agencies.register(
        OPERATOR_ACTOR,
        name="Eastside Welfare NGO",
        kind="ngo",
        services=[Service(type="welfare", description="Benefits and housing advice")],
    )
    hospital = agencies.register(
        OPERATOR_ACTOR,
        name="City Hospital Social Work",
        kind="hospital",
        services=[Service(type="medical_social_work", description="Hospital social workers")],
    )
    school = agencies.register(OPERATOR_ACTOR, name="Riverside Primary School", kind="school")
    lines = []
    tokens: dict[str, tuple[Actor, str]] = {}
    for agency, people in (
        (
            ngo,
            [
                ("Ana Welfare", "caseworker"),
                ("Sam Supervisor", "supervisor"),
                ("Ada Admin", "admin"),
                ("Aud Itor", "auditor"),
            ],
        ),
        (hospital, [("Hal Hospital", "caseworker"), ("Hana Admin", "admin")]),
        (school, [("Sid School", "caseworker")]),
    ):
        for name, role in people:
            worker, token = agencies.add_worker(OPERATOR_ACTOR, agency.id, name=name, role=role)
            tokens[name] = (Actor(agency.id, worker.id, role), token)
            lines.append(f"{agency.name:<28} {role:<10} {name:<15} {token}")
    welfare = tokens["Ana Welfare"][0]
    case = casenet.cases.open_case(
        welfare,
        client=ClientDetails(name="Maria Santos", date_of_birth="1984-03-02", phone="+1 555 0100"),
        summary="Domestic worker; her husband's hospital appointments clash with her shifts.",
        needs=["employment", "health"],
    )
    casenet.cases.add_note(
        welfare, case.id, category="health", text="Husband needs dialysis three times a week."
    )
    consent = casenet.consents.grant(
        welfare,
        case.id,
        grantee_agency_id=hospital.id,
        sections=["identity", "contact", "notes.health"],
        purpose="referral",
        method="written",
        evidence="Signed consent form, scanned to the NGO's file",
    )
    referral = casenet.referrals.request(
        welfare,
        case_id=case.id,
        to_agency_id=hospital.id,
        service_type="medical_social_work",
        reason="Please help move the dialysis slots to evenings.",
        urgency="routine",
        consent_id=consent.id,
    )
    return [
        "casenet demo network (tokens are shown once):",
        *lines,
        f"case {case.id} (client {case.client_id}), consent {consent.id}, referral {referral.id}",
        "try: curl -H 'Authorization: Bearer <Hal Hospital token>' "
        f"http://127.0.0.1:8000/v1/cases/{case.id}",
    ]


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> None:
    """Write a signed consent audit bundle (and, with --html, a readable report)."""
    if args.all:
        scope = Scope("all")
    else:
        scope = Scope("case", args.case) if args.case else Scope("client", args.client)
    with _Services(settings) as casenet:
        manifest = casenet.audit.export(args.out, scope, since=args.since, until=args.until)
    counts = ", ".join(f"{f['records']} {f['name'].split('.')[0]}" for f in manifest["files"])
    print(f"wrote {args.out}: {counts}; store position {manifest['store_position']}")
    if args.html:
        print(f"report: {write_report(args.out)}")


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
        text = public_key_text(settings.signing_key)
    bundle: Path = args.bundle
    try:
        with tempfile.TemporaryDirectory(prefix="casenet-verify-") as scratch:
            if bundle.is_file():
                bundle = _unpack_bundle(bundle, Path(scratch))
            verified = verify(bundle, load_public_key(text))
    except BundleInvalid as error:
        raise CommandError(f"bundle does not verify: {error}") from None
    files = ", ".join(f"{count} {name}" for name, count in verified.files.items())
    print(
        f"verified {verified.records} records ({files}); chain head {verified.chain_head[:16]}; "
        f"signed by key {verified.key_id}"
    )


def _unpack_bundle(archive: Path, scratch: Path) -> Path:
    """The bundle inside a tar from ``GET /v1/audit/export``, unpacked into ``scratch``."""
    if not tarfile.is_tarfile(archive):
        raise BundleInvalid(f"{archive}: neither a bundle directory nor a tar of one")
    try:
        with tarfile.open(archive) as tar:
            # The data filter refuses absolute paths, links out of the folder, devices.
            tar.extractall(scratch, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise BundleInvalid(f"{archive}: cannot unpack ({type(error).__name__})") from None
    if (scratch / "manifest.json").exists():
        return scratch
    folders = [p for p in scratch.iterdir() if (p / "manifest.json").is_file()]
    if len(folders) != 1:
        raise BundleInvalid(f"{archive}: the tar holds no bundle (no manifest.json)")
    return folders[0]


def cmd_audit_public_key(args: argparse.Namespace, settings: Settings) -> None:
    print(public_key_text(settings.signing_key))


def _instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp: {value!r}") from None
    try:
        return check_instant(instant, "timestamp")
    except InvalidInput as error:
        raise argparse.ArgumentTypeError(f"{error.message}: {value!r}") from None


def _projection_names(projections: Projections, requested: list[str]) -> list[str]:
    try:
        return projections.names(requested)
    except KeyError as error:
        raise CommandError(error.args[0]) from None


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
    with _Services(settings) as casenet:
        keyring = _keyring(casenet)
        moved = keyring.rotate()
        print(f"re-wrapped {moved} data keys under master key {keyring.master_keys.newest_id}")
        _print_key_counts(keyring.table.counts())


def cmd_keys_generate(args: argparse.Namespace, settings: Settings | None) -> None:
    """Print a new set of production secrets, as environment lines; stores nothing."""

    def key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    stamp = datetime.now(UTC).strftime("%Y%m%d")
    print(f"CASENET_MASTER_KEYS=k{stamp}:{key()}")
    print(f"CASENET_SIGNING_KEY={key()}")
    print(f"CASENET_OPERATOR_TOKEN={secrets.token_urlsafe(32)}")


def cmd_keys_status(args: argparse.Namespace, settings: Settings) -> None:
    with _Services(settings) as casenet:
        keyring = _keyring(casenet)
        print(f"newest master key: {keyring.master_keys.newest_id}")
        _print_key_counts(keyring.table.counts())


def _keyring(casenet: Casenet) -> KeyRing:
    if casenet.app.keyring is None:
        raise CommandError("this store runs without field encryption")
    return casenet.app.keyring


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
    with _Services(settings) as casenet:
        client = casenet.clients.erase(OPERATOR_ACTOR, args.client_id)
        print(f"client {client.id} erased: their data key is destroyed")


class _Services:
    """Open the services for one command and close them after."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> Casenet:
        self.casenet = build_casenet(self.settings)
        return self.casenet

    def __exit__(self, *exc: object) -> None:
        self.casenet.close()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="casenet",
        description="Run and administer a casenet: the consent-bound referral network.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected failure"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the REST API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--workers", type=_positive, default=1, help="worker processes")
    serve.set_defaults(run=cmd_serve)

    agencies = commands.add_parser("agencies", help="register agencies").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add_agency = agencies.add_parser("add", help="register an agency; prints its id")
    add_agency.add_argument("name")
    add_agency.add_argument("--kind", required=True, help="ngo, hospital, school, welfare, ...")
    add_agency.add_argument(
        "--restricted", action="store_true", help="never disclose identifying sections"
    )
    add_agency.set_defaults(run=cmd_agencies_add)

    workers = commands.add_parser("workers", help="add workers").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add_worker = workers.add_parser("add", help="add a worker; prints the token once")
    add_worker.add_argument("agency_id", type=_uuid)
    add_worker.add_argument("name")
    add_worker.add_argument(
        "--role", required=True, choices=["caseworker", "supervisor", "admin", "auditor"]
    )
    add_worker.set_defaults(run=cmd_workers_add)

    projections = commands.add_parser(
        "projections", help="read models: rebuild, status, checksum, run"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild = projections.add_parser(
        "rebuild", help="drop and replay read models from the log (resumable)"
    )
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="default: every read model")
    rebuild.set_defaults(run=cmd_projections_rebuild)
    projections.add_parser("status", help="each read model's position and lag").set_defaults(
        run=cmd_projections_status
    )
    checksum = projections.add_parser(
        "checksum", help="NAME SHA256 per read model: equal for equal content"
    )
    checksum.add_argument("names", nargs="*", metavar="NAME")
    checksum.set_defaults(run=cmd_projections_checksum)
    run = projections.add_parser("run", help="keep read models current (a separate process)")
    run.add_argument("--interval", type=float, default=0.2, help="seconds between polls")
    run.set_defaults(run=cmd_projections_run)

    commands.add_parser(
        "demo", help="seed a small network and print a token per worker"
    ).set_defaults(run=cmd_demo)

    audit = commands.add_parser(
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
    export.set_defaults(run=cmd_audit_export)
    verify_cmd = audit.add_parser("verify", help="check a bundle offline")
    verify_cmd.add_argument("bundle", type=Path)
    verify_cmd.add_argument(
        "--public-key", type=Path, help="file with the base64 public key (default: this casenet's)"
    )
    verify_cmd.set_defaults(run=cmd_audit_verify, needs_settings=False)
    audit.add_parser("public-key", help="print the public key to hand to auditors").set_defaults(
        run=cmd_audit_public_key
    )

    keys = commands.add_parser("keys", help="manage master and data keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    keys.add_parser(
        "rotate", help="re-wrap every data key under the newest master key"
    ).set_defaults(run=cmd_keys_rotate)
    keys.add_parser("status", help="how many data keys each master key wraps").set_defaults(
        run=cmd_keys_status
    )
    keys.add_parser(
        "generate", help="print new production secrets (CASENET_MASTER_KEYS=... lines)"
    ).set_defaults(run=cmd_keys_generate, needs_settings=False)

    clients = commands.add_parser("clients", help="clients' personal data").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    erase = clients.add_parser(
        "erase", help="crypto-shred a client's personal data (cannot be undone)"
    )
    erase.add_argument("client_id", type=_uuid)
    erase.set_defaults(run=cmd_clients_erase)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``casenet`` console script."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace, Settings | None], None] = args.run
    try:
        # Verifying a bundle with a given public key needs nothing of this casenet.
        offline = getattr(args, "needs_settings", True) is False and (
            getattr(args, "public_key", None) is not None or args.run is cmd_keys_generate
        )
        run(args, None if offline else load_settings())
    except (SettingsError, StoreUnavailable, KeyManagementError, CommandError) as error:
        print(f"casenet: error: {error}", file=sys.stderr)
        return 1
    except DomainError as error:
        print(f"casenet: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001  (the one top-level handler of the unexpected)
        print(f"casenet: error: {_unexpected(args, error)}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return 1
    return 0


def _unexpected(args: argparse.Namespace, error: Exception) -> str:
    """One line for a failure no command foresaw: what failed and the kind of error.

    An exception's message may quote stored values (a database error its row), so only
    an operating-system error, whose message names a file the operator gave, is quoted.
    """
    command = " ".join(str(part) for part in (args.command, getattr(args, "action", None)) if part)
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{command} failed: {error.strerror}{where}"
    return (
        f"{command} failed unexpectedly ({type(error).__name__}); "
        "`casenet --debug` shows the traceback"
    )


if __name__ == "__main__":
    sys.exit(main())
