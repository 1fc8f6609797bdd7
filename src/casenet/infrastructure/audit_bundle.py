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

Formats ``casenet-audit/1`` (``{"link": HEX, "record": ...}`` lines, ``link =
SHA-256(previous link || record bytes)`` from ``SHA-256("casenet-audit-v1")``) and
``/2`` (``/1`` plus each file's SHA-256 in the manifest) still verify.
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
#: The second format: a link per record, a digest per file. Still verified.
FORMAT_V2 = "casenet-audit/2"
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


#: Where the ``/3`` chain starts.
GENESIS_V3 = hashlib.sha256(b"casenet-audit-v3").digest()
#: Chunks read ahead of the thread that hashes and writes them (at most ~9 MB).
_IN_FLIGHT = 64
_LINE_PREFIX = b'{"digest":"'
_LINE_MIDDLE = b'","record":'
#: Where a ``/3`` line's digest and record start.
_DIGEST_AT, _BODY_AT = len(_LINE_PREFIX), len(_LINE_PREFIX) + 32 + len(_LINE_MIDDLE)


def record_digest(body: bytes) -> bytes:
    """A record's digest in a ``/3`` line: the first 128 bits of its SHA-256, in hex.

    It locates a changed record; what proves the bytes is the chain, whose links are
    full SHA-256 over every byte of every line. So it is short: every byte of a line is
    read, hashed and written by each export and each verification."""
    return sha256(body).hexdigest()[:32].encode()


def record_line(body: bytes) -> bytes:
    """A ``/3`` line: the record's canonical bytes beside their digest.

    The digest depends on the record alone, not on what came before it, so it is the
    same in every bundle the record is in and is computed once, when the record is
    projected (see ``projections.audit``), not at each export."""
    return _LINE_PREFIX + record_digest(body) + _LINE_MIDDLE + body + b"}\n"


@dataclass
class BundleWriter:
    """Writes a ``casenet-audit/3`` bundle: files of lines given in chunks, a link of
    the chain per chunk, then the signed manifest listing every chunk.

    ``link = SHA-256(previous link || the chunk's bytes)`` from ``GENESIS_V3``, over
    every file in the order of ``FILES``. Writing costs one SHA-256 pass over the
    bytes and no work per record: lines arrive ready (``record_line``) and joined."""

    out_dir: Path
    signing_seed: bytes = field(repr=False)
    link: bytes = GENESIS_V3
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write_file(self, name: str, chunks: Iterable[tuple[int, bytes]]) -> int:
        """Write one file from chunks of (record count, those records' lines)."""
        self._write([name], ((name, records, data) for records, data in chunks))
        return int(self.files[name]["records"])

    def write_files(self, chunks: Iterable[tuple[str, int, bytes]]) -> None:
        """Write every file from (file name, record count, lines) chunks given in the
        order of ``FILES`` (a file with none is written empty)."""
        self._write(list(FILES), chunks)

    def _write(self, names: list[str], chunks: Iterable[tuple[str, int, bytes]]) -> None:
        """A thread of its own hashes and writes while the caller reads the next chunks
        (from the database: both release the GIL), at most ``_IN_FLIGHT`` ahead."""
        assert all(name in FILES and name not in self.files for name in names)
        queue: Queue[tuple[str, int, bytes] | None] = Queue(maxsize=_IN_FLIGHT)

        def take() -> None:
            failure: Exception | None = None
            handle: BinaryIO | None = None
            waiting = iter(names)
            try:
                while (item := queue.get()) is not None:
                    if failure is not None:
                        continue  # drain, so that the caller never blocks on a full queue
                    try:
                        handle = self._take(item, waiting, handle)
                    except (OSError, ValueError) as error:
                        failure = error
                if failure is None:
                    self._take(None, waiting, handle)
            finally:
                if handle is not None:
                    handle.close()
            if failure is not None:
                raise failure

        with ThreadPoolExecutor(1) as pool:
            taken = pool.submit(take)
            try:
                for item in chunks:
                    if item[1]:
                        queue.put(item)
            finally:
                queue.put(None)
            taken.result()

    def _take(
        self,
        item: tuple[str, int, bytes] | None,
        waiting: Iterator[str],
        handle: BinaryIO | None,
    ) -> BinaryIO | None:
        """Chain and write one chunk (opening files up to its own); None: the end."""
        name = None if item is None else item[0]
        if handle is None or name != Path(handle.name).name:
            if handle is not None:
                handle.close()
            handle = None
            for next_name in waiting:  # files before this one have no (more) chunks
                self.files[next_name] = {"name": next_name, "records": 0, "chunks": []}
                opened = (self.out_dir / next_name).open("wb")
                if next_name == name:
                    handle = opened
                    break
                opened.close()
            else:
                if item is not None:
                    raise ValueError(f"chunks of {name} out of the order of the files")
        if item is None or handle is None:
            return handle
        _, records, data = item
        digest = sha256(self.link)
        digest.update(data)
        self.link = digest.digest()
        handle.write(data)
        entry = self.files[name]  # type: ignore[index]
        entry["records"] += records
        entry["chunks"].append([records, len(data), self.link.hex()])
        return handle

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


@dataclass
class BundleWriterV2:
    """Writes a ``casenet-audit/2`` bundle: records file by file, a link per record,
    then the signed manifest. casenet writes ``/3`` (:class:`BundleWriter`); this one is
    kept to make ``/2`` bundles for the tests that prove they still verify."""

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
            "format": FORMAT_V2,
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
    if format_ not in (FORMAT, FORMAT_V2, FORMAT_V1):
        raise BundleInvalid(f"manifest.json: unknown format {format_!r}")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise BundleInvalid("manifest.json: no list of files")
    declared = {f.get("name"): f for f in files}
    if format_ == FORMAT:
        link, counts = _verify_chunked(bundle, declared)
    else:
        link, counts = _verify_linked(bundle, declared, format_)
    if link.hex() != manifest["chain_head"]:
        raise BundleInvalid("manifest.json: the chain head does not match the records")
    return Verified(
        records=sum(counts.values()),
        files=counts,
        chain_head=link.hex(),
        key_id=str(manifest["key_id"]),
        scope=dict(manifest.get("scope", {})),
    )


def _listed(declared: dict[Any, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each bundle file in order with its manifest entry; a file not listed is invalid."""
    for name in FILES:
        entry = declared.get(name)
        if entry is None:
            raise BundleInvalid(f"manifest.json: {name} is not listed")
        yield name, entry


def _verify_linked(
    bundle: Path, declared: dict[Any, dict[str, Any]], format_: str
) -> tuple[bytes, dict[str, int]]:
    """``/1`` and ``/2``: a link per record; ``/2`` also a digest per file."""
    link = GENESIS
    counts: dict[str, int] = {}
    for name, entry in _listed(declared):
        digest = entry.get("sha256")
        if format_ == FORMAT_V2 and not isinstance(digest, str):
            raise BundleInvalid(f"manifest.json: {name} has no digest")
        if format_ == FORMAT_V2 and _file_digest(bundle / name) == digest:
            # Exactly the signed bytes: every link in it is the signer's.
            counts[name] = entry["records"]
            link = bytes.fromhex(entry["last_link"])
            continue
        link, counts[name] = _walk(bundle / name, entry, link)
        if format_ == FORMAT_V2:  # every link holds, yet the bytes differ: cannot be
            raise BundleInvalid(f"{name}: the file's bytes do not match the manifest's digest")
    return link, counts


def _verify_chunked(
    bundle: Path, declared: dict[Any, dict[str, Any]]
) -> tuple[bytes, dict[str, int]]:
    """``/3``: each chunk's bytes hashed from the previous link must give the signed
    link (one SHA-256 pass, no work per line); a file that fails is walked line by line
    to name where."""
    link = GENESIS_V3
    counts: dict[str, int] = {}
    for name, entry in _listed(declared):
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
            _walk_chunked(bundle / name, chunks, start)
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


def _walk_chunked(path: Path, chunks: list[tuple[int, int, str]], link: bytes) -> None:
    """Name the first line of a ``/3`` file that fails: a line that is not one, a
    record that does not match its digest, a position not after the one before (lines
    swapped or copied), or, where each line holds, the first chunk whose link fails
    (a record dropped, added, or replaced along with its digest, in those lines)."""
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
            body = line[_BODY_AT:-2]
            if not (
                line.startswith(_LINE_PREFIX)
                and line.endswith(b"}\n")
                and line[_BODY_AT - len(_LINE_MIDDLE) : _BODY_AT] == _LINE_MIDDLE
            ):
                raise BundleInvalid(f"{name} line {number}: not a bundle line")
            if record_digest(body) != line[_DIGEST_AT : _BODY_AT - len(_LINE_MIDDLE)]:
                raise BundleInvalid(
                    f"{name} line {number}: the record was changed (it does not match its digest)"
                )
            try:
                position = _POSITION.decode(body).position
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise BundleInvalid(f"{name} line {number}: not a bundle line") from None
            if position <= previous:
                raise BundleInvalid(
                    f"{name} line {number}: out of order, or a copy of another record"
                )
            previous = position
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


def record_body(line: bytes) -> bytes:
    """The record's canonical bytes in a bundle line of any format."""
    return line[_BODY_AT:-2] if line.startswith(_LINE_PREFIX) else line[84:-2]


def read_records(bundle: Path, name: str) -> Iterator[dict[str, Any]]:
    """The records of one file of a (verified) bundle."""
    for _, line in _lines(bundle / name):
        yield msgspec.json.decode(record_body(line))
