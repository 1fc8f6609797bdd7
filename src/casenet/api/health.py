"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from casenet.api.docs import problems


class Health(msgspec.Struct):
    """A probe's answer."""

    status: str


class HealthController(Controller):
    """Anyone may ask; the answers disclose nothing but up or down."""

    path = "/health"
    tags = ["health"]
    # No token needed: an empty requirement overrides the document's bearer default.
    security = [{}]

    @get("/live", operation_id="health_live", summary="The process is up")
    async def live(self) -> Health:
        """Liveness: the process answers."""
        return Health(status="live")

    @get(
        "/ready",
        operation_id="health_ready",
        summary="The event store answers",
        sync_to_thread=True,
        responses=problems(503),
    )
    def ready(self, state: State) -> Health:
        """Readiness: the event store answers a query."""
        try:
            state.casenet.app.recorder.max_notification_id()
        except Exception:  # noqa: BLE001  (any store failure means not ready)
            raise HTTPException(status_code=503, detail="the event store does not answer") from None
        return Health(status="ready")
