"""Sections: the units of a case that a client consents to disclose."""

from __future__ import annotations

from collections.abc import Iterable

from casenet.domain.errors import InvalidInput
from casenet.domain.values import check_slug, check_text

__all__ = [
    "CONTACT",
    "IDENTIFYING",
    "IDENTITY",
    "NEEDS",
    "NOTE_CATEGORIES",
    "NOTE_SECTIONS",
    "SECTIONS",
    "SUMMARY",
    "check_note_category",
    "check_sections",
    "check_slug",
    "check_text",
    "note_section",
]

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
        raise InvalidInput(
            field, f"unknown section {unknown[0][:64]!r}: must be one of {', '.join(SECTIONS)}"
        )
    if not chosen:
        raise InvalidInput(field, "at least one section is required")
    return tuple(s for s in SECTIONS if s in chosen)
