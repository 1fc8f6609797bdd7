"""A case's timeline from its records (no store: records as a bundle holds them), and the
plain words it is written in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from casenet.domain.consent import METHODS, PURPOSES
from casenet.domain.emergency import FINDINGS, LEGAL_BASES
from casenet.domain.referral import OUTCOMES, STATUSES
from casenet.domain.sections import DISCLOSED_SECTIONS
from casenet.domain.wording import (
    FINDING_WORDS,
    LEGAL_BASIS_WORDS,
    METHOD_WORDS,
    OUTCOME_WORDS,
    PURPOSE_WORDS,
    SECTION_WORDS,
    STATUS_WORDS,
    listed,
    reader_time,
)
from casenet.infrastructure.audit_timeline import CaseHistory

OWNER, GRANTEE = "a" * 8, "b" * 8
NAMES = {OWNER: "Welfare", GRANTEE: "Hospital"}


def granted(consent_id: str, at: str, position: int, until: str | None) -> dict[str, object]:
    return {
        "type": "ConsentGranted",
        "at": at,
        "position": position,
        "consent_id": consent_id,
        "case_id": "c",
        "owner_agency_id": OWNER,
        "grantee_agency_id": GRANTEE,
        "sections": ["notes.mental_health"],
        "purpose": "referral",
        "method": "verbal",
        "valid_until": until,
        "worker_id": "w1",
    }


def test_every_code_of_every_vocabulary_has_plain_words() -> None:
    assert set(SECTION_WORDS) == set(DISCLOSED_SECTIONS)
    assert set(PURPOSE_WORDS) == set(PURPOSES)
    assert set(METHOD_WORDS) == set(METHODS)
    assert set(OUTCOME_WORDS) == set(OUTCOMES)
    assert set(STATUSES) | {"active", "withdrawn", "expired"} == set(STATUS_WORDS)
    assert set(LEGAL_BASIS_WORDS) == set(LEGAL_BASES)
    assert set(FINDING_WORDS) == set(FINDINGS)


@pytest.mark.parametrize(
    ("instant", "words"),
    [
        ("2026-12-06T08:49:16.973837Z", "6 Dec 2026, 08:49 UTC"),
        ("2027-01-31T23:59:59.999999Z", "31 Jan 2027, 23:59 UTC"),
        (datetime(2026, 5, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))), "30 Apr 2026, 23:02 UTC"),
        (datetime(2026, 5, 1, 1, 2, tzinfo=UTC), "1 May 2026, 01:02 UTC"),
    ],
)
def test_times_read_as_people_write_them_in_utc(instant: datetime | str, words: str) -> None:
    assert reader_time(instant) == words


@pytest.mark.parametrize(
    ("phrases", "words"),
    [
        ([], ""),
        (["health notes"], "health notes"),
        (["health notes", "notes on family"], "health notes and notes on family"),
        (["name and date of birth", "summary", "notes on family"],
         "name and date of birth, summary and notes on family"),
    ],
)
def test_a_list_reads_as_people_write_one(phrases: list[str], words: str) -> None:
    assert listed(phrases) == words


def test_a_consent_runs_out_in_the_timeline_only_once_its_end_has_passed() -> None:
    history = CaseHistory(
        {"at": "2026-01-01T00:00:00.000000Z", "position": 1, "owner_agency_id": OWNER},
        consents=[
            granted("k1", "2026-01-02T00:00:00.000000Z", 2, "2026-01-05T00:00:00.000000Z"),
            granted("k2", "2026-01-03T00:00:00.000000Z", 3, "2026-03-01T00:00:00.000000Z"),
            granted("k3", "2026-01-04T00:00:00.000000Z", 4, "2026-01-09T00:00:00.000000Z"),
            {
                "type": "ConsentWithdrawn",
                "at": "2026-01-06T00:00:00.000000Z",
                "position": 5,
                "consent_id": "k3",
                "worker_id": "w1",
            },
        ],
        disclosures=[
            {
                "at": "2026-01-04T12:00:00.000000Z",
                "position": 6,
                "recipient_agency_id": GRANTEE,
                "worker_id": "w2",
                "sections": ["notes.mental_health"],
                "consent_ids": ["k1"],
                "purposes": ["referral"],
            }
        ],
    )
    now = "2026-02-01T00:00:00.000000Z"
    workers = {"w1": "Ana (caseworker)", "w2": "Hal (caseworker)"}
    entries = history.timeline(
        lambda a: NAMES.get(a or "", ""), lambda w: workers.get(w or "", ""), now
    )
    assert [(e.kind, e.at[:10]) for e in entries] == [
        ("case", "2026-01-01"),
        ("consent", "2026-01-02"),
        ("consent", "2026-01-03"),
        ("consent", "2026-01-04"),
        ("disclosure", "2026-01-04"),
        ("expired", "2026-01-05"),  # k1 ran out; k2's end is after now
        ("withdrawn", "2026-01-06"),  # k3 withdrawn before its end: no expiry after
    ]
    assert entries[4].what == "Hospital read mental health notes"
    assert entries[4].who == "Hal (caseworker)"
    assert entries[4].details == "Under consent 1. Why: to take up a referral and offer help."
    assert entries[5].what == "Consent 1 ran out: Hospital may no longer see mental health notes"
    assert entries[1].who == "Ana (caseworker), Welfare"
    standing = history.consent_standing(lambda a: NAMES.get(a or "", ""), now)
    assert [status for *_, status in standing] == [
        "ran out on 5 Jan 2026, 00:00 UTC",
        "in force until 1 Mar 2026, 00:00 UTC",
        "withdrawn on 6 Jan 2026, 00:00 UTC",
    ]


def emergency_created(
    grant_id: str, at: str, position: int, expires: str, due: str
) -> dict[str, object]:
    return {
        "type": "EmergencyGrantCreated",
        "at": at,
        "position": position,
        "emergency_grant_id": grant_id,
        "case_id": "c",
        "owner_agency_id": OWNER,
        "grantee_agency_id": GRANTEE,
        "sections": ["summary"],
        "basis": "vital_interests",
        "minutes": 60,
        "expires_at": expires,
        "review_due_at": due,
        "worker_id": "w1",
    }


def test_an_emergency_grant_runs_out_and_its_review_is_late_or_missing_in_the_timeline() -> None:
    history = CaseHistory(
        {"at": "2026-01-01T00:00:00.000000Z", "position": 1, "owner_agency_id": OWNER},
        emergency_grants=[
            emergency_created(
                "e1",
                "2026-01-02T00:00:00.000000Z",
                2,
                "2026-01-02T01:00:00.000000Z",
                "2026-01-05T00:00:00.000000Z",
            ),
            emergency_created(
                "e2",
                "2026-01-03T00:00:00.000000Z",
                3,
                "2026-01-03T01:00:00.000000Z",
                "2026-01-06T00:00:00.000000Z",
            ),
            {
                "type": "EmergencyGrantReviewed",
                "at": "2026-01-07T00:00:00.000000Z",
                "position": 5,
                "emergency_grant_id": "e2",
                "finding": "unjustified",
                "worker_id": "w2",
            },
        ],
        disclosures=[
            {
                "at": "2026-01-02T00:30:00.000000Z",
                "position": 4,
                "recipient_agency_id": GRANTEE,
                "worker_id": "w3",
                "sections": ["summary"],
                "consent_ids": [],
                "purposes": [],
                "emergency_grant_ids": ["e1"],
                "legal_bases": ["vital_interests"],
            }
        ],
    )
    workers = {"w1": "Ana", "w2": "Sue", "w3": "Hal"}
    entries = history.timeline(
        lambda a: NAMES.get(a or "", ""),
        lambda w: workers.get(w or "", ""),
        "2026-02-01T00:00:00.000000Z",
    )
    assert [(e.kind, e.what) for e in entries] == [
        ("case", "Case opened"),
        (
            "emergency",
            "Emergency grant 1 opened without the client's consent: Hospital may "
            "see summary of the situation",
        ),
        ("disclosure", "Hospital read summary of the situation"),
        (
            "emergency",
            "Emergency grant 1 ran out: Hospital may no longer see summary of the situation",
        ),
        (
            "emergency",
            "Emergency grant 2 opened without the client's consent: Hospital may "
            "see summary of the situation",
        ),
        (
            "emergency",
            "Emergency grant 2 ran out: Hospital may no longer see summary of the situation",
        ),
        ("review", "Emergency grant 1 was not reviewed by its due date"),
        ("review", "Emergency grant 2 reviewed: sharing without consent was not justified"),
    ]
    assert entries[1].details.startswith("Legal basis: to protect someone's life or health.")
    assert entries[1].who == "Ana, Welfare"
    assert entries[2].details == (
        "Under emergency grant 1. Why: to protect someone's life or health."
    )
    assert (entries[7].who, entries[7].details) == ("Sue, Welfare", "Reviewed after its due date.")
