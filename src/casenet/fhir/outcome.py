"""OperationOutcome (FHIR R5): every error under ``/fhir``, with the status code the
REST API gives for it. It is made from the REST API's problem document (one mapping of
errors to statuses, :mod:`casenet.api.errors`), so it says exactly what that says: ids,
statuses and field names, never personal data or a trace.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

#: HTTP status -> issue-type code.
ISSUE_TYPE = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    500: "exception",
    503: "transient",
}


class Issue(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One issue: ``code`` from FHIR's issue-type; ``expression`` the field at fault."""

    severity: Literal["error"]
    code: str
    diagnostics: str
    expression: list[str] | UnsetType = UNSET


class OperationOutcome(msgspec.Struct, kw_only=True):
    """A FHIR OperationOutcome: the error, and one issue per field error."""

    resourceType: Literal["OperationOutcome"] = "OperationOutcome"  # noqa: N815
    issue: list[Issue]


def operation_outcome(status: int, detail: str, fields: list[tuple[str, str]]) -> OperationOutcome:
    """An error: one issue for the problem, one per field error (its ``expression`` the
    field's name)."""
    code = ISSUE_TYPE.get(status, "processing")
    issues = [Issue(severity="error", code=code, diagnostics=detail)]
    issues += [
        Issue(severity="error", code=code, diagnostics=message, expression=[field])
        for field, message in fields
    ]
    return OperationOutcome(issue=issues)
