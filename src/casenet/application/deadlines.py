"""Deadlines: notices that time, not a request, makes due.

A consent past ``valid_until`` is expired by the clock, with no event (API.md
"Consents"); but both agencies must hear of it once, in their feeds. So the live
runner (a thread of every server, or ``casenet projections run``) calls
:meth:`Deadlines.run` every few seconds: each check finds, in a read model, what fell
due and was not announced yet, and records the notice as an event on its aggregate,
through the same load-command-save as any service.

Safe with any number of runners: two that find the same consent both try, and the
aggregate's optimistic concurrency lets one write; the other's save conflicts (or its
command refuses: already noted) and is dropped. A withdrawn consent is never noted
(the command refuses, whatever the read model says). An emergency grant whose review
is overdue (``review_due_at`` passed, no review) is told to its owner once, the same
way. Later kinds (a referral's response) are one more check each, here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from casenet.application.store import CasenetApplication
from casenet.domain.aggregate import utcnow
from casenet.domain.consent import Consent
from casenet.domain.emergency import EmergencyGrant
from casenet.domain.errors import IllegalTransition, NotFound, VersionConflict
from casenet.domain.referral import Referral
from casenet.infrastructure.projections import consents as consents_model
from casenet.infrastructure.projections import network_metrics

logger = logging.getLogger("casenet.deadlines")

#: Notices one check records per run at most: a backlog (a store that was down for a
#: week) is worked off over a few runs, not in one long stretch between catch-ups.
BATCH = 200

#: Seconds between two runs of the deadline step in the live runner.
INTERVAL = 1.0


class Deadlines:
    """The deadline step: one check per kind of time-driven notice."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app
        #: Each check records the notices due at an instant; how many it recorded.
        self.checks: list[Callable[[datetime], int]] = [
            self.note_expired_consents,
            self.note_overdue_reviews,
            self.note_overdue_referrals,
        ]

    def run(self, now: datetime | None = None) -> int:
        """Record every notice due at ``now`` (the clock's now if None); how many this
        process recorded."""
        at = now or utcnow()
        return sum(check(at) for check in self.checks)

    def note_expired_consents(self, now: datetime) -> int:
        """``ConsentExpiryNoted`` on each consent past ``valid_until``, not withdrawn,
        not noted yet."""
        due = self.app.projections.current(
            ["consents"],
            lambda: consents_model.expired_unannounced(self.app.database, now, limit=BATCH),
        )
        return sum(self._note_expiry(consent_id, now) for consent_id in due)

    def _note_expiry(self, consent_id: UUID, now: datetime) -> int:
        try:
            consent = self.app.get(Consent, consent_id, personal=False)
            consent.note_expiry(now=now)
            self.app.save(consent)
        except (IllegalTransition, VersionConflict, NotFound):
            return 0  # noted by another runner meanwhile, or withdrawn: nothing to say
        return 1

    def note_overdue_reviews(self, now: datetime) -> int:
        """``EmergencyReviewDueNoted`` on each emergency grant past ``review_due_at``,
        not reviewed, not noted yet."""
        due = self.app.projections.current(
            ["consents"],
            lambda: consents_model.reviews_due_unannounced(self.app.database, now, limit=BATCH),
        )
        return sum(self._note_review_due(grant_id, now) for grant_id in due)

    def _note_review_due(self, grant_id: UUID, now: datetime) -> int:
        try:
            grant = self.app.get(EmergencyGrant, grant_id, personal=False)
            grant.note_review_due(now=now)
            self.app.save(grant)
        except (IllegalTransition, VersionConflict, NotFound):
            return 0  # noted by another runner meanwhile, or reviewed: nothing to say
        return 1

    def note_overdue_referrals(self, now: datetime) -> int:
        """``ReferralOverdueNoted`` on each referral still ``requested`` past its
        ``response_due_at``, not noted yet (the aggregate refuses one answered since)."""
        due = self.app.projections.current(
            ["network_metrics"],
            lambda: network_metrics.unanswered_unannounced(self.app.database, now, limit=BATCH),
        )
        noted = 0
        for referral_id in due:
            try:
                referral = self.app.get(Referral, referral_id, personal=False)
                referral.note_overdue(now=now)
                self.app.save(referral)
            except (IllegalTransition, VersionConflict, NotFound):
                continue  # noted by another runner meanwhile, or answered: nothing to say
            noted += 1
        return noted
