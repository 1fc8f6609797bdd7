"""Cursor pagination: ``?limit=`` (default 50, max 500) and an opaque ``?after=`` cursor."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from uuid import UUID

import msgspec

from casenet.domain.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and the cursor of the next page (None on the last)."""

    items: list[T]
    next: str | None


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def encode_cursor(*key: str) -> str:
    """An opaque cursor for the sort key of the last item of a page."""
    return base64.urlsafe_b64encode(msgspec.json.encode(list(key))).decode().rstrip("=")


#: What a part of a cursor this API gives looks like: an id, an instant in its normal
#: text, or a log position. Nothing else reaches a query: no NUL (PostgreSQL refuses it
#: in text), no number past 63 bits (no store holds it).
_CURSOR_PART = re.compile(r"[0-9A-Za-z:._-]{1,64}", re.ASCII)
_POSITION = re.compile(r"[0-9]+", re.ASCII)
_MAX_POSITION = 2**63 - 1


def decode_cursor(cursor: str | None, parts: int) -> tuple[str, ...] | None:
    """The sort key a cursor names; :class:`InvalidInput` for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        key = msgspec.json.decode(raw, type=list[str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInput("after", "is not a cursor this list gave") from None
    if len(key) != parts or not all(_valid_part(part) for part in key):
        raise InvalidInput("after", "is not a cursor this list gave")
    return tuple(key)


def _valid_part(part: str) -> bool:
    if not _CURSOR_PART.fullmatch(part):
        return False
    return not _POSITION.fullmatch(part) or int(part) <= _MAX_POSITION


class HasId(Protocol):
    @property
    def id(self) -> UUID: ...


Identified = TypeVar("Identified", bound=HasId)


def page_in_memory(
    items: list[Identified], limit: int | None, after: str | None
) -> Page[Identified]:
    """A page of a short list already loaded (a case's consents, a referral's
    messages), in its own order; the cursor is the last item's id."""
    limit = check_limit(limit)
    cursor = decode_cursor(after, 1)
    if cursor is not None:
        ids = [str(item.id) for item in items]
        items = items[ids.index(cursor[0]) + 1 :] if cursor[0] in ids else []
    return page_of(items[: limit + 1], limit, lambda item: (str(item.id),))


def page_of(rows: list[T], limit: int, key_of: Callable[[T], tuple[str, ...]]) -> Page[T]:
    """Rows were fetched with ``limit + 1``: the extra one tells there is a next page."""
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, encode_cursor(*key_of(rows[-1])))
