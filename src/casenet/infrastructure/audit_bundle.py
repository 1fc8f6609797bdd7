"""The consent audit bundle: JSON Lines, a SHA-256 hash chain, an Ed25519 signature.

A bundle is a directory::

    agencies.jsonl cases.jsonl consents.jsonl disclosures.jsonl referrals.jsonl
    erasures.jsonl manifest.json [report.html]

Format ``casenet-audit/3`` (what casenet writes). Every line is
``{"digest": HEX, "record": {...}}``: the record in canonical JSON (sorted keys, no
spaces, UTF-8) beside the first 128 bits of its SHA-256. A file's lines come in chunks
(the export makes a chunk of the records of each page of 256 log positions); the chain
has a link per chunk, ``link = SHA-256(previous link || the chunk's bytes)``, from
``SHA-256("casenet-audit-v3")`` over every file in the order of ``FILES``. The manifest
lists each file's record count and its chunks as ``[records, bytes, link]``, the chain
head, the export's scope, time range and store position, and an Ed25519 signature over
its canonical bytes (without the signature). Verification needs only the public key
and costs one streaming SHA-256 over the files: each chunk's bytes must give the
signed link. Only a file that fails is walked line by line to name where: the line
that is not a bundle line or whose record does not match its digest (any changed
byte), the line out of order (positions rise within a file: a swap or a copy), or the
lines of the first chunk whose link fails (a record dropped, added, or replaced along
with its digest), or the end of the file. No line's bytes depend on the lines before
it, so the export writes lines rendered once, when each record was projected, without
a hash per record. Records hold ids, times, statuses, sections and purposes: no
personal data, so a bundle made before an erasure still verifies after it.

This is the only format: a manifest of any other is refused in one line. (Formats
``/1`` and ``/2``, a link per record, never left the tests; their code is gone.)

Long because writing and verifying are the two sides of the format's one set of rules
(the canonical line, its digest, the chain, the manifest), kept side by side so that
they cannot drift; it is a few lines over the 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from queue import Queue
from typing import Any, BinaryIO

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "casenet-audit/3"
FILES = (
    "agencies.jsonl",
    "cases.jsonl",
    "consents.jsonl",
    "disclosures.jsonl",
    "referrals.jsonl",
    "erasures.jsonl",
)
#: Where the chain starts.
GENESIS = hashlib.sha256(b"casenet-audit-v3").digest()
_CANONICAL = msgspec.json.Encoder(order="sorted")


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no insignificant whitespace, UTF-8."""
    return _CANONICAL.encode(value)


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


#: Chunks read ahead of the thread that hashes and writes them (at most ~9 MB).
_IN_FLIGHT = 64
_LINE_PREFIX = b'{"digest":"'
_LINE_MIDDLE = b'","record":'
#: Where a line's digest and record start.
_DIGEST_AT, _BODY_AT = len(_LINE_PREFIX), len(_LINE_PREFIX) + 32 + len(_LINE_MIDDLE)


def record_digest(body: bytes) -> bytes:
    """A record's digest in its bundle line: the first 128 bits of its SHA-256, in hex.

    It locates a changed record; what proves the bytes is the chain, whose links are
    full SHA-256 over every byte of every line. So it is short: every byte of a line is
    read, hashed and written by each export and each verification."""
    return sha256(body).hexdigest()[:32].encode()


def record_line(body: bytes) -> bytes:
    """A bundle line: the record's canonical bytes beside their digest.

    The digest depends on the record alone, not on what came before it, so it is the
    same in every bundle the record is in and is computed once, when the record is
    projected (see ``projections.audit``), not at each export."""
    return _LINE_PREFIX + record_digest(body) + _LINE_MIDDLE + body + b"}\n"


@dataclass
class BundleWriter:
    """Writes a ``casenet-audit/3`` bundle: files of lines given in chunks, a link of
    the chain per chunk, then the signed manifest listing every chunk.

    ``link = SHA-256(previous link || the chunk's bytes)`` from ``GENESIS``, over
    every file in the order of ``FILES``. Writing costs one SHA-256 pass over the
    bytes and no work per record: lines arrive ready (``record_line``) and joined."""

    out_dir: Path
    signing_seed: bytes = field(repr=False)
    link: bytes = GENESIS
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write_files(self, chunks: Iterable[tuple[str, int, bytes]]) -> None:
        """Write every file from (file name, record count, lines) chunks given in the
        order of ``FILES`` (a file with none is written empty).

        A thread of its own hashes and writes while the caller reads the next chunks
        (from the database: both release the GIL), at most ``_IN_FLIGHT`` ahead."""
        assert not self.files, "a writer writes one bundle"
        queue: Queue[tuple[str, int, bytes] | None] = Queue(maxsize=_IN_FLIGHT)
        with ThreadPoolExecutor(1) as pool:
            written = pool.submit(self._write_from, queue)
            try:
                for item in chunks:
                    if item[1]:
                        queue.put(item)
            finally:
                queue.put(None)
            written.result()

    def _write_from(self, queue: Queue[tuple[str, int, bytes] | None]) -> None:
        """Chain and write the chunks taken off ``queue`` up to None; a failure is
        raised once it is drained, so that the caller never blocks on a full queue."""
        failure: Exception | None = None
        handle: BinaryIO | None = None
        try:
            while (item := queue.get()) is not None:
                if failure is None:
                    try:
                        handle = self._chain(item, handle)
                    except (OSError, ValueError) as error:
                        failure = error
        finally:
            if handle is not None:
                handle.close()
        if failure is not None:
            raise failure
        for name in FILES[len(self.files) :]:  # the files after the last chunk's: empty
            self._open(name).close()

    def _chain(self, item: tuple[str, int, bytes], handle: BinaryIO | None) -> BinaryIO:
        """Chain one chunk and write it to its file (``handle``, if it is that file's)."""
        name, records, data = item
        if handle is None or name != Path(handle.name).name:
            if handle is not None:
                handle.close()
            handle = self._open(name)
        digest = sha256(self.link)
        digest.update(data)
        self.link = digest.digest()
        handle.write(data)
        entry = self.files[name]
        entry["records"] += records
        entry["chunks"].append([records, len(data), self.link.hex()])
        return handle

    def _open(self, name: str) -> BinaryIO:
        """Open ``name``'s file, first creating the files before it not created yet
        (empty: they have no chunks)."""
        for next_name in FILES[len(self.files) :]:
            self.files[next_name] = {"name": next_name, "records": 0, "chunks": []}
            handle = (self.out_dir / next_name).open("wb")
            if next_name == name:
                return handle
            handle.close()
        raise ValueError(f"chunks of {name} out of the order of the files")

    def sign(self, header: dict[str, Any]) -> dict[str, Any]:
        """Write ``manifest.json``: the header, every file's chunks, the chain head, signed."""
        private = Ed25519PrivateKey.from_private_bytes(self.signing_seed)
        manifest = {
            **header,
            "format": FORMAT,
            "files": [self.files.get(n, {"name": n, "records": 0, "chunks": []}) for n in FILES],
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
    """Check the signature, then every chunk's link, count and order; raise on the first
    failure, naming it."""
    manifest = read_manifest(bundle)
    _check_signature(manifest, public_key)
    format_ = manifest.get("format")
    if format_ != FORMAT:
        raise BundleInvalid(
            f"manifest.json: format {format_!r} is not {FORMAT!r}, the only one casenet verifies"
        )
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise BundleInvalid("manifest.json: no list of files")
    link, counts = _verify_chunks(bundle, {f.get("name"): f for f in files})
    if link.hex() != manifest["chain_head"]:
        raise BundleInvalid("manifest.json: the chain head does not match the records")
    return Verified(
        records=sum(counts.values()),
        files=counts,
        chain_head=link.hex(),
        key_id=str(manifest["key_id"]),
        scope=dict(manifest.get("scope", {})),
    )


def _check_signature(manifest: dict[str, Any], public_key: Ed25519PublicKey) -> None:
    """The manifest's signature (taken out of it) over the rest of its canonical bytes."""
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


def _verify_chunks(
    bundle: Path, declared: dict[Any, dict[str, Any]]
) -> tuple[bytes, dict[str, int]]:
    """Each chunk's bytes hashed from the previous link must give the signed link (one
    SHA-256 pass, no work per line); a file that fails is walked line by line to name
    where. Returns the chain head and each file's record count."""
    link = GENESIS
    counts: dict[str, int] = {}
    for name in FILES:
        entry = declared.get(name)
        if entry is None:
            raise BundleInvalid(f"manifest.json: {name} is not listed")
        chunks = _chunk_entries(name, entry)
        start = link
        try:
            handle = (bundle / name).open("rb")
        except FileNotFoundError:
            raise BundleInvalid(f"{name}: the file is missing") from None
        with handle:
            intact = True
            for _, size, expected in chunks:
                data = handle.read(size)
                digest = sha256(link)
                digest.update(data)
                if len(data) != size or digest.hexdigest() != expected:
                    intact = False
                    break
                link = digest.digest()
            intact = intact and handle.read(1) == b""
        if not intact:
            _walk(bundle / name, chunks, start)
            # Every line checks out, yet the bytes did not: cannot be, but never pass.
            raise BundleInvalid(f"{name}: the file's bytes do not match the manifest")
        counts[name] = entry["records"]
    return link, counts


def _chunk_entries(name: str, entry: dict[str, Any]) -> list[tuple[int, int, str]]:
    """The manifest's chunks of one file: (records, bytes, link), checked for shape."""
    chunks, records = entry.get("chunks"), entry.get("records")
    invalid = BundleInvalid(f"manifest.json: {name} has no valid list of chunks")
    if not isinstance(chunks, list) or not isinstance(records, int):
        raise invalid
    parsed = []
    for chunk in chunks:
        if not (isinstance(chunk, list) and len(chunk) == 3):
            raise invalid
        count, size, link = chunk
        if not (isinstance(count, int) and isinstance(size, int) and isinstance(link, str)):
            raise invalid
        if count <= 0 or size <= 0:
            raise invalid
        parsed.append((count, size, link))
    if sum(count for count, _, _ in parsed) != records:
        raise invalid
    return parsed


class _Positioned(msgspec.Struct):
    position: int


_POSITION = msgspec.json.Decoder(_Positioned)


def _walk(path: Path, chunks: list[tuple[int, int, str]], link: bytes) -> None:
    """Name the first line of a file that fails: a line that is not one, a record that
    does not match its digest, a position not after the one before (lines swapped or
    copied), or, where each line holds, the first chunk whose link fails (a record
    dropped, added, or replaced along with its digest, in those lines)."""
    name = path.name
    lines = _lines(path)
    number, previous = 0, -1
    listed = sum(n for n, _, _ in chunks)
    for records, _, expected in chunks:
        first = number + 1
        digest = sha256(link)
        for _ in range(records):
            item = next(lines, None)
            if item is None:
                raise BundleInvalid(f"{name}: {listed - number} record(s) missing at the end")
            number, line = item
            previous = _checked_line(f"{name} line {number}", line, previous)
            digest.update(line)
        if digest.hexdigest() != expected:
            where = f"line {first}" if first == number else f"lines {first}-{number}"
            raise BundleInvalid(
                f"{name} {where}: a record is missing, added or replaced here (the link "
                "of these lines does not match the manifest)"
            )
        link = digest.digest()
    extra = next(lines, None)
    if extra is not None:
        raise BundleInvalid(f"{name} line {extra[0]}: a record was added (manifest lists {listed})")


def _checked_line(where: str, line: bytes, previous: int) -> int:
    """The position of a line that is a bundle line, matches its digest and comes after
    ``previous``; raise naming ``where`` if not."""
    body = line[_BODY_AT:-2]
    if not (
        line.startswith(_LINE_PREFIX)
        and line.endswith(b"}\n")
        and line[_BODY_AT - len(_LINE_MIDDLE) : _BODY_AT] == _LINE_MIDDLE
    ):
        raise BundleInvalid(f"{where}: not a bundle line")
    if record_digest(body) != line[_DIGEST_AT : _BODY_AT - len(_LINE_MIDDLE)]:
        raise BundleInvalid(f"{where}: the record was changed (it does not match its digest)")
    try:
        position = _POSITION.decode(body).position
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise BundleInvalid(f"{where}: not a bundle line") from None
    if position <= previous:
        raise BundleInvalid(f"{where}: out of order, or a copy of another record")
    return position


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise BundleInvalid(f"{path.name}: the file is missing") from None
    with handle:  # lines keep their newline: a missing one is a truncation
        yield from enumerate(handle, start=1)


def record_body(line: bytes) -> bytes:
    """The record's canonical bytes in a bundle line."""
    return line[_BODY_AT:-2]


def read_records(bundle: Path, name: str) -> Iterator[dict[str, Any]]:
    """The records of one file of a (verified) bundle."""
    for _, line in _lines(bundle / name):
        yield msgspec.json.decode(record_body(line))
