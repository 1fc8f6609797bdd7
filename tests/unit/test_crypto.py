"""The field cipher on its own: a ciphertext opens only where it was sealed.

For every personal field of every event type, a ciphertext sealed for (client,
aggregate, version, field) fails with ``CiphertextInvalid`` under any other binding,
under another client's key, and with any one byte changed. Data keys wrapped by a master
key open only for their own client and key id, and only under the right master key.
"""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import casenet.domain  # noqa: F401  (registers every event type)
from casenet.domain.aggregate import DomainEvent, event_types
from casenet.domain.client import ClientRegistered
from casenet.infrastructure.crypto import (
    Binding,
    CiphertextInvalid,
    DataKey,
    MasterKeyMismatch,
    MasterKeyMissing,
    MasterKeys,
    data_key_id_of,
    decrypt_field,
    encrypt_field,
)
from casenet.infrastructure.keytable import DataKeyRow
from casenet.infrastructure.mapper import personal_fields

PERSONAL = [(t, name) for t in event_types() for name in personal_fields(t)]
EVERY_PERSONAL_NAME = sorted({name for _, name in PERSONAL})


def data_key(subject_id: UUID) -> DataKey:
    return DataKey(subject_id, uuid4().bytes, AESGCM(AESGCM.generate_key(bit_length=256)))


def opens(key: DataKey, binding: Binding, stored: str) -> bool:
    try:
        decrypt_field(key, binding, stored)
    except CiphertextInvalid:
        return False
    return True


def test_the_domain_declares_personal_fields_for_the_iteration_below() -> None:
    assert {"name", "date_of_birth", "phone", "address"} <= set(personal_fields(ClientRegistered))
    assert len({t for t, _ in PERSONAL}) >= 10
    for event_type, _ in PERSONAL:
        assert event_type.subject_field in event_type.__struct_fields__


@pytest.mark.parametrize(
    ("event_type", "field"), PERSONAL, ids=[f"{t.__name__}.{f}" for t, f in PERSONAL]
)
def test_a_ciphertext_opens_only_under_its_own_binding_and_key(
    event_type: type[DomainEvent], field: str
) -> None:
    client = uuid4()
    aggregate = client if event_type.subject_field == "originator_id" else uuid4()
    key = data_key(client)
    binding = Binding(client, aggregate, 3, field)
    plaintext = f'"{event_type.__name__}.{field} of {client}"'.encode()
    stored = encrypt_field(key, binding, plaintext)

    assert decrypt_field(key, binding, stored) == plaintext
    assert data_key_id_of(stored) == key.key_id
    assert plaintext not in base64.b64decode(stored)

    other_client = uuid4()
    elsewhere = {
        **{f"field {name}": replace(binding, field=name)
           for name in [*EVERY_PERSONAL_NAME, "client_id", "note_id"] if name != field},
        "another aggregate": replace(binding, aggregate_id=uuid4()),
        "the previous version": replace(binding, version=2),
        "the next version": replace(binding, version=4),
        "another client (same key)": replace(binding, subject_id=other_client),
        "another client's aggregate": replace(
            binding, subject_id=other_client, aggregate_id=other_client
        ),
    }
    opened = [where for where, other in elsewhere.items() if opens(key, other, stored)]
    assert opened == []
    # Another client's key: refused by its id, and by the cipher when the id is forged.
    assert not opens(data_key(other_client), replace(binding, subject_id=other_client), stored)
    forged = DataKey(client, key.key_id, AESGCM(AESGCM.generate_key(bit_length=256)))
    assert not opens(forged, binding, stored)


def test_changing_any_one_byte_of_a_ciphertext_is_refused() -> None:
    key = data_key(uuid4())
    binding = Binding(key.subject_id, uuid4(), 1, "text")
    blob = base64.b64decode(encrypt_field(key, binding, b'"a note about the client"'))
    changed = []
    for index in range(len(blob)):
        for flip in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[index] ^= flip
            if opens(key, binding, base64.b64encode(bytes(tampered)).decode()):
                changed.append((index, flip))
    assert changed == []
    for broken in (blob[:-1], blob[:20], blob + b"\0", b""):
        assert not opens(key, binding, base64.b64encode(broken).decode())
    assert not opens(key, binding, "not base64!")


def test_the_same_value_sealed_twice_gives_two_ciphertexts() -> None:
    key = data_key(uuid4())
    binding = Binding(key.subject_id, uuid4(), 1, "name")
    first, second = (encrypt_field(key, binding, b'"Amina"') for _ in range(2))
    assert first != second
    assert decrypt_field(key, binding, first) == decrypt_field(key, binding, second)


# --- data keys wrapped by master keys ----------------------------------------------------


def wrapped_row(master: MasterKeys, subject_id: UUID, data_key_id: bytes) -> DataKeyRow:
    master_key_id, wrapped = master.wrap(subject_id, data_key_id, b"k" * 32)
    return DataKeyRow(subject_id, data_key_id, master_key_id, wrapped)


def test_a_data_key_unwraps_only_for_its_client_and_id_under_its_master_key() -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    master = MasterKeys((("k1", k1), ("k2", k2)))
    row = wrapped_row(master, uuid4(), uuid4().bytes)
    assert row.master_key_id == "k2"  # the newest wraps
    assert master.unwrap(row) == b"k" * 32
    assert MasterKeys((("k2", k2),)).unwrap(row) == b"k" * 32

    for moved in (replace(row, subject_id=uuid4()), replace(row, data_key_id=uuid4().bytes)):
        with pytest.raises(MasterKeyMismatch):
            master.unwrap(moved)
    assert row.wrapped is not None
    tampered = bytearray(row.wrapped)
    tampered[-1] ^= 1
    with pytest.raises(MasterKeyMismatch):
        master.unwrap(replace(row, wrapped=bytes(tampered)))
    with pytest.raises(MasterKeyMismatch):
        MasterKeys((("k2", os.urandom(32)),)).unwrap(row)
    with pytest.raises(MasterKeyMissing):
        MasterKeys((("k1", k1),)).unwrap(row)
