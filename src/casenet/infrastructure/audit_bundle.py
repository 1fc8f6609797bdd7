"""The consent audit bundle: JSON Lines, a SHA-256 hash chain, an Ed25519 signature.

A bundle is a directory::

    agencies.jsonl cases.jsonl consents.jsonl disclosures.jsonl referrals.jsonl
    erasures.jsonl manifest.json [report.html]

Every line is ``{"link": HEX, "record": {...}}`` in canonical JSON (sorted keys, no
spaces, UTF-8). The chain runs over every record of every file, in the order of
``FILES`` and then of the lines: ``link = SHA-256(previous link || record bytes)``,
starting from ``SHA-256("casenet-audit-v1")``. The manifest holds each file's record
count and last link, the chain head, the export's scope, time range and store
position, and an Ed25519 signature over the manifest's canonical bytes (without the
signature). Verification needs only the public key, and names the first record that
fails. Records hold ids, times, statuses, sections and purposes: no personal data,
so a bundle made before an erasure still verifies after it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "casenet-audit/1"
FILES = (
    "agencies.jsonl",
    "cases.jsonl",
    "consents.jsonl",
    "disclosures.jsonl",
    "referrals.jsonl",
    "erasures.jsonl",
)
GENESIS = hashlib.sha256(b"casenet-audit-v1").digest()
_CANONICAL = msgspec.json.Encoder(order="sorted")


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no insignificant whitespace, UTF-8."""
    return _CANONICAL.encode(value)


def next_link(previous: bytes, record: bytes) -> bytes:
    return hashlib.sha256(previous + record).digest()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a signing key: the first 16 hex digits of its hash."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:16]


def public_key_text(private_seed: bytes) -> str:
    """The base64 public key to hand to auditors (``casenet audit public-key``)."""
    public = Ed25519PrivateKey.from_private_bytes(private_seed).public_key()
    return base64.b64encode(public.public_bytes_raw()).decode()


def load_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise BundleInvalid("the public key is not a base64 Ed25519 public key") from None


@dataclass
class BundleWriter:
    """Writes records file by file, chaining as it goes, then signs the manifest."""

    out_dir: Path
    signing_seed: bytes = field(repr=False)
    link: bytes = GENESIS
    counts: dict[str, int] = field(default_factory=dict)
    last_links: dict[str, str] = field(default_factory=dict)

    def write_file(self, name: str, records: Iterable[dict[str, Any] | bytes]) -> int:
        """Write one file's records (streamed: never all in memory); a record may be
        given already as its canonical bytes."""
        assert name in FILES
        count = 0
        with (self.out_dir / name).open("wb") as handle:
            for record in records:
                body = record if isinstance(record, bytes) else canonical(record)
                self.link = next_link(self.link, body)
                handle.write(
                    b'{"link":"' + self.link.hex().encode() + b'","record":' + body + b"}\n"
                )
                count += 1
        self.counts[name] = count
        self.last_links[name] = self.link.hex()
        return count

    def sign(self, header: dict[str, Any]) -> dict[str, Any]:
        """Write ``manifest.json``: the header, per-file counts, the chain head, signed."""
        private = Ed25519PrivateKey.from_private_bytes(self.signing_seed)
        manifest = {
            **header,
            "format": FORMAT,
            "files": [
                {"name": n, "records": self.counts.get(n, 0), "last_link": self.last_links.get(n)}
                for n in FILES
            ],
            "chain_head": self.link.hex(),
            "key_id": key_id(private.public_key()),
        }
        manifest["signature"] = base64.b64encode(private.sign(canonical(manifest))).decode()
        (self.out_dir / "manifest.json").write_bytes(canonical(manifest) + b"\n")
        return manifest


class BundleInvalid(Exception):
    """The bundle fails verification; the message names the first place that fails."""


@dataclass(frozen=True)
class Verified:
    """What a successful verification checked."""

    records: int
    files: dict[str, int]
    chain_head: str
    key_id: str
    scope: dict[str, Any]


def read_manifest(bundle: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = msgspec.json.decode((bundle / "manifest.json").read_bytes())
    except FileNotFoundError:
        raise BundleInvalid(f"{bundle}: no manifest.json") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise BundleInvalid("manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise BundleInvalid("manifest.json is not a JSON object")
    return manifest


def verify(bundle: Path, public_key: Ed25519PublicKey) -> Verified:
    """Check the signature, then every record's link, count and order; raise on the first
    failure, naming it."""
    manifest = read_manifest(bundle)
    signature_text = manifest.pop("signature", None)
    if not isinstance(signature_text, str):
        raise BundleInvalid("manifest.json: no signature")
    try:
        signature = base64.b64decode(signature_text, validate=True)
        # Base64's spare bits would let another spelling of the same bytes through.
        if base64.b64encode(signature).decode() != signature_text:
            raise ValueError("not canonical base64")
        public_key.verify(signature, canonical(manifest))
    except (InvalidSignature, binascii.Error, ValueError):
        raise BundleInvalid(
            "manifest.json: the signature does not match (edited, or signed with another key)"
        ) from None
    if manifest.get("format") != FORMAT:
        raise BundleInvalid(f"manifest.json: unknown format {manifest.get('format')!r}")
    declared = {f["name"]: f for f in manifest["files"]}
    link = GENESIS
    counts: dict[str, int] = {}
    for name in FILES:
        entry = declared.get(name)
        if entry is None:
            raise BundleInvalid(f"manifest.json: {name} is not listed")
        count = 0
        listed = entry["records"]
        # The hot loop of verification: no work per record beyond the checks.
        for number, line in _lines(bundle / name):
            if not (line.startswith(_PREFIX) and line.endswith(b"}\n") and line[73:84] == _MIDDLE):
                raise BundleInvalid(f"{name} line {number}: not a bundle line")
            # The record's exact bytes are chained (and the chain is signed), so they
            # need no parsing: bytes that verify are the canonical JSON the signer wrote.
            link = sha256(link + line[84:-2]).digest()
            if line[9:73] != link.hex().encode():
                raise BundleInvalid(
                    f"{name} line {number}: the record or its link was changed, or a record "
                    "before it is missing or out of order"
                )
            count += 1
            if count > listed:
                raise BundleInvalid(
                    f"{name} line {number}: a record was added (manifest lists {listed})"
                )
        if count != entry["records"]:
            raise BundleInvalid(f"{name}: {entry['records'] - count} record(s) missing at the end")
        if count and entry["last_link"] != link.hex():
            raise BundleInvalid(f"{name}: the last link does not match the manifest")
        counts[name] = count
    if link.hex() != manifest["chain_head"]:
        raise BundleInvalid("manifest.json: the chain head does not match the records")
    return Verified(
        records=sum(counts.values()),
        files=counts,
        chain_head=link.hex(),
        key_id=str(manifest["key_id"]),
        scope=dict(manifest.get("scope", {})),
    )


_PREFIX = b'{"link":"'
_MIDDLE = b'","record":'


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise BundleInvalid(f"{path.name}: the file is missing") from None
    with handle:  # lines keep their newline: a missing one is a truncation
        yield from enumerate(handle, start=1)


def read_records(bundle: Path, name: str) -> Iterator[dict[str, Any]]:
    """The records of one file of a (verified) bundle."""
    for _, line in _lines(bundle / name):
        yield msgspec.json.decode(line[84:-2])
