"""Who may call each operation, and its example bodies, in the OpenAPI document.

One table, :data:`WHO`, by operation id: the roles API.md's "who" column gives (and
the application enforces: ``tests/api/test_operation_docs.py`` calls each operation
with every role and checks that exactly the others get 403). Every operation's
description then says who may call it, and its request and success bodies carry an
example from :mod:`casenet.api.examples`, chosen by their schema's name. An operation
missing from the table is documented as such, and the test fails for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import Example, OpenAPIResponse, Operation, Reference, RequestBody
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from casenet.api.examples import OTHER_MEDIA, REQUESTS, RESPONSES
from casenet.api.fhir_examples import FHIR_REQUESTS, FHIR_RESPONSES
from casenet.domain.agency import ROLES
from casenet.fhir import FHIR_JSON

WORKERS = frozenset(ROLES)
CASE_WRITERS = frozenset({"caseworker", "supervisor"})
OVERSEERS = frozenset({"supervisor", "auditor"})
#: What every example shows (the story of :mod:`casenet.api.examples`).
STORY = "Eastside Welfare refers Maria to St Mary's Hospital"
#: The sentence every description starts its last paragraph with.
WHO_MAY_CALL = "Who may call:"


@dataclass(frozen=True)
class Who:
    """The callers of an operation: worker roles (of the agency ``of`` names), the
    operator, or anyone at all (no token)."""

    roles: frozenset[str] = frozenset()
    of: str = ""
    operator: bool = False
    anyone: bool = False

    def sentence(self) -> str:
        if self.anyone:
            return f"{WHO_MAY_CALL} anyone; no token needed."
        callers = []
        if self.operator:
            callers.append("the operator")
        if self.roles:
            roles = "any worker" if self.roles == WORKERS else _roles(self.roles)
            callers.append(f"{roles} {self.of}".strip())
        return f"{WHO_MAY_CALL} {'; '.join(callers)}."


def _roles(roles: frozenset[str]) -> str:
    ordered = [role for role in ROLES if role in roles]
    return ", ".join(f"`{role}`" for role in ordered) + (" workers" if ordered else "")


_OWNER = "of the case's owning agency"
_RECEIVER = "of the receiving agency"
_ADMIN = frozenset({"admin"})
_APPEAL_SEEN = "of the appealing agency or of one it reached"

WHO: dict[str, Who] = {
    "health_live": Who(anyone=True),
    "health_ready": Who(anyone=True),
    "get_me": Who(roles=WORKERS, operator=True),
    "register_agency": Who(operator=True),
    "list_agencies": Who(roles=WORKERS, operator=True),
    "get_agency": Who(roles=WORKERS, operator=True),
    "replace_services": Who(roles=frozenset({"admin"}), of="of that agency"),
    "list_workers": Who(roles=frozenset({"admin"}), of="of that agency", operator=True),
    "add_worker": Who(roles=frozenset({"admin"}), of="of that agency", operator=True),
    "revoke_worker": Who(roles=frozenset({"admin"}), of="of that agency", operator=True),
    "open_case": Who(roles=CASE_WRITERS, of="(the case is their agency's)"),
    "list_cases": Who(roles=WORKERS, of="(their agency's cases)"),
    "get_case": Who(roles=WORKERS, of="of the owning agency or of one it is shared with"),
    "add_note": Who(roles=CASE_WRITERS, of=_OWNER),
    "close_case": Who(roles=CASE_WRITERS, of=_OWNER),
    "reopen_case": Who(roles=CASE_WRITERS, of=_OWNER),
    "get_case_access": Who(roles=OVERSEERS, of=_OWNER),
    "list_shared_cases": Who(roles=WORKERS, of="(cases shared with their agency)"),
    "grant_consent": Who(roles=CASE_WRITERS, of=_OWNER),
    "list_case_consents": Who(roles=WORKERS, of=_OWNER),
    "get_consent": Who(roles=WORKERS, of=_OWNER),
    "get_consent_receipt": Who(roles=WORKERS, of=_OWNER),
    "withdraw_consent": Who(roles=CASE_WRITERS, of=_OWNER),
    "request_referral": Who(roles=CASE_WRITERS, of=_OWNER),
    "list_referrals": Who(roles=WORKERS, of="(their agency's inbox or outbox)"),
    "get_referral": Who(roles=WORKERS, of="of either agency of the referral"),
    "accept_referral": Who(roles=CASE_WRITERS, of=_RECEIVER),
    "reject_referral": Who(roles=CASE_WRITERS, of=_RECEIVER),
    "start_referral": Who(roles=CASE_WRITERS, of=_RECEIVER),
    "hold_referral": Who(roles=CASE_WRITERS, of=_RECEIVER),
    "complete_referral": Who(roles=CASE_WRITERS, of=_RECEIVER),
    "fail_referral": Who(roles=CASE_WRITERS, of=_RECEIVER),
    "cancel_referral": Who(roles=CASE_WRITERS, of="of the referring agency"),
    "post_referral_message": Who(roles=WORKERS, of="of either agency of the referral"),
    "list_referral_messages": Who(roles=WORKERS, of="of either agency of the referral"),
    "erase_client": Who(
        roles=frozenset({"admin"}), of="of the agency that registered the client", operator=True
    ),
    "list_disclosures": Who(roles=OVERSEERS, of=_OWNER),
    "export_audit": Who(roles=frozenset({"auditor"}), of=_OWNER, operator=True),
    "get_feed": Who(roles=WORKERS, of="(items that concern their agency)"),
    "create_emergency_grant": Who(roles=CASE_WRITERS, of=_OWNER),
    "list_case_emergency_grants": Who(roles=WORKERS, of=_OWNER),
    "get_emergency_grant": Who(roles=WORKERS, of=_OWNER),
    "revoke_emergency_grant": Who(roles=CASE_WRITERS, of=_OWNER),
    "review_emergency_grant": Who(
        roles=frozenset({"supervisor"}), of=f"{_OWNER}, other than the grant's creator"
    ),
    "list_emergency_grants_awaiting_review": Who(roles=OVERSEERS, of="(their agency's grants)"),
    "register_webhook": Who(roles=_ADMIN, of="(for their agency)"),
    "list_webhooks": Who(roles=_ADMIN, of="(their agency's webhooks)"),
    "remove_webhook": Who(roles=_ADMIN, of="of the webhook's agency"),
    "list_webhook_deliveries": Who(roles=_ADMIN, of="of the webhook's agency"),
    "get_subject_access": Who(
        roles=frozenset({"supervisor", "admin"}), of="of the agency that registered the client"
    ),
    "get_network_metrics": Who(roles=WORKERS, of="(other agencies' small counts withheld)"),
    # The network (issue 19).
    "request_partnership": Who(roles=_ADMIN, of="(for their agency)"),
    "list_partnerships": Who(roles=WORKERS, of="(their agency's partnerships)"),
    "get_partnership": Who(roles=WORKERS, of="of either agency of the partnership"),
    "accept_partnership": Who(roles=_ADMIN, of="of the asked agency"),
    "decline_partnership": Who(roles=_ADMIN, of="of the asked agency"),
    "end_partnership": Who(roles=_ADMIN, of="of either agency of the partnership"),
    "post_appeal": Who(roles=CASE_WRITERS, of="(for their agency)"),
    "list_appeals": Who(roles=WORKERS, of="(appeals that reached their agency, and its own)"),
    "get_appeal": Who(roles=WORKERS, of=_APPEAL_SEEN),
    "answer_appeal": Who(roles=WORKERS, of="of an agency the appeal reached"),
    "relay_appeal": Who(roles=WORKERS, of=_APPEAL_SEEN),
    "close_appeal": Who(roles=CASE_WRITERS, of="of the appealing agency"),
    "search_services": Who(roles=WORKERS, operator=True),
    "hsds_list_services": Who(roles=WORKERS, operator=True),
    "hsds_get_service": Who(roles=WORKERS, operator=True),
    "hsds_get_organization": Who(roles=WORKERS, operator=True),
    # FHIR R5 (issue 20): the REST API's callers, resource by resource.
    "fhir_capabilities": Who(anyone=True),
    "fhir_read_consent": Who(roles=WORKERS, of=_OWNER),
    "fhir_read_service_request": Who(roles=WORKERS, of="of either agency of the referral"),
    "fhir_read_task": Who(roles=WORKERS, of="of either agency of the referral"),
    "fhir_update_task": Who(
        roles=CASE_WRITERS, of=f"{_RECEIVER} (`cancelled`: of the referring agency)"
    ),
    "fhir_read_organization": Who(roles=WORKERS, operator=True),
    "fhir_read_healthcare_service": Who(roles=WORKERS, operator=True),
    "fhir_search_audit_events": Who(roles=OVERSEERS, of=_OWNER),
    "fhir_read_bundle": Who(roles=WORKERS, of="of the owning agency or of one it is shared with"),
}


@dataclass
class DocumentedOperation(Operation):
    """An operation whose description names who may call it, and whose request and
    success bodies carry examples. (A dataclass again, so that ``__init__`` calls
    ``__post_init__``.)"""

    def __post_init__(self) -> None:
        who = WHO.get(self.operation_id or "")
        sentence = who.sentence() if who else f"{WHO_MAY_CALL} not documented."
        self.description = "\n\n".join(p for p in (self.description, sentence) if p)
        if isinstance(self.request_body, RequestBody):
            for media_type, media in self.request_body.content.items():
                if media_type == FHIR_JSON:  # FHIR's bodies: by operation (casenet.fhir)
                    _give_fhir_example(media, FHIR_REQUESTS, self.operation_id)
                else:
                    _give_example(media, REQUESTS)
        for code, response in (self.responses or {}).items():
            if code.startswith("2") and isinstance(response, OpenAPIResponse):
                for media_type, media in (response.content or {}).items():
                    if media_type == FHIR_JSON:
                        _give_fhir_example(media, FHIR_RESPONSES, self.operation_id)
                    elif media_type in OTHER_MEDIA:
                        example = Example(summary=STORY, value=OTHER_MEDIA[media_type])
                        media.examples = {"example": example}
                    else:
                        _give_example(media, RESPONSES)


def _give_example(media: Any, examples: dict[str, Any]) -> None:
    schema = media.schema
    if isinstance(schema, Reference):
        # Still the long name here (``casenet_api_structs_CaseCreate``): Litestar
        # shortens the references once every schema is known.
        name = schema.ref.rsplit("/", 1)[-1].rsplit("_", 1)[-1]
        if name in examples:
            media.examples = {"example": Example(summary=STORY, value=examples[name])}


def _give_fhir_example(media: Any, examples: dict[str, Any], operation_id: str | None) -> None:
    if operation_id in examples:
        media.examples = {"example": Example(summary=STORY, value=examples[operation_id])}


class DocumentedOperations(ReceiveRoutePlugin):
    """Every route of the app is documented with :class:`DocumentedOperation` (a route
    added later too: the test then asks for its row in :data:`WHO`)."""

    def receive_route(self, route: BaseRoute) -> None:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if handler.operation_class is Operation:
                    handler.operation_class = DocumentedOperation
