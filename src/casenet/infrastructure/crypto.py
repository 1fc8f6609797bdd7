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
import os
import threading
from collections.abc import Collection, Sequence
from contextvars import ContextVar
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


class DataKey:
    """A client's data key, unwrapped, in memory only, for one request (or one save).

    A plain class with slots: one is made for every load that decrypts (a frozen
    dataclass's ``__setattr__`` detour cost a microsecond each time).
    """

    __slots__ = ("cipher", "header", "key_id", "subject_id")

    def __init__(self, subject_id: UUID, key_id: bytes, cipher: AESGCM) -> None:
        self.subject_id = subject_id
        self.key_id = key_id
        self.cipher = cipher
        #: What each of its ciphertexts starts with: the format version and the key id.
        self.header = _FORMAT_BYTE + key_id

    def __repr__(self) -> str:
        return f"DataKey(subject_id={self.subject_id!r})"  # never the key


class KeyRing:
    """Finds, creates and destroys clients' data keys. It keeps none of them.

    Every key is read from the store by the request (or the save) that uses it, and
    forgotten with it: an erasure committed by any process (another server, a
    projection worker, the CLI) is seen by every read that starts after it, with
    nothing to invalidate. The price is a key row read per load that decrypts and per
    save that writes personal fields, which the store reads in the same statement as
    a load's events wherever it knows the client (``CasenetApplication.get_all``; a
    command's save then uses the row its load read), and a batch per page of a list.
    """

    def __init__(self, master_keys: MasterKeys) -> None:
        self.master_keys = master_keys
        self._table: KeyTable | None = None
        #: The key rows the loads of the running request read with their events, by
        #: subject id's int, still wrapped: what a save that follows encrypts with, so
        #: a command's write costs no key read of its own. A context variable: each
        #: request's handler runs in a context of its own, whose values die with it
        #: (and :meth:`settle` forgets them at the end of every save).
        self._loaded: ContextVar[dict[int, DataKeyRow] | None] = ContextVar(
            "casenet_loaded_keys", default=None
        )
        #: The keys a thread created for new clients in the save it is running (their
        #: rows and, by subject id's int, the keys): what that save's later events
        #: use, forgotten when the save ends (:meth:`settle`).
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
        staged = self._staged_keys().get(subject_id.int)
        if staged is not None:  # created by this save for an earlier event of it
            return staged
        loaded = self._loaded.get()
        if loaded is not None and (row := loaded.get(subject_id.int)) is not None:
            return self.key_of(row)  # read with the events this request loaded
        if new_subject and self.stages_new_keys:
            row, cipher = self._new_row(subject_id)
            key = DataKey(subject_id, row.data_key_id, cipher)
            self._staged_rows().append(row)
            self._staged_keys()[subject_id.int] = key
            return key
        stored = None if new_subject else self.table.get(subject_id)
        return self.key_of(stored or self._create(subject_id))

    def offer_for_writing(self, rows: dict[int, DataKeyRow]) -> None:
        """Key rows a load of this request read with its events, for the request's
        save (see :meth:`key_for_writing`); kept wrapped, forgotten at the save's end.
        They replace the rows an earlier load offered: a context that loads and
        never saves (a test's, a CLI's) holds one load's rows at most."""
        self._loaded.set(rows)

    def take_staged(self) -> list[DataKeyRow]:
        """The keys this thread created for new clients, for the recorder to insert in
        the same transaction as the events that use them (then forgotten here)."""
        rows = self._staged_rows()
        self._staged.rows = []
        return rows

    def settle(self, *, written: bool) -> None:
        """After a save (``written`` or not): the keys this thread staged for it are
        forgotten. A key whose save failed was not stored: a retry of the same
        registration (an Idempotency-Key gives the client the same id) stages its key
        again, or its events would be written under a key that no table holds."""
        self._staged.keys = {}
        self._loaded.set(None)
        if not written:
            self._staged.rows = []  # staged for the failed save, and not taken by it

    def _staged_rows(self) -> list[DataKeyRow]:
        rows: list[DataKeyRow] | None = getattr(self._staged, "rows", None)
        if rows is None:
            rows = self._staged.rows = []
        return rows

    def _staged_keys(self) -> dict[int, DataKey]:
        keys: dict[int, DataKey] | None = getattr(self._staged, "keys", None)
        if keys is None:
            keys = self._staged.keys = {}
        return keys

    def key_for_reading(self, subject_id: UUID) -> DataKey | None:
        """The subject's data key, read from the store now; None if the subject was erased.

        A subject with personal data always got a key when it was written, so no key
        at all means the record names a client it was not written for: tampering.
        """
        row = self.table.get(subject_id)
        if row is None:
            raise CiphertextInvalid("personal data names a client that has no data key")
        return self.key_of(row)

    def keys_for_reading(self, subject_ids: Collection[UUID]) -> dict[int, DataKey | None]:
        """:meth:`key_for_reading` for many subjects in one statement, by subject id's
        int; a subject without a key row is left out (reading it is tampering)."""
        return {row.subject_id.int: self.key_of(row) for row in self.table.get_many(subject_ids)}

    def key_of(self, row: DataKeyRow) -> DataKey | None:
        """The data key a row holds, unwrapped; None for an erased client's tombstone."""
        if row.wrapped is None:
            return None
        return DataKey(row.subject_id, row.data_key_id, AESGCM(self.master_keys.unwrap(row)))

    def erase(self, subject_id: UUID) -> None:
        """Destroy the subject's data key for ever (idempotent). Once this returns, no
        process reads the key again: none keeps one past the request that read it."""
        self.table.erase(subject_id)
        self._loaded.set(None)  # not even this request's save may use the key now

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
