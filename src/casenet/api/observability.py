"""What an operator watches: one access line per request, the log's format, ``/metrics``.

The access line names the request's method, its route TEMPLATE (``/v1/cases/{case_id}``,
never the concrete path: the template is what aggregates, and a path could carry what a
client typed), the status, the duration and a request id; never a header value, a query
string or a body. The request id is the caller's ``X-Request-Id`` when that is a short
safe token, else a new one; every response echoes it, errors and 404s included.

The access log wraps the app's ASGI handler (``Litestar.asgi_handler``: the router inside
Litestar's exception handling), where Litestar itself puts what must see every request
(its CORS middleware and its OpenTelemetry plugin's, ``Litestar._create_asgi_handler``).
The documented hooks were checked (Litestar 2.25) and cannot do it alone:

* ``middleware=`` on the app is built into each route's own stack
  (``_asgi/routing_trie/mapping.py``, ``build_route_middleware_stack``): the router
  raises the 404 or 405 of an unknown path or method before any middleware runs;
* ``before_send`` sees every response, 404s and 405s included, with the scope (so the
  route template), but no hook runs when an unmatched request ARRIVES (``before_request``
  and ``after_request`` are per route too): its duration could not be measured;
* wrapping the whole ``Litestar`` object in an ASGI app would make ``create_app`` return
  something that is not the app (``TestClient``, ``request.app.state`` and granian's
  factory all take the app itself).

Logging goes through :class:`~casenet.api.log_writer.LineWriter`: a request only puts
a record on a queue, and a thread writes what is queued to stderr, many lines a write, so
no request waits on the terminal or a pipe, nor for the GIL after each line.

Metrics are counted per app, in its own registry, so per server process: with
``casenet serve --workers N`` a scrape sees the worker that answers it (prometheus-client's
multiprocess mode would need a shared directory and the global registry). The read-model
lag is read from the store, so it is the same whichever worker answers. The group
commit's batch sizes (saves written per transaction) are the process's own: the store
tells :meth:`Metrics.observe_batch` of each batch while the app's lifespan runs
(:func:`counting_commits`).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.enums import ScopeType
from litestar.logging.config import LoggingConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from casenet.api.http import CallerActor
from casenet.application import Casenet
from casenet.application.operations import ProjectionService
from casenet.application.webhooks import WebhookService
from casenet.domain.errors import NotPermitted
from casenet.settings import Settings

ACCESS_LOGGER = "casenet.access"
#: The route label of a request no route matched (a 404, a 405): one label for all of
#: them, so a scan of random paths cannot grow the metrics without bound.
UNMATCHED = "(unmatched)"
#: What a request id taken from the caller may be; anything else is replaced.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_REQUEST_ID_HEADER = b"x-request-id"
#: Methods logged and counted as sent; any other becomes OTHER (a method is the
#: client's text too).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The fields an access line carries besides its message (``CASENET_LOG_FORMAT=json``).
ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "request_id")
#: Buckets of the group commit's batch sizes: saves a batch, up to the store's cap (256).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

access_logger = logging.getLogger(ACCESS_LOGGER)


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and an access line's
    fields (:data:`ACCESS_FIELDS`)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def _formatter(settings: Settings) -> dict[str, Any]:
    if settings.log_format == "json":
        return {"()": "casenet.api.observability.JsonLines"}
    return {"format": TEXT_FORMAT}


def logging_config(settings: Settings) -> LoggingConfig:
    """The app's logging: every logger at ``CASENET_LOG_LEVEL``, in ``CASENET_LOG_FORMAT``,
    through a :class:`~casenet.api.log_writer.LineWriter` to stderr. It takes the name of
    Litestar's queue handler, which Litestar would otherwise add (and start a thread for)."""
    level = settings.log_level.upper()
    return LoggingConfig(
        formatters={"standard": _formatter(settings)},
        handlers={
            "queue_listener": {
                "class": "casenet.api.log_writer.LineWriter",
                "formatter": "standard",
            }
        },
        root={"handlers": ["queue_listener"], "level": level},
        loggers={"litestar": {"level": level, "handlers": ["queue_listener"], "propagate": False}},
    )


def server_logging(settings: Settings) -> dict[str, Any]:
    """The dictConfig granian's own loggers get (``casenet serve``): the same format,
    to stderr. granian's access log stays off: :class:`AccessLog` writes casenet's."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "casenet",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"casenet": _formatter(settings)},
        "handlers": {"console": handler},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }


class ReadModelLag(Collector):
    """``casenet_read_model_lag``: per read model, the log's head minus its position,
    read from the store when scraped (``/metrics`` runs in a worker thread)."""

    def __init__(self, projections: ProjectionService) -> None:
        self._projections = projections

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not read the store

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "casenet_read_model_lag",
            "Events in the log the read model has not applied yet (log head minus its position)",
            labels=["read_model"],
        )
        for status in self._projections.status():
            lag.add_metric([status.name], status.lag)
        yield lag


class WebhookBacklog(Collector):
    """``casenet_webhook_backlog``: feed items not yet delivered (nor given up), over
    every active webhook, read from the store when scraped."""

    def __init__(self, webhooks: WebhookService) -> None:
        self._webhooks = webhooks

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not read the store

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "casenet_webhook_backlog",
            "Feed items not yet delivered to their webhooks (over every webhook)",
            value=self._webhooks.backlog(),
        )


class ReplicaReads(Collector):
    """``casenet_replica_reads``, ``casenet_replica_fallbacks`` (by reason: ``lag``,
    ``down``, ``busy``) and ``casenet_replica_wait_seconds``: what this process's read replicas
    served (nothing without ``CASENET_REPLICA_URLS``)."""

    def __init__(self, services: Casenet) -> None:
        self._services = services

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        stats = self._services.replica_stats()
        if stats is None:
            return
        yield CounterMetricFamily(
            "casenet_replica_reads", "Reads served by a read replica", value=stats.served
        )
        fallbacks = CounterMetricFamily(
            "casenet_replica_fallbacks",
            "Routed reads served by the primary: a replica behind past the bound (lag), "
            "none reachable (down), or each using all its connections (busy)",
            labels=["reason"],
        )
        for reason, count in sorted(stats.fallbacks.items()):
            fallbacks.add_metric([reason], count)
        yield fallbacks
        yield SummaryMetricFamily(
            "casenet_replica_wait_seconds",
            "Time reads waited for a replica to replay the primary's WAL position",
            count_value=stats.waits,
            sum_value=stats.wait_seconds,
        )


class Metrics:
    """One app's metrics, in a registry of its own (two apps in one process do not
    share counters)."""

    def __init__(
        self, projections: ProjectionService, webhooks: WebhookService, services: Casenet
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ReplicaReads(services))
        self.requests = Counter(
            "casenet_http_requests",
            "Requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "casenet_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.batches = Histogram(
            "casenet_group_commit_batch_saves",
            "Saves (commands) written by each group commit of this process: one transaction",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(ReadModelLag(projections))
        self.webhook_attempts = Counter(
            "casenet_webhook_deliveries",
            "Webhook delivery attempts by this process, by outcome (delivered, failed, "
            "refused, given_up)",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(WebhookBacklog(webhooks))

    def webhook_attempted(self, outcome: str) -> None:
        self.webhook_attempts.labels(outcome).inc()

    def observe_batch(self, saves: int) -> None:
        """The store committed a batch of ``saves`` (in the thread that wrote it)."""
        self.batches.observe(saves)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


def counting_commits(
    services: Casenet, metrics: Metrics
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan: the store tells ``metrics`` of each committed batch while the app
    runs (and stops when it ends: several apps may share one ``services``)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        forget = services.observe_commits(metrics.observe_batch)
        try:
            yield
        finally:
            forget()

    return lifespan


@asynccontextmanager
async def flushing_the_log(app: Litestar) -> AsyncIterator[None]:
    """A lifespan: when the app shuts down, every line logged so far is written. A
    granian worker exits without running exit handlers, where logging would flush its
    handlers, so the last requests' access lines would be lost (the log is written from
    a thread, in batches: :mod:`casenet.api.log_writer`)."""
    try:
        yield
    finally:
        for handler in logging.getLogger().handlers:
            handler.flush()


def request_id(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` if it is a short safe token, else a new one.

    A new id is 128 random bits from :mod:`random`, as OpenTelemetry's id generator makes
    trace ids: it tells requests apart and authorizes nothing, so it need not come from
    the operating system, whose generator (``uuid4``, ``os.urandom``) is a system call
    that gives up the GIL on the event loop, once a request. (Each server process seeds
    its own: ``random`` seeds itself when imported and again in a forked child.)"""
    for name, value in scope["headers"]:
        if name == _REQUEST_ID_HEADER:
            given = value.decode("latin-1")
            if SAFE_REQUEST_ID.fullmatch(given):
                return given
            break
    return f"{random.getrandbits(128):032x}"


class AccessLog:
    """ASGI middleware: logs and counts each HTTP request once it is answered, and echoes
    its request id in ``X-Request-Id``. The response is otherwise passed on untouched."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        started = time.perf_counter()
        rid = request_id(scope)
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
                headers.append((_REQUEST_ID_HEADER, rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("path_template") or UNMATCHED
            self.metrics.observe(method, route, status, seconds)
            duration_ms = round(seconds * 1000, 2)
            access_logger.info(
                "%s %s %d %.2fms request_id=%s",
                method,
                route,
                status,
                duration_ms,
                rid,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                    "request_id": rid,
                },
            )


@get("/metrics", include_in_schema=False, sync_to_thread=True)
def read_metrics(request: Request[Any, Any, Any], actor: CallerActor) -> Response[bytes]:
    """Prometheus text, to the operator (401 without a valid token, 403 for a worker).
    In a worker thread: the read-model lag is read from the store."""
    if not actor.is_operator:
        raise NotPermitted("only the operator reads the metrics")
    metrics: Metrics = request.app.state.metrics
    # Litestar adds the charset to a text/ type itself: give the type without it.
    media_type = CONTENT_TYPE_LATEST.removesuffix("; charset=utf-8")
    return Response(generate_latest(metrics.registry), media_type=media_type)
