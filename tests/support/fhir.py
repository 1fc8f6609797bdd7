"""What every FHIR resource casenet emits must be: valid FHIR R5 (``fhir.resources``
8.x, FHIR 5.0.0) and coded only from the value sets its elements are bound to.

``fhir.resources`` checks structure, cardinality and types, not bindings: the tables
here are the bindings, written from the standard (not from ``casenet.fhir.codes``),
so a mapping that emits a code the value set lacks fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir.resources import get_fhir_model_class

from casenet.domain.consent import METHODS
from casenet.domain.emergency import LEGAL_BASES
from casenet.domain.referral import OUTCOMES
from casenet.domain.sections import DISCLOSED_SECTIONS
from casenet.domain.service import CAPACITIES
from casenet.domain.vocabulary import NEEDS

ANY = None  #: a code system whose codes are not enumerated here (a free word, BCP 47)
CASENET = "urn:casenet:fhir:CodeSystem:"

#: Every code system a Coding may name, and its codes (from the standard's value sets).
CODE_SYSTEMS: dict[str, frozenset[str] | None] = {
    # FHIR task-code
    "http://hl7.org/fhir/CodeSystem/task-code": frozenset(
        {"approve", "fulfill", "instantiate", "abort", "replace", "change", "suspend", "resume"}
    ),
    # PurposeOfUse (v3 ActReason), the codes of its general and clinical branches.
    "http://terminology.hl7.org/CodeSystem/v3-ActReason": frozenset(
        {"TREAT", "ETREAT", "CAREMGT", "COC", "HPAYMT", "HOPERAT", "PATRQT", "PUBHLTH"}
    ),
    # v3 ActCode, the InformationSensitivityPolicy codes (ActInformationSensitivityPolicy).
    "http://terminology.hl7.org/CodeSystem/v3-ActCode": frozenset(
        {"ETH", "GDIS", "HIV", "MST", "SCA", "SDV", "SEX", "SPI", "BH", "PSY", "SUD", "STD"}
    ),
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType": frozenset({"IRCP", "AUT"}),
    "http://loinc.org": frozenset({"59284-0", "57016-8", "64292-6"}),
    "http://terminology.hl7.org/CodeSystem/consentaction": frozenset(
        {"collect", "access", "use", "disclose", "correct"}
    ),
    "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle": frozenset(
        {"access", "disclose", "transmit", "receive", "originate", "amend", "verify"}
    ),
    "http://terminology.hl7.org/CodeSystem/organization-type": frozenset(
        {"prov", "dept", "team", "govt", "ins", "pay", "edu", "reli", "crs", "cg", "bus", "other"}
    ),
    CASENET + "section": frozenset(DISCLOSED_SECTIONS),
    CASENET + "referral-outcome": frozenset(OUTCOMES),
    CASENET + "task-output": frozenset({"outcome"}),
    CASENET + "consent-recording-method": frozenset(METHODS),
    CASENET + "need": frozenset(NEEDS),
    CASENET + "service-capacity": frozenset(CAPACITIES),
    CASENET + "emergency-legal-basis": frozenset(LEGAL_BASES),
    CASENET + "agency-kind": ANY,
    "urn:ietf:bcp:47": ANY,
}

#: (resource type, element) -> the codes its required binding allows, those casenet may use.
ELEMENT_CODES: dict[tuple[str, str], frozenset[str]] = {
    # SDOH Clinical Care's referral Task: task-status without ready, received, draft,
    # entered-in-error (casenet's referrals never pass through them).
    ("Task", "status"): frozenset(
        {
            "requested",
            "accepted",
            "rejected",
            "cancelled",
            "in-progress",
            "on-hold",
            "completed",
            "failed",
        }
    ),
    ("Task", "intent"): frozenset({"unknown", "proposal", "plan", "order", "original-order"}),
    ("Task", "priority"): frozenset({"routine", "urgent", "asap", "stat"}),
    ("ServiceRequest", "status"): frozenset(
        {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
    ),
    ("ServiceRequest", "intent"): frozenset({"proposal", "plan", "directive", "order"}),
    ("ServiceRequest", "priority"): frozenset({"routine", "urgent", "asap", "stat"}),
    # consent-state-codes: casenet's consents are active, or inactive (withdrawn, expired).
    ("Consent", "status"): frozenset({"active", "inactive"}),
    ("Consent", "decision"): frozenset({"deny", "permit"}),
    ("AuditEvent", "action"): frozenset({"C", "R", "U", "D", "E"}),
    ("Bundle", "type"): frozenset({"collection", "searchset"}),
    ("CapabilityStatement", "status"): frozenset({"draft", "active", "retired", "unknown"}),
    ("CapabilityStatement", "kind"): frozenset({"instance", "capability", "requirements"}),
}


def codings(value: Any) -> Iterator[dict[str, Any]]:
    """Every Coding in ``value`` (any dict with a ``system`` and a ``code``)."""
    if isinstance(value, dict):
        if "system" in value and "code" in value:
            yield value
        for item in value.values():
            yield from codings(item)
    elif isinstance(value, list):
        for item in value:
            yield from codings(item)


def resources_in(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The resource, and those a Bundle holds."""
    yield resource
    for entry in resource.get("entry", []):
        yield from resources_in(entry["resource"])


def unbound_codes(resource: dict[str, Any]) -> list[str]:
    """Every coded value of ``resource`` (and its entries) outside its binding."""
    wrong = []
    for found in resources_in(resource):
        kind = found["resourceType"]
        for (resource_type, element), allowed in ELEMENT_CODES.items():
            if resource_type == kind and element in found and found[element] not in allowed:
                wrong.append(f"{kind}.{element} = {found[element]!r}")
        for coding in codings(found):
            system, code = coding["system"], coding["code"]
            if system.startswith("urn:casenet:") and not system.startswith(CASENET):
                continue  # an identifier system (urn:casenet:case), not a code system
            if system not in CODE_SYSTEMS:
                wrong.append(f"{kind}: unknown system {system}")
            elif (codes := CODE_SYSTEMS[system]) is not None and code not in codes:
                wrong.append(f"{kind}: {code!r} is not in {system}")
    return wrong


def check_fhir(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` (as JSON), after checking that it validates as FHIR R5 and has only
    bound codes; AssertionError (or fhir.resources' ValidationError) otherwise."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    wrong = unbound_codes(resource)
    assert wrong == [], wrong
    return resource
