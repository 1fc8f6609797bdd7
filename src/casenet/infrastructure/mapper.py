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
from collections.abc import Callable
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
        """The one way from a stored row to its domain event: the state decoded, its
        personal fields decrypted (or, ``personal=False``, left None without looking at
        them: no key is fetched, nothing is decrypted), upcast to the current class
        version, then converted into the event by msgspec (which checks every field's
        type, the plaintexts' included).

        ``keys`` holds the data keys this load has read, by subject: a load reads its
        clients' keys with their events (``CasenetApplication.get_all``), and events
        of one client share one lookup in the key ring.
        """
        event_type = _event_type(topic)
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


#: The shape of a whole stored state (see :func:`state_decoder`).
STATE = dict[str, Any]


@cache
def state_decoder(event_type: type[DomainEvent], shape: Any = STATE) -> Callable[[bytes], Any]:
    """The one way from an event's stored state to its fields as of the event's current
    class version, without decrypting (personal fields stay the ciphertexts they are):
    the JSON decoded, then upcast if an older version stored it. ``shape`` is what the
    caller reads: the whole state (:data:`STATE`, the read models' facts), or a struct
    of the few fields it needs (the audit export: the others are skipped unparsed).

    An event that has had one version only is decoded straight into ``shape`` (no
    ``class_version`` is stored for it). :meth:`EventMapper.decode_row` follows the same
    steps with decryption between them: a ciphertext is bound to its field's name as
    stored, so it is decrypted before an upcast could rename the field.
    """
    if event_type.class_version == 1:
        decode: Callable[[bytes], Any] = msgspec.json.Decoder(shape).decode
        return decode
    whole, current, decode_state = shape == STATE, event_type.class_version, _DECODER.decode

    def upcast_first(state_bytes: bytes) -> Any:
        state = decode_state(state_bytes)
        version = state.pop("class_version", 1)
        if version != current:  # rare: most of a log is in the current version
            state["class_version"] = version
            upcast(event_type, state)
        return state if whole else msgspec.convert(state, shape)

    return upcast_first


def upcast(event_type: type[DomainEvent], state: dict[str, Any]) -> None:
    """Bring a stored state up to ``event_type.class_version``, one version at a time."""
    version = state.pop("class_version", 1)
    while version < event_type.class_version:
        getattr(event_type, f"upcast_v{version}_v{version + 1}")(state)
        version += 1
