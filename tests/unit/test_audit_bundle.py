"""The audit bundle (``casenet-audit/3``, the only format) on its own: written by
``BundleWriter``, checked by ``verify``.

Hand-made records in chunks as the export makes them (here: a chunk per 4 positions,
so that files have several). The bundle must verify as written and every tampering
must fail naming where: a changed byte anywhere in a line names that line; two
records swapped name the first out of order; a record dropped, added or replaced with
a matching digest names the lines of its chunk (or the end of the file); truncations,
removed files, moved records, manifest edits (any byte of it, any field, another
format), a forged chain and another key all fail.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casenet.infrastructure.audit_bundle import (
    FILES,
    FORMAT,
    GENESIS,
    BundleInvalid,
    BundleWriter,
    Verified,
    canonical,
    key_id,
    load_public_key,
    read_manifest,
    read_records,
    record_line,
    verify,
)

CASE = "9f8e7d6c-5b4a-4392-8170-6e5d4c3b2a03"
PAGE = 4  # positions per chunk in these bundles
HEADER = {
    "scope": {"kind": "all"},
    "from": None,
    "to": None,
    "store_position": 99,
    "generated_at": "2025-01-02T03:05:00.000000Z",
}


def record(name: str, position: int) -> dict[str, Any]:
    return {
        "type": name.removesuffix(".jsonl"),
        "at": f"2025-01-02T03:04:{position:02d}.000000Z",
        "position": position,
        "version": 1,
        "case_id": CASE,
        "note": "Café",  # UTF-8 in the bytes
    }


#: Positions of each file's records: several chunks, a chunk of one, an empty file.
POSITIONS = {
    "agencies.jsonl": [1, 2],
    "cases.jsonl": [3],
    "consents.jsonl": [5, 6, 9, 10, 11, 13],
    "disclosures.jsonl": [7, 8, 12, 14, 15, 16, 17, 18, 19, 21],
    "referrals.jsonl": [20, 22, 23],
    "erasures.jsonl": [],
}
RECORDS = {name: [record(name, p) for p in positions] for name, positions in POSITIONS.items()}


def chunks_of(records: list[dict[str, Any]]) -> Iterator[tuple[int, bytes]]:
    """Lines joined per PAGE positions, as the export joins them per page."""
    pages: dict[int, list[bytes]] = {}
    for r in records:
        pages.setdefault(r["position"] // PAGE, []).append(record_line(canonical(r)))
    for lines in pages.values():
        yield len(lines), b"".join(lines)


def write_bundle(
    out: Path, seed: bytes, records: dict[str, list[dict[str, Any]]] = RECORDS
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    writer = BundleWriter(out, seed)
    writer.write_files(
        (name, count, data) for name in FILES for count, data in chunks_of(records.get(name, []))
    )
    return writer.sign(HEADER)


@pytest.fixture
def bundle(tmp_path: Path, seed: bytes) -> Path:
    write_bundle(tmp_path / "bundle", seed)
    return tmp_path / "bundle"


@pytest.fixture
def tampered(bundle: Path) -> Iterator[Any]:
    originals = {p.name: p.read_bytes() for p in bundle.iterdir()}

    def write(name: str, data: bytes) -> None:
        (bundle / name).write_bytes(data)

    yield write
    for name, data in originals.items():
        (bundle / name).write_bytes(data)


def fails(bundle: Path, public: Any) -> str:
    with pytest.raises(BundleInvalid) as raised:
        verify(bundle, public)
    return str(raised.value)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def chunk_ranges(name: str) -> list[range]:
    """1-based line numbers of each chunk of ``name``."""
    ranges, first = [], 1
    for count, _ in chunks_of(RECORDS[name]):
        ranges.append(range(first, first + count))
        first += count
    return ranges


def names_lines(message: str, name: str, line: int) -> bool:
    """Whether ``message`` names ``line`` of ``name``, exactly or by its chunk."""
    if message.startswith(f"{name} line {line}:"):
        return True
    return any(
        line in lines and message.startswith(f"{name} lines {lines[0]}-{lines[-1]}:")
        for lines in chunk_ranges(name)
    )


# --- as written --------------------------------------------------------------------------


def test_a_bundle_verifies_says_what_it_checked_and_holds_the_records(
    bundle: Path, public: Any, seed: bytes
) -> None:
    verified = verify(bundle, public)
    manifest = read_manifest(bundle)
    assert manifest["format"] == FORMAT == "casenet-audit/3"
    assert verified == Verified(
        records=sum(len(v) for v in RECORDS.values()),
        files={name: len(RECORDS[name]) for name in FILES},
        chain_head=manifest["chain_head"],
        key_id=key_id(Ed25519PrivateKey.from_private_bytes(seed).public_key()),
        scope={"kind": "all"},
    )
    assert [f["name"] for f in manifest["files"]] == list(FILES)
    assert {k: manifest[k] for k in HEADER} == HEADER
    for name in FILES:
        assert list(read_records(bundle, name)) == RECORDS[name]


def test_the_format_as_documented_recomputed_without_the_modules_helpers(
    bundle: Path, seed: bytes
) -> None:
    link = hashlib.sha256(b"casenet-audit-v3").digest()
    assert link == GENESIS
    manifest = read_manifest(bundle)
    sorted_keys = msgspec.json.Encoder(order="sorted")
    for entry, name in zip(manifest["files"], FILES, strict=True):
        assert entry["name"] == name
        data = (bundle / name).read_bytes()
        expected_lines = []
        for r in RECORDS[name]:
            body = sorted_keys.encode(r)
            digest = hashlib.sha256(body).hexdigest()[:32].encode()
            expected_lines.append(b'{"digest":"' + digest + b'","record":' + body + b"}\n")
        assert data == b"".join(expected_lines)
        at = 0
        for records, size, chunk_link in entry["chunks"]:
            chunk = data[at : at + size]
            assert chunk.count(b"\n") == records
            link = hashlib.sha256(link + chunk).digest()
            assert chunk_link == link.hex()
            at += size
        assert at == len(data)
        assert entry["records"] == len(RECORDS[name])
        # A chunk per page of positions: the consents' 5, 6 | 9, 10, 11 | 13.
        if name == "consents.jsonl":
            assert [c[0] for c in entry["chunks"]] == [2, 3, 1]
    assert manifest["chain_head"] == link.hex()
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    public.verify(base64.b64decode(manifest["signature"]), canonical(unsigned))  # no raise


def test_an_empty_bundle_verifies(tmp_path: Path, seed: bytes, public: Any) -> None:
    write_bundle(tmp_path / "empty", seed, records={})
    verified = verify(tmp_path / "empty", public)
    assert verified.records == 0
    assert verified.chain_head == GENESIS.hex()


def test_chunks_out_of_the_order_of_the_files_are_refused(tmp_path: Path, seed: bytes) -> None:
    line = record_line(canonical(record("cases.jsonl", 3)))
    many = [("cases.jsonl", 1, line)] * 200  # more than the writer holds in flight
    writer = BundleWriter(tmp_path, seed)
    with pytest.raises(ValueError, match=r"chunks of agencies\.jsonl out of the order"):
        writer.write_files([*many, ("agencies.jsonl", 1, line), *many])


# --- tampering ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in FILES if RECORDS[n]])
def test_changing_any_single_byte_of_any_line_fails_naming_that_line(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    original = (bundle / name).read_bytes()
    for index, byte in enumerate(original):
        for new in (byte ^ 0x01, byte ^ 0x20, ord("\n") if byte != ord("\n") else ord("x")):
            tampered(name, original[:index] + bytes([new]) + original[index + 1 :])
            message = fails(bundle, public)
            line = original.count(b"\n", 0, index) + 1
            assert message.startswith(f"{name} line {line}:"), (index, new, message)


@pytest.mark.parametrize("name", [n for n in FILES if RECORDS[n]])
def test_deleting_any_record_fails_naming_its_chunk_or_the_end(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    lines = lines_of(bundle / name)
    for index in range(len(lines)):
        tampered(name, b"".join(lines[:index] + lines[index + 1 :]))
        message = fails(bundle, public)
        assert names_lines(message, name, index + 1) or message == (
            f"{name}: 1 record(s) missing at the end"
        ), (index, message)


@pytest.mark.parametrize("name", FILES)
def test_adding_a_record_with_a_good_digest_anywhere_fails_naming_where(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    lines = lines_of(bundle / name)
    positions = POSITIONS[name]
    for index in range(len(lines) + 1):
        # Right after the record before it: between its neighbours where they leave room
        # (then only the chunk's link can tell), a copy of the next one's where not.
        position = (positions[index - 1] if index else 0) + 1
        forged = record_line(canonical(record(name, position)))
        tampered(name, b"".join([*lines[:index], forged, *lines[index:]]))
        message = fails(bundle, public)
        at = index + 1
        assert (
            names_lines(message, name, at)
            or message.startswith(f"{name} line {at + 1}: out of order")
            # At the end, or a copy of the last line (equal lines: either is the copy).
            or message
            in (
                f"{name} line {n}: a record was added (manifest lists {len(lines)})"
                for n in (at, at + 1)
            )
        ), (index, message)


@pytest.mark.parametrize("name", [n for n in FILES if len(RECORDS[n]) >= 2])
def test_swapping_any_two_records_fails_naming_the_first_out_of_order(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    lines = lines_of(bundle / name)
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            swapped = list(lines)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            tampered(name, b"".join(swapped))
            message = fails(bundle, public)
            # The line after the first moved one is out of order, unless a chunk ends
            # at the moved one: then that chunk's link fails first.
            assert message == (
                f"{name} line {i + 2}: out of order, or a copy of another record"
            ) or names_lines(message, name, i + 1), (i, j, message)


def test_a_copy_of_a_line_next_to_it_fails_as_out_of_order(
    bundle: Path, public: Any, tampered: Any
) -> None:
    lines = lines_of(bundle / "disclosures.jsonl")
    tampered("disclosures.jsonl", b"".join([*lines[:3], lines[2], *lines[3:]]))
    assert fails(bundle, public).startswith("disclosures.jsonl line 4: out of order")


def test_a_record_replaced_with_its_digest_redone_fails_naming_its_chunk(
    bundle: Path, public: Any, tampered: Any
) -> None:
    """The digest only locates a change; the chunk's link (full SHA-256 over the bytes,
    signed through the manifest) is what a forger cannot redo."""
    name = "disclosures.jsonl"
    lines = lines_of(bundle / name)
    for index, r in enumerate(RECORDS[name]):
        forged = record_line(canonical({**r, "case_id": "00000000-0000-4000-8000-000000000000"}))
        tampered(name, b"".join([*lines[:index], forged, *lines[index + 1 :]]))
        message = fails(bundle, public)
        [chunk] = [c for c in chunk_ranges(name) if index + 1 in c]
        where = f"line {chunk[0]}" if len(chunk) == 1 else f"lines {chunk[0]}-{chunk[-1]}"
        assert message == (
            f"{name} {where}: a record is missing, added or replaced here (the link of these "
            "lines does not match the manifest)"
        )


def test_moving_a_record_to_another_file_fails(bundle: Path, public: Any, tampered: Any) -> None:
    consents = lines_of(bundle / "consents.jsonl")
    disclosures = lines_of(bundle / "disclosures.jsonl")
    tampered("consents.jsonl", b"".join(consents[:-1]))
    tampered("disclosures.jsonl", b"".join([consents[-1], *disclosures]))
    assert fails(bundle, public) == "consents.jsonl: 1 record(s) missing at the end"


@pytest.mark.parametrize("name", [n for n in FILES if RECORDS[n]])
def test_truncating_a_file_at_any_length_fails_naming_it(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    original = (bundle / name).read_bytes()
    for length in range(len(original)):
        tampered(name, original[:length])
        assert fails(bundle, public).startswith(name), length


def test_anything_after_the_last_line_is_an_added_line(
    bundle: Path, public: Any, tampered: Any
) -> None:
    data = (bundle / "referrals.jsonl").read_bytes()
    for extra in (b"\n", b"x", lines_of(bundle / "referrals.jsonl")[-1]):
        tampered("referrals.jsonl", data + extra)
        assert (
            fails(bundle, public) == "referrals.jsonl line 4: a record was added (manifest lists 3)"
        )


@pytest.mark.parametrize("name", FILES)
def test_removing_any_file_fails_naming_it(bundle: Path, public: Any, name: str) -> None:
    (bundle / name).unlink()
    assert fails(bundle, public) == f"{name}: the file is missing"


def manifest_edits(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    def edited(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
        copy: Any = msgspec.json.decode(msgspec.json.encode(manifest))
        target = copy
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        result: dict[str, Any] = copy
        return result

    edits = []
    for index, entry in enumerate(manifest["files"]):
        edits.append(("records", edited(("files", index, "records"), entry["records"] + 1)))
        if entry["chunks"]:
            edits.append(("no chunks", edited(("files", index, "chunks"), [])))
        for c, (records, size, _) in enumerate(entry["chunks"]):
            edits += [
                ("chunk records", edited(("files", index, "chunks", c, 0), records + 1)),
                ("chunk size", edited(("files", index, "chunks", c, 1), size - 1)),
                ("chunk link", edited(("files", index, "chunks", c, 2), "0" * 64)),
                ("chunk dropped", edited(("files", index, "chunks"), entry["chunks"][:c])),
            ]
    edits += [
        ("chain head", {**manifest, "chain_head": GENESIS.hex()}),
        ("format /2", {**manifest, "format": "casenet-audit/2"}),
        ("format /1", {**manifest, "format": "casenet-audit/1"}),
        ("scope", {**manifest, "scope": {"kind": "case", "id": CASE}}),
        ("store position", {**manifest, "store_position": manifest["store_position"] + 1}),
        ("from", {**manifest, "from": "2025-01-01T00:00:00.000000Z"}),
        ("generated at", {**manifest, "generated_at": "2025-01-02T03:05:00.000001Z"}),
        ("key id", {**manifest, "key_id": "0" * 16}),
        ("files reversed", {**manifest, "files": list(reversed(manifest["files"]))}),
        ("a file dropped", {**manifest, "files": manifest["files"][:-1]}),
        ("an extra field", {**manifest, "note": "nothing to see"}),
        ("no signature", {k: v for k, v in manifest.items() if k != "signature"}),
        ("signature of nothing", {**manifest, "signature": ""}),
        ("signature not base64", {**manifest, "signature": "!" * 88}),
    ]
    return edits


def test_editing_the_manifest_fails_naming_it(bundle: Path, public: Any, tampered: Any) -> None:
    manifest = read_manifest(bundle)
    edits = manifest_edits(manifest)
    assert len(edits) > 40
    for what, changed in edits:
        assert changed != manifest, what
        tampered("manifest.json", canonical(changed) + b"\n")
        assert fails(bundle, public).startswith("manifest.json:"), what


def test_chunks_that_disagree_with_the_files_fail_even_when_signed(
    bundle: Path, seed: bytes, public: Any, tampered: Any
) -> None:
    """A manifest signed with the genuine key but listing other chunks (a signer's bug,
    say) still fails: the chunks must cover the files exactly."""
    manifest = read_manifest(bundle)
    del manifest["signature"]
    private = Ed25519PrivateKey.from_private_bytes(seed)

    def signed(changed: dict[str, Any]) -> bytes:
        changed = {**changed, "signature": ""}
        del changed["signature"]
        text = base64.b64encode(private.sign(canonical(changed))).decode()
        return canonical({**changed, "signature": text}) + b"\n"

    entry = manifest["files"][2]
    shortened = {
        **manifest,
        "files": [*manifest["files"][:2], {**entry, "records": 5}, *manifest["files"][3:]],
    }
    tampered("manifest.json", signed(shortened))
    assert fails(bundle, public) == "manifest.json: consents.jsonl has no valid list of chunks"
    merged = {**entry, "chunks": [[6, sum(c[1] for c in entry["chunks"]), entry["chunks"][-1][2]]]}
    tampered(
        "manifest.json",
        signed({**manifest, "files": [*manifest["files"][:2], merged, *manifest["files"][3:]]}),
    )
    assert fails(bundle, public).startswith("consents.jsonl lines 1-6: a record is missing")


def signed_with(seed: bytes, manifest: dict[str, Any]) -> bytes:
    """``manifest`` (its signature left out) signed with ``seed``, as a manifest file."""
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(canonical(unsigned))
    return canonical({**unsigned, "signature": base64.b64encode(signature).decode()}) + b"\n"


@pytest.mark.parametrize("format_", ["casenet-audit/1", "casenet-audit/2", "casenet-audit/4", None])
def test_a_manifest_of_another_format_is_refused_in_one_line_even_when_signed(
    bundle: Path, seed: bytes, public: Any, tampered: Any, format_: str | None
) -> None:
    manifest = read_manifest(bundle)
    tampered("manifest.json", signed_with(seed, {**manifest, "format": format_}))
    assert fails(bundle, public) == (
        f"manifest.json: format {format_!r} is not 'casenet-audit/3', the only one casenet verifies"
    )


def test_changing_any_single_byte_of_the_manifest_fails_naming_it(
    bundle: Path, public: Any, tampered: Any
) -> None:
    original = (bundle / "manifest.json").read_bytes()
    assert original.endswith(b"}\n")
    assert original.count(b"\n") == 1
    for index, byte in enumerate(original[:-1]):  # the final newline is JSON whitespace
        for new in (byte ^ 0x01, byte ^ 0x20, byte ^ 0x80, ord("\n")):
            if new == byte:
                continue
            tampered("manifest.json", original[:index] + bytes([new]) + original[index + 1 :])
            message = fails(bundle, public)
            assert message.startswith("manifest.json"), (index, bytes([new]), message)


def test_the_signature_is_accepted_only_in_its_canonical_base64(
    bundle: Path, public: Any, tampered: Any
) -> None:
    """Base64 has spare bits in its last character: another spelling of the same
    signature bytes is still an edit of the manifest."""
    manifest = read_manifest(bundle)
    signature: str = manifest["signature"]
    assert signature.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    value = alphabet.index(signature[-3])  # 2 bits of the signature, 4 spare bits
    respelled = signature[:-3] + alphabet[value ^ 0b0001] + "=="
    assert respelled != signature
    assert base64.b64decode(respelled) == base64.b64decode(signature)
    tampered("manifest.json", canonical({**manifest, "signature": respelled}) + b"\n")
    assert fails(bundle, public).startswith("manifest.json: the signature")


def test_truncating_or_removing_the_manifest_fails(
    bundle: Path, public: Any, tampered: Any
) -> None:
    original = (bundle / "manifest.json").read_bytes()
    for length in range(0, len(original) - 1, 7):
        tampered("manifest.json", original[:length])
        assert fails(bundle, public).startswith("manifest.json")
    (bundle / "manifest.json").unlink()
    assert "no manifest.json" in fails(bundle, public)


@pytest.mark.parametrize("content", [b"", b"not json", b"[]", b"null", b'"manifest"', b"42", b"{}"])
def test_a_manifest_that_is_not_a_signed_object_fails_in_one_line(
    bundle: Path, public: Any, tampered: Any, content: bytes
) -> None:
    tampered("manifest.json", content)
    message = fails(bundle, public)
    assert message.startswith("manifest.json"), message
    assert "\n" not in message


def test_a_bundle_signed_with_another_key_fails(tmp_path: Path, public: Any) -> None:
    write_bundle(tmp_path / "other", Ed25519PrivateKey.generate().private_bytes_raw())
    assert fails(tmp_path / "other", public) == (
        "manifest.json: the signature does not match (edited, or signed with another key)"
    )


def test_records_and_chain_rebuilt_by_a_forger_need_the_key(
    tmp_path: Path, bundle: Path, seed: bytes, public: Any
) -> None:
    """Everything but the signature is recomputable (edited or reordered records, their
    digests, chunks and chain); only the private key signs."""
    records = {name: [dict(r) for r in rs] for name, rs in RECORDS.items()}
    records["consents.jsonl"][0]["purpose"] = "forged"
    forged = tmp_path / "forged"
    forged_manifest = write_bundle(
        forged, Ed25519PrivateKey.generate().private_bytes_raw(), records
    )
    # Forged records and chain under the genuine manifest: the chunk's link fails.
    shutil.copy(bundle / "manifest.json", forged / "manifest.json")
    assert fails(forged, public).startswith("consents.jsonl lines 1-2: a record is missing")
    # The forged chain listed under the genuine signature: the signature fails.
    genuine = read_manifest(bundle)
    relinked = {
        **genuine,
        "chain_head": forged_manifest["chain_head"],
        "files": forged_manifest["files"],
    }
    (forged / "manifest.json").write_bytes(canonical(relinked) + b"\n")
    assert fails(forged, public).startswith("manifest.json: the signature does not match")
    assert verify(bundle, public).records  # the genuine bundle is untouched


def test_a_public_key_that_is_not_one_is_refused() -> None:
    for text in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(BundleInvalid, match="not a base64 Ed25519 public key"):
            load_public_key(text)
