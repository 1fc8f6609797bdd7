"""Wire settings to the store and the services: the one place that builds them."""

from __future__ import annotations

from casenet.application import Casenet, CasenetApplication
from casenet.infrastructure.crypto import KeyManagementError, KeyRing, MasterKeys
from casenet.infrastructure.store import eventsourcing_env
from casenet.settings import Settings


class StoreUnavailable(Exception):
    """The database cannot be reached or opened; the message is one safe line."""


def build_casenet(settings: Settings, *, encrypt: bool = True) -> Casenet:
    """Open the event store named by the settings and return the services over it.

    ``encrypt=False`` stores personal fields in the clear: only the encryption
    benchmark uses it, to measure what encryption costs.
    """
    if settings.database.kind == "sqlite":
        assert settings.database.path is not None
        settings.database.path.parent.mkdir(parents=True, exist_ok=True)
    keyring = KeyRing(MasterKeys(settings.master_keys)) if encrypt else None
    try:
        app = CasenetApplication(
            eventsourcing_env(settings.database), keyring, server_key=settings.master_keys[-1][1]
        )
    except KeyManagementError:
        raise  # its message is already one safe line (a missing or wrong master key)
    except Exception as error:  # noqa: BLE001  (the driver's many errors become one line)
        raise StoreUnavailable(
            f"cannot open the event store at {settings.database.display}: {type(error).__name__}"
        ) from None
    return Casenet(app, signing_seed=settings.signing_key)
