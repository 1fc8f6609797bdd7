"""The closed vocabulary of needs: what a client needs help with (a case's ``needs``)
and what an agency offers (its services' ``type``, a referral's ``service_type``).

One list for both, so a need can be matched to the agencies that serve it. The codes
follow the social-determinants-of-health domains that 211 helplines and screening tools
(AHC-HRSN, PRAPARE) use, at the grain an agency's caseworker refers at.

Only commands are checked against it: events recorded with other codes (before this
vocabulary existed) still replay and read as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from casenet.domain.values import check_choice

#: Every need, with what it covers (the API's documentation and README repeat these).
NEEDS: Mapping[str, str] = MappingProxyType(
    {
        "food": "Enough to eat: food banks, meals, grocery and nutrition benefits.",
        "housing": "A safe place to live: shelter, rent help, eviction prevention, finding a home.",
        "utilities": "Heating, electricity, water, phone or internet kept on; bill arrears.",
        "income": "Money to live on: benefits, cash assistance, debt and budgeting advice.",
        "employment": "Finding or keeping work: job search, training, rights at work.",
        "education": "School, adult learning, literacy and language classes.",
        "health": "Physical health care: a doctor, medicines, dental care, maternity care.",
        "mental_health": "Counselling, therapy, psychiatric care, crisis support.",
        "substance_use": "Alcohol or drug treatment, harm reduction, recovery support.",
        "sexual_health": "Contraception, testing and treatment, sexual and reproductive care.",
        "disability": "Support, equipment and benefits for living with a disability.",
        "elder_care": "Care for older people: home care, day centres, residential care.",
        "childcare": "Day care, after-school care, childminders.",
        "family_support": "Parenting support, family mediation, help for carers.",
        "safety": "Protection from violence or abuse: domestic-violence services, refuges.",
        "legal": "Legal advice and representation (housing, family, criminal, consumer).",
        "immigration": "Residence status, asylum, citizenship and refugee support.",
        "transportation": "Getting to services and work: travel passes, rides, mobility aids.",
        "clothing": "Clothes, shoes and household goods.",
        "social_connection": "Loneliness and isolation: befriending, community and peer groups.",
    }
)
NEED_CODES: tuple[str, ...] = tuple(NEEDS)


def check_need(value: str, field: str) -> str:
    """One need of :data:`NEEDS`, exactly (422 listing them otherwise)."""
    return check_choice(value, NEED_CODES, field)


def needs_described() -> str:
    """The vocabulary in words, one ``code: what it covers`` per line."""
    return "\n".join(f"- `{code}`: {words}" for code, words in NEEDS.items())


def word_of(words: tuple[str, ...], example: str | None = None, **meta: Any) -> msgspec.Meta:
    """The annotation of a field that holds one word of ``words``: the API checks a
    request's value against it (422 listing the words) and documents it as an ``enum``
    (``casenet.api.docs``)."""
    examples = [example or words[0]]
    return msgspec.Meta(max_length=64, examples=examples, extra={"vocabulary": words}, **meta)
