"""Plain words for the codes that people read: a client on their consent receipt, a
data-protection officer or the client's advocate in the audit report.

One wording for both, so that a receipt and the report of the same consent say the
same thing (``notes.mental_health`` is "mental health notes" on each). Every code has
its words (a test checks the vocabularies are covered); a code without any (a value
from a later version) falls back to itself with its underscores as spaces, never to
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from casenet.domain.sections import REFERRAL

__all__ = [
    "FINDING_WORDS",
    "GIVER_WORDS",
    "HOW_TO_WITHDRAW",
    "LEGAL_BASIS_WORDS",
    "METHOD_WORDS",
    "OUTCOME_WORDS",
    "PURPOSE_WORDS",
    "SECTION_WORDS",
    "STATUS_WORDS",
    "as_sentence",
    "given_by_in_words",
    "in_words",
    "listed",
    "reader_time",
    "sections_in_words",
]

#: What each section holds, as a noun phrase that reads after "may see" or in a list.
SECTION_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "identity": "name and date of birth",
        "contact": "phone number and address",
        "needs": "the kinds of help needed",
        "summary": "summary of the situation",
        "notes.general": "general notes",
        "notes.health": "health notes",
        "notes.mental_health": "mental health notes",
        "notes.substance_use": "notes on alcohol or drug use",
        "notes.sexual_health": "sexual health notes",
        "notes.legal": "notes on legal matters",
        "notes.financial": "notes on money and benefits",
        "notes.family": "notes on family",
        REFERRAL: "the referral's reason and messages",
    }
)

#: Why a consent was given, as a phrase that answers "why?".
PURPOSE_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "referral": "to take up a referral and offer help",
        "care_coordination": "to coordinate care between the agencies involved",
    }
)

#: How a consent was recorded.
METHOD_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "verbal": "given out loud and noted by the worker",
        "written": "given in writing",
        "electronic": "given electronically",
    }
)

#: A consent's status and a referral's.
STATUS_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "active": "in force",
        "withdrawn": "withdrawn",
        "expired": "expired",
        "requested": "requested",
        "accepted": "accepted",
        "rejected": "turned down",
        "in_progress": "started",
        "on_hold": "put on hold",
        "completed": "completed",
        "failed": "ended without success",
        "cancelled": "cancelled",
    }
)

#: How a completed referral ended.
OUTCOME_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "got_help": "the client got help",
        "not_eligible": "the client was not eligible",
        "no_capacity": "the agency had no capacity",
        "could_not_contact": "the client could not be contacted",
        "no_longer_interested": "the client was no longer interested",
        "referred_elsewhere": "the client was referred elsewhere",
        "needs_client_action": "the client needs to take a step",
    }
)

#: Why an agency shared without consent (an emergency grant's legal basis, rule 2b).
LEGAL_BASIS_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "vital_interests": "to protect someone's life or health",
        "safeguarding": "to protect a child or an adult at risk of harm",
        "court_order": "because a court ordered it",
        "legal_obligation": "because the law required it",
    }
)

#: What the review of an emergency grant found.
FINDING_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "justified": "sharing without consent was justified",
        "unjustified": "sharing without consent was not justified",
    }
)

#: How a client withdraws a consent, in words for the client (on every receipt).
HOW_TO_WITHDRAW = (
    "You can withdraw this consent at any time, without giving a reason, by telling the "
    "agency that recorded it (in person, by phone or in writing). From the moment they "
    "record your withdrawal, the other agency can no longer see anything it covered. "
    "Withdrawing does not undo what was already seen; you can ask who saw what and when."
)

#: Who may consent for a client, as the client would call them ("your ...").
GIVER_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "self": "you",
        "parent": "parent",
        "guardian": "guardian",
        "legal_representative": "legal representative",
    }
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def in_words(words: Mapping[str, str], code: str) -> str:
    """The plain words for ``code``, or the code itself made readable."""
    return words.get(code) or code.replace("_", " ").replace(".", ": ")


def as_sentence(words: str) -> str:
    """``words`` with a capital first letter (the rest unchanged)."""
    return words[:1].upper() + words[1:]


def listed(words: Iterable[str]) -> str:
    """Phrases as a reader lists them: ``a``, ``a and b``, ``a, b and c``."""
    items = list(words)
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def sections_in_words(sections: Iterable[str]) -> list[str]:
    """Each section in plain words, in the order given."""
    return [in_words(SECTION_WORDS, section) for section in sections]


def reader_time(instant: datetime | str) -> str:
    """An instant as people write it, in UTC and to the minute: ``6 Dec 2026, 08:49 UTC``.

    Accepts the ISO text the audit records hold (``2026-12-06T08:49:16.973837Z``)."""
    if isinstance(instant, str):
        instant = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    at = instant.astimezone(UTC)
    return f"{at.day} {_MONTHS[at.month - 1]} {at.year}, {at.hour:02d}:{at.minute:02d} UTC"


def given_by_in_words(given_by: str, representative_name: str | None) -> str:
    """Who gave a consent, told to the client: ``you``, or ``Rosa Lopez, your guardian``
    (``your guardian, whose name was erased`` once the client's data is erased)."""
    if given_by == "self":
        return GIVER_WORDS["self"]
    relation = f"your {in_words(GIVER_WORDS, given_by)}"
    if representative_name is None:
        return f"{relation}, whose name was erased"
    return f"{representative_name}, {relation}"
