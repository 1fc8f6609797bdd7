"""The consent audit bundle: JSON Lines, a SHA-256 hash chain, an Ed25519 signature.

A bundle is a directory::

    agencies.jsonl cases.jsonl consents.jsonl disclosures.jsonl referrals.jsonl
    erasures.jsonl manifest.json [report.html]

Every line is ``{"link": HEX, "record": {...}}`` in canonical JSON (sorted keys, no
spaces, UTF-8). The chain runs over every record of every file, in the order of
``FILES`` and then of the lines: ``link = SHA-256(previous link || record bytes)``,
starting from ``SHA-256("casenet-audit-v1")``. The manifest holds each file's record
count, last link and SHA-256 of its bytes, the chain head, the export's scope, time
range and store position, and an Ed25519 signature over the manifest's canonical bytes
(without the signature). Verification needs only the public key. A file whose bytes
hash to the signed digest is exactly what the signer wrote, so it is checked at the
speed of one streaming SHA-256; only a file that does not is walked link by link, to
name the first record that fails. Records hold ids, times, statuses, sections and
purposes: no personal data, so a bundle made before an erasure still verifies after it.

Format ``casenet-audit/2`` added the per-file digests; ``casenet-audit/1`` bundles
(without them) still verify, link by link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "casenet-audit/2"
#: The first format, without per-file digests: still verified, by walking every link.
FORMAT_V1 = "casenet-audit/1"
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
#: Lines written per write() and digest update: big enough that the per-line cost is
#: the link alone, small enough to keep memory flat.
_WRITE_BATCH = 4096


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
    digests: dict[str, str] = field(default_factory=dict)

    def write_file(self, name: str, records: Iterable[dict[str, Any] | bytes]) -> int:
        """Write one file's records (streamed: never all in memory); a record may be
        given already as its canonical bytes."""
        assert name in FILES
        count = 0
        link = self.link
        digest = sha256()
        pending: list[bytes] = []
        with (self.out_dir / name).open("wb") as handle:
            for record in records:
                body = record if isinstance(record, bytes) else canonical(record)
                link = sha256(link + body).digest()
                pending.append(b'{"link":"' + link.hex().encode() + b'","record":' + body + b"}\n")
                if len(pending) == _WRITE_BATCH:
                    count += _flush(handle, digest, pending)
            count += _flush(handle, digest, pending)
        self.link = link
        self.counts[name] = count
        self.last_links[name] = link.hex()
        self.digests[name] = digest.hexdigest()
        return count

    def sign(self, header: dict[str, Any]) -> dict[str, Any]:
        """Write ``manifest.json``: the header, per-file counts, the chain head, signed."""
        private = Ed25519PrivateKey.from_private_bytes(self.signing_seed)
        manifest = {
            **header,
            "format": FORMAT,
            "files": [
                {
                    "name": n,
                    "records": self.counts.get(n, 0),
                    "last_link": self.last_links.get(n),
                    "sha256": self.digests.get(n, _EMPTY_DIGEST),
                }
                for n in FILES
            ],
            "chain_head": self.link.hex(),
            "key_id": key_id(private.public_key()),
        }
        manifest["signature"] = base64.b64encode(private.sign(canonical(manifest))).decode()
        (self.out_dir / "manifest.json").write_bytes(canonical(manifest) + b"\n")
        return manifest


def _flush(handle: BinaryIO, digest: Any, lines: list[bytes]) -> int:
    chunk = b"".join(lines)
    handle.write(chunk)
    digest.update(chunk)
    count = len(lines)
    lines.clear()
    return count


_EMPTY_DIGEST = sha256(b"").hexdigest()


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
    format_ = manifest.get("format")
    if format_ not in (FORMAT, FORMAT_V1):
        raise BundleInvalid(f"manifest.json: unknown format {format_!r}")
    declared = {f["name"]: f for f in manifest["files"]}
    link = GENESIS
    counts: dict[str, int] = {}
    for name in FILES:
        entry = declared.get(name)
        if entry is None:
            raise BundleInvalid(f"manifest.json: {name} is not listed")
        digest = entry.get("sha256")
        if format_ == FORMAT and not isinstance(digest, str):
            raise BundleInvalid(f"manifest.json: {name} has no digest")
        if format_ == FORMAT and _file_digest(bundle / name) == digest:
            # Exactly the signed bytes: every link in it is the signer's.
            counts[name] = entry["records"]
            link = bytes.fromhex(entry["last_link"])
            continue
        link, counts[name] = _walk(bundle / name, entry, link)
        if format_ == FORMAT:  # every link holds, yet the bytes differ: cannot be
            raise BundleInvalid(f"{name}: the file's bytes do not match the manifest's digest")
    if link.hex() != manifest["chain_head"]:
        raise BundleInvalid("manifest.json: the chain head does not match the records")
    return Verified(
        records=sum(counts.values()),
        files=counts,
        chain_head=link.hex(),
        key_id=str(manifest["key_id"]),
        scope=dict(manifest.get("scope", {})),
    )


def _walk(path: Path, entry: dict[str, Any], link: bytes) -> tuple[bytes, int]:
    """Check one file line by line from the chain's ``link`` before it; raise naming the
    first line that fails. Returns the file's last link and its record count."""
    name = path.name
    count = 0
    listed = entry["records"]
    # The hot loop of the walk: no work per record beyond the checks.
    for number, line in _lines(path):
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
    if count != listed:
        raise BundleInvalid(f"{name}: {listed - count} record(s) missing at the end")
    if count and entry["last_link"] != link.hex():
        raise BundleInvalid(f"{name}: the last link does not match the manifest")
    return link, count


def _file_digest(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        raise BundleInvalid(f"{path.name}: the file is missing") from None


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
