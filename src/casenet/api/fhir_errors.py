"""Errors under ``/fhir`` as OperationOutcomes: the REST API's own handlers decide the
status, the detail and the headers (one mapping, :mod:`casenet.api.errors`), and the
problem document they make is re-dressed as an OperationOutcome (``application/fhir+json``).
A 404 is the same bytes for an id the caller may not see as for a random one, as there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from casenet.api.docs import error_statuses, why
from casenet.api.errors import EXCEPTION_HANDLERS, TITLES, Problem
from casenet.api.http import BODY_METHODS, check_body, check_query
from casenet.fhir import FHIR_JSON
from casenet.fhir.outcome import OperationOutcome, operation_outcome

Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def as_outcome(response: Response[Any]) -> Response[OperationOutcome]:
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


#: The paths whose errors are OperationOutcomes.
FHIR_PATHS = "/fhir/"


def _dressed(handler: Handler) -> Handler:
    def handle(request: Request[Any, Any, Any], error: Any) -> Response[Any]:
        response = handler(request, error)
        return as_outcome(response) if request.scope["path"].startswith(FHIR_PATHS) else response

    return handle


#: The app's exception handlers (:data:`casenet.api.errors.EXCEPTION_HANDLERS`), each
#: answering a request under ``/fhir/`` with an OperationOutcome: at the app's level, so
#: that the router's own 404s and 405s (an id that is no UUID) are OperationOutcomes too.
EXCEPTION_HANDLERS_SPEAKING_FHIR: dict[Any, Any] = {
    kind: _dressed(handler) for kind, handler in EXCEPTION_HANDLERS.items()
}


async def fhir_before_request(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """The app's checks before any handler (a query value no list could mean, a body
    that is not JSON or nests too deep), answered as OperationOutcomes."""
    refused = check_query(request)
    if refused is None and request.method in BODY_METHODS:
        refused = await check_body(request)
    return None if refused is None else as_outcome(refused)


def outcomes(*codes: int) -> dict[int, ResponseSpec]:
    """Response specs for the given error statuses, as OperationOutcomes (429 wherever
    401 is possible): :func:`casenet.api.docs.problems` for ``/fhir``."""
    specs = {}
    for code in error_statuses(codes):
        fields = [("status", "must be one of ...")] if code in (400, 422) else []
        example = msgspec.to_builtins(operation_outcome(code, why(code), fields))
        specs[code] = ResponseSpec(
            data_container=OperationOutcome,
            description=why(code),
            media_type=FHIR_JSON,
            generate_examples=False,
            examples=[Example(summary=TITLES.get(code, "Error"), value=example)],
        )
    return specs
