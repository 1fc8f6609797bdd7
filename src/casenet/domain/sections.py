"""Sections: the units of a case that a client consents to disclose."""

from __future__ import annotations

import re
from collections.abc import Iterable

from casenet.domain.errors import InvalidInput

NOTE_CATEGORIES: tuple[str, ...] = (
    "general",
    "health",
    "mental_health",
    "substance_use",
    "sexual_health",
    "legal",
    "financial",
    "family",
)

IDENTITY = "identity"
CONTACT = "contact"
NEEDS = "needs"
SUMMARY = "summary"

#: Sections that identify the client; a restricted agency never discloses them.
IDENTIFYING: frozenset[str] = frozenset({IDENTITY, CONTACT})

SECTIONS: tuple[str, ...] = (
    IDENTITY,
    CONTACT,
    NEEDS,
    SUMMARY,
    *(f"notes.{category}" for category in NOTE_CATEGORIES),
)

#: What a referral discloses to the other agency: its reason and messages. Recorded in
#: disclosures (rule 5), never a section of a case a consent could grant.
REFERRAL = "referral"

#: Every section a disclosure may name: the case's, and the referral's.
DISCLOSED_SECTIONS: tuple[str, ...] = (*SECTIONS, REFERRAL)

#: The sections of notes, one per category.
NOTE_SECTIONS: frozenset[str] = frozenset(f"notes.{category}" for category in NOTE_CATEGORIES)

_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def note_section(category: str) -> str:
    """The section a note of ``category`` belongs to."""
    return f"notes.{category}"


def check_note_category(category: str) -> None:
    if category not in NOTE_CATEGORIES:
        raise InvalidInput("category", f"must be one of {', '.join(NOTE_CATEGORIES)}")


def check_sections(sections: Iterable[str], field: str = "sections") -> tuple[str, ...]:
    """Validate and normalise a list of sections: known names, no duplicates, sorted."""
    chosen = set(sections)
    unknown = sorted(s for s in chosen if s not in SECTIONS)
    if unknown:
        raise InvalidInput(field, f"unknown section {unknown[0]!r}")
    if not chosen:
        raise InvalidInput(field, "at least one section is required")
    return tuple(s for s in SECTIONS if s in chosen)


def check_slug(value: str, field: str) -> str:
    """A short lowercase code such as a need category or a service type."""
    if not _SLUG.match(value):
        raise InvalidInput(field, "must be a lowercase code of letters, digits and _")
    return value


def check_text(value: str, field: str, *, max_length: int = 10_000) -> str:
    """A required free text: not blank, bounded."""
    if not value.strip():
        raise InvalidInput(field, "must not be blank")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    return value
