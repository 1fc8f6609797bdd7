"""The log's rows as facts: what a read model sees of an event, and time as text.

A fact is an event as stored: ids, statuses and timestamps are clear, and personal
fields stay the ciphertexts they are in the log. Nothing is decrypted here: states are
decoded by ``mapper.state_decoder``, as the audit export decodes them. Its time
is text in one normal form (``normalise_time``), so text order is time order in every
read model and on every store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from casenet.domain.aggregate import DomainEvent, event_types
from casenet.infrastructure.mapper import state_decoder
from casenet.infrastructure.raw_log import StoredRow, uuid_text

_TYPE_OF_TOPIC: dict[str, type[DomainEvent]] = {}


def event_type_of(topic: str) -> type[DomainEvent] | None:
    """The event class stored under ``topic`` (None for a topic no event has)."""
    if not _TYPE_OF_TOPIC:
        _TYPE_OF_TOPIC.update({get_topic(t): t for t in event_types()})
    return _TYPE_OF_TOPIC.get(topic)


class StoredFact(msgspec.Struct, frozen=True, gc=False):
    """One event as stored: clear fields readable, personal fields still ciphertext.

    ``at`` is the event's timestamp, normalised so that text order is time order.
    Not tracked by the cyclic garbage collector (``gc=False``: it refers to no object
    that refers back to it): a batch holds thousands of facts, and the collector
    walked every one of them at each of its passes.
    """

    position: int
    event_type: type[DomainEvent]
    aggregate_id: str
    version: int
    state: dict[str, Any]
    at: str


class _Timed(msgspec.Struct, gc=False):
    """Of a stored state, only what a fact of a ``stateless`` event needs."""

    timestamp: Any
    class_version: int = 1


_BRIEF = msgspec.json.Decoder(_Timed)


def normalise_time(value: str | datetime) -> str:
    """RFC 3339 UTC with microseconds: equal instants give equal text, order is kept.

    Total over what a store may hold: an instant whose UTC lies outside the years
    1-9999 (``9999-12-31T23:59:59-01:00``, which the code before issue 15 accepted) is
    clamped to the first or last instant there is, so a read model, an audit record
    or a query never fails on it (and text order still is time order).
    """
    if isinstance(value, str) and _NORMAL.fullmatch(value):
        return value  # the form msgspec writes a UTC instant in: already normal
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if instant.tzinfo is not None:  # "Z" is written below: the text must be UTC's
        try:
            instant = instant.astimezone(UTC)
        except OverflowError:
            offset = instant.utcoffset()
            instant = LAST_INSTANT if offset is not None and offset < _NO_OFFSET else FIRST_INSTANT
    # Not strftime: it does not pad years before 1000 to four digits.
    return (
        f"{instant.year:04d}-{instant.month:02d}-{instant.day:02d}T{instant.hour:02d}:"
        f"{instant.minute:02d}:{instant.second:02d}.{instant.microsecond:06d}Z"
    )


#: The instants an out-of-range one is clamped to (see ``normalise_time``).
FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
LAST_INSTANT = datetime.max.replace(tzinfo=UTC)
_NO_OFFSET = timedelta(0)


#: Text that ``normalise_time`` would give back unchanged (a year's first digit is not
#: 0: strftime does not pad years before 1000).
_NORMAL = re.compile(r"[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", re.ASCII)
#: Normal texts joined by newlines.
_NORMAL_RUN = re.compile(rf"(?:{_NORMAL.pattern}\n)*{_NORMAL.pattern}", re.ASCII)


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def to_fact(notification: Notification, follows: frozenset[type[DomainEvent]]) -> StoredFact | None:
    """Decode a notification the read model follows; None for the others (not decoded)."""
    facts = to_facts((notification,), follows)
    return facts[0] if facts else None


def to_facts(
    notifications: Iterable[Notification], follows: frozenset[type[DomainEvent]]
) -> list[StoredFact]:
    """Decode the notifications of a type in ``follows``, in order; skip the others."""
    return rows_to_facts(
        (
            (n.id, n.topic, str(n.originator_id), n.originator_version, n.state)
            for n in notifications
        ),
        follows,
    )


def rows_to_facts(
    rows: Iterable[StoredRow],
    follows: frozenset[type[DomainEvent]],
    stateless: frozenset[type[DomainEvent]] = frozenset(),
) -> list[StoredFact]:
    """Decode the log's rows (``raw_log.StoredRow``) of a type in ``follows``, in order;
    skip the others (not decoded). Those of a type in ``stateless`` get an empty state:
    only their time is decoded (and all of it if their class version is not the
    current one: an upcast may need every field)."""
    if not _TYPE_OF_TOPIC:
        event_type_of("")
    # Every event of a rebuild passes through this loop, so it does each step once,
    # with names bound locally: only the followed topics in the lookup, the common case
    # first (a current class version, a timestamp already normal), the rest by the
    # general functions.
    wanted = {topic: kind for topic, kind in _TYPE_OF_TOPIC.items() if kind in follows}
    decoders = {topic: state_decoder(kind) for topic, kind in wanted.items()}
    fact = StoredFact
    # Most of a log is notes, which the cases model counts without reading them: their
    # time alone decodes in under half the time of the whole state (and frees faster):
    # only ``timestamp`` and ``class_version`` are read, and a state of another version
    # is decoded whole, upcast included.
    brief_topics = {topic for topic, kind in wanted.items() if kind in stateless}
    brief = _BRIEF.decode
    # An aggregate's events come in runs: its id is written out as str(UUID) once per
    # run (from SQLite's 32 hex digits; PostgreSQL's text is that already).
    texts: dict[str, str] = {}
    facts: list[StoredFact] = []
    stamps: list[Any] = []  # each fact's timestamp as stored, checked after the loop
    append, stamped = facts.append, stamps.append
    for position, topic, stored_id, version, stored in rows:
        event_type = wanted.get(topic)
        if event_type is None:
            continue
        aggregate_id = texts.get(stored_id)
        if aggregate_id is None:
            aggregate_id = texts[stored_id] = uuid_text(stored_id)
        if topic in brief_topics and (
            (timed := brief(stored)).class_version == event_type.class_version
        ):
            state, stamp = {}, timed.timestamp
        else:
            state = decoders[topic](stored)
            stamp = state["timestamp"]
        append(fact(position, event_type, aggregate_id, version, state, stamp))
        stamped(stamp)
    if not _all_normal(stamps):  # rare: normalise those that are not
        normal = _NORMAL.fullmatch
        for at, (stamp, made) in enumerate(zip(stamps, facts, strict=True)):
            if not (type(stamp) is str and normal(stamp)):
                facts[at] = msgspec.structs.replace(made, at=normalise_time(stamp))
    return facts


def _all_normal(stamps: list[Any]) -> bool:
    """Whether every one of ``stamps`` is text that ``normalise_time`` gives back as is.

    One regular expression over them all, joined by newlines, instead of one call per
    stamp (that was 4% of a rebuild): the match makes the text pieces of 27 characters
    between newlines, and its length that there are as many as stamps, so no stamp
    holds a newline and each is one piece.
    """
    if not stamps:
        return True
    try:
        text = "\n".join(stamps)
    except TypeError:  # not all text (a datetime, say)
        return False
    return len(text) == 28 * len(stamps) - 1 and _NORMAL_RUN.fullmatch(text) is not None
