"""Durable idempotency records: a retried create returns its first response.

A record is reserved before the command runs (so two concurrent retries cannot both
write), then completed with the response. Responses hold personal data or a worker's
token, so they are stored encrypted: under the client's data key when the response
is about a client (an erasure shreds it with everything else), otherwise under a key
derived from the newest master key. The request is remembered by a keyed hash only.
Records older than a day are purged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from casenet.infrastructure.crypto import Binding, KeyRing, decrypt_field, encrypt_field
from casenet.infrastructure.sql import Database

TABLE = "casenet_idempotency"
RETENTION = timedelta(days=1)
#: How long a reservation may go unanswered before a retry takes it over.
LEASE = timedelta(seconds=2)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]


class KeyReused(Exception):
    """The same Idempotency-Key with another request, or while the first still runs."""


class ResponseGone(Exception):
    """The first response held personal data of a client erased since."""


class IdempotencyRecords:
    """Reserve, complete, replay and forget idempotent requests."""

    def __init__(self, database: Database, keyring: KeyRing | None, server_key: bytes) -> None:
        self.db = database
        self.keyring = keyring
        derived = HKDF(
            algorithm=SHA256(), length=64, salt=None, info=b"casenet-idempotency-v1"
        ).derive(server_key)
        self._mac_key = derived[:32]
        self._cipher = AESGCM(derived[32:])
        self._purged_at = float("-inf")

    def create_table(self) -> None:
        self.db.run(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (scope TEXT NOT NULL, key TEXT NOT NULL, "
            "request_mac TEXT NOT NULL, done INTEGER NOT NULL, status INTEGER, "
            "subject_id TEXT, body TEXT, headers TEXT, created_at TEXT NOT NULL, "
            "PRIMARY KEY (scope, key))",
            commit=True,
        )
        self.db.run(
            f"CREATE INDEX IF NOT EXISTS {TABLE}_created ON {TABLE} (created_at)", commit=True
        )

    def request_mac(self, request: bytes) -> str:
        return hmac.new(self._mac_key, request, hashlib.sha256).hexdigest()

    def reserve(self, scope: str, key: str, request: bytes) -> StoredResponse | None:
        """None: go ahead (the key is now reserved). A response: replay it."""
        if time.monotonic() - self._purged_at > 60:
            self._purge()
            self._purged_at = time.monotonic()
        mac = self.request_mac(request)
        now = datetime.now(UTC).isoformat()
        rows = self.db.run(
            f"INSERT INTO {TABLE} (scope, key, request_mac, done, created_at) "
            "VALUES (%s, %s, %s, 0, %s) ON CONFLICT (scope, key) DO NOTHING RETURNING done",
            (scope, key, mac, now),
            commit=True,
        )
        if rows:
            return None
        existing = self.db.run(
            f"SELECT * FROM {TABLE} WHERE scope = %s AND key = %s", (scope, key), commit=False
        )
        if not existing:  # purged between the two statements: try once more
            return self.reserve(scope, key, request)
        row = existing[0]
        if not hmac.compare_digest(str(row["request_mac"]), mac):
            raise KeyReused("this Idempotency-Key was used with another request")
        if not row["done"]:
            self._take_over(scope, key, str(row["created_at"]))
            return None
        return self._replay(scope, key, row)

    def _take_over(self, scope: str, key: str, reserved_at: str) -> None:
        """A reservation older than the lease belongs to an attempt that died (a crash
        between its write and its answer): this retry takes it over. That is safe even
        if the first attempt still runs, because creates get their ids from the key: the
        later of two identical writes conflicts instead of writing twice."""
        age = datetime.now(UTC) - datetime.fromisoformat(reserved_at)
        if age < LEASE:
            raise KeyReused("a request with this Idempotency-Key is still running; retry soon")
        taken = self.db.run(
            f"UPDATE {TABLE} SET created_at = %s WHERE scope = %s AND key = %s AND done = 0 "
            "AND created_at = %s RETURNING scope",
            (datetime.now(UTC).isoformat(), scope, key, reserved_at),
            commit=True,
        )
        if not taken:
            raise KeyReused("a request with this Idempotency-Key is still running; retry soon")

    def complete(
        self, scope: str, key: str, response: StoredResponse, subject_id: UUID | None
    ) -> None:
        sealed = self._seal(scope, key, response.body, subject_id)
        self.db.run(
            f"UPDATE {TABLE} SET done = 1, status = %s, subject_id = %s, body = %s, headers = %s "
            "WHERE scope = %s AND key = %s",
            (
                response.status,
                None if subject_id is None else str(subject_id),
                sealed,
                _encode_headers(response.headers),
                scope,
                key,
            ),
            commit=True,
        )

    def release(self, scope: str, key: str) -> None:
        """The command failed: forget the reservation so a corrected retry can run."""
        self.db.run(
            f"DELETE FROM {TABLE} WHERE scope = %s AND key = %s AND done = 0",
            (scope, key),
            commit=True,
        )

    def _seal(self, scope: str, key: str, body: bytes, subject_id: UUID | None) -> str:
        if subject_id is not None and self.keyring is not None:
            data_key = self.keyring.key_for_writing(subject_id)
            if data_key is None:
                return ""
            return encrypt_field(data_key, _binding(subject_id, scope, key), body)
        nonce = os.urandom(12)
        sealed = self._cipher.encrypt(nonce, body, f"{scope}|{key}".encode())
        return base64.b64encode(nonce + sealed).decode()

    def _replay(self, scope: str, key: str, row: Any) -> StoredResponse:
        subject = row["subject_id"]
        if subject is not None and self.keyring is not None:
            subject_id = UUID(str(subject))
            data_key = self.keyring.key_for_reading(subject_id)
            if data_key is None or not row["body"]:
                raise ResponseGone("the first response held personal data of an erased client")
            body = decrypt_field(data_key, _binding(subject_id, scope, key), str(row["body"]))
        else:
            raw = base64.b64decode(str(row["body"]))
            try:
                body = self._cipher.decrypt(raw[:12], raw[12:], f"{scope}|{key}".encode())
            except InvalidTag:  # sealed under a master key rotated out since
                raise ResponseGone("the first response can no longer be read") from None
        return StoredResponse(int(row["status"]), body, _decode_headers(str(row["headers"])))

    def _purge(self) -> None:
        cutoff = (datetime.now(UTC) - RETENTION).isoformat()
        self.db.run(f"DELETE FROM {TABLE} WHERE created_at < %s", (cutoff,), commit=True)


def _binding(subject_id: UUID, scope: str, key: str) -> Binding:
    # The aggregate slot carries a digest of the record's identity: a sealed response
    # cannot be moved to another scope or key.
    digest = hashlib.sha256(f"{scope}|{key}".encode()).digest()[:16]
    return Binding(subject_id, UUID(bytes=digest), 0, "idempotent-response")


def _encode_headers(headers: dict[str, str]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in sorted(headers.items()))


def _decode_headers(text: str) -> dict[str, str]:
    pairs = (line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return dict(pairs)
