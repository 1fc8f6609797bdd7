"""An appeal: a call for help passed along the network, like the hospital that needs
blood donors (rule 7: it carries no case or client data).

It reaches the author's partners, or every agency; an agency it reached may relay it to
its own partners, at most :data:`MAX_HOPS` hops from the author. Who reached whom at
which hop is recorded in its events, so reach replays. Past ``expires_at`` it is closed
without an event: its status is computed from the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, when
from casenet.domain.errors import IllegalTransition, InvalidInput, NotFound, NotPermitted
from casenet.domain.values import check_instant, check_text

PARTNERS = "partners"
NETWORK = "network"
REACHES = (PARTNERS, NETWORK)
ANSWERS = ("can_help", "waitlist", "cannot_help")
OPEN = "open"
CLOSED = "closed"
STATUSES = (OPEN, CLOSED)
#: How far from the author a relay may pass an appeal (hop 1: reached by the author).
MAX_HOPS = 3


class AppealPosted(DomainEvent, frozen=True, kw_only=True):
    """``reached``: the agencies reached at hop 1 (the author's partners, or every agency)."""

    agency_id: UUID
    worker_id: UUID
    need: str
    title: str
    text: str
    area: str | None
    expires_at: datetime
    reach: str
    reached: tuple[UUID, ...]


class AppealRelayed(DomainEvent, frozen=True, kw_only=True):
    """``agency_id`` passed it to ``reached`` (its partners it had not reached), at ``hop``.
    The author and the need ride along, so the feed needs no earlier row."""

    agency_id: UUID
    worker_id: UUID
    hop: int
    reached: tuple[UUID, ...]
    author_agency_id: UUID
    need: str


class AppealAnswered(DomainEvent, frozen=True, kw_only=True):
    response_id: UUID
    agency_id: UUID
    worker_id: UUID
    answer: str
    text: str | None
    author_agency_id: UUID
    need: str


class AppealClosed(DomainEvent, frozen=True, kw_only=True):
    agency_id: UUID
    worker_id: UUID
    reason: str


@dataclass(frozen=True)
class AppealResponse:
    """One agency's answer to an appeal."""

    id: UUID
    agency_id: UUID
    worker_id: UUID
    answer: str
    text: str | None
    at: datetime


class Appeal(Aggregate):
    """A call for help; ``reached`` maps each agency it reached to the hop it came at."""

    agency_id: UUID
    need: str
    title: str
    text: str
    area: str | None
    expires_at: datetime
    reach: str
    reached: dict[UUID, int]
    responses: list[AppealResponse]
    close_reason: str | None

    @classmethod
    def post(
        cls,
        *,
        agency_id: UUID,
        worker_id: UUID,
        need: str,
        title: str,
        text: str,
        area: str | None,
        expires_at: datetime,
        reach: str,
        reached: list[UUID],
        now: datetime,
        new_id: UUID | None = None,
    ) -> Appeal:
        expires_at = check_instant(expires_at, "expires_at")
        if expires_at <= now:
            raise InvalidInput("expires_at", "must be in the future")
        return cls._start(
            new_id or uuid4(),
            AppealPosted,
            agency_id=agency_id,
            worker_id=worker_id,
            need=need,
            title=check_text(title, "title", max_length=200),
            text=check_text(text, "text"),
            area=None if area is None else check_text(area, "area", max_length=200),
            expires_at=expires_at,
            reach=reach,
            reached=tuple(dict.fromkeys(a for a in reached if a != agency_id)),
            timestamp=now,
        )

    def status(self, now: datetime) -> str:
        return CLOSED if self.close_reason is not None or now >= self.expires_at else OPEN

    def check_visible_to(self, agency_id: UUID) -> None:
        """As for a random id to an agency it never reached."""
        if agency_id != self.agency_id and agency_id not in self.reached:
            raise NotFound("appeal not found")

    def _check_open(self, action: str, now: datetime) -> None:
        status = self.status(now)
        if status != OPEN:
            raise IllegalTransition("appeal", status, action)

    def relay(
        self, *, agency_id: UUID, worker_id: UUID, partners: list[UUID], now: datetime
    ) -> int:
        """Pass it to ``partners`` of ``agency_id``; how many agencies it newly reached
        (none past :data:`MAX_HOPS`, and then nothing is recorded)."""
        self.check_visible_to(agency_id)
        self._check_open("relay", now)
        hop = self.reached.get(agency_id, 0) + 1
        new = [p for p in dict.fromkeys(partners) if p != self.agency_id and p not in self.reached]
        if hop > MAX_HOPS or not new:
            return 0
        self._record(
            AppealRelayed,
            agency_id=agency_id,
            worker_id=worker_id,
            hop=hop,
            reached=tuple(new),
            author_agency_id=self.agency_id,
            need=self.need,
            timestamp=now,
        )
        return len(new)

    def respond(
        self, *, agency_id: UUID, worker_id: UUID, answer: str, text: str | None, now: datetime
    ) -> AppealResponse:
        self.check_visible_to(agency_id)
        if agency_id == self.agency_id:
            raise NotPermitted("the appealing agency does not answer its own appeal")
        self._check_open("respond", now)
        if answer not in ANSWERS:
            raise InvalidInput("answer", f"must be one of: {', '.join(ANSWERS)}")
        self._record(
            AppealAnswered,
            response_id=uuid4(),
            agency_id=agency_id,
            worker_id=worker_id,
            answer=answer,
            text=None if text is None else check_text(text, "text"),
            author_agency_id=self.agency_id,
            need=self.need,
            timestamp=now,
        )
        return self.responses[-1]

    def close(self, *, agency_id: UUID, worker_id: UUID, reason: str, now: datetime) -> None:
        self.check_visible_to(agency_id)
        if agency_id != self.agency_id:
            raise NotPermitted("only the appealing agency may close an appeal")
        self._check_open("close", now)
        reason = check_text(reason, "reason", max_length=2_000)
        self._record(AppealClosed, agency_id=agency_id, worker_id=worker_id, reason=reason)

    def responses_for(self, agency_id: UUID) -> list[AppealResponse]:
        """Every response for the author; a responder's own for a responder."""
        if agency_id == self.agency_id:
            return list(self.responses)
        return [r for r in self.responses if r.agency_id == agency_id]

    @when(AppealPosted)
    def _posted(self, event: AppealPosted) -> None:
        self.agency_id = event.agency_id
        self.need, self.title, self.text = event.need, event.title, event.text
        self.area, self.expires_at, self.reach = event.area, event.expires_at, event.reach
        self.reached = dict.fromkeys(event.reached, 1)
        self.responses = []
        self.close_reason = None

    @when(AppealRelayed)
    def _relayed(self, event: AppealRelayed) -> None:
        for agency_id in event.reached:
            self.reached.setdefault(agency_id, event.hop)

    @when(AppealAnswered)
    def _answered(self, event: AppealAnswered) -> None:
        self.responses.append(
            AppealResponse(
                event.response_id,
                event.agency_id,
                event.worker_id,
                event.answer,
                event.text,
                event.timestamp,
            )
        )

    @when(AppealClosed)
    def _closed(self, event: AppealClosed) -> None:
        self.close_reason = event.reason
