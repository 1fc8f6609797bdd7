"""Access log, request ids and ``/metrics``, in process, on both stores.

The log is captured as the server writes it: every record of the server's loggers,
formatted by :class:`~casenet.api.observability.JsonLines` (what
``CASENET_LOG_FORMAT=json`` writes). The test client's own logger (``httpx``, which logs
the URLs it requests) is the client's log, not the server's, and is left out.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import pytest
from tests.support.http import Api

from casenet.api.observability import ACCESS_FIELDS, JsonLines

#: The server's loggers: the root (casenet's propagate to it) and Litestar's own.
LOGGERS = ("", "litestar")
CLIENT_SIDE = ("httpx", "httpcore")
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


class ServerLog(logging.Handler):
    """The server's log records, one JSON line each."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLines())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(CLIENT_SIDE):
            self.lines.append(self.format(record))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def access(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["logger"] == "casenet.access"]


@pytest.fixture
def server_log(app_server: Any) -> Iterator[ServerLog]:
    handler = ServerLog()
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        yield handler
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)


def test_no_token_name_query_or_body_value_is_ever_logged(
    operator: Api, app_server: Any, server_log: ServerLog
) -> None:
    canary = f"canary{uuid4().hex}"
    name, query, body, token = (f"{canary}{part}" for part in ("name", "query", "body", "token"))
    agency = operator.agency(f"Agency {canary}")
    worker = operator.worker(agency, "caseworker")
    case = worker.post("/v1/cases", {"client": {"name": name}, "summary": body})
    calls = [
        worker.request("GET", f"/v1/cases/{case['id']}"),
        worker.request("GET", f"/v1/cases?q={query}&limit={query}"),
        worker.request("POST", "/v1/cases", json_body={"client": {"name": name}, "x": body}),
        Api(app_server, token).request("GET", f"/v1/cases/{case['id']}"),
        Api(app_server, token).request("GET", f"/nowhere/{query}?x={query}"),
        worker.request("GET", "/v1/cases", headers={"X-Request-Id": f"{token} {query}"}),
    ]
    assert [c.status_code for c in calls] == [200, 400, 400, 401, 404, 200]
    logged = "\n".join(server_log.lines)
    for value in (canary, name, query, body, token, worker.token):
        assert value not in logged
    access = server_log.access()
    # one line per request: the six above, and the three of the setup
    assert len(access) == len(calls) + 3
    assert {a["route"] for a in access} >= {"/v1/cases/{case_id}", "/v1/cases", "(unmatched)"}


def test_access_lines_are_json_with_every_field(operator: Api, server_log: ServerLog) -> None:
    answer = operator.request("GET", f"/v1/agencies/{uuid4()}", headers={"X-Request-Id": "r-1"})
    assert answer.status_code == 404
    (line,) = server_log.access()
    assert {"time", "level", "logger", "message", *ACCESS_FIELDS} <= line.keys()
    assert line["method"] == "GET"
    assert line["route"] == "/v1/agencies/{agency_id}"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["request_id"] == "r-1"
    assert line["level"] == "info"


@pytest.mark.parametrize(
    "given", [None, "abc-DEF_1.2", "x" * 64, "x" * 65, "has space", "semi;colon", "a/b"]
)
def test_request_id_is_echoed_given_or_generated(
    operator: Api, app_server: Any, server_log: ServerLog, given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-Id": given}
    answers = [
        operator.request("GET", "/health/live", headers=headers),  # 200
        Api(app_server, None).request("GET", "/v1/cases", headers=headers),  # 401
        operator.request("GET", f"/no/such/{uuid4()}", headers=headers),  # 404
        operator.request("DELETE", "/health/live", headers=headers),  # 405
    ]
    assert [a.status_code for a in answers] == [200, 401, 404, 405]
    ids = [a.headers["x-request-id"] for a in answers]
    safe = given is not None and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", given)
    if safe:
        assert ids == [given] * 4
    else:
        assert all(GENERATED_ID.fullmatch(i) for i in ids)
        assert len(set(ids)) == 4
    assert [a["request_id"] for a in server_log.access()] == ids


def test_metrics_need_the_operator_token(operator: Api, app_server: Any) -> None:
    worker = operator.worker(operator.agency("Metrics Agency"), "admin")
    assert Api(app_server, None).request("GET", "/metrics").status_code == 401
    assert Api(app_server, "not-a-token").request("GET", "/metrics").status_code == 401
    refused = worker.request("GET", "/metrics")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "casenet_" not in refused.text


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name{labels}`` in Prometheus text (None if absent)."""
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample != name and not sample.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', sample[len(name) :]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


def test_metrics_count_requests_by_route_template_and_show_read_model_lag(
    operator: Api, app_server: Any
) -> None:
    worker = operator.worker(operator.agency("Counted Agency"), "caseworker")
    route = "/v1/cases/{case_id}"
    before = operator.expect(200, "GET", "/metrics").text
    seen = metric(before, "casenet_http_requests_total", method="GET", route=route, status="404")
    timed = metric(before, "casenet_http_request_duration_seconds_count", route=route)
    for _ in range(3):
        worker.expect(404, "GET", f"/v1/cases/{uuid4()}")
    answer = operator.expect(200, "GET", "/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    counted = metric(text, "casenet_http_requests_total", method="GET", route=route, status="404")
    assert counted == (seen or 0) + 3
    assert "/v1/cases/" + "0" not in text  # no concrete path: templates only
    timed_now = metric(text, "casenet_http_request_duration_seconds_count", route=route)
    assert timed_now == (timed or 0) + 3
    models = {status.name for status in app_server.casenet.projections.status()}
    assert models
    lags = {m: metric(text, "casenet_read_model_lag", read_model=m) for m in models}
    assert all(lag is not None and lag >= 0 for lag in lags.values()), lags


def test_metrics_count_the_saves_of_each_group_commit(operator: Api) -> None:
    """Concurrent creates are committed in batches: the histogram's sum is the saves
    written, its count the batches (at most one a save)."""
    worker = operator.worker(operator.agency("Batched Agency"), "caseworker")
    name = "casenet_group_commit_batch_saves"
    before = operator.expect(200, "GET", "/metrics").text
    creates = 12
    with ThreadPoolExecutor(max_workers=creates) as pool:
        created = list(
            pool.map(
                lambda n: worker.post("/v1/cases", {"client": {"name": f"B{n}"}, "summary": "s"}),
                range(creates),
            )
        )
    assert len({case["id"] for case in created}) == creates
    after = operator.expect(200, "GET", "/metrics").text
    saves = (metric(after, f"{name}_sum") or 0) - (metric(before, f"{name}_sum") or 0)
    batches = (metric(after, f"{name}_count") or 0) - (metric(before, f"{name}_count") or 0)
    assert saves == creates  # one save a case: its client and the case together
    assert 1 <= batches <= creates
    assert metric(after, f"{name}_bucket", le="256.0") == metric(after, f"{name}_count")


def test_metrics_are_not_in_the_openapi_document(openapi: dict[str, Any]) -> None:
    assert "/metrics" not in openapi["paths"]
