"""An emergency grant: disclosure without the client's consent, under a legal basis (rule 2b).

Safeguarding, a threat to life or health, a court order or a legal duty can require the
owner to share sections with an agency without consent. It is time-limited (at most 72
hours), carries a justification (personal: it may describe the client) and is reviewed
after the fact by a supervisor of the owner who did not create it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, PersonalText, utcnow, when
from casenet.domain.errors import IllegalTransition, InvalidInput, NotPermitted
from casenet.domain.sections import check_sections
from casenet.domain.values import check_choice, check_text
from casenet.domain.visibility import ACTIVE, EmergencyFacts, emergency_status

LEGAL_BASES = ("vital_interests", "safeguarding", "court_order", "legal_obligation")
FINDINGS = ("justified", "unjustified")
MIN_MINUTES = 1
MAX_MINUTES = 72 * 60
#: A grant is to be reviewed within 72 hours of its creation.
REVIEW_WITHIN = timedelta(hours=72)


class EmergencyGrantNotActive(IllegalTransition):
    """The emergency grant was revoked or has expired; it grants nothing."""


class EmergencyGrantAlreadyReviewed(IllegalTransition):
    """A grant is reviewed once; the finding stands."""


class EmergencyReviewNotDue(IllegalTransition):
    """The review is not overdue (not due yet, done already, or its notice was given)."""


class EmergencyGrantCreated(DomainEvent, frozen=True, kw_only=True):
    case_id: UUID
    client_id: UUID
    owner_agency_id: UUID
    grantee_agency_id: UUID
    sections: tuple[str, ...]
    basis: str
    justification: PersonalText
    minutes: int
    expires_at: datetime
    review_due_at: datetime
    created_by_worker_id: UUID


class EmergencyGrantRevoked(DomainEvent, frozen=True, kw_only=True):
    client_id: UUID
    reason: PersonalText
    revoked_by_worker_id: UUID


class EmergencyGrantReviewed(DomainEvent, frozen=True, kw_only=True):
    client_id: UUID
    finding: str
    note: PersonalText
    reviewer_worker_id: UUID


class EmergencyReviewDueNoted(DomainEvent, frozen=True, kw_only=True):
    """The notice that a grant's review is overdue (for the owner's feed): recorded by
    casenet itself once, after ``review_due_at``, if no review was made by then."""

    review_due_at: datetime


class EmergencyGrant(Aggregate):
    """Created by a worker of the owning agency; expires by the clock (no event)."""

    case_id: UUID
    client_id: UUID
    owner_agency_id: UUID
    grantee_agency_id: UUID
    sections: tuple[str, ...]
    basis: str
    justification: str | None
    minutes: int
    created_at: datetime
    expires_at: datetime
    review_due_at: datetime
    created_by_worker_id: UUID
    revoked_at: datetime | None
    revoked_by_worker_id: UUID | None
    finding: str | None
    review_note: str | None
    reviewer_worker_id: UUID | None
    reviewed_at: datetime | None
    review_due_noted: bool

    @classmethod
    def create(
        cls,
        *,
        case_id: UUID,
        client_id: UUID,
        owner_agency_id: UUID,
        recording_agency_id: UUID,
        grantee_agency_id: UUID,
        sections: list[str] | tuple[str, ...],
        basis: str,
        justification: str,
        minutes: int,
        worker_id: UUID,
        new_id: UUID | None = None,
        now: datetime | None = None,
    ) -> EmergencyGrant:
        """``now``: the instant of creation (the clock's by default; a test's history)."""
        # As with consents: only the owner discloses, and never to itself.
        if recording_agency_id != owner_agency_id:
            raise NotPermitted("only the owning agency creates emergency grants for a case")
        if grantee_agency_id == owner_agency_id:
            raise InvalidInput("grantee_agency_id", "the owning agency needs no grant")
        check_choice(basis, LEGAL_BASES, "basis")
        check_text(justification, "justification", max_length=2_000)
        if isinstance(minutes, bool) or not MIN_MINUTES <= minutes <= MAX_MINUTES:
            raise InvalidInput("minutes", f"must be between {MIN_MINUTES} and {MAX_MINUTES}")
        now = now or utcnow()
        return cls._start(
            new_id or uuid4(),
            EmergencyGrantCreated,
            timestamp=now,
            case_id=case_id,
            client_id=client_id,
            owner_agency_id=owner_agency_id,
            grantee_agency_id=grantee_agency_id,
            sections=check_sections(sections),
            basis=basis,
            justification=justification,
            minutes=minutes,
            expires_at=now + timedelta(minutes=minutes),
            review_due_at=now + REVIEW_WITHIN,
            created_by_worker_id=worker_id,
        )

    def status_at(self, at: datetime) -> str:
        """``active``, ``revoked`` or ``expired`` at instant ``at``."""
        return emergency_status(self.created_at, self.revoked_at, self.expires_at, at)

    def facts(self) -> EmergencyFacts:
        """What the visibility policy needs of this grant."""
        return EmergencyFacts(
            grant_id=self.id,
            grantee_agency_id=self.grantee_agency_id,
            sections=self.sections,
            legal_basis=self.basis,
            created_at=self.created_at,
            revoked_at=self.revoked_at,
            expires_at=self.expires_at,
        )

    def revoke(self, *, recording_agency_id: UUID, worker_id: UUID, reason: str) -> None:
        if recording_agency_id != self.owner_agency_id:
            raise NotPermitted("only the owning agency revokes an emergency grant")
        status = self.status_at(utcnow())
        if status != ACTIVE:
            raise EmergencyGrantNotActive("emergency grant", status, "revoke")
        check_text(reason, "reason", max_length=2_000)
        self._record(
            EmergencyGrantRevoked,
            client_id=self.client_id,
            reason=reason,
            revoked_by_worker_id=worker_id,
        )

    def review(
        self, *, reviewing_agency_id: UUID, reviewer_worker_id: UUID, finding: str, note: str
    ) -> None:
        """Rule 2b: reviewed once, by someone of the owner other than its creator."""
        if reviewing_agency_id != self.owner_agency_id:
            raise NotPermitted("only the owning agency reviews an emergency grant")
        if reviewer_worker_id == self.created_by_worker_id:
            raise NotPermitted("the worker who created an emergency grant may not review it")
        if self.finding is not None:
            raise EmergencyGrantAlreadyReviewed("emergency grant", "reviewed", "review")
        check_choice(finding, FINDINGS, "finding")
        check_text(note, "note", max_length=2_000)
        self._record(
            EmergencyGrantReviewed,
            client_id=self.client_id,
            finding=finding,
            note=note,
            reviewer_worker_id=reviewer_worker_id,
        )

    def note_review_due(self, *, now: datetime | None = None) -> None:
        """Record that the review is overdue; once, and never for a reviewed grant (a
        revoked or expired one is still to be reviewed)."""
        if self.finding is not None or self.review_due_noted:
            raise EmergencyReviewNotDue("the review", "done or announced", "announce it overdue")
        if (now or utcnow()) < self.review_due_at:
            raise EmergencyReviewNotDue("the review", "not due yet", "announce it overdue")
        self._record(EmergencyReviewDueNoted, review_due_at=self.review_due_at)

    @when(EmergencyGrantCreated)
    def _created(self, event: EmergencyGrantCreated) -> None:
        self.case_id = event.case_id
        self.client_id = event.client_id
        self.owner_agency_id = event.owner_agency_id
        self.grantee_agency_id = event.grantee_agency_id
        self.sections = event.sections
        self.basis = event.basis
        self.justification = event.justification
        self.minutes = event.minutes
        self.created_at = event.timestamp
        self.expires_at = event.expires_at
        self.review_due_at = event.review_due_at
        self.created_by_worker_id = event.created_by_worker_id
        self.revoked_at = self.revoked_by_worker_id = None
        self.finding = self.review_note = None
        self.reviewer_worker_id = self.reviewed_at = None
        self.review_due_noted = False

    @when(EmergencyGrantRevoked)
    def _revoked(self, event: EmergencyGrantRevoked) -> None:
        self.revoked_at = event.timestamp
        self.revoked_by_worker_id = event.revoked_by_worker_id

    @when(EmergencyGrantReviewed)
    def _reviewed(self, event: EmergencyGrantReviewed) -> None:
        self.finding = event.finding
        self.review_note = event.note
        self.reviewer_worker_id = event.reviewer_worker_id
        self.reviewed_at = event.timestamp

    @when(EmergencyReviewDueNoted)
    def _review_due_noted(self, event: EmergencyReviewDueNoted) -> None:
        self.review_due_noted = True
