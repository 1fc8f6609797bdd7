"""Errors under ``/fhir`` as OperationOutcomes: the REST API's own handlers decide the
status, the detail and the headers (one mapping, :mod:`casenet.api.errors`), and the
problem document they make is re-dressed as an OperationOutcome (``application/fhir+json``).
A 404 is the same bytes for an id the caller may not see as for a random one, as there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, Response

from casenet.api.errors import EXCEPTION_HANDLERS, Problem
from casenet.api.http import BODY_METHODS, check_body, check_query
from casenet.fhir import FHIR_JSON, Resource
from casenet.fhir.outcome import operation_outcome

Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def as_outcome(response: Response[Any]) -> Response[Resource]:
    """A problem response, as the OperationOutcome of the same status and headers."""
    problem = response.content
    assert isinstance(problem, Problem)
    fields = [(error.field, error.message) for error in problem.errors]
    return Response(
        operation_outcome(problem.status, problem.detail, fields),
        status_code=response.status_code,
        media_type=FHIR_JSON,
        headers=dict(response.headers),
    )


def _dressed(handler: Handler) -> Handler:
    def handle(request: Request[Any, Any, Any], error: Any) -> Response[Any]:
        return as_outcome(handler(request, error))

    return handle


#: The app's exception handlers, each answering with an OperationOutcome.
FHIR_EXCEPTION_HANDLERS: dict[Any, Any] = {
    kind: _dressed(handler) for kind, handler in EXCEPTION_HANDLERS.items()
}


async def fhir_before_request(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """The app's checks before any handler (a query value no list could mean, a body
    that is not JSON or nests too deep), answered as OperationOutcomes."""
    refused = check_query(request)
    if refused is None and request.method in BODY_METHODS:
        refused = await check_body(request)
    return None if refused is None else as_outcome(refused)
