"""How the audit export and the read models read stored states: timestamps, and
upcasting by the one decoder both use (``mapper.state_decoder``)."""

from __future__ import annotations

import msgspec
from eventsourcing.utils import get_topic

from casenet.domain.case import CaseNoteAdded
from casenet.infrastructure.audit_records import READERS
from casenet.infrastructure.audit_shapes import Stored
from casenet.infrastructure.mapper import state_decoder
from casenet.infrastructure.projections.facts import normalise_time, rows_to_facts


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
    decode = state_decoder(CaseNoteAdded, _Note)
    version_1 = msgspec.json.encode({"timestamp": "2025-01-02T03:04:05Z", "text": None})
    assert decode(version_1) == _Note(timestamp="2025-01-02T03:04:05Z", category="general")
    version_2 = msgspec.json.encode(
        {"timestamp": "2025-01-02T03:04:05Z", "category": "health", "class_version": 2}
    )
    assert decode(version_2) == _Note(timestamp="2025-01-02T03:04:05Z", category="health")


def test_the_read_models_and_the_audit_export_read_a_state_alike() -> None:
    """Both take the state as of the event's current version from the one decoder: a
    read model's fact of a version 1 note has the category an upcast gives it, and each
    export reader decodes with that decoder."""
    version_1 = msgspec.json.encode({"timestamp": "2025-01-02T03:04:05Z", "text": "c1ph3r"})
    row = (7, get_topic(CaseNoteAdded), "0" * 32, 2, version_1)
    (fact,) = rows_to_facts([row], frozenset({CaseNoteAdded}))
    expected = {"timestamp": "2025-01-02T03:04:05Z", "text": "c1ph3r", "category": "general"}
    assert fact.state == state_decoder(CaseNoteAdded)(version_1) == expected
    assert all(
        reader.decode is state_decoder(reader.event_type, reader.stored)
        for reader in READERS.values()
    )
