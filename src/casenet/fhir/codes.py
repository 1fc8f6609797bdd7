"""The code systems and value sets casenet's FHIR resources use, as data.

Where FHIR or HL7 terminology has a code for a casenet word, that code is used (the
tests check every emitted code against the tables here, and the tables against the
binding's value set); where it has none, casenet's own code system says it.

* Task.status: FHIR ``task-status``, the subset the SDOH Clinical Care referral
  pattern uses (requested, accepted, rejected, in-progress, on-hold, completed,
  failed, cancelled; ``ready``, ``received``, ``draft`` and ``entered-in-error`` never
  appear, a referral goes straight from requested to accepted or rejected).
* ServiceRequest.status: FHIR ``request-status`` (open referrals ``active``; a
  rejected, failed or cancelled one ``revoked``).
* Consent.status: FHIR ``consent-state-codes``: ``active``, and ``inactive`` for a
  withdrawn or expired consent.
* Purpose: HL7 v3 ActReason (the PurposeOfUse value set): a ``referral`` consent lets
  the receiving agency serve the client, ``TREAT`` (treatment); ``care_coordination``
  is ``COC`` (coordination of care).
* Sections: HL7 v3 ActCode sensitivity labels where one exists (mental health ``PSY``,
  substance use ``ETH``, sexual health ``SEX``); casenet has no HIV section (HIV
  status is written under ``notes.health``, labelled as casenet's section). Every other
  section is a code of casenet's ``section`` system.
* The consent's recording method (verbal, written, electronic), the referral's
  outcome, the need a service meets and a service's capacity: casenet's code systems.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

#: casenet's own code systems live under this prefix (a URN: no web page is implied).
CASENET = "urn:casenet:fhir:CodeSystem:"

TASK_STATUS_SYSTEM: Final = "http://hl7.org/fhir/task-status"
REQUEST_STATUS_SYSTEM: Final = "http://hl7.org/fhir/request-status"
REQUEST_PRIORITY_SYSTEM: Final = "http://hl7.org/fhir/request-priority"
CONSENT_STATE_SYSTEM: Final = "http://hl7.org/fhir/consent-state-codes"
TASK_CODE_SYSTEM: Final = "http://hl7.org/fhir/CodeSystem/task-code"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
LIFECYCLE_EVENT: Final = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
AUDIT_ACTION_SYSTEM: Final = "http://hl7.org/fhir/audit-event-action"
ISSUE_TYPE_SYSTEM: Final = "http://hl7.org/fhir/issue-type"
CONSENT_ACTION: Final = "http://terminology.hl7.org/CodeSystem/consentaction"
LOINC: Final = "http://loinc.org"
LANGUAGE: Final = "urn:ietf:bcp:47"

ORGANIZATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/organization-type"
SECTION_SYSTEM: Final = CASENET + "section"
OUTCOME_SYSTEM: Final = CASENET + "referral-outcome"
TASK_OUTPUT_SYSTEM: Final = CASENET + "task-output"
RECORDING_METHOD_SYSTEM: Final = CASENET + "consent-recording-method"
NEED_SYSTEM: Final = CASENET + "need"
CAPACITY_SYSTEM: Final = CASENET + "service-capacity"
AGENCY_KIND_SYSTEM: Final = CASENET + "agency-kind"
LEGAL_BASIS_SYSTEM: Final = CASENET + "emergency-legal-basis"
#: Identifier systems (not code systems): casenet's ids of things FHIR has no resource for.
CASE_IDENTIFIER: Final = "urn:casenet:case"
WORKER_IDENTIFIER: Final = "urn:casenet:worker"

#: Referral status -> Task.status (SDOHCC's referral subset of task-status).
TASK_STATUS: Final = MappingProxyType(
    {
        "requested": "requested",
        "accepted": "accepted",
        "rejected": "rejected",
        "in_progress": "in-progress",
        "on_hold": "on-hold",
        "completed": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
    }
)
#: Task.status a PUT may ask for -> the referral action that reaches it.
TASK_ACTIONS: Final = MappingProxyType(
    {
        "accepted": "accept",
        "rejected": "reject",
        "in-progress": "start",
        "on-hold": "hold",
        "completed": "complete",
        "failed": "fail",
        "cancelled": "cancel",
    }
)
#: Referral status -> ServiceRequest.status.
REQUEST_STATUS: Final = MappingProxyType(
    {
        "requested": "active",
        "accepted": "active",
        "in_progress": "active",
        "on_hold": "on-hold",
        "completed": "completed",
        "rejected": "revoked",
        "failed": "revoked",
        "cancelled": "revoked",
    }
)
#: An agency's kind (a free word) -> organization-type, for the kinds with one; any other
#: kind is ``other`` (and casenet's ``agency-kind`` code says the word).
ORGANIZATION_KIND: Final = MappingProxyType(
    {
        "hospital": ("prov", "Healthcare Provider"),
        "clinic": ("prov", "Healthcare Provider"),
        "school": ("edu", "Educational Institute"),
        "ngo": ("cg", "Community Group"),
        "charity": ("cg", "Community Group"),
        "council": ("govt", "Government"),
        "government": ("govt", "Government"),
    }
)
OTHER_ORGANIZATION: Final = ("other", "Other")
#: Referral urgency -> request-priority.
PRIORITY: Final = MappingProxyType({"routine": "routine", "urgent": "urgent"})
#: Consent status (API.md) -> consent-state-codes.
CONSENT_STATE: Final = MappingProxyType(
    {"active": "active", "withdrawn": "inactive", "expired": "inactive"}
)
#: Consent purpose -> (v3 ActReason code, display).
PURPOSE: Final = MappingProxyType(
    {
        "referral": ("TREAT", "treatment"),
        "care_coordination": ("COC", "coordination of care"),
    }
)
#: Sections FHIR labels: section -> (v3 ActCode sensitivity code, display).
SECURITY_LABEL: Final = MappingProxyType(
    {
        "notes.mental_health": ("PSY", "psychiatry disorder information sensitivity"),
        "notes.substance_use": ("ETH", "substance abuse information sensitivity"),
        "notes.sexual_health": ("SEX", "sexuality and reproductive health information sensitivity"),
    }
)
#: Consent.provision.actor.role of the grantee: the information recipient.
RECIPIENT_ROLE: Final = ("IRCP", "information recipient")
#: Consent.category: LOINC's "Patient consent".
CONSENT_CATEGORY: Final = ("59284-0", "Patient Consent")
#: Consent.provision.action (consentaction) and AuditEvent.code (ISO 21089 lifecycle).
DISCLOSE: Final = ("disclose", "Disclose")
#: Task.code of a referral's task: fulfil the focal request (the ServiceRequest).
FULFILL: Final = ("fulfill", "Fulfill the focal request")
#: Task.output.type of the referral's outcome.
OUTCOME_OUTPUT: Final = ("outcome", "Outcome of the referral")

#: casenet's code systems and their codes with displays (the referral outcomes,
#: recording methods, sections without a FHIR label, ...): what the tests check against.
OUTCOME_DISPLAY: Final = MappingProxyType(
    {
        "got_help": "The client got the help they were referred for",
        "not_eligible": "The client was not eligible",
        "no_capacity": "The service had no capacity",
        "could_not_contact": "The client could not be contacted",
        "no_longer_interested": "The client was no longer interested",
        "referred_elsewhere": "The client was referred elsewhere",
        "needs_client_action": "The client needs to act before the service can",
    }
)
RECORDING_METHOD_DISPLAY: Final = MappingProxyType(
    {
        "verbal": "Given by word of mouth, recorded by the worker",
        "written": "Given in writing (a signed form)",
        "electronic": "Given electronically",
    }
)


def task_status(referral_status: str) -> str:
    """Task.status of a referral in ``referral_status``."""
    return TASK_STATUS[referral_status]


def section_label(section: str) -> dict[str, str]:
    """The security label of a consent's section: v3 ActCode's, else casenet's section."""
    found = SECURITY_LABEL.get(section)
    if found is not None:
        return coding(ACT_CODE, *found)
    return coding(SECTION_SYSTEM, section)


def purpose_coding(purpose: str) -> dict[str, str]:
    """The v3 ActReason coding of a consent purpose; casenet's ``referral`` basis (a
    disclosure made by a referral that names no consent) is treatment too."""
    code, display = PURPOSE.get(purpose, PURPOSE["referral"])
    return coding(ACT_REASON, code, display)


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    """A FHIR Coding."""
    found = {"system": system, "code": code}
    if display is not None:
        found["display"] = display
    return found


def concept(*codings: dict[str, str], text: str | None = None) -> dict[str, object]:
    """A FHIR CodeableConcept."""
    found: dict[str, object] = {}
    if codings:
        found["coding"] = list(codings)
    if text is not None:
        found["text"] = text
    return found


def reference(
    resource_type: str, resource_id: object, display: str | None = None
) -> dict[str, str]:
    """A literal reference, relative to the server's base (``Organization/<id>``)."""
    found = {"reference": f"{resource_type}/{resource_id}"}
    if display is not None:
        found["display"] = display
    return found
