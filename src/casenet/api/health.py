"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State

from casenet.api.docs import problems
from casenet.api.errors import Problem, problem

logger = logging.getLogger("casenet.api")


class Health(msgspec.Struct):
    """A probe's answer."""

    status: str


class NotReady(Exception):
    """Readiness fails; the message is one safe line (it names a stopped read model)."""


def on_not_ready(_: Request[Any, Any, Any], error: NotReady) -> Response[Problem]:
    return problem(503, str(error))


class HealthController(Controller):
    """Anyone may ask; the answers disclose nothing but up or down."""

    path = "/health"
    tags = ["health"]
    # No token needed: an empty requirement overrides the document's bearer default.
    security = [{}]
    exception_handlers = {NotReady: on_not_ready}

    @get("/live", operation_id="health_live", summary="The process is up")
    async def live(self) -> Health:
        """Liveness: the process answers."""
        return Health(status="live")

    @get(
        "/ready",
        operation_id="health_ready",
        summary="The event store answers and no read model is stopped",
        sync_to_thread=True,
        responses=problems(503),
    )
    def ready(self, state: State) -> Health:
        """Readiness: the event store answers a query, and every read model runs (a
        stopped one is named, with why: the reads that need it answer 503)."""
        try:
            stopped = state.casenet.projections.stopped()
        except Exception as error:  # noqa: BLE001  (any store failure means not ready)
            logger.warning("not ready: the event store does not answer (%s)", type(error).__name__)
            raise NotReady("the event store does not answer") from None
        if stopped:
            detail = "; ".join(f"read model {name} stopped: {why}" for name, why in stopped.items())
            raise NotReady(detail)
        return Health(status="ready")
