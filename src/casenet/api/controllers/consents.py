"""Consents: read, withdraw, and the receipt a client keeps."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from casenet.api.client_pages import wants_page
from casenet.api.docs import ACTION, READ, problems
from casenet.api.http import CallerActor, IfMatch, Services, expected_version, with_etag
from casenet.api.receipt_page import ReceiptOperation, receipt_page
from casenet.api.structs import Reason
from casenet.application.receipts import ConsentReceipt, consent_receipt
from casenet.application.rendering import render_consent
from casenet.application.views import ConsentView
from casenet.domain.aggregate import utcnow


class ConsentController(Controller):
    """A client's consent, as the owning agency recorded it."""

    path = "/v1/consents"
    tags = ["consents"]

    @get(
        "/{consent_id:uuid}",
        operation_id="get_consent",
        summary="A consent",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def get_consent(
        self, consent_id: FromPath[UUID], actor: CallerActor, casenet: Services
    ) -> Response[ConsentView]:
        """Workers of the agency that owns the case."""
        consent = casenet.case_queries.consent(actor, consent_id)
        return with_etag(render_consent(consent), consent.version)

    @post(
        "/{consent_id:uuid}/withdraw",
        operation_id="withdraw_consent",
        summary="Record the client's withdrawal of a consent",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*ACTION),
    )
    def withdraw(
        self,
        consent_id: FromPath[UUID],
        data: JSONBody[Reason],
        actor: CallerActor,
        casenet: Services,
        if_match: IfMatch = None,
    ) -> Response[ConsentView]:
        """Effective for every read that starts after this answer."""
        consent = casenet.consents.withdraw(
            actor, consent_id, reason=data.reason, expected_version=expected_version(if_match)
        )
        return with_etag(render_consent(consent), consent.version)

    @get(
        "/{consent_id:uuid}/receipt",
        operation_id="get_consent_receipt",
        summary="A consent receipt for the client",
        sync_to_thread=True,
        responses=problems(*READ),
        operation_class=ReceiptOperation,
    )
    def receipt(
        self,
        consent_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        request: Request[Any, Any, Any],
    ) -> Response[ConsentReceipt]:
        """What was granted, to whom, why, until when, how, and how to withdraw it: JSON,
        or with `Accept: text/html` a page to hand to the client."""
        consent = casenet.case_queries.consent(actor, consent_id)
        grantee = casenet.directory.agency(consent.grantee_agency_id)
        now = utcnow()
        receipt = consent_receipt(consent, grantee.name, now)
        if not wants_page(request):
            return Response(receipt, headers={"Vary": "Accept"})
        # The caller's own agency recorded it (only the owner does): its name and the
        # worker's are the caller's agency's to show.
        owner = casenet.directory.agency(consent.owner_agency_id)
        worker = owner.workers.get(consent.recorded_by_worker_id)
        return receipt_page(
            receipt, recorded_by=owner.name, worker=None if worker is None else worker.name, now=now
        )
