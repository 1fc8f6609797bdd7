"""Serialise domain events with msgspec, encrypting personal fields per client.

Stored state is the event's JSON without ``originator_id``/``originator_version``
(the store keeps those in their own columns), plus ``class_version`` when above 1.
Each field annotated ``Personal`` is replaced by a ciphertext under the client's data
key (see ``crypto``); ids, timestamps, statuses and section names stay clear so the
log can be projected and audited without decrypting. Once a client is erased, their
personal fields read as ``None`` and new ones are not stored at all.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from casenet.domain.aggregate import PERSONAL, DomainEvent
from casenet.infrastructure.crypto import (
    Binding,
    DataKey,
    KeyRing,
    binding_prefix,
    decrypt_field,
    seal_each,
    unseal,
)

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[str, Any])


@cache
def personal_fields(event_type: type[DomainEvent]) -> tuple[str, ...]:
    """The fields of ``event_type`` declared ``Personal``, in declaration order."""
    hints = typing.get_type_hints(event_type, include_extras=True)
    names = tuple(
        name
        for name in event_type.__struct_fields__
        if PERSONAL in getattr(hints[name], "__metadata__", ())
    )
    if names and event_type.subject_field not in event_type.__struct_fields__:
        raise TypeError(f"{event_type.__name__} has personal fields but no subject field")
    return names


@cache
def encoded_names(fields: tuple[str, ...]) -> tuple[bytes, ...]:
    """The field names as they end the associated data (see ``crypto.binding_prefix``)."""
    return tuple(name.encode() for name in fields)


class EventMapper(Mapper[UUID]):
    """Converts casenet's msgspec events to the library's stored events and back.

    Without a key ring (``keyring=None``) personal fields are stored in the clear:
    that exists only so the benchmark can measure what encryption costs.
    """

    def __init__(self, keyring: KeyRing | None) -> None:
        # The library's transcoder is unused: msgspec encodes the structs itself.
        super().__init__(transcoder=JSONTranscoder())
        self.keyring = keyring

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        event = cast(DomainEvent, domain_event)
        state: dict[str, Any] = msgspec.to_builtins(event)
        del state["originator_id"], state["originator_version"]
        if event.class_version > 1:
            state["class_version"] = event.class_version
        fields = personal_fields(type(event))
        if fields and self.keyring is not None:
            self._encrypt(event, state, fields)
        return StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=get_topic(type(event)),
            state=_ENCODER.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.decode(stored_event, personal=True)

    def decode(self, stored_event: StoredEvent, *, personal: bool) -> DomainEvent:
        """The domain event; ``personal=False`` leaves its personal fields None without
        looking at them (no key is fetched, nothing is decrypted)."""
        return self.decode_row(
            stored_event.originator_id,
            stored_event.originator_version,
            stored_event.topic,
            stored_event.state,
            personal=personal,
        )

    def decode_row(
        self,
        originator_id: UUID | str,
        originator_version: int,
        topic: str,
        state_bytes: bytes,
        *,
        personal: bool,
        keys: SubjectKeys | None = None,
    ) -> DomainEvent:
        """:meth:`decode` from a row's columns, without a StoredEvent in between.

        ``keys`` holds the data keys this load has looked up, by subject: events of one
        client share one lookup in the key ring.
        """
        # One dict lookup for the topic's type and plan (two functools caches cost 2.3k
        # instructions an event); the plan's checks inline (``_TypedPlan.fits``).
        found = _BY_TOPIC.get(topic)
        if found is None:
            found = _BY_TOPIC[topic] = _by_topic(topic)
        event_type, plan = found
        if (
            plan is not None
            and type(state_bytes) is bytes
            and state_bytes.startswith(b'{"')
            and state_bytes.endswith(plan.end)
        ):
            return self._decode_typed(
                plan, originator_id, originator_version, state_bytes, personal, keys
            )
        return self.decode_via_dict(
            event_type, originator_id, originator_version, state_bytes, personal, keys
        )

    def decode_via_dict(
        self,
        event_type: type[DomainEvent],
        originator_id: UUID | str,
        originator_version: int,
        state_bytes: bytes,
        personal: bool,
        keys: SubjectKeys | None = None,
    ) -> DomainEvent:
        """:meth:`decode_row`'s general path, for any stored form of any version: the
        state as a dict, decrypted and upcast, then converted into the event."""
        state = _DECODER.decode(state_bytes)
        fields = personal_fields(event_type)
        if fields and not personal:
            for name in fields:
                state[name] = None
        elif fields and self.keyring is not None:
            self._decrypt(event_type, originator_id, originator_version, state, fields, keys)
        if "class_version" in state or event_type.class_version > 1:
            upcast(event_type, state)
        state["originator_id"] = originator_id
        state["originator_version"] = originator_version
        return msgspec.convert(state, type=event_type)

    def _decode_typed(
        self,
        plan: _TypedPlan,
        originator_id: UUID | str,
        originator_version: int,
        state_bytes: bytes,
        personal: bool,
        keys: SubjectKeys | None,
    ) -> DomainEvent:
        """:meth:`decode_row` for a state of the current class version: decoded straight
        into the event (no dict, no conversion), then its personal fields, still
        ciphertexts, replaced by their plaintexts before anyone else sees the event."""
        event = plan.decoder.decode(_STUB + state_bytes[1:])
        aggregate_id = originator_id if type(originator_id) is UUID else UUID(str(originator_id))
        _force_setattr(event, "originator_id", aggregate_id)
        _force_setattr(event, "originator_version", originator_version)
        if not plan.fields:
            return event
        if not personal:
            for name, _, _ in plan.fields:
                _force_setattr(event, name, None)
            return event
        if self.keyring is None:
            return event
        # One pass, no list, zip or generator (each costs as much as a field's checks):
        # the key is looked up at the first field that holds a ciphertext, if any.
        key: DataKey | None = None
        prefix = b""
        for name, encoded, decoder in plan.fields:
            sealed = getattr(event, name)
            if sealed is None:
                continue  # absent, or written after the client's erasure
            if not prefix:
                subject_id: UUID = (
                    aggregate_id
                    if plan.subject_field is None
                    else getattr(event, plan.subject_field)
                )
                # _key_of's lookup inline: a frame per event saved.
                if keys is None:
                    key = self._key_of(subject_id, None)
                else:
                    key = keys.get(subject_id.int, _NO_KEY)
                    if key is _NO_KEY:
                        key = self._key_of(subject_id, keys)
                if key is None:  # erased
                    for other, _, _ in plan.fields:
                        _force_setattr(event, other, None)
                    return event
                prefix = binding_prefix(subject_id, aggregate_id, originator_version)
            assert key is not None
            _force_setattr(event, name, decoder.decode(unseal(key, prefix + encoded, sealed)))
        return event

    def _key_of(self, subject_id: UUID, keys: SubjectKeys | None) -> DataKey | None:
        """The subject's data key (None once erased), looked up in the key ring once per
        subject of ``keys`` (keyed by the id's int: hashed in C, a UUID's in Python)."""
        assert self.keyring is not None
        if keys is None:
            return self.keyring.key_for_reading(subject_id)
        number = subject_id.int
        if number not in keys:
            keys[number] = self.keyring.key_for_reading(subject_id)
        return keys[number]

    def _encrypt(self, event: DomainEvent, state: dict[str, Any], fields: tuple[str, ...]) -> None:
        assert self.keyring is not None
        subject_id = getattr(event, event.subject_field)
        registers_subject = event.subject_field == "originator_id" and event.originator_version == 1
        key = self.keyring.key_for_writing(subject_id, new_subject=registers_subject)
        if key is None:  # erased: personal data of an erased client is not kept
            for name in fields:
                state[name] = None
            return
        prefix = binding_prefix(subject_id, event.originator_id, event.originator_version)
        encode = _ENCODER.encode
        plaintexts = [
            (encoded, encode(state[name]))
            for name, encoded in zip(fields, encoded_names(fields), strict=True)
        ]
        for name, ciphertext in zip(fields, seal_each(key, prefix, plaintexts), strict=True):
            state[name] = ciphertext

    def _decrypt(
        self,
        event_type: type[DomainEvent],
        aggregate_id: UUID | str,
        version: int,
        state: dict[str, Any],
        fields: tuple[str, ...],
        keys: SubjectKeys | None,
    ) -> None:
        assert self.keyring is not None
        stored_fields = [(name, state.get(name)) for name in fields]
        if all(stored is None for _, stored in stored_fields):
            return  # nothing stored (absent, or written after the client's erasure)
        if not isinstance(aggregate_id, UUID):
            aggregate_id = UUID(str(aggregate_id))
        subject_id = (
            aggregate_id
            if event_type.subject_field == "originator_id"
            else UUID(str(state[event_type.subject_field]))
        )
        key = self._key_of(subject_id, keys)
        if key is None:
            for name, _ in stored_fields:
                state[name] = None
            return
        prefix = binding_prefix(subject_id, aggregate_id, version)
        decode = msgspec.json.decode
        for name, stored in stored_fields:
            if stored is not None:
                state[name] = decode(unseal(key, prefix + name.encode(), stored))


#: A subject's id (its int) -> its data key, or None once erased: the keys one load
#: has looked up.
SubjectKeys = dict[int, "DataKey | None"]


_force_setattr = msgspec.structs.force_setattr

#: Not in a load's SubjectKeys yet (None there means erased).
_NO_KEY: Any = object()

#: Stands in for the id and version the store keeps in their own columns, so that a
#: stored state decodes straight into its event; both are set right after.
_STUB = b'{"originator_id":"00000000-0000-0000-0000-000000000000","originator_version":0,'


class _TypedPlan:
    """How :meth:`EventMapper.decode_row` decodes a state of ``event_type`` directly."""

    def __init__(self, event_type: type[DomainEvent], hints: dict[str, Any]) -> None:
        self.decoder = msgspec.json.Decoder(event_type)
        #: Each personal field: its name, its name as associated data, and the decoder of
        #: its plaintext (the field's own type, so it is checked as a conversion would).
        names = personal_fields(event_type)
        self.fields = tuple(
            (name, encoded, msgspec.json.Decoder(hints[name]))
            for name, encoded in zip(names, encoded_names(names), strict=True)
        )
        subject = event_type.subject_field
        self.subject_field: str | None = None if subject == "originator_id" else subject
        #: A state of the current class version above 1 ends with it (``to_stored_event``
        #: appends it last); one of version 1 has none, and no upcast applies to it.
        self.suffix = (
            f',"class_version":{event_type.class_version}}}'.encode()
            if event_type.class_version > 1
            else b""
        )
        #: What such a state ends with.
        self.end = self.suffix or b"}"

    def fits(self, state_bytes: bytes) -> bool:
        """Whether ``state_bytes`` is a state this plan decodes as :meth:`decode_row`'s
        general path would: an object as msgspec wrote it, of the current version."""
        return (
            type(state_bytes) is bytes
            and state_bytes.startswith(b'{"')
            and state_bytes.endswith(self.end)
        )


@cache
def _typed_plan(event_type: type[DomainEvent]) -> _TypedPlan | None:
    """The plan for ``event_type``; None (the general path) if a personal field is not
    optional text, whose ciphertext decodes as the field's type, or the subject field
    is not a UUID."""
    hints = typing.get_type_hints(event_type, include_extras=True)
    fields = personal_fields(event_type)
    if any(typing.get_args(hints[name])[:1] != (str | None,) for name in fields):
        return None
    subject = event_type.subject_field
    if fields and subject != "originator_id" and hints[subject] is not UUID:
        return None
    return _TypedPlan(event_type, hints)


#: A topic -> its event type and plan (see :meth:`EventMapper.decode_row`).
_BY_TOPIC: dict[str, tuple[type[DomainEvent], _TypedPlan | None]] = {}


def _by_topic(topic: str) -> tuple[type[DomainEvent], _TypedPlan | None]:
    event_type = _event_type(topic)
    return event_type, _typed_plan(event_type)


@cache
def _event_type(topic: str) -> type[DomainEvent]:
    event_type: type[DomainEvent] = resolve_topic(topic)
    return event_type


def decrypt_stored_field(
    keyring: KeyRing | None,
    binding: Binding,
    stored: str | None,
    keys: SubjectKeys | None = None,
) -> Any:
    """Decrypt a personal field copied from the log (a read model keeps ciphertexts).

    ``keys``: the data keys the caller read for this request (``KeyRing.keys_for_reading``,
    one statement for a page of rows); a subject not in it is looked up now.
    """
    if stored is None:
        return None
    if keyring is None:  # stored in the clear (the encryption benchmark's baseline)
        return stored
    subject = binding.subject_id.int
    if keys is not None and subject in keys:
        key = keys[subject]
    else:
        key = keyring.key_for_reading(binding.subject_id)
    if key is None:
        return None
    return msgspec.json.decode(decrypt_field(key, binding, stored))


def upcast(event_type: type[DomainEvent], state: dict[str, Any]) -> None:
    """Bring a stored state up to ``event_type.class_version``, one version at a time."""
    version = state.pop("class_version", 1)
    while version < event_type.class_version:
        getattr(event_type, f"upcast_v{version}_v{version + 1}")(state)
        version += 1
