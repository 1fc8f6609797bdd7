"""Wire settings to the store and the services: the one place that builds them."""

from __future__ import annotations

import psycopg

from casenet.application import Casenet, CasenetApplication
from casenet.infrastructure.crypto import KeyManagementError, KeyRing, MasterKeys
from casenet.infrastructure.store import CONNECT_TIMEOUT_SECONDS, eventsourcing_env
from casenet.infrastructure.webhook_http import TargetRule
from casenet.settings import Settings


def probe_postgres(settings: Settings) -> None:
    """One direct connection first: the pool would only say it timed out, the driver
    says why (refused, no such database, authentication failed)."""
    database = settings.database
    with psycopg.connect(
        host=database.host,
        port=database.port,
        user=database.user,
        password=database.password or None,
        dbname=database.dbname,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
    ):
        pass


def safe_reason(error: BaseException, settings: Settings) -> str:
    """The first line of the driver's message (refused, no such database, bad password),
    with the password removed: enough to act on, nothing secret."""
    text = (str(error).strip().splitlines() or [""])[0][:300]
    password = settings.database.password
    if password:
        text = text.replace(password, "***")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class StoreUnavailable(Exception):
    """The database cannot be reached or opened; the message is one safe line."""


def build_casenet(settings: Settings, *, encrypt: bool = True) -> Casenet:
    """Open the event store named by the settings and return the services over it.

    ``encrypt=False`` stores personal fields in the clear: only the encryption
    benchmark uses it, to measure what encryption costs.
    """
    keyring = KeyRing(MasterKeys(settings.master_keys)) if encrypt else None
    try:
        if settings.database.kind == "sqlite":
            assert settings.database.path is not None
            settings.database.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            probe_postgres(settings)
        app = CasenetApplication(
            eventsourcing_env(settings.database), keyring, server_key=settings.master_keys[-1][1]
        )
        # Reads of GET and HEAD requests may go to hot standbys (persistence/replicas.py).
        app.database.route_reads(settings.replicas, settings.replica_wait_ms / 1000)
    except KeyManagementError:
        raise  # its message is already one safe line (a missing or wrong master key)
    except Exception as error:  # noqa: BLE001  (the driver's many errors become one line)
        raise StoreUnavailable(
            f"cannot open the event store at {settings.database.display}: "
            f"{safe_reason(error, settings)}"
        ) from None
    rule = TargetRule(production=settings.is_production, allow_hosts=settings.webhook_allow_hosts)
    return Casenet(app, signing_seed=settings.signing_key, webhook_rule=rule)
