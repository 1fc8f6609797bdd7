"""The working day's rules for a stale read (benchmarks/_workday_ledger.py): a read must
show every write that answered before it started, may show or not one still in flight,
and must not show a case whose every consent was withdrawn before it started."""

from __future__ import annotations

from typing import Any

from benchmarks._workday_ledger import Consent, Ledger, Referral

OWNER, GRANTEE = 0, 1


def view(version: int, notes: list[str], shared_under: list[str] | None = None) -> dict[str, Any]:
    return {"version": version, "notes": [{"id": i} for i in notes], "shared_under": shared_under}


def test_an_owner_read_must_show_each_note_that_answered_before_it_started() -> None:
    ledger = Ledger(2)
    case = ledger.case_opened("case-1", OWNER, at=1.0)
    ledger.note_added(case, "note-1", version=2, at=2.0)
    ledger.note_added(case, "note-2", version=3, at=5.0)  # answered after the read started

    assert ledger.case_misses(case, view(2, ["note-1"]), started=3.0) is None
    assert ledger.case_misses(case, view(1, []), started=3.0) is not None
    assert ledger.case_misses(case, view(3, ["note-1"]), started=6.0) is not None
    assert ledger.acknowledged == [
        ("case", "case-1", 1, OWNER),
        ("case", "case-1", 2, OWNER),
        ("case", "case-1", 3, OWNER),
    ]


def grant(ledger: Ledger, consent_id: str, at: float) -> Consent:
    ledger.grants_sent[("case-1", GRANTEE)] += 1
    consent = Consent(consent_id, "case-1", OWNER, GRANTEE, granted_at=at)
    ledger.consent_granted(consent)
    return consent


def test_a_grantee_must_see_a_case_under_a_consent_that_answered_and_not_after_withdrawal() -> None:
    ledger = Ledger(2)
    case = ledger.case_opened("case-1", OWNER, at=1.0)
    ledger.note_added(case, "note-1", version=2, at=1.5)
    consent = grant(ledger, "consent-1", at=2.0)

    # Before the grant answered, either answer is right; after it, a 404 is stale.
    assert ledger.shared_case_misses("case-1", GRANTEE, 404, None, started=1.9) is None
    assert ledger.shared_case_misses("case-1", GRANTEE, 404, None, started=3.0) is not None
    shown = view(2, ["note-1"], ["consent-1"])
    assert ledger.shared_case_misses("case-1", GRANTEE, 200, shown, started=3.0) is None
    without_note = view(2, [], ["consent-1"])
    assert ledger.shared_case_misses("case-1", GRANTEE, 200, without_note, 3.0) is not None

    # A withdrawal in flight: nothing is expected either way.
    consent.withdraw_sent = 4.0
    assert ledger.shared_case_misses("case-1", GRANTEE, 404, None, started=4.5) is None
    assert ledger.shared_case_misses("case-1", GRANTEE, 200, shown, started=4.5) is None
    # Answered: the case must be gone from a read that starts after it.
    ledger.consent_withdrawn(consent, version=2, at=5.0)
    assert ledger.shared_case_misses("case-1", GRANTEE, 200, shown, started=6.0) is not None
    assert ledger.shared_list_misses(GRANTEE, {"case-1"}, started=6.0) is not None
    assert ledger.shared_list_misses(GRANTEE, set(), started=6.0) is None

    # A new grant sent but not answered: the case may be shown again.
    ledger.grants_sent[("case-1", GRANTEE)] += 1
    assert ledger.shared_case_misses("case-1", GRANTEE, 200, shown, started=7.0) is None


def test_a_referral_must_be_in_the_inbox_and_the_feed_once_it_answered() -> None:
    ledger = Ledger(2)
    ledger.case_opened("case-1", OWNER, at=1.0)
    referral = Referral("referral-1", "case-1", OWNER, GRANTEE, requested_at=2.0)
    ledger.referral_requested(referral)

    assert ledger.inbox_misses(GRANTEE, set(), started=1.5) is None
    assert ledger.inbox_misses(GRANTEE, set(), started=3.0) is not None
    assert ledger.inbox_misses(GRANTEE, {"referral-1"}, started=3.0) is None
    referral.accept_sent = 4.0  # accepted since: it may have left the requested inbox
    assert ledger.inbox_misses(GRANTEE, set(), started=5.0) is None

    assert ledger.feed_misses(GRANTEE, started=3.0) is not None
    ledger.feeds[GRANTEE].add(
        {"id": "item-1", "type": "referral_requested", "referral_id": "referral-1"}
    )
    assert ledger.feed_misses(GRANTEE, started=3.0) is None
    consent = grant(ledger, "consent-1", at=4.0)
    ledger.consent_withdrawn(consent, version=2, at=5.0)
    ledger.feeds[GRANTEE].add(
        {"id": "item-2", "type": "consent_granted", "consent_id": "consent-1"}
    )
    assert ledger.feed_misses(GRANTEE, started=4.5) is None
    assert ledger.feed_misses(GRANTEE, started=6.0) is not None  # the withdrawal's item


def test_stale_reads_are_counted_per_operation_with_a_few_samples() -> None:
    ledger = Ledger(1)
    for n in range(30):
        ledger.stale("read_case", f"case {n}")
    assert ledger.stale_reads == {"read_case": 30}
    assert len(ledger.stale_samples) == 20
