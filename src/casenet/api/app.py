"""The Litestar application factory."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State

from casenet.api.health import HealthController
from casenet.application import Casenet
from casenet.bootstrap import build_casenet
from casenet.settings import Settings, load_settings


def create_app(settings: Settings | None = None, casenet: Casenet | None = None) -> Litestar:
    """Build the API over ``casenet`` (or over the store the settings name)."""
    settings = settings or load_settings()
    services = casenet or build_casenet(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Keep read models current in the background. Reads catch up by themselves
        # too (read your writes), so this only keeps them from having to; several
        # processes doing it at once is safe (each batch applies once).
        stop = threading.Event()
        runner = threading.Thread(
            target=services.app.projections.run_forever,
            args=(stop,),
            name="casenet-projections",
            daemon=True,
        )
        runner.start()
        try:
            yield
        finally:
            stop.set()
            runner.join(timeout=10)
            if casenet is None:  # we opened it, we close it
                services.close()

    return Litestar(
        route_handlers=[HealthController],
        state=State({"casenet": services, "settings": settings}),
        lifespan=[lifespan],
        debug=False,
    )
