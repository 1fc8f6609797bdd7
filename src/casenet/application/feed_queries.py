"""Reading the feed: what concerns the caller's agency, in log order, already redacted."""

from __future__ import annotations

from casenet.application.actor import Actor
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.rendering import render_feed_item
from casenet.application.store import CasenetApplication
from casenet.application.views import FeedItem
from casenet.domain.errors import InvalidInput
from casenet.infrastructure.projections import feed as feed_model


class FeedQueries:
    """GET /v1/feed: what concerns the caller's agency, in log order, already redacted."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app

    def feed(self, actor: Actor, *, limit: int | None, after: str | None) -> Page[FeedItem]:
        """The agency's feed after the cursor's log position."""
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        cursor = decode_cursor(after, 1)
        try:
            position = int(cursor[0]) if cursor else 0
        except ValueError:
            raise InvalidInput("after", "is not a cursor this list gave") from None
        rows = self.app.projections.current(
            ["feed"],
            lambda: feed_model.agency_feed(
                self.app.database, agency_id, after=position, limit=limit + 1
            ),
        )
        items = [render_feed_item(r) for r in rows]
        return page_of(items, limit, lambda i: (str(i.position),))
