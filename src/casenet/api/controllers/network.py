"""The network's figures: referrals answered in time, and outcomes, per agency."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from casenet.api.docs import READ, problems
from casenet.api.http import CallerActor, Services, query_instant
from casenet.application.network_metrics import NetworkFigures


class NetworkController(Controller):
    """Figures of the whole network, small cells withheld."""

    path = "/v1/network"
    tags = ["network"]

    @get(
        "/metrics",
        operation_id="get_network_metrics",
        summary="Referrals received, answered and completed, per agency and service type",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def metrics(
        self,
        actor: CallerActor,
        casenet: Services,
        since: Annotated[datetime | None, QueryParameter(name="from", required=False)] = None,
        until: Annotated[datetime | None, QueryParameter(name="to", required=False)] = None,
        service_type: Annotated[
            str | None, QueryParameter(name="service_type", required=False, max_length=100)
        ] = None,
    ) -> NetworkFigures:
        """Per receiving agency and service type, of the referrals requested from
        ``from`` (inclusive) to ``to`` (exclusive), as they stand now: received,
        accepted, rejected, completed, got_help (completed with that outcome), overdue
        (left unanswered past ``response_due_at``), and the median hours from request
        to acceptance and to completion.

        Another agency's count below 5 is `null`, as is every figure derived from it
        (a median of fewer than 5), and its row says `suppressed: true`: small groups
        of clients are not exposed. The caller's own agency's rows are whole."""
        return casenet.network.figures(
            actor,
            since=query_instant(since, "from"),
            until=query_instant(until, "to"),
            service_type=service_type,
        )
