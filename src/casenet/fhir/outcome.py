"""OperationOutcome (FHIR R5): every error under ``/fhir``, with the status code the
REST API gives for it. It is made from the REST API's problem document (one mapping of
errors to statuses, :mod:`casenet.api.errors`), so it says exactly what that says: ids,
statuses and field names, never personal data or a trace.
"""

from __future__ import annotations

from casenet.fhir import Resource

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


def operation_outcome(status: int, detail: str, fields: list[tuple[str, str]]) -> Resource:
    """An error: one issue for the problem, one per field error (its ``expression`` the
    field's name)."""
    issue_type = ISSUE_TYPE.get(status, "processing")
    issues: list[dict[str, object]] = [
        {"severity": "error", "code": issue_type, "diagnostics": detail}
    ]
    issues += [
        {"severity": "error", "code": issue_type, "diagnostics": message, "expression": [field]}
        for field, message in fields
    ]
    return {"resourceType": "OperationOutcome", "issue": issues}
