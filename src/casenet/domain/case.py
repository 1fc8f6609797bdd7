"""A case: one agency's work with one client, its needs, summary and notes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, PersonalText, when
from casenet.domain.errors import IllegalTransition, NotPermitted
from casenet.domain.sections import check_note_category
from casenet.domain.values import check_text
from casenet.domain.vocabulary import check_need

OPEN = "open"
CLOSED = "closed"


class CaseOpened(DomainEvent, frozen=True, kw_only=True):
    owner_agency_id: UUID
    opened_by_worker_id: UUID
    client_id: UUID
    summary: PersonalText
    needs: tuple[str, ...]


class CaseNoteAdded(DomainEvent, frozen=True, kw_only=True):
    """A note; version 2 added ``category`` (version 1 notes were all general)."""

    client_id: UUID
    note_id: UUID
    category: str
    text: PersonalText
    author_worker_id: UUID

    class_version: ClassVar[int] = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["category"] = "general"


class CaseClosed(DomainEvent, frozen=True, kw_only=True):
    client_id: UUID
    reason: PersonalText
    worker_id: UUID


class CaseReopened(DomainEvent, frozen=True, kw_only=True):
    client_id: UUID
    reason: PersonalText
    worker_id: UUID


class Note:
    """A note on a case; its category decides the section it is disclosed under."""

    __slots__ = ("author_worker_id", "category", "created_at", "id", "text", "version")

    def __init__(self, event: CaseNoteAdded) -> None:
        self.id = event.note_id
        #: The case's version this note made.
        self.version = event.originator_version
        self.category = event.category
        self.text = event.text
        self.author_worker_id = event.author_worker_id
        self.created_at = event.timestamp


class Case(Aggregate):
    """A client's case, owned by the agency that opened it."""

    owner_agency_id: UUID
    client_id: UUID
    summary: str | None
    needs: tuple[str, ...]
    status: str
    notes: list[Note]
    #: The version and time of the case's last opening, closing or reopening.
    status_changed: tuple[int, datetime]

    @classmethod
    def open(
        cls,
        *,
        owner_agency_id: UUID,
        worker_id: UUID,
        client_id: UUID,
        summary: str,
        needs: list[str] | tuple[str, ...],
        new_id: UUID | None = None,
    ) -> Case:
        check_text(summary, "summary")
        cleaned = tuple(dict.fromkeys(check_need(need, "needs") for need in needs))
        return cls._start(
            new_id or uuid4(),
            CaseOpened,
            owner_agency_id=owner_agency_id,
            opened_by_worker_id=worker_id,
            client_id=client_id,
            summary=summary,
            needs=cleaned,
        )

    def note(self, note_id: UUID) -> Note | None:
        return next((note for note in self.notes if note.id == note_id), None)

    def check_owned_by(self, agency_id: UUID) -> None:
        if agency_id != self.owner_agency_id:
            raise NotPermitted("only the owning agency may change a case")

    def check_open(self, action: str) -> None:
        if self.status != OPEN:
            raise IllegalTransition("case", self.status, action)

    def add_note(
        self, *, worker_id: UUID, category: str, text: str, new_id: UUID | None = None
    ) -> Note:
        self.check_open("add a note")
        check_note_category(category)
        check_text(text, "text")
        self._record(
            CaseNoteAdded,
            client_id=self.client_id,
            note_id=new_id or uuid4(),
            category=category,
            text=text,
            author_worker_id=worker_id,
        )
        return self.notes[-1]

    def close(self, *, worker_id: UUID, reason: str) -> None:
        self.check_open("close")
        check_text(reason, "reason", max_length=2_000)
        self._record(CaseClosed, client_id=self.client_id, reason=reason, worker_id=worker_id)

    def reopen(self, *, worker_id: UUID, reason: str) -> None:
        if self.status != CLOSED:
            raise IllegalTransition("case", self.status, "reopen")
        check_text(reason, "reason", max_length=2_000)
        self._record(CaseReopened, client_id=self.client_id, reason=reason, worker_id=worker_id)

    @when(CaseOpened)
    def _opened(self, event: CaseOpened) -> None:
        self.owner_agency_id = event.owner_agency_id
        self.client_id = event.client_id
        self.summary = event.summary
        self.needs = event.needs
        self.status = OPEN
        self.notes = []
        self.status_changed = (event.originator_version, event.timestamp)

    @when(CaseNoteAdded)
    def _note_added(self, event: CaseNoteAdded) -> None:
        self.notes.append(Note(event))

    @when(CaseClosed)
    def _closed(self, event: CaseClosed) -> None:
        self.status = CLOSED
        self.status_changed = (event.originator_version, event.timestamp)

    @when(CaseReopened)
    def _reopened(self, event: CaseReopened) -> None:
        self.status = OPEN
        self.status_changed = (event.originator_version, event.timestamp)
