"""A referral of a client from one agency to another, followed to its outcome."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, PersonalText, when
from casenet.domain.errors import IllegalTransition, InvalidInput, NotPermitted
from casenet.domain.values import check_choice, check_text
from casenet.domain.vocabulary import check_need

REQUESTED = "requested"
ACCEPTED = "accepted"
REJECTED = "rejected"
IN_PROGRESS = "in_progress"
ON_HOLD = "on_hold"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (REQUESTED, ACCEPTED, REJECTED, IN_PROGRESS, ON_HOLD, COMPLETED, FAILED, CANCELLED)

URGENCIES = ("routine", "urgent")
OUTCOMES = (
    "got_help",
    "not_eligible",
    "no_capacity",
    "could_not_contact",
    "no_longer_interested",
    "referred_elsewhere",
    "needs_client_action",
)

#: How long the receiving agency has to answer (accept or reject) a referral, from the
#: moment it was requested, by urgency (API.md "Referral deadlines and network figures").
RESPONSE_TIMES: Mapping[str, timedelta] = MappingProxyType(
    {"urgent": timedelta(hours=24), "routine": timedelta(days=7)}
)


def response_due(requested_at: datetime, urgency: str) -> datetime:
    """When a referral requested at ``requested_at`` must be answered by (an urgency
    recorded before the vocabulary counts as routine)."""
    return requested_at + RESPONSE_TIMES.get(urgency, RESPONSE_TIMES["routine"])


RECEIVING = "receiving"
REFERRING = "referring"

#: action -> (statuses it may start from, status it leads to, side that may take it)
LIFECYCLE: dict[str, tuple[frozenset[str], str, str]] = {
    "accept": (frozenset({REQUESTED}), ACCEPTED, RECEIVING),
    "reject": (frozenset({REQUESTED}), REJECTED, RECEIVING),
    "start": (frozenset({ACCEPTED, ON_HOLD}), IN_PROGRESS, RECEIVING),
    "hold": (frozenset({ACCEPTED, IN_PROGRESS}), ON_HOLD, RECEIVING),
    "complete": (frozenset({IN_PROGRESS}), COMPLETED, RECEIVING),
    "fail": (frozenset({IN_PROGRESS}), FAILED, RECEIVING),
    "cancel": (frozenset({REQUESTED, ACCEPTED, IN_PROGRESS}), CANCELLED, REFERRING),
}


class ReferralRequested(DomainEvent, frozen=True, kw_only=True):
    case_id: UUID
    client_id: UUID
    from_agency_id: UUID
    to_agency_id: UUID
    service_type: str
    reason: PersonalText
    urgency: str
    consent_id: UUID | None
    worker_id: UUID


class ReferralStatusChanged(DomainEvent, frozen=True, kw_only=True):
    """Base of every lifecycle event: who moved the referral, and why."""

    client_id: UUID
    agency_id: UUID
    worker_id: UUID
    reason: PersonalText = None


class ReferralAccepted(ReferralStatusChanged, frozen=True, kw_only=True):
    pass


class ReferralRejected(ReferralStatusChanged, frozen=True, kw_only=True):
    pass


class ReferralStarted(ReferralStatusChanged, frozen=True, kw_only=True):
    pass


class ReferralPutOnHold(ReferralStatusChanged, frozen=True, kw_only=True):
    pass


class ReferralCompleted(ReferralStatusChanged, frozen=True, kw_only=True):
    outcome: str
    note: PersonalText = None


class ReferralFailed(ReferralStatusChanged, frozen=True, kw_only=True):
    pass


class ReferralCancelled(ReferralStatusChanged, frozen=True, kw_only=True):
    pass


class ReferralMessagePosted(DomainEvent, frozen=True, kw_only=True):
    client_id: UUID
    message_id: UUID
    agency_id: UUID
    worker_id: UUID
    text: PersonalText


class ReferralOverdueNoted(DomainEvent, frozen=True, kw_only=True):
    """The notice that the receiving agency did not answer by ``response_due_at`` (for
    both agencies' feeds): recorded by casenet itself once, while still ``requested``."""

    response_due_at: datetime


_EVENT_OF_ACTION: dict[str, type[ReferralStatusChanged]] = {
    "accept": ReferralAccepted,
    "reject": ReferralRejected,
    "start": ReferralStarted,
    "hold": ReferralPutOnHold,
    "complete": ReferralCompleted,
    "fail": ReferralFailed,
    "cancel": ReferralCancelled,
}
STATUS_OF_EVENT = {_EVENT_OF_ACTION[a]: LIFECYCLE[a][1] for a in LIFECYCLE}
_NEEDS_REASON = frozenset({"reject", "hold", "fail", "cancel"})


class StatusChange:
    """One step of a referral's history."""

    __slots__ = ("agency_id", "at", "outcome", "status", "worker_id")

    def __init__(self, status: str, at: datetime, agency_id: UUID, worker_id: UUID) -> None:
        self.status = status
        self.at = at
        self.agency_id = agency_id
        self.worker_id = worker_id
        self.outcome: str | None = None


class Message:
    """A message of the conversation between the two agencies."""

    __slots__ = ("agency_id", "created_at", "id", "text", "worker_id")

    def __init__(self, event: ReferralMessagePosted) -> None:
        self.id = event.message_id
        self.agency_id = event.agency_id
        self.worker_id = event.worker_id
        self.text = event.text
        self.created_at = event.timestamp


class Referral(Aggregate):
    """From the referring agency (the case owner) to the receiving agency."""

    case_id: UUID
    client_id: UUID
    from_agency_id: UUID
    to_agency_id: UUID
    service_type: str
    reason: str | None
    urgency: str
    consent_id: UUID | None
    status: str
    outcome: str | None
    outcome_note: str | None
    requested_at: datetime
    overdue_noted: bool
    history: list[StatusChange]
    messages: list[Message]

    @classmethod
    def request(
        cls,
        *,
        case_id: UUID,
        client_id: UUID,
        from_agency_id: UUID,
        to_agency_id: UUID,
        service_type: str,
        reason: str,
        urgency: str,
        worker_id: UUID,
        consent_id: UUID | None = None,
        new_id: UUID | None = None,
    ) -> Referral:
        if to_agency_id == from_agency_id:
            raise InvalidInput("to_agency_id", "an agency cannot refer a client to itself")
        check_choice(urgency, URGENCIES, "urgency")
        check_need(service_type, "service_type")
        check_text(reason, "reason", max_length=5_000)
        return cls._start(
            new_id or uuid4(),
            ReferralRequested,
            case_id=case_id,
            client_id=client_id,
            from_agency_id=from_agency_id,
            to_agency_id=to_agency_id,
            service_type=service_type,
            reason=reason,
            urgency=urgency,
            consent_id=consent_id,
            worker_id=worker_id,
        )

    @property
    def response_due_at(self) -> datetime:
        """When the receiving agency must have accepted or rejected it."""
        return response_due(self.requested_at, self.urgency)

    def is_overdue_at(self, at: datetime) -> bool:
        """Still ``requested`` past :attr:`response_due_at`."""
        return self.status == REQUESTED and at > self.response_due_at

    def note_overdue(self, *, now: datetime) -> None:
        """Record that it went unanswered past its due time; only once, and never for
        one that left ``requested`` (in time or not)."""
        if not self.is_overdue_at(now) or self.overdue_noted:
            raise IllegalTransition("referral", self.status, "note it overdue")
        self._record(ReferralOverdueNoted, response_due_at=self.response_due_at)

    def message(self, message_id: UUID) -> Message | None:
        return next((m for m in self.messages if m.id == message_id), None)

    def party_of(self, agency_id: UUID) -> str | None:
        """``referring``, ``receiving``, or None for an agency that is neither."""
        if agency_id == self.from_agency_id:
            return REFERRING
        if agency_id == self.to_agency_id:
            return RECEIVING
        return None

    def can(self, action: str) -> bool:
        """Whether the lifecycle allows ``action`` from the current status."""
        return action in LIFECYCLE and self.status in LIFECYCLE[action][0]

    def move(
        self,
        action: str,
        *,
        agency_id: UUID,
        worker_id: UUID,
        reason: str | None = None,
        outcome: str | None = None,
        note: str | None = None,
    ) -> None:
        """Take a lifecycle ``action`` (accept, reject, start, hold, complete, fail, cancel)."""
        if action not in LIFECYCLE:
            raise InvalidInput("action", f"unknown referral action {action!r}")
        sources, _, side = LIFECYCLE[action]
        if self.party_of(agency_id) != side:
            raise NotPermitted(f"only the {side} agency may {action} a referral")
        if self.status not in sources:
            raise IllegalTransition("referral", self.status, action)
        fields: dict[str, object] = {}
        if action == "complete":
            # A word outside the vocabulary is bad input (422), not a transition.
            fields["outcome"] = check_choice(outcome or "", OUTCOMES, "outcome")
            if note is not None:
                fields["note"] = check_text(note, "note", max_length=5_000)
        if action in _NEEDS_REASON:
            if reason is None:
                raise InvalidInput("reason", "is required")
            fields["reason"] = check_text(reason, "reason", max_length=5_000)
        self._record(
            _EVENT_OF_ACTION[action],
            client_id=self.client_id,
            agency_id=agency_id,
            worker_id=worker_id,
            **fields,
        )

    def post_message(
        self, *, agency_id: UUID, worker_id: UUID, text: str, new_id: UUID | None = None
    ) -> Message:
        if self.party_of(agency_id) is None:
            raise NotPermitted("only the two agencies of a referral may message on it")
        check_text(text, "text", max_length=10_000)
        self._record(
            ReferralMessagePosted,
            client_id=self.client_id,
            message_id=new_id or uuid4(),
            agency_id=agency_id,
            worker_id=worker_id,
            text=text,
        )
        return self.messages[-1]

    @when(ReferralRequested)
    def _requested(self, event: ReferralRequested) -> None:
        self.case_id = event.case_id
        self.client_id = event.client_id
        self.from_agency_id = event.from_agency_id
        self.to_agency_id = event.to_agency_id
        self.service_type = event.service_type
        self.reason = event.reason
        self.urgency = event.urgency
        self.consent_id = event.consent_id
        self.status = REQUESTED
        self.requested_at = event.timestamp
        self.overdue_noted = False
        self.outcome = None
        self.outcome_note = None
        self.history = [
            StatusChange(REQUESTED, event.timestamp, event.from_agency_id, event.worker_id)
        ]
        self.messages = []

    @when(
        ReferralAccepted,
        ReferralRejected,
        ReferralStarted,
        ReferralPutOnHold,
        ReferralCompleted,
        ReferralFailed,
        ReferralCancelled,
    )
    def _status_changed(self, event: ReferralStatusChanged) -> None:
        self.status = STATUS_OF_EVENT[type(event)]
        change = StatusChange(self.status, event.timestamp, event.agency_id, event.worker_id)
        if isinstance(event, ReferralCompleted):
            self.outcome = change.outcome = event.outcome
            self.outcome_note = event.note
        self.history.append(change)

    @when(ReferralOverdueNoted)
    def _overdue_noted(self, event: ReferralOverdueNoted) -> None:
        self.overdue_noted = True

    @when(ReferralMessagePosted)
    def _message_posted(self, event: ReferralMessagePosted) -> None:
        self.messages.append(Message(event))
