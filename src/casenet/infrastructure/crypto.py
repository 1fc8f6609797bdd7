"""Field-level encryption with one data key per client, wrapped by master keys.

Ciphertext of a personal field (then base64 in the stored JSON)::

    version (1 byte, 0x01) | data key id (16 bytes) | nonce (12 bytes) | AES-256-GCM output

The associated data binds it to the client, the aggregate, the event's version and the
field, so a ciphertext moved to another field, event or client fails to authenticate.
Data keys are stored wrapped (AES-256-GCM under a master key, bound to the client and
the data key id) in the store's own ``casenet_data_keys`` table. Erasing a client
deletes its wrapped key and leaves a tombstone, so no later write can bring a key back.
"""

from __future__ import annotations

import binascii
import dataclasses
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from casenet.infrastructure.keytable import DataKeyRow, KeyTable

FORMAT_VERSION = 1
_FORMAT_BYTE = bytes((FORMAT_VERSION,))
_NONCE = 12
_KEY_ID = 16
_HEADER = 1 + _KEY_ID + _NONCE


class KeyManagementError(Exception):
    """Base of key-management failures: one readable line, no key material."""


class MasterKeyMissing(KeyManagementError):
    """Data keys in the store are wrapped by a master key that is not configured."""


class MasterKeyMismatch(KeyManagementError):
    """A configured master key does not unwrap the data keys stored under its id."""


class CiphertextInvalid(KeyManagementError):
    """A ciphertext failed to authenticate: tampered, moved, or under another key."""


class SubjectErased(KeyManagementError):
    """The client's data key was destroyed; their personal data is gone for ever."""


@dataclass(frozen=True)
class Binding:
    """What a ciphertext is bound to (its associated data)."""

    subject_id: UUID
    aggregate_id: UUID
    version: int
    field: str

    def associated_data(self) -> bytes:
        return binding_prefix(self.subject_id, self.aggregate_id, self.version) + (
            self.field.encode()
        )


def binding_prefix(subject_id: UUID, aggregate_id: UUID, version: int) -> bytes:
    """The associated data of every field of one event, but the field's name: an
    event's fields are sealed with ``prefix + name`` (see :class:`Binding`)."""
    # ``.int.to_bytes`` is what ``UUID.bytes`` returns, without its Python frame; one
    # format, not a join of a tuple (5.7k -> 3.8k instructions, paid once per event).
    return b"casenet-field-v1|%b|%b|%d|" % (
        subject_id.int.to_bytes(16, "big"),
        aggregate_id.int.to_bytes(16, "big"),
        version,
    )


class MasterKeys:
    """The configured key-encryption keys; the last one wraps every new data key."""

    def __init__(self, keys: tuple[tuple[str, bytes], ...]) -> None:
        if not keys:
            raise ValueError("at least one master key is needed")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}
        self.newest_id = keys[-1][0]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def wrap(self, subject_id: UUID, data_key_id: bytes, data_key: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        sealed = self._keys[self.newest_id].encrypt(
            nonce, data_key, _wrap_binding(subject_id, data_key_id, self.newest_id)
        )
        return self.newest_id, nonce + sealed

    def unwrap(self, row: DataKeyRow) -> bytes:
        assert row.wrapped is not None
        cipher = self._keys.get(row.master_key_id)
        if cipher is None:
            raise MasterKeyMissing(
                f"data keys are wrapped by master key {row.master_key_id!r}, "
                "which CASENET_MASTER_KEYS does not configure"
            )
        try:
            return cipher.decrypt(
                row.wrapped[:_NONCE],
                row.wrapped[_NONCE:],
                _wrap_binding(row.subject_id, row.data_key_id, row.master_key_id),
            )
        except InvalidTag:
            raise MasterKeyMismatch(
                f"master key {row.master_key_id!r} does not unwrap the data keys stored "
                "under its id: wrong key in CASENET_MASTER_KEYS?"
            ) from None


def _wrap_binding(subject_id: UUID, data_key_id: bytes, master_key_id: str) -> bytes:
    return b"|".join((b"casenet-dek-v1", subject_id.bytes, data_key_id, master_key_id.encode()))


@dataclass(frozen=True)
class DataKey:
    """A client's data key, unwrapped, in memory only."""

    subject_id: UUID
    key_id: bytes
    cipher: AESGCM
    #: What each of its ciphertexts starts with: the format version and the key id.
    header: bytes = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", _FORMAT_BYTE + self.key_id)


class KeyRing:
    """Finds, creates and destroys clients' data keys; caches them with a bound.

    The cache holds at most ``cache_size`` keys for at most ``cache_seconds``, so an
    erasure made by another process stops this one decrypting within that time; an
    erasure made by this process evicts at once. A key is looked up for every event
    written or read, so a hit takes no lock (one dict lookup is atomic) and does not
    reorder the cache: entries expire by age anyway, and past ``cache_size`` the oldest
    inserted goes first.
    """

    def __init__(
        self,
        master_keys: MasterKeys,
        *,
        cache_size: int = 10_000,
        cache_seconds: float = 2.0,
    ) -> None:
        self.master_keys = master_keys
        self.cache_size = cache_size
        self.cache_seconds = cache_seconds
        self._table: KeyTable | None = None
        #: Keyed by the subject id's int: hashed and compared in C (a UUID's hash and
        #: equality are Python code, 1.2k instructions a lookup).
        self._cache: dict[int, tuple[float, DataKey | None]] = {}
        self._lock = threading.Lock()  # taken to change the cache, not to read it
        self._staged = threading.local()
        #: Set when the store's recorder writes new keys in the events' own transaction
        #: (see :meth:`take_staged`): a new client then costs no commit of its own.
        self.stages_new_keys = False

    def attach(self, table: KeyTable) -> None:
        """Use ``table`` (created with the store's tables) and check the master keys."""
        self._table = table
        self.check_master_keys()

    @property
    def table(self) -> KeyTable:
        if self._table is None:
            raise RuntimeError("key ring used before the store was attached")
        return self._table

    def check_master_keys(self) -> None:
        """Fail at start-up, not at the first read, when a master key is missing or wrong."""
        for master_key_id in self.table.master_key_ids():
            sample = self.table.sample_for_master(master_key_id)
            if sample is not None:
                self.master_keys.unwrap(sample)

    def key_for_writing(self, subject_id: UUID, *, new_subject: bool = False) -> DataKey | None:
        """The subject's data key, created on first use; None once erased.

        ``new_subject``: the event registers the subject, so its key is created
        straight away (the insert still yields to a key or tombstone already there).
        """
        cached = self._cached(subject_id)
        if cached is not None:
            return cached[1]
        if new_subject and self.stages_new_keys:
            row, data_key = self._new_row(subject_id)
            self._staged_rows().append(row)
            self._unsettled().append(subject_id)
            return self._remember_key(subject_id, DataKey(subject_id, row.data_key_id, data_key))
        stored = None if new_subject else self.table.get(subject_id)
        return self._remember(subject_id, stored or self._create(subject_id))

    def take_staged(self) -> list[DataKeyRow]:
        """The keys this thread created for new clients, for the recorder to insert in
        the same transaction as the events that use them (then forgotten here)."""
        rows = self._staged_rows()
        self._staged.rows = []
        return rows

    def settle(self, *, written: bool) -> None:
        """After a save: the keys this thread staged for it went into the store with its
        events, or (``written=False``) did not. Keys that were not stored leave the cache
        too: a retry of the same registration (an Idempotency-Key gives the client the
        same id) must stage its key again, or its events would be written under a key
        that no table holds, unreadable for ever.
        """
        unsettled: list[UUID] | None = getattr(self._staged, "unsettled", None)
        if not unsettled:
            return
        self._staged.unsettled = []
        if written:
            return
        self._staged.rows = []  # staged for the failed save, and not taken by it
        with self._lock:
            for subject_id in unsettled:
                self._cache.pop(subject_id.int, None)

    def _staged_rows(self) -> list[DataKeyRow]:
        rows: list[DataKeyRow] | None = getattr(self._staged, "rows", None)
        if rows is None:
            rows = self._staged.rows = []
        return rows

    def _unsettled(self) -> list[UUID]:
        subjects: list[UUID] | None = getattr(self._staged, "unsettled", None)
        if subjects is None:
            subjects = self._staged.unsettled = []
        return subjects

    def key_for_reading(self, subject_id: UUID) -> DataKey | None:
        """The subject's data key; None if the subject was erased.

        A subject with personal data always got a key when it was written, so no key
        at all means the record names a client it was not written for: tampering.
        """
        cached = self._cached(subject_id)
        if cached is not None:
            return cached[1]
        row = self.table.get(subject_id)
        if row is None:
            raise CiphertextInvalid("personal data names a client that has no data key")
        return self._remember(subject_id, row)

    def erase(self, subject_id: UUID) -> None:
        """Destroy the subject's data key for ever (idempotent)."""
        self.table.erase(subject_id)
        self._remember_key(subject_id, None)

    def rotate(self) -> int:
        """Re-wrap every data key under the newest master key; returns how many moved."""
        moved = 0
        for row in self.table.rows_not_wrapped_by(self.master_keys.newest_id):
            data_key = self.master_keys.unwrap(row)
            master_key_id, wrapped = self.master_keys.wrap(
                row.subject_id, row.data_key_id, data_key
            )
            if self.table.rewrap(row, master_key_id, wrapped):
                moved += 1
        if moved:  # the old wrappings leave the WAL too
            self.table.truncate_wal()
        return moved

    def _new_row(self, subject_id: UUID) -> tuple[DataKeyRow, AESGCM]:
        # The key's id and the 256-bit key from one call of the system's CSPRNG.
        material = os.urandom(_KEY_ID + 32)
        data_key_id, data_key = material[:_KEY_ID], material[_KEY_ID:]
        master_key_id, wrapped = self.master_keys.wrap(subject_id, data_key_id, data_key)
        return DataKeyRow(subject_id, data_key_id, master_key_id, wrapped), AESGCM(data_key)

    def _create(self, subject_id: UUID) -> DataKeyRow:
        # Insert-or-get: a concurrent writer may have created it first, and a tombstone
        # (erased client) is never replaced.
        return self.table.insert_or_get(self._new_row(subject_id)[0])

    def _cached(self, subject_id: UUID) -> tuple[float, DataKey | None] | None:
        entry = self._cache.get(subject_id.int)
        if entry is None or time.monotonic() - entry[0] > self.cache_seconds:
            return None  # an expired entry is replaced when the key is fetched again
        return entry

    def _remember(self, subject_id: UUID, row: DataKeyRow | None) -> DataKey | None:
        key = None
        if row is not None and row.wrapped is not None:
            key = DataKey(subject_id, row.data_key_id, AESGCM(self.master_keys.unwrap(row)))
        return self._remember_key(subject_id, key)

    def _remember_key(self, subject_id: UUID, key: DataKey | None) -> DataKey | None:
        with self._lock:
            self._cache.pop(subject_id.int, None)  # to the end of the order: the newest
            self._cache[subject_id.int] = (time.monotonic(), key)
            while len(self._cache) > self.cache_size:
                del self._cache[next(iter(self._cache))]
        return key


def encrypt_field(key: DataKey, binding: Binding, plaintext: bytes) -> str:
    """Encrypt one field's JSON bytes; returns the base64 text stored in the event."""
    return seal(key, binding.associated_data(), plaintext)


def seal(key: DataKey, associated_data: bytes, plaintext: bytes) -> str:
    """:func:`encrypt_field` with the associated data already built (an event's fields
    share all of it but the field's name: see :func:`binding_prefix`)."""
    nonce = os.urandom(_NONCE)
    blob = key.header + nonce + key.cipher.encrypt(nonce, plaintext, associated_data)
    return binascii.b2a_base64(blob, newline=False).decode("ascii")


def seal_each(key: DataKey, prefix: bytes, fields: Sequence[tuple[bytes, bytes]]) -> list[str]:
    """:func:`seal` for each ``(name, plaintext)`` of one event, with the associated
    data ``prefix + name`` (see :func:`binding_prefix`): each field gets its own random
    nonce, all of them drawn from the system's CSPRNG in one call."""
    nonces = os.urandom(_NONCE * len(fields))
    header, encrypt = key.header, key.cipher.encrypt
    sealed = []
    for index, (name, plaintext) in enumerate(fields):
        nonce = nonces[index * _NONCE : (index + 1) * _NONCE]
        blob = header + nonce + encrypt(nonce, plaintext, prefix + name)
        sealed.append(binascii.b2a_base64(blob, newline=False).decode("ascii"))
    return sealed


def data_key_id_of(stored: str) -> bytes:
    """The data key id a stored ciphertext names (without decrypting it)."""
    blob = _decode(stored)
    return blob[1 : 1 + _KEY_ID]


def decrypt_field(key: DataKey, binding: Binding, stored: str) -> bytes:
    """Decrypt one field; :class:`CiphertextInvalid` when it does not authenticate."""
    return unseal(key, binding.associated_data(), stored)


def unseal(key: DataKey, associated_data: bytes, stored: str) -> bytes:
    """:func:`decrypt_field` with the associated data already built."""
    blob = _decode(stored)
    if blob[1 : 1 + _KEY_ID] != key.key_id:
        raise CiphertextInvalid("the ciphertext names another data key")
    try:
        return key.cipher.decrypt(blob[1 + _KEY_ID : _HEADER], blob[_HEADER:], associated_data)
    except InvalidTag:
        raise CiphertextInvalid("a personal field failed to authenticate") from None


def _decode(stored: str) -> bytes:
    try:
        # What base64.b64decode(validate=True) checks, in C: that function checks it
        # with a regular expression first (measured: 5,300 -> 1,300 instructions).
        blob = binascii.a2b_base64(stored, strict_mode=True)
    except ValueError:
        raise CiphertextInvalid("a personal field is not a ciphertext") from None
    if len(blob) < _HEADER + 16 or blob[0] != FORMAT_VERSION:
        raise CiphertextInvalid("a personal field is not a ciphertext of a known format")
    return blob
