"""How the audit export reads stored states: timestamps and upcasting."""

from __future__ import annotations

import msgspec

from casenet.domain.case import CaseNoteAdded
from casenet.infrastructure.audit_records import decoding
from casenet.infrastructure.audit_shapes import Stored
from casenet.infrastructure.projections.facts import normalise_time


def test_a_timestamp_reads_as_normalise_time_writes_it() -> None:
    for stored in (
        "2025-01-02T03:04:05.000006Z",  # as msgspec writes UTC: used as is
        "2025-01-02T03:04:05Z",  # no microseconds
        "2025-01-02T04:04:05.5+01:00",  # another offset
        "2025-01-02T03:04:05.000006+00:00",
    ):
        assert Stored(timestamp=stored).at == normalise_time(stored)
    assert Stored(timestamp="2025-01-02T03:04:05Z").at == "2025-01-02T03:04:05.000000Z"
    assert Stored(timestamp="2025-01-02T04:04:05+01:00").at == "2025-01-02T03:04:05.000000Z"


class _Note(Stored):
    category: str


def test_a_later_event_version_is_upcast_before_it_is_read() -> None:
    assert CaseNoteAdded.class_version == 2  # version 1 notes had no category
    decode = decoding(CaseNoteAdded, _Note)
    version_1 = msgspec.json.encode({"timestamp": "2025-01-02T03:04:05Z", "text": None})
    assert decode(version_1) == _Note(timestamp="2025-01-02T03:04:05Z", category="general")
    version_2 = msgspec.json.encode(
        {"timestamp": "2025-01-02T03:04:05Z", "category": "health", "class_version": 2}
    )
    assert decode(version_2) == _Note(timestamp="2025-01-02T03:04:05Z", category="health")
