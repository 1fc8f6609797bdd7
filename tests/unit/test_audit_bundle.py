"""The ``casenet-audit/2`` bundle on its own: written by ``BundleWriterV2``, checked by
``verify`` (casenet writes ``/3`` now; ``/2`` bundles must keep verifying).

No store: small hand-made bundles in temporary folders. The bundle must verify as
written, and every kind of tampering the design names must fail verification with a
message that says where: every single-byte change of every record line (every byte
position, several replacement values), a record deleted, added (anywhere, at the end
too, even with a correct link), two records swapped, a file truncated at every length
or removed, any manifest field edited, every byte of the manifest changed, a bundle
signed with another key.
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
    FORMAT_V1,
    GENESIS,
    BundleInvalid,
    BundleWriterV2,
    Verified,
    canonical,
    key_id,
    load_public_key,
    read_manifest,
    read_records,
    verify,
)
from casenet.infrastructure.audit_bundle import FORMAT_V2 as FORMAT

#: This file holds ``/2`` bundles to the checks they passed when ``/2`` was written;
#: ``/3`` (what casenet writes now) has its own, in test_audit_bundle_v3.py.
BundleWriter = BundleWriterV2

AGENCY_A = "0b6c5f84-2d4b-4c8e-9a44-6f1f0e7d2a01"
AGENCY_B = "5d2e8b1a-7c3f-4e6d-8b9a-1a2b3c4d5e02"
CASE = "9f8e7d6c-5b4a-4392-8170-6e5d4c3b2a03"
CLIENT = "1a2b3c4d-5e6f-4789-8abc-def012345604"
CONSENT = "c0115e17-aaaa-4bbb-8ccc-dddddddddd05"
WORKER = "30b1c2d3-e4f5-4678-9abc-def012345606"

#: A small but complete bundle; the last file is left empty on purpose.
RECORDS: dict[str, list[dict[str, Any]]] = {
    "agencies.jsonl": [
        {"type": "AgencyRegistered", "position": 1, "at": "2025-01-02T03:04:05.000001Z",
         "version": 1, "agency_id": AGENCY_A, "name": "Café Solidarité", "kind": "ngo",
         "restricted": False},
        {"type": "AgencyRegistered", "position": 2, "at": "2025-01-02T03:04:05.000002Z",
         "version": 1, "agency_id": AGENCY_B, "name": "City Hospital", "kind": "hospital",
         "restricted": True},
    ],
    "cases.jsonl": [
        {"type": "CaseOpened", "position": 4, "at": "2025-01-02T03:04:06.000000Z",
         "version": 1, "case_id": CASE, "client_id": CLIENT, "owner_agency_id": AGENCY_A},
    ],
    "consents.jsonl": [
        {"type": "ConsentGranted", "position": 5, "at": "2025-01-02T03:04:07.000000Z",
         "version": 1, "consent_id": CONSENT, "case_id": CASE, "client_id": CLIENT,
         "owner_agency_id": AGENCY_A, "grantee_agency_id": AGENCY_B,
         "sections": ["identity", "notes.health"], "purpose": "referral", "method": "written",
         "valid_until": None, "worker_id": WORKER},
        {"type": "ConsentWithdrawn", "position": 7, "at": "2025-01-02T03:04:09.000000Z",
         "version": 2, "consent_id": CONSENT, "worker_id": WORKER},
    ],
    "disclosures.jsonl": [
        {"type": "DisclosureRecorded", "position": 6, "at": "2025-01-02T03:04:08.000000Z",
         "version": 1, "disclosure_id": "d15c1050-0000-4000-8000-000000000007",
         "case_id": CASE, "recipient_agency_id": AGENCY_B, "worker_id": WORKER,
         "sections": ["identity"], "consent_ids": [CONSENT], "purposes": ["referral"]},
    ],
    "referrals.jsonl": [
        {"type": "ReferralRequested", "position": 8, "at": "2025-01-02T03:04:10.000000Z",
         "version": 1, "referral_id": "4ef3a1a1-0000-4000-8000-000000000008",
         "case_id": CASE, "from_agency_id": AGENCY_A, "to_agency_id": AGENCY_B,
         "service_type": "medical_social_work", "urgency": "routine", "consent_id": CONSENT,
         "status": "requested", "agency_id": AGENCY_A, "worker_id": WORKER},
        {"type": "ReferralAccepted", "position": 9, "at": "2025-01-02T03:04:11.000000Z",
         "version": 2, "referral_id": "4ef3a1a1-0000-4000-8000-000000000008",
         "status": "accepted", "outcome": None, "agency_id": AGENCY_B, "worker_id": WORKER},
    ],
    "erasures.jsonl": [],
}
HEADER = {
    "scope": {"kind": "case", "id": CASE},
    "from": None,
    "to": None,
    "store_position": 9,
    "generated_at": "2025-01-02T03:05:00.000000Z",
}


def replacement(byte: int, index: int) -> int:
    """Another byte for position ``index``, taking turns: a low bit flipped, the case
    bit (hex "a" -> "A"), the top bit (invalid UTF-8), a line break (two lines)."""
    kind = index % 4
    new = ord("\n") if kind == 3 else byte ^ (0x01, 0x20, 0x80)[kind]
    return new if new != byte else byte ^ 0x01


def new_seed() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes_raw()


def write_bundle(
    out: Path,
    seed: bytes,
    records: dict[str, list[dict[str, Any]]] = RECORDS,
    header: dict[str, Any] = HEADER,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    writer = BundleWriter(out, seed)
    for name in FILES:
        writer.write_file(name, iter(records.get(name, [])))
    return writer.sign(header)


@pytest.fixture
def bundle(tmp_path: Path, seed: bytes) -> Path:
    out = tmp_path / "bundle"
    write_bundle(out, seed)
    return out


def fails(bundle: Path, public: Any) -> str:
    """The message of the BundleInvalid that verify must raise."""
    with pytest.raises(BundleInvalid) as raised:
        verify(bundle, public)
    return str(raised.value)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def line_of_byte(data: bytes, index: int) -> int:
    """1-based number of the line holding byte ``index`` (a line owns its newline)."""
    return data.count(b"\n", 0, index) + 1


@pytest.fixture
def tampered(bundle: Path) -> Iterator[Any]:
    """Overwrite one file of the bundle for a check; every original is restored after."""
    originals = {p.name: p.read_bytes() for p in bundle.iterdir()}

    def write(name: str, data: bytes) -> None:
        (bundle / name).write_bytes(data)

    yield write
    for name, data in originals.items():
        (bundle / name).write_bytes(data)


# --- as written --------------------------------------------------------------------------


def test_a_bundle_verifies_and_says_what_it_checked(bundle: Path, public: Any, seed: bytes) -> None:
    manifest = read_manifest(bundle)
    verified = verify(bundle, public)
    assert verified == Verified(
        records=8,
        files={name: len(RECORDS[name]) for name in FILES},
        chain_head=manifest["chain_head"],
        key_id=key_id(Ed25519PrivateKey.from_private_bytes(seed).public_key()),
        scope={"kind": "case", "id": CASE},
    )
    assert manifest["format"] == FORMAT
    assert [f["name"] for f in manifest["files"]] == list(FILES)
    assert {k: manifest[k] for k in HEADER} == HEADER
    for name in FILES:
        assert list(read_records(bundle, name)) == RECORDS[name]


def test_the_chain_is_sha256_of_the_previous_link_and_the_canonical_record(
    bundle: Path, seed: bytes
) -> None:
    """The format as documented, recomputed here without the module's helpers."""
    link = hashlib.sha256(b"casenet-audit-v1").digest()
    assert link == GENESIS
    manifest = read_manifest(bundle)
    declared = {f["name"]: f for f in manifest["files"]}
    sorted_keys = msgspec.json.Encoder(order="sorted")
    for name in FILES:
        for line, record in zip(lines_of(bundle / name), RECORDS[name], strict=True):
            body = sorted_keys.encode(record)
            link = hashlib.sha256(link + body).digest()
            assert line == b'{"link":"' + link.hex().encode() + b'","record":' + body + b"}\n"
        if RECORDS[name]:
            assert declared[name]["last_link"] == link.hex()
        assert declared[name]["records"] == len(RECORDS[name])
        digest = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
        assert declared[name]["sha256"] == digest
    assert manifest["chain_head"] == link.hex()
    assert "Café Solidarité".encode() in (bundle / "agencies.jsonl").read_bytes()  # UTF-8
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    public.verify(base64.b64decode(manifest["signature"]), canonical(unsigned))  # no raise


def test_an_empty_bundle_verifies(tmp_path: Path, seed: bytes, public: Any) -> None:
    out = tmp_path / "empty"
    write_bundle(out, seed, records={})
    verified = verify(out, public)
    assert verified.records == 0
    assert verified.files == dict.fromkeys(FILES, 0)
    assert verified.chain_head == GENESIS.hex()
    assert all((out / name).read_bytes() == b"" for name in FILES)


def resign(bundle: Path, seed: bytes, edit: Any) -> None:
    """Edit the manifest with ``edit`` and sign it again with the genuine key."""
    manifest = read_manifest(bundle)
    del manifest["signature"]
    edit(manifest)
    private = Ed25519PrivateKey.from_private_bytes(seed)
    manifest["signature"] = base64.b64encode(private.sign(canonical(manifest))).decode()
    (bundle / "manifest.json").write_bytes(canonical(manifest) + b"\n")


def resign_as_v1(bundle: Path, seed: bytes) -> None:
    """Rewrite the manifest as the first format wrote it: no per-file digests."""

    def as_v1(manifest: dict[str, Any]) -> None:
        manifest["format"] = FORMAT_V1
        for entry in manifest["files"]:
            del entry["sha256"]

    resign(bundle, seed, as_v1)


def test_a_signed_manifest_of_the_second_format_without_a_file_digest_fails(
    bundle: Path, seed: bytes, public: Any
) -> None:
    resign(bundle, seed, lambda manifest: manifest["files"][2].pop("sha256"))
    assert fails(bundle, public) == "manifest.json: consents.jsonl has no digest"


def test_a_bundle_of_the_first_format_still_verifies_link_by_link(
    bundle: Path, seed: bytes, public: Any, tampered: Any
) -> None:
    expected = verify(bundle, public)
    resign_as_v1(bundle, seed)
    assert read_manifest(bundle)["format"] == "casenet-audit/1"
    assert verify(bundle, public) == expected
    lines = lines_of(bundle / "consents.jsonl")
    changed = lines[1].replace(b"ConsentWithdrawn", b"ConsentWithdrawm")
    tampered("consents.jsonl", lines[0] + changed)
    assert fails(bundle, public).startswith("consents.jsonl line 2: the record or its link")
    tampered("consents.jsonl", lines[1])
    assert fails(bundle, public).startswith("consents.jsonl line 1:")


# --- single bytes ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in FILES if RECORDS[n]])
def test_changing_any_single_byte_of_any_record_line_fails_naming_file_and_line(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    original = (bundle / name).read_bytes()
    assert original.count(b"\n") == len(RECORDS[name])
    for index, byte in enumerate(original):
        new = replacement(byte, index)
        tampered(name, original[:index] + bytes([new]) + original[index + 1 :])
        message = fails(bundle, public)
        expected = f"{name} line {line_of_byte(original, index)}:"
        assert message.startswith(expected), (index, bytes([byte]), bytes([new]), message)


def test_changing_any_single_byte_of_the_manifest_fails_naming_it(
    bundle: Path, public: Any, tampered: Any
) -> None:
    original = (bundle / "manifest.json").read_bytes()
    assert original.endswith(b"}\n")
    assert original.count(b"\n") == 1
    for index, byte in enumerate(original[:-1]):  # the final newline is JSON whitespace
        new = replacement(byte, index)
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


# --- records deleted, added, reordered ---------------------------------------------------


@pytest.mark.parametrize("name", [n for n in FILES if RECORDS[n]])
def test_deleting_any_record_fails_naming_the_file(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    lines = lines_of(bundle / name)
    for index in range(len(lines)):
        tampered(name, b"".join(lines[:index] + lines[index + 1 :]))
        message = fails(bundle, public)
        if index < len(lines) - 1:  # the next record now stands where it did not link
            assert message.startswith(f"{name} line {index + 1}:"), message
        else:
            assert message == f"{name}: 1 record(s) missing at the end"


def chained_line(previous_link: bytes, record: dict[str, Any]) -> tuple[bytes, bytes]:
    """A line with a correct link from ``previous_link``, as a forger could make it."""
    body = canonical(record)
    link = hashlib.sha256(previous_link + body).digest()
    return b'{"link":"' + link.hex().encode() + b'","record":' + body + b"}\n", link


def links_before(bundle: Path, name: str) -> list[bytes]:
    """The chain's link before each line of ``name`` (and after its last line)."""
    link = GENESIS
    for other in FILES:
        lines = lines_of(bundle / other)
        if other == name:
            links = [link]
            for line in lines:
                links.append(bytes.fromhex(line[9:73].decode()))
            return links
        if lines:
            link = bytes.fromhex(lines[-1][9:73].decode())
    raise AssertionError(name)


@pytest.mark.parametrize("name", FILES)
def test_adding_a_record_anywhere_fails_even_with_a_correct_link(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    lines = lines_of(bundle / name)
    links = links_before(bundle, name)
    forged = {**(RECORDS[name] or RECORDS["consents.jsonl"])[0], "position": 999}
    for index in range(len(lines) + 1):  # before each line, and after the last
        line, _ = chained_line(links[index], forged)
        tampered(name, b"".join([*lines[:index], line, *lines[index:]]))
        message = fails(bundle, public)
        if index < len(lines):  # the added record links, the next one no longer does
            assert message.startswith(f"{name} line {index + 2}:"), message
        else:
            assert message.startswith(f"{name} line {index + 1}: a record was added"), message
        # A copy of an existing line, inserted there, fails too.
        if lines:
            copy = lines[min(index, len(lines) - 1)]
            tampered(name, b"".join([*lines[:index], copy, *lines[index:]]))
            assert fails(bundle, public).startswith(f"{name} line "), (index, message)


def test_an_empty_line_at_the_end_is_an_added_line(
    bundle: Path, public: Any, tampered: Any
) -> None:
    data = (bundle / "referrals.jsonl").read_bytes()
    tampered("referrals.jsonl", data + b"\n")
    assert fails(bundle, public) == "referrals.jsonl line 3: not a bundle line"


@pytest.mark.parametrize("name", [n for n in FILES if len(RECORDS[n]) >= 2])
def test_swapping_any_two_records_fails_naming_the_first(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    lines = lines_of(bundle / name)
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            swapped = list(lines)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            tampered(name, b"".join(swapped))
            assert fails(bundle, public).startswith(f"{name} line {i + 1}:")


def test_moving_a_record_to_another_file_fails(
    bundle: Path, public: Any, tampered: Any
) -> None:
    consents = lines_of(bundle / "consents.jsonl")
    disclosures = lines_of(bundle / "disclosures.jsonl")
    tampered("consents.jsonl", b"".join(consents[:-1]))
    tampered("disclosures.jsonl", b"".join([consents[-1], *disclosures]))
    assert fails(bundle, public) == "consents.jsonl: 1 record(s) missing at the end"


def test_reordered_records_with_a_rebuilt_chain_fail_at_the_first_moved(
    tmp_path: Path, bundle: Path, public: Any
) -> None:
    """A forger can rebuild every link, but not sign: the records no longer match the
    links the genuine manifest's chain implies."""
    records = {name: list(reversed(RECORDS[name])) for name in FILES}
    scratch = tmp_path / "scratch"
    write_bundle(scratch, new_seed(), records=records)
    for name in FILES:
        shutil.copy(scratch / name, bundle / name)
    # Each file's links are consistent; its last link is not the signed one.
    assert fails(bundle, public) == "agencies.jsonl: the last link does not match the manifest"


# --- files truncated or removed ----------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in FILES if RECORDS[n]])
def test_truncating_a_file_at_any_length_fails_naming_it(
    bundle: Path, public: Any, tampered: Any, name: str
) -> None:
    original = (bundle / name).read_bytes()
    ends = [i + 1 for i, byte in enumerate(original) if byte == ord("\n")]
    near_line_ends = {n + d for n in [0, *ends] for d in (-2, -1, 0, 1, 2)}
    lengths = sorted((set(range(0, len(original), 5)) | near_line_ends) & set(range(len(original))))
    for length in lengths:
        tampered(name, original[:length])
        message = fails(bundle, public)
        assert message.startswith(f"{name} line ") or message.startswith(
            f"{name}: "
        ), (length, message)
        if length and original[length - 1 : length] != b"\n":
            assert message.startswith(f"{name} line {line_of_byte(original, length - 1)}:")


def test_truncating_the_manifest_fails(bundle: Path, public: Any, tampered: Any) -> None:
    original = (bundle / "manifest.json").read_bytes()
    for length in range(0, len(original) - 1, 7):
        tampered("manifest.json", original[:length])
        assert fails(bundle, public).startswith("manifest.json")


@pytest.mark.parametrize("name", FILES)
def test_removing_any_file_fails_naming_it(bundle: Path, public: Any, name: str) -> None:
    (bundle / name).unlink()
    assert fails(bundle, public) == f"{name}: the file is missing"


def test_removing_the_manifest_fails(bundle: Path, public: Any) -> None:
    (bundle / "manifest.json").unlink()
    assert "no manifest.json" in fails(bundle, public)


# --- the manifest ------------------------------------------------------------------------


def edited(manifest: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copy: Any = msgspec.json.decode(msgspec.json.encode(manifest))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    result: dict[str, Any] = copy
    return result


def manifest_edits(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    files = manifest["files"]
    edits: list[tuple[str, dict[str, Any]]] = []
    for index, entry in enumerate(files):
        edits.append((f"{entry['name']} count +1", edited(manifest, ("files", index, "records"),
                                                           entry["records"] + 1)))
        if entry["records"]:
            edits.append((f"{entry['name']} count -1", edited(
                manifest, ("files", index, "records"), entry["records"] - 1)))
        edits.append((f"{entry['name']} last link", edited(
            manifest, ("files", index, "last_link"), "0" * 64)))
        edits.append((f"{entry['name']} digest", edited(
            manifest, ("files", index, "sha256"), hashlib.sha256(b"other").hexdigest())))
        edits.append((f"{entry['name']} renamed", edited(
            manifest, ("files", index, "name"), "other.jsonl")))
    swapped = list(files)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    edits += [
        ("files reversed", {**manifest, "files": list(reversed(files))}),
        ("files swapped", {**manifest, "files": swapped}),
        ("a file dropped", {**manifest, "files": files[:-1]}),
        ("chain head", {**manifest, "chain_head": GENESIS.hex()}),
        ("scope kind", edited(manifest, ("scope", "kind"), "all")),
        ("scope id", edited(manifest, ("scope", "id"), AGENCY_A)),
        ("scope owner", edited(manifest, ("scope", "owner_agency_id"), AGENCY_A)),
        ("store position", {**manifest, "store_position": manifest["store_position"] + 1}),
        ("from", {**manifest, "from": "2025-01-01T00:00:00.000000Z"}),
        ("to", {**manifest, "to": "2026-01-01T00:00:00.000000Z"}),
        ("generated at", {**manifest, "generated_at": "2025-01-02T03:05:00.000001Z"}),
        ("format", {**manifest, "format": "casenet-audit/3"}),
        ("format downgraded", {**manifest, "format": FORMAT_V1}),
        ("key id", {**manifest, "key_id": "0" * 16}),
        ("an extra field", {**manifest, "note": "nothing to see"}),
        ("no signature", {k: v for k, v in manifest.items() if k != "signature"}),
        ("signature of nothing", {**manifest, "signature": ""}),
        ("signature not base64", {**manifest, "signature": "!" * 88}),
    ]
    return edits


def test_editing_any_manifest_field_fails_naming_the_manifest(
    bundle: Path, public: Any, tampered: Any
) -> None:
    manifest = read_manifest(bundle)
    edits = manifest_edits(manifest)
    assert len(edits) > 30
    for what, changed in edits:
        assert changed != manifest, what
        tampered("manifest.json", canonical(changed) + b"\n")
        message = fails(bundle, public)
        assert message.startswith("manifest.json:"), (what, message)


@pytest.mark.parametrize(
    "content", [b"", b"not json", b"[]", b"null", b'"manifest"', b"42", b"{}"]
)
def test_a_manifest_that_is_not_a_signed_object_fails_in_one_line(
    bundle: Path, public: Any, tampered: Any, content: bytes
) -> None:
    tampered("manifest.json", content)
    message = fails(bundle, public)
    assert message.startswith("manifest.json"), message
    assert "\n" not in message


def test_a_bundle_signed_with_another_key_fails(tmp_path: Path, public: Any) -> None:
    other = tmp_path / "other"
    write_bundle(other, new_seed())
    assert fails(other, public) == (
        "manifest.json: the signature does not match (edited, or signed with another key)"
    )


def test_an_edited_record_with_its_chain_and_manifest_rebuilt_needs_the_key(
    tmp_path: Path, seed: bytes, public: Any
) -> None:
    """Everything but the signature is recomputable; only the private key signs."""
    records = {name: [dict(r) for r in rs] for name, rs in RECORDS.items()}
    records["consents.jsonl"][0]["sections"] = ["identity", "contact", "notes.health"]
    forged = tmp_path / "forged"
    forged_manifest = write_bundle(forged, new_seed(), records=records)
    genuine = tmp_path / "genuine"
    genuine_manifest = write_bundle(genuine, seed)
    assert forged_manifest["chain_head"] != genuine_manifest["chain_head"]
    # Forged records and chain under the genuine signature: the signature fails.
    shutil.copy(genuine / "manifest.json", forged / "manifest.json")
    assert fails(forged, public) == "consents.jsonl: the last link does not match the manifest"
    unsigned = {k: v for k, v in read_manifest(genuine).items() if k != "signature"}
    relinked = {**unsigned, "chain_head": forged_manifest["chain_head"],
                "files": forged_manifest["files"],
                "signature": genuine_manifest["signature"]}
    (forged / "manifest.json").write_bytes(canonical(relinked) + b"\n")
    assert fails(forged, public).startswith("manifest.json: the signature does not match")


def test_a_public_key_that_is_not_one_is_refused() -> None:
    for text in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(BundleInvalid, match="not a base64 Ed25519 public key"):
            load_public_key(text)
