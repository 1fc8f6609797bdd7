"""Serialise domain events with msgspec, and upgrade old versions as they are read.

Stored state is the event's JSON without ``originator_id``/``originator_version``
(the store keeps those in their own columns), plus ``class_version`` when above 1.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from casenet.domain.aggregate import DomainEvent

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[str, Any])


class EventMapper(Mapper[UUID]):
    """Converts casenet's msgspec events to the library's stored events and back."""

    def __init__(self) -> None:
        # The library's transcoder is unused: msgspec encodes the structs itself.
        super().__init__(transcoder=JSONTranscoder())

    def event_state(self, event: DomainEvent) -> dict[str, Any]:
        """The JSON-ready state of ``event`` as it is stored (before any encryption)."""
        state: dict[str, Any] = msgspec.to_builtins(event)
        del state["originator_id"], state["originator_version"]
        if event.class_version > 1:
            state["class_version"] = event.class_version
        return state

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        event = cast(DomainEvent, domain_event)
        return StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=get_topic(type(event)),
            state=_ENCODER.encode(self.event_state(event)),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        event_type: type[DomainEvent] = resolve_topic(stored_event.topic)
        state = _DECODER.decode(stored_event.state)
        upcast(event_type, state)
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        return msgspec.convert(state, type=event_type)


def upcast(event_type: type[DomainEvent], state: dict[str, Any]) -> None:
    """Bring a stored state up to ``event_type.class_version``, one version at a time."""
    version = state.pop("class_version", 1)
    while version < event_type.class_version:
        getattr(event_type, f"upcast_v{version}_v{version + 1}")(state)
        version += 1
