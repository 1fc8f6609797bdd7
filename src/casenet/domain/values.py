"""Rules for the values a command may record: each one can be stored, projected and read.

An event is kept for ever and replayed by every read model on every store, so a value
that one of them cannot hold (a NUL in a name, which PostgreSQL text refuses; an instant
whose UTC form is past year 9999) must never be written. The API and the CLI check the
same rules at their edge (to name the field in a 422 or in one line); the aggregates
check them again, so no path can write what cannot be read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from casenet.domain.errors import InvalidInput

#: The characters no text may hold: the C0 controls but tab, newline and carriage
#: return, DEL, the C1 controls, and lone surrogates (no UTF-8 encoding exists for them).
FORBIDDEN_CHARACTERS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
_FORBIDDEN = re.compile(f"[{FORBIDDEN_CHARACTERS}]")

#: A short lowercase code (a need, a service type, an agency kind), matched whole:
#: ``fullmatch``, since ``$`` would also match before a final newline.
_SLUG = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)

#: Instants a client may send: from 1900-01-01 (inclusive) to 2200-01-01 (exclusive),
#: UTC. Far enough from datetime's limits that no offset or arithmetic overflows.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def forbidden_character(value: str) -> str | None:
    """The first character of ``value`` that no text may hold, as ``U+XXXX``; None if
    there is none."""
    found = _FORBIDDEN.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def check_characters(value: str, field: str) -> str:
    """Any text: no NUL, no control character but tab, newline and carriage return."""
    bad = forbidden_character(value)
    if bad is not None:
        raise InvalidInput(field, f"must not contain the control character {bad}")
    return value


def check_text(value: str, field: str, *, max_length: int = 10_000) -> str:
    """A required free text: not blank, bounded, no control characters."""
    if not value.strip():
        raise InvalidInput(field, "must not be blank")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    return check_characters(value, field)


def check_optional_text(value: str | None, field: str, *, max_length: int) -> str | None:
    """An optional free text: absent, or as :func:`check_text`."""
    return None if value is None else check_text(value, field, max_length=max_length)


def check_slug(value: str, field: str) -> str:
    """A short lowercase code such as a need category or a service type."""
    if not _SLUG.fullmatch(value):
        raise InvalidInput(field, "must be a lowercase code of letters, digits and _")
    return value


def check_choice(value: str, choices: Iterable[str], field: str) -> str:
    """One word of a closed vocabulary, exactly (no other case, no trailing newline)."""
    allowed = tuple(choices)
    if value not in allowed:
        raise InvalidInput(field, f"must be one of {', '.join(allowed)}")
    return value


def check_instant(value: datetime, field: str) -> datetime:
    """An instant a client sent: with an offset, within 1900-01-01 and 2200-01-01 UTC;
    returned in UTC (what every store and read model then holds)."""
    offset = value.utcoffset()
    if offset is None:
        raise InvalidInput(field, "must carry a UTC offset (e.g. Z or +02:00)")
    # Compare the wall-clock year first: converting 9999-12-31T23:59-01:00 to UTC
    # overflows. Within these years no offset (under 24 hours) can.
    if not EARLIEST.year - 1 <= value.year <= LATEST.year:
        raise InvalidInput(field, "must be between 1900-01-01 and 2200-01-01 (UTC)")
    instant = value.astimezone(UTC)
    if not EARLIEST <= instant < LATEST:
        raise InvalidInput(field, "must be between 1900-01-01 and 2200-01-01 (UTC)")
    return instant


def check_optional_instant(value: datetime | None, field: str) -> datetime | None:
    return None if value is None else check_instant(value, field)
