"""Reading the feed: what concerns the caller's agency, in log order, already redacted.

A feed is followed for ever: every page's ``next`` is the cursor to resume from (on the
last page, and on an empty one, too), and ``after`` also takes the ``position`` of the
last item a client saw. ``wait`` holds an empty answer open, polling the read model
(which sees what any process wrote to the shared store) until an item arrives.

A server stopping (:meth:`FeedQueries.stop_waiting`, on SIGTERM) must not be held up by
waits of up to :data:`MAX_WAIT` seconds: open waits answer at their next look (within
:data:`POLL_INTERVAL`) with what they have, the empty page and its ``next`` cursor, and
new ones answer at once. The stop is a plain flag, read between two looks: it is set
from a signal handler, where taking a lock could deadlock the thread it interrupted.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from casenet.application.actor import Actor
from casenet.application.pages import Page, check_limit, decode_cursor, encode_cursor
from casenet.application.rendering import render_feed_item
from casenet.application.store import CasenetApplication
from casenet.application.views import FeedItem
from casenet.domain.errors import InvalidInput
from casenet.infrastructure.projections import feed as feed_model

#: The longest ``wait``, in seconds.
MAX_WAIT = 30
#: Seconds between two looks at the read model while a request waits.
POLL_INTERVAL = 0.15
#: Requests that may wait at once, unless :meth:`FeedQueries.limit_waiters` says
#: otherwise: each holds a worker thread, and the API's sync handlers share anyio's
#: default pool of 40; half of it at most waits.
DEFAULT_WAITERS = 20

_POSITION = re.compile(r"[0-9]{1,19}", re.ASCII)
_MAX_POSITION = 2**63 - 1


class FeedQueries:
    """GET /v1/feed: what concerns the caller's agency, in log order, already redacted."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app
        self._waiters = threading.BoundedSemaphore(DEFAULT_WAITERS)
        self._stopping = False

    def stop_waiting(self) -> None:
        """The server is stopping: open waits answer at their next look, new ones at
        once (safe to call from a signal handler: it only sets a flag)."""
        self._stopping = True

    def limit_waiters(self, count: int) -> None:
        """At most ``count`` requests wait at once; the others answer at once."""
        self._waiters = threading.BoundedSemaphore(max(count, 1))

    def feed(
        self, actor: Actor, *, limit: int | None, after: str | None, wait: float | None = None
    ) -> Page[FeedItem]:
        """The agency's feed after ``after`` (a cursor, or an item's position); if there
        is nothing yet, waiting up to ``wait`` seconds for something to arrive."""
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        position = _position_of(after)
        wait = _check_wait(wait)

        def read() -> list[FeedItem]:
            rows = self.app.projections.current(
                ["feed"],
                lambda: feed_model.agency_feed(
                    self.app.database, agency_id, after=position, limit=limit + 1
                ),
            )
            return [render_feed_item(r) for r in rows]

        items = read()
        if not items and wait > 0:
            items = self._wait_for(read, wait)
        if len(items) > limit:
            items = items[:limit]
        last = items[-1].position if items else position
        return Page(items, encode_cursor(str(last)))

    def _wait_for(self, read: Callable[[], list[FeedItem]], wait: float) -> list[FeedItem]:
        """``read()`` again every :data:`POLL_INTERVAL` until it finds items, the time
        is up or the server stops; at once (empty) when too many requests wait already
        or the server is stopping."""
        waiters = self._waiters  # the one acquired is the one released
        if self._stopping or not waiters.acquire(blocking=False):
            return []
        try:
            deadline = time.monotonic() + wait
            while True:
                time.sleep(max(min(POLL_INTERVAL, deadline - time.monotonic()), 0))
                if self._stopping:
                    return []
                items = read()
                if items or time.monotonic() >= deadline:
                    return items
        finally:
            waiters.release()


def _position_of(after: str | None) -> int:
    """The log position ``after`` names: a cursor this list gave, or an item's
    ``position`` as is; :class:`InvalidInput` for anything else."""
    if after is None:
        return 0
    if _POSITION.fullmatch(after):  # a cursor is base64 of a JSON list: never all digits
        position = int(after)
    else:
        cursor = decode_cursor(after, 1)
        assert cursor is not None
        if not _POSITION.fullmatch(cursor[0]):
            raise InvalidInput("after", "is not a cursor this list gave")
        position = int(cursor[0])
    if position > _MAX_POSITION:
        raise InvalidInput("after", "is not a cursor this list gave, nor a position")
    return position


def _check_wait(wait: float | None) -> float:
    if wait is None:
        return 0
    if not 0 <= wait <= MAX_WAIT:
        raise InvalidInput("wait", f"must be between 0 and {MAX_WAIT} seconds")
    return wait
