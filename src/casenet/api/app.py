"""The Litestar application factory: controllers, auth, errors, OpenAPI."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Server
from litestar.types import ASGIApp, Receive, Scope, Send

from casenet import __version__
from casenet.api.auth import resolve_actor
from casenet.api.controllers.agencies import AgencyController, MeController
from casenet.api.controllers.appeals import AppealController
from casenet.api.controllers.audit import AuditController
from casenet.api.controllers.cases import CaseController, SharedCaseController
from casenet.api.controllers.consents import ConsentController
from casenet.api.controllers.directory import HsdsController, ServiceController
from casenet.api.controllers.emergency import (
    CaseEmergencyGrantController,
    EmergencyGrantController,
)
from casenet.api.controllers.fhir import FhirController
from casenet.api.controllers.network import NetworkController
from casenet.api.controllers.partnerships import PartnershipController
from casenet.api.controllers.records import ClientController, DisclosureController, FeedController
from casenet.api.controllers.referrals import ReferralController
from casenet.api.controllers.webhooks import WebhookController
from casenet.api.docs import ClosedStructSchemaPlugin
from casenet.api.docs_page import DOCS_PATH, docs_router, render_plugins
from casenet.api.fhir_errors import EXCEPTION_HANDLERS_SPEAKING_FHIR
from casenet.api.health import HealthController
from casenet.api.http import BODY_METHODS, ReadsWholeBody, check_body, check_query
from casenet.api.observability import (
    AccessLog,
    Metrics,
    counting_commits,
    flushing_the_log,
    logging_config,
    read_metrics,
)
from casenet.api.operation_docs import DocumentedOperations
from casenet.api.shutdown import told_on_termination
from casenet.api.throttling import AuthFailures
from casenet.application import Casenet
from casenet.bootstrap import build_casenet
from casenet.domain.vocabulary import needs_described
from casenet.settings import Settings, load_settings

MAX_BODY = 1024 * 1024
#: Seconds the background runner waits between looks at the log.
RUNNER_INTERVAL = 0.1
#: Seconds the webhook delivery thread waits when nothing was due.
WEBHOOK_INTERVAL = 0.5

CONTROLLERS = [
    HealthController,
    AgencyController,
    MeController,
    CaseController,
    SharedCaseController,
    ConsentController,
    ReferralController,
    ClientController,
    DisclosureController,
    FeedController,
    AuditController,
    CaseEmergencyGrantController,
    EmergencyGrantController,
    WebhookController,
    NetworkController,
    PartnershipController,
    AppealController,
    ServiceController,
    HsdsController,
    FhirController,
]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="casenet",
        version=__version__,
        description=(
            "The REST API agency systems use to refer clients to each other under the "
            "client's consent. Errors are application/problem+json (RFC 9457). A resource "
            "the caller's agency may not see is 404, whatever the caller's role. Each "
            "operation says who may call it. A word outside a closed vocabulary (every "
            "`enum` below) is a 422 whose `errors` list the allowed words.\n\n"
            "**Needs** (a case's `needs`, a service's `type`, a referral's `service_type`); "
            "records made before this list keep the codes they had:\n\n" + needs_described()
        ),
        servers=[Server(url="/")],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A worker's token (from POST /v1/agencies/{id}/workers) "
                    "or the operator's token.",
                )
            }
        ),
        security=[{"bearer": []}],
        path=DOCS_PATH,
        render_plugins=render_plugins(),
        openapi_router=docs_router(),
    )


def keeping_read_models_current(
    services: Casenet, *, close: bool, in_server: bool = True
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app's lifespan: a thread keeps the read models current in the background
    while it serves. Reads catch up by themselves too (read your writes), so this only
    keeps them from having to; several processes doing it at once is safe (each batch
    applies once). ``close``: close ``services`` at the end (the app opened them).
    ``in_server`` false (``CASENET_PROJECTIONS_IN_SERVER``): no thread, for when
    ``casenet projections run`` processes keep the models current.

    On SIGTERM, before the server waits for the requests in flight, the feed's open
    waits are told to answer (api/shutdown.py): a stop is not held up by them."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        stop = threading.Event()
        runner = threading.Thread(
            target=services.projections.run,
            args=(stop,),
            kwargs={"interval": RUNNER_INTERVAL},
            name="casenet-projections",
            daemon=True,
        )
        if in_server:
            runner.start()
        try:
            with told_on_termination(services.feed.stop_waiting):
                yield
        finally:
            stop.set()
            if in_server:
                runner.join(timeout=10)
            if close:
                services.close()

    return lifespan


def delivering_webhooks(
    services: Casenet, metrics: Metrics
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan: a thread delivers webhooks while the app serves (``CASENET_WEBHOOK_WORKER``
    switches it off). Any number of workers may run at once (each claims a webhook)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = services.webhook_worker(observe=metrics.webhook_attempted)
        thread = threading.Thread(
            target=worker.run,
            args=(stop,),
            kwargs={"interval": WEBHOOK_INTERVAL},
            name="casenet-webhooks",
            daemon=True,
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=15)

    return lifespan


class ReplicaReads:
    """ASGI: a GET or HEAD request only reads (writes it makes, a grantee's disclosure,
    go to the primary): its reads may be served by a read replica, still seeing every
    write answered before it (``infrastructure/persistence/replicas.py``). The routing
    is a context variable: the worker threads of ``sync_to_thread`` get a copy. A Litestar
    middleware: it wraps the route handlers (and the ``actor`` dependency), not the
    router's own 404s and 405s, which read nothing."""

    def __init__(self, app: ASGIApp, services: Casenet) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] in ("GET", "HEAD"):
            with self.services.replica_reads():
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, casenet: Casenet | None = None) -> Litestar:
    """Build the API over ``casenet`` (or over the store the settings name)."""
    settings = settings or load_settings()
    services = casenet or build_casenet(settings)

    async def before_request(request: Request[Any, Any, Any]) -> Any:
        refused = check_query(request)
        if refused is None and request.method in BODY_METHODS:
            refused = await check_body(request)
        return refused

    def provide_casenet() -> Casenet:
        # No parameters: Litestar then has nothing to parse for it per request (a
        # provider taking ``state`` cost 13 us a request, this one 5).
        return services

    metrics = Metrics(services.projections, services.webhooks, services)
    lifespans = [
        flushing_the_log,  # entered first, so left last: after the others' last lines
        keeping_read_models_current(
            services, close=casenet is None, in_server=settings.projections_in_server
        ),
        counting_commits(services, metrics),
    ]
    if settings.webhook_worker:  # exits first: before the services close
        lifespans.append(delivering_webhooks(services, metrics))
    app = ReadsWholeBody(
        route_handlers=[*CONTROLLERS, read_metrics],
        state=State(
            {
                "casenet": services,
                "settings": settings,
                "metrics": metrics,
                "auth_failures": AuthFailures(
                    settings.auth_failures_per_minute, settings.trusted_proxies
                ),
            }
        ),
        dependencies={
            # Authentication reads the store: in a worker thread, like every handler
            # that touches it, so no request waits on another's round trips.
            "actor": Provide(resolve_actor, sync_to_thread=True),
            "casenet": Provide(provide_casenet, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS_SPEAKING_FHIR,  # /fhir: OperationOutcomes
        before_request=before_request,
        request_max_body_size=MAX_BODY,
        openapi_config=openapi_config(),
        plugins=[ClosedStructSchemaPlugin(), DocumentedOperations()],
        lifespan=lifespans,
        # Only with replicas: without, every read goes to the store anyway.
        middleware=[DefineMiddleware(ReplicaReads, services=services)] if settings.replicas else [],
        logging_config=logging_config(settings),
        debug=False,
    )
    # Around the router, not a Litestar middleware: 404s and 405s are logged too.
    app.asgi_handler = AccessLog(app.asgi_handler, metrics)
    return app
