"""The ``casenet`` command: what the operator of a network runs.

Every subcommand has ``--help``; an error, a usage error too, is one readable line on
stderr and exit status 1. A failure nobody foresaw is one line as well, naming the
command and the kind of error but not its message (which may quote stored values);
``casenet --debug COMMAND`` shows its traceback.

``parser`` is the command line; ``commands`` (and ``demo``) carry out each subcommand
through the application services (``casenet.application``), never past them.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from casenet.application.operations import KeyManagementError
from casenet.bootstrap import StoreUnavailable
from casenet.cli import commands
from casenet.cli.commands import CommandError
from casenet.cli.demo import seed_demo
from casenet.cli.parser import build_parser
from casenet.domain.errors import DomainError
from casenet.settings import Settings, SettingsError, load_settings

__all__ = ["CommandError", "build_parser", "main", "seed_demo"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``casenet`` console script."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace, Settings | None], None] = args.run
    try:
        # Verifying a bundle with a given public key needs nothing of this casenet.
        offline = getattr(args, "needs_settings", True) is False and (
            getattr(args, "public_key", None) is not None or args.run is commands.cmd_keys_generate
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
