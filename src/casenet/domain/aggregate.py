"""The event-sourcing building blocks every casenet aggregate shares.

Events are immutable msgspec structs, so the store serialises them without a
hand-written transcoder and `make schemas` can publish a JSON Schema per event.
Fields that hold a client's personal data are declared where they are defined,
with the `Personal` annotation; the store encrypts exactly those fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self, TypeVar
from uuid import UUID

import msgspec

#: Marks a field of an event as a client's personal data. The value is encrypted
#: with the client's data key at rest, and reads as ``None`` once the client is erased.
PERSONAL = msgspec.Meta(
    description="Personal data of a client: encrypted with the client's key at rest; "
    "null once the client is erased.",
    extra_json_schema={"x-personal": True},
    extra={"personal": True},
)

#: A personal text field. ``None`` means absent, or erased (see ``ClientErased``).
PersonalText = Annotated[str | None, PERSONAL]


def utcnow() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something that happened to an aggregate, named in the past tense.

    ``class_version`` is the event's schema version; when a stored shape changes,
    bump it and add a static ``upcast_vN_vN1(state: dict)`` method, and the store
    upgrades old records as it reads them (the eventsourcing library's convention).
    """

    originator_id: UUID
    originator_version: int
    timestamp: datetime

    class_version: ClassVar[int] = 1
    #: The field naming the client whose data key encrypts this event's personal fields.
    subject_field: ClassVar[str] = "client_id"


E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[Any, Any], None]


def when(*event_types: type[DomainEvent]) -> Callable[[Callable[[Any, E], None]], Handler]:
    """Declare the method that applies events of ``event_types`` to the aggregate's state."""

    def register(method: Callable[[Any, E], None]) -> Handler:
        method.__casenet_applies__ = event_types  # type: ignore[attr-defined]
        return method

    return register


_AGGREGATE_OF_EVENT: dict[type[DomainEvent], type[Aggregate]] = {}


class Aggregate:
    """An event-sourced aggregate: state changes only by applying its own events.

    Commands are methods that check the rules (raising a named error and
    recording nothing when one is broken), then call ``_record`` with an event.
    """

    _handlers: ClassVar[dict[type[DomainEvent], Handler]] = {}

    #: Loaded without its personal fields (None, never decrypted), for a command that
    #: needs only ids and states. A sealed aggregate is never shown (``shown``).
    sealed: bool = False

    id: UUID
    version: int
    created_on: datetime
    modified_on: datetime

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[type[DomainEvent], Handler] = {}
        for attribute in vars(cls).values():
            for event_type in getattr(attribute, "__casenet_applies__", ()):
                handlers[event_type] = attribute
                _AGGREGATE_OF_EVENT[event_type] = cls
        cls._handlers = handlers

    def __init__(self, aggregate_id: UUID) -> None:
        self.id = aggregate_id
        self.version = 0
        self._pending_events: list[DomainEvent] = []

    @classmethod
    def _start(cls, aggregate_id: UUID, event_type: type[E], **fields: Any) -> Self:
        aggregate = cls(aggregate_id)
        aggregate._record(event_type, **fields)
        return aggregate

    def _record(self, event_type: type[E], **fields: Any) -> E:
        # A command may pass ``timestamp`` (the instant it computed other times from).
        fields.setdefault("timestamp", utcnow())
        event = event_type(originator_id=self.id, originator_version=self.version + 1, **fields)
        self.apply(event)
        self._pending_events.append(event)
        return event

    def apply(self, event: DomainEvent) -> None:
        """Apply one event (new or replayed) to this aggregate's state."""
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(f"{type(self).__name__} has no handler for {type(event).__name__}")
        if event.originator_version == 1:
            self.created_on = event.timestamp
        handler(self, event)
        self.version = event.originator_version
        self.modified_on = event.timestamp

    def collect_events(self) -> list[DomainEvent]:
        """Hand the new events to the store (the eventsourcing save protocol)."""
        events, self._pending_events = self._pending_events, []
        return events


A = TypeVar("A", bound=Aggregate)


def shown(aggregate: A) -> A:
    """``aggregate``, for a view; a sealed one (personal fields not loaded) is a bug."""
    if aggregate.sealed:
        raise RuntimeError(f"a sealed {type(aggregate).__name__} cannot be shown")
    return aggregate


def project_aggregate(aggregate: A | None, events: Iterable[DomainEvent]) -> A | None:
    """Rebuild an aggregate from its events (the repository's projector function)."""
    for event in events:
        if aggregate is None:
            aggregate_type = _AGGREGATE_OF_EVENT[type(event)]
            aggregate = aggregate_type(event.originator_id)  # type: ignore[assignment]
        assert aggregate is not None
        aggregate.apply(event)
    return aggregate


def aggregate_type_of(event_type: type[DomainEvent]) -> type[Aggregate]:
    """The aggregate class whose history holds events of ``event_type``."""
    return _AGGREGATE_OF_EVENT[event_type]


def event_types() -> list[type[DomainEvent]]:
    """Every event type of the domain, in a stable order (for schemas and tests)."""
    return sorted(_AGGREGATE_OF_EVENT, key=lambda t: (t.__module__, t.__qualname__))
