"""The delivery worker: pushes each webhook's feed items, in order, at least once.

Per webhook, in feed order: item N+1 is sent only once N was answered 2xx (or given
up). A worker first takes the webhook's lease (``WebhookOutbox.claim``: compare-and-swap
on its cursor row), so any number of workers, in any number of processes, never
deliver one webhook's items at once or out of order. A failed attempt is retried,
counting from its answer, after an exponential delay with jitter (:class:`Backoff`),
from seconds up to hours; an item still failing :attr:`Backoff.give_up_after` after its
first failure is given up (an attempt says so) and the next one goes. The cursor moves
only after the answer, in the transaction that records the attempt: a worker killed
mid-request sends that item again (at least once), and receivers deduplicate on
``webhook-id``.

The secret is decrypted for each attempt (the webhook is loaded from its events) and
forgotten with it: nothing is cached between deliveries.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

import msgspec
import standardwebhooks

from casenet.application.rendering import render_feed_item
from casenet.application.store import CasenetApplication
from casenet.application.views import FeedItem
from casenet.application.webhooks import types_of
from casenet.domain.webhook import Webhook
from casenet.infrastructure.projections import feed as feed_model
from casenet.infrastructure.projections.webhooks import WebhookRow
from casenet.infrastructure.webhook_http import Answer, TargetRefused, TargetRule, post
from casenet.infrastructure.webhook_outbox import (
    AttemptRow,
    DeliveryCursor,
    LeaseLost,
    WebhookOutbox,
)

logger = logging.getLogger("casenet.webhooks")
_ENCODER = msgspec.json.Encoder()
#: Feed items read per look at a webhook's feed.
PAGE = 50


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts at one item: ``base * 2**(n-1)`` seconds, at most
    ``cap``, each drawn between half and all of that (jitter, so that receivers coming
    back are not hit by every webhook at once); given up ``give_up_after`` seconds
    after the item's first failure. The defaults: 5 s, 10 s, 20 s, ... up to 3 h, for
    24 hours (about 18 attempts)."""

    base: float = 5.0
    cap: float = 3 * 3600.0
    give_up_after: float = 24 * 3600.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.base * float(2 ** min(attempt - 1, 40)))
        return ceiling / 2 + rng.random() * ceiling / 2


@dataclass(frozen=True)
class DeliveryOptions:
    """How the worker delivers (the defaults are production's; tests shorten them)."""

    backoff: Backoff = Backoff()
    #: Seconds for a receiver to connect and answer.
    timeout: float = 10.0
    #: Seconds a worker holds a webhook per claim, renewed at each attempt: more than an
    #: attempt takes (``timeout``), and how long a killed worker's webhooks wait.
    lease: float = 20.0
    #: Attempts per webhook per claim, so one busy webhook does not starve the others.
    per_claim: int = 100


class WebhookRemovedMeanwhile(Exception):
    """The webhook was removed while a worker held it."""


class WebhookDelivery:
    """One delivery worker (a server's thread, or ``casenet webhooks deliver``)."""

    def __init__(
        self,
        app: CasenetApplication,
        rule: TargetRule,
        options: DeliveryOptions = DeliveryOptions(),
        *,
        observe: Callable[[str], None] = lambda outcome: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.rule = rule
        self.options = options
        self.outbox = WebhookOutbox(app.database)
        #: Called with each attempt's outcome (the metrics' counters).
        self.observe = observe
        self.clock = clock
        self.owner = uuid.uuid4().hex
        # Jitter only spreads retries: it needs no unpredictability.
        self._rng = random.Random()  # noqa: S311

    def run(self, stop: threading.Event, *, interval: float) -> None:
        """Deliver what is due until ``stop`` is set; a failure (the database away) is
        logged by type only, never with data, and retried after a pause."""
        while not stop.is_set():
            try:
                made = self.deliver_due()
            except Exception as error:  # noqa: BLE001  (the loop's top-level handler)
                if stop.is_set():
                    return  # shutting down: the store may already be closed
                logger.warning("webhook delivery: %s; retrying", type(error).__name__)
                stop.wait(max(interval, 1.0))
                continue
            if not made:
                stop.wait(interval)

    def deliver_due(self) -> int:
        """One pass over the webhooks that have items due; returns the attempts made."""
        due = self.app.projections.current(
            ["webhooks", "feed"], lambda: self.outbox.due(self.clock())
        )
        made = 0
        for hook, has_cursor in due:
            if not has_cursor:
                self.outbox.ensure_cursor(hook.webhook_id, hook.registered_position)
            claimed = self.outbox.claim(
                hook.webhook_id, self.owner, self.clock(), self.options.lease
            )
            if claimed is None:
                continue  # another worker has it (or it is not due after all)
            try:
                made += self._serve(hook, claimed)
            except (LeaseLost, WebhookRemovedMeanwhile):
                continue
            finally:
                self.outbox.release(hook.webhook_id, self.owner)
        return made

    def _serve(self, hook: WebhookRow, cursor: DeliveryCursor) -> int:
        """Deliver the webhook's items in order while they succeed; the attempts made."""
        types = set(types_of(hook))
        made = 0
        while made < self.options.per_claim:
            items = self._items_after(hook, cursor.position)
            if not items:
                return made
            wanted = next((i for i in items if not types or i.type in types), None)
            skip_to = items[-1].position if wanted is None else _before(items, wanted)
            if skip_to is not None:
                cursor = self.outbox.advance(self.owner, cursor, skip_to, self._lease_end())
            if wanted is None:
                continue
            if cursor.next_attempt_at is not None and cursor.next_attempt_at > self.clock():
                return made
            cursor = self._attempt(hook, wanted, cursor)
            made += 1
            if cursor.attempt:  # failed: retried when due
                return made
        return made

    def _items_after(self, hook: WebhookRow, position: int) -> list[FeedItem]:
        """The agency's feed items after ``position``, exactly as GET /v1/feed renders them."""
        db, agency_id = self.app.database, UUID(hook.agency_id)
        rows = self.app.projections.current(
            ["feed"], lambda: feed_model.agency_feed(db, agency_id, after=position, limit=PAGE)
        )
        return [render_feed_item(row) for row in rows]

    def _attempt(self, hook: WebhookRow, item: FeedItem, cursor: DeliveryCursor) -> DeliveryCursor:
        """Send one item once; record the attempt and the cursor it leaves."""
        now = self.clock()
        answer = self._send(hook, item, now)
        number = cursor.attempt + 1
        first_failed = cursor.first_failed_at if cursor.first_failed_at is not None else now
        backoff = self.options.backoff
        if answer.ok or now - first_failed >= backoff.give_up_after:
            outcome = "delivered" if answer.ok else "given_up"
            after = replace(
                cursor,
                position=item.position,
                attempt=0,
                first_failed_at=None,
                next_attempt_at=None,
                attempts_made=cursor.attempts_made + 1,
            )
        else:
            refused = answer.status is None and (answer.error or "").startswith(_REFUSED)
            outcome = "refused" if refused else "failed"
            after = replace(
                cursor,
                attempt=number,
                first_failed_at=first_failed,
                # From the answer, not the start: a receiver that took long to fail
                # still gets the whole delay before it is tried again.
                next_attempt_at=self.clock() + backoff.delay(number, self._rng),
                attempts_made=cursor.attempts_made + 1,
            )
        attempt = AttemptRow(
            webhook_id=hook.webhook_id,
            seq=after.attempts_made,
            position=item.position,
            item_id=_item_id(item),
            type=item.type,
            attempt=number,
            outcome=outcome,
            status_code=answer.status,
            error=answer.error,
            attempted_at=now,
            next_attempt_at=after.next_attempt_at,
        )
        self.outbox.record(self.owner, after, attempt, self._lease_end())
        self.observe(outcome)
        return after

    def _send(self, hook: WebhookRow, item: FeedItem, now: float) -> Answer:
        """Sign and POST the item; the secret is decrypted for this attempt only."""
        try:
            target = self.rule.target(hook.url)
        except TargetRefused as refused:
            return Answer(None, f"{_REFUSED}: {refused}")
        webhook = self.app.get(Webhook, UUID(hook.webhook_id))
        if webhook.removed or webhook.secret is None:
            raise WebhookRemovedMeanwhile(hook.webhook_id)
        body = _ENCODER.encode(item)
        message_id = _item_id(item)
        sent_at = datetime.fromtimestamp(int(now), UTC)
        signature = standardwebhooks.Webhook(webhook.secret).sign(message_id, sent_at, body)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "casenet-webhooks",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now)),
            "webhook-signature": signature,
        }
        return post(target, body, headers, self.options.timeout)

    def _lease_end(self) -> float:
        return self.clock() + self.options.lease


_REFUSED = "refused"


def _item_id(item: FeedItem) -> str:
    """The item's id: stable, and the same in both agencies' feeds (``webhook-id``)."""
    return str(item.id)


def _before(items: list[FeedItem], wanted: FeedItem) -> int | None:
    """The position of the last item before ``wanted`` (skipped by type), if any."""
    index = items.index(wanted)
    return items[index - 1].position if index else None
