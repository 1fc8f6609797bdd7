"""Reading the feed: what concerns the caller's agency, in log order, already redacted.

A feed is followed for ever: every page's ``next`` is the cursor to resume from (on the
last page, and on an empty one, too), and ``after`` also takes the ``position`` of the
last item a client saw. ``wait`` holds an empty answer open, polling the read model
(which sees what any process wrote to the shared store) until an item arrives.

The wait holds no thread. The API reads the feed in a worker thread, as every read,
and between two looks (every :data:`POLL_INTERVAL`) sleeps on the event loop: a server's
handler threads are few (``CASENET_HANDLER_THREADS``, 3 on SQLite), and waits that held
them would stop every other request of the process until their time was up. What
this module gives the waiting loop is the rules: the longest wait (:func:`check_wait`),
how many may wait at once (:meth:`FeedQueries.waiting`: each costs a read a look) and
whether the server is stopping.

A server stopping (:meth:`FeedQueries.stop_waiting`, on SIGTERM) must not be held up by
waits of up to :data:`MAX_WAIT` seconds: open waits answer at their next look (within
:data:`POLL_INTERVAL`) with what they have, the empty page and its ``next`` cursor, and
new ones answer at once. The stop is a plain flag, read between two looks: it is set
from a signal handler, where taking a lock could deadlock the thread it interrupted.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
#: otherwise: each reads the feed once a look (about 7 reads a second).
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

    @property
    def stopping(self) -> bool:
        """Whether the server is stopping: a wait answers with what it has."""
        return self._stopping

    @contextmanager
    def waiting(self) -> Iterator[bool]:
        """A place among the requests that wait: whether this one may (no: the server
        is stopping, or :data:`DEFAULT_WAITERS` wait already), held until the block ends."""
        waiters = self._waiters  # the one acquired is the one released
        if self._stopping or not waiters.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            waiters.release()

    def feed(self, actor: Actor, *, limit: int | None, after: str | None) -> Page[FeedItem]:
        """The agency's feed after ``after`` (a cursor, or an item's position), as it is
        now (a wait for more is the caller's loop: see the module's documentation)."""
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        position = _position_of(after)
        rows = self.app.projections.current(
            ["feed"],
            lambda: feed_model.agency_feed(
                self.app.database, agency_id, after=position, limit=limit
            ),
        )
        items = [render_feed_item(r) for r in rows]
        last = items[-1].position if items else position
        return Page(items, encode_cursor(str(last)))


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


def check_wait(wait: float | None) -> float:
    """``wait`` in seconds (none: 0); :class:`InvalidInput` outside 0 to :data:`MAX_WAIT`."""
    if wait is None:
        return 0
    if not 0 <= wait <= MAX_WAIT:
        raise InvalidInput("wait", f"must be between 0 and {MAX_WAIT} seconds")
    return wait
