"""Wire settings to the store and the services: the one place that builds them."""

from __future__ import annotations

from casenet.application import Casenet, CasenetApplication
from casenet.infrastructure.store import eventsourcing_env
from casenet.settings import Settings


class StoreUnavailable(Exception):
    """The database cannot be reached or opened; the message is one safe line."""


def build_casenet(settings: Settings) -> Casenet:
    """Open the event store named by the settings and return the services over it."""
    if settings.database.kind == "sqlite":
        assert settings.database.path is not None
        settings.database.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        app = CasenetApplication(env=eventsourcing_env(settings.database))
    except Exception as error:  # noqa: BLE001  (the driver's many errors become one line)
        raise StoreUnavailable(
            f"cannot open the event store at {settings.database.display}: "
            f"{type(error).__name__}"
        ) from None
    return Casenet(app)
