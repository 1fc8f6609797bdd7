"""Clients' erasure, the accounting of disclosures, and the per-agency feed."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.params import FromPath, QueryParameter

from casenet.api.client_pages import PageOperation, wants_page
from casenet.api.docs import READ, WRITE, problems
from casenet.api.http import After, CallerActor, Limit, Services, query_instant
from casenet.api.structs import DisclosurePage, Erasure, FeedPage
from casenet.api.subject_access_page import subject_access_page
from casenet.application.feed_queries import POLL_INTERVAL, check_wait
from casenet.application.subject_access_views import SubjectAccess


class ClientController(Controller):
    """The data subjects: their right of access and their right to be forgotten."""

    path = "/v1/clients"
    tags = ["clients"]

    @post(
        "/{client_id:uuid}/erasure",
        operation_id="erase_client",
        summary="Crypto-shred the client's personal data",
        status_code=200,
        sync_to_thread=True,
        responses=problems(*WRITE),
    )
    def erase(self, client_id: FromPath[UUID], actor: CallerActor, casenet: Services) -> Erasure:
        """An admin of the agency that registered the client. Their data key is destroyed:
        every read then shows ``erased: true`` and null for personal values. Final."""
        client = casenet.clients.erase(actor, client_id)
        return Erasure(client_id=client.id, erased=client.erased)

    @get(
        "/{client_id:uuid}/subject-access",
        operation_id="get_subject_access",
        summary="Everything casenet holds about the client, for the client",
        sync_to_thread=True,
        responses=problems(*READ),
        operation_class=PageOperation,
    )
    def subject_access(
        self,
        client_id: FromPath[UUID],
        actor: CallerActor,
        casenet: Services,
        request: Request[Any, Any, Any],
    ) -> Response[SubjectAccess]:
        """GDPR Art. 15: personal values, cases and notes, consents with their receipts,
        emergency grants, the accounting of disclosures, and referrals, decrypted; JSON,
        or with `Accept: text/html` a page in plain words to hand to the client. After
        erasure: when it happened, and no personal value. Each copy is recorded on the
        client (who asked, when) and listed in `requests`."""
        copy = casenet.subject_access.copy_for_client(actor, client_id)
        if wants_page(request):
            page = subject_access_page(copy)
            page.headers["Cache-Control"] = "no-store"
            return page
        return Response(copy, headers={"Vary": "Accept", "Cache-Control": "no-store"})


class DisclosureController(Controller):
    """The accounting of disclosures (rule 5)."""

    path = "/v1/disclosures"
    tags = ["audit"]

    @get(
        "/",
        operation_id="list_disclosures",
        summary="Every read by another agency of the agency's cases",
        sync_to_thread=True,
        responses=problems(*READ),
    )
    def disclosures(
        self,
        actor: CallerActor,
        casenet: Services,
        case_id: Annotated[UUID | None, QueryParameter(name="case_id", required=False)] = None,
        since: Annotated[datetime | None, QueryParameter(name="from", required=False)] = None,
        until: Annotated[datetime | None, QueryParameter(name="to", required=False)] = None,
        limit: Limit = None,
        after: After = None,
    ) -> DisclosurePage:
        """Supervisors and auditors of the owner; ``from`` inclusive, ``to`` exclusive."""
        page = casenet.case_queries.disclosures(
            actor,
            case_id=case_id,
            since=query_instant(since, "from"),
            until=query_instant(until, "to"),
            limit=limit,
            after=after,
        )
        return DisclosurePage(items=page.items, next=page.next)


FeedAfter = Annotated[
    str | None,
    QueryParameter(
        name="after",
        required=False,
        max_length=500,
        description="The `next` cursor, or the `position` of the last item seen.",
    ),
]
Wait = Annotated[
    int | None,
    QueryParameter(
        name="wait",
        required=False,
        description="Seconds (0-30, else 422) to hold an empty answer open until an item arrives.",
    ),
]


class FeedController(Controller):
    """What concerns the caller's agency, in order."""

    path = "/v1/feed"
    tags = ["feed"]

    @get(
        "/",
        operation_id="get_feed",
        summary="Events that concern the caller's agency, redacted for it",
        responses=problems(*READ),
    )
    async def feed(
        self,
        actor: CallerActor,
        casenet: Services,
        limit: Limit = None,
        after: FeedAfter = None,
        wait: Wait = None,
    ) -> FeedPage:
        """Referrals to or from the agency; consents granted to or withdrawn from it.

        Followed for ever: ``next`` is never null (on the last page it is where to
        resume from once more items arrive), and ``after`` also takes the ``position``
        of the last item seen. With ``wait``, an answer that would be empty is held
        until an item arrives or the time is up (or answered at once while too many
        requests wait already).

        Each read runs in a worker thread; the wait between two reads is on the event
        loop, so a waiting request holds no thread (``application/feed_queries.py``)."""
        seconds = check_wait(wait)
        feed = casenet.feed
        page = await sync_to_thread(feed.feed, actor, limit=limit, after=after)
        if not page.items and seconds > 0:
            with feed.waiting() as may_wait:
                deadline = time.monotonic() + seconds
                while may_wait and not page.items and time.monotonic() < deadline:
                    await asyncio.sleep(min(POLL_INTERVAL, deadline - time.monotonic()))
                    if feed.stopping:
                        break
                    page = await sync_to_thread(feed.feed, actor, limit=limit, after=after)
        assert page.next is not None
        return FeedPage(items=page.items, next=page.next)
