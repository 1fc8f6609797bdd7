"""The ``casenet`` command: what the operator of a network runs.

Every subcommand has ``--help``; an error is one readable line and exit status 1.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
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
from casenet.infrastructure.projections import Projections
from casenet.settings import Settings, SettingsError, load_settings


class CommandError(Exception):
    """A command could not be carried out; the message is shown as one line."""


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id: {value!r}") from None


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
            projections.rebuild(names, progress=functools.partial(progress.advance, task))
            progress.update(task, completed=head)
        for name in names:
            print(f"{name} rebuilt to position {projections.positions()[name][0]}")


def cmd_projections_status(args: argparse.Namespace, settings: Settings) -> None:
    with _Services(settings) as casenet:
        for status in casenet.app.projections.status():
            state = " (rebuilding)" if status.rebuilding else ""
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
    """Seed a small network so a newcomer can try the API at once."""
    with _Services(settings) as casenet:
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
    """Offline: needs only the bundle and the public key."""
    if args.public_key is not None:
        try:
            text = args.public_key.read_text()
        except OSError:
            raise CommandError(f"cannot read the public key file {args.public_key}") from None
    else:
        assert settings is not None
        text = public_key_text(settings.signing_key)
    try:
        verified = verify(args.bundle, load_public_key(text))
    except BundleInvalid as error:
        raise CommandError(f"bundle does not verify: {error}") from None
    files = ", ".join(f"{count} {name}" for name, count in verified.files.items())
    print(
        f"verified {verified.records} records ({files}); chain head {verified.chain_head[:16]}; "
        f"signed by key {verified.key_id}"
    )


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
    parser = argparse.ArgumentParser(
        prog="casenet",
        description="Run and administer a casenet: the consent-bound referral network.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the REST API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
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
        offline = getattr(args, "needs_settings", True) is False and args.public_key is not None
        run(args, None if offline else load_settings())
    except (SettingsError, StoreUnavailable, KeyManagementError, CommandError) as error:
        print(f"casenet: error: {error}", file=sys.stderr)
        return 1
    except DomainError as error:
        print(f"casenet: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
