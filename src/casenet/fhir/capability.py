"""CapabilityStatement (FHIR R5): what ``/fhir`` serves (``GET /fhir/metadata``)."""

from __future__ import annotations

from datetime import datetime

from casenet import __version__
from casenet.fhir import FHIR_JSON, FHIR_VERSION, Resource

#: Resource type -> (interactions, search parameters, what casenet serves as it).
SERVED: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, str], ...], str]] = {
    "Consent": (("read",), (), "A consent of a case the caller's agency owns."),
    "ServiceRequest": (("read",), (), "A referral, to either of its two agencies."),
    "Task": (
        ("read", "update"),
        (),
        "A referral's task (SDOH Clinical Care): the receiving agency moves its status "
        "(accepted, rejected, in-progress, on-hold, completed with an outcome in output, "
        "failed); the referring agency may cancel it. If-Match with meta.versionId.",
    ),
    "Organization": (("read",), (), "An agency of the directory."),
    "HealthcareService": (("read",), (), "A service of the directory."),
    "AuditEvent": (
        ("search-type",),
        (("entity", "reference", "The case whose disclosures are wanted (its id)."),),
        "The disclosures of a case the caller's agency owns (supervisors and auditors).",
    ),
    "Bundle": (("read",), (), "The resources of a case the caller's agency may see."),
}


def capability_statement(at: datetime) -> Resource:
    """The server's capabilities: the resources and interactions above, bearer tokens."""
    resources = []
    for resource_type, (interactions, params, documentation) in SERVED.items():
        entry: dict[str, object] = {
            "type": resource_type,
            "documentation": documentation,
            "interaction": [{"code": code} for code in interactions],
        }
        if "update" in interactions:
            entry["versioning"] = "versioned-update"
            entry["updateCreate"] = False
        if params:
            entry["searchParam"] = [
                {"name": name, "type": kind, "documentation": doc} for name, kind, doc in params
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": at,
        "publisher": "casenet",
        "kind": "instance",
        "software": {"name": "casenet", "version": __version__},
        "implementation": {
            "description": "casenet: referrals between agencies under the client's consent"
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer <token> (a worker's token); the "
                    "same visibility rules as casenet's REST API: a resource the caller's "
                    "agency may not see is 404."
                },
                "resource": resources,
            }
        ],
    }
