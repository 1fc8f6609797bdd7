"""The EmergencyGrant aggregate: DESIGN.md rule 2b as the commands enforce it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from casenet.domain.emergency import (
    EmergencyGrant,
    EmergencyGrantAlreadyReviewed,
    EmergencyGrantCreated,
    EmergencyGrantNotActive,
    EmergencyGrantReviewed,
    EmergencyGrantRevoked,
    EmergencyReviewDueNoted,
    EmergencyReviewNotDue,
)
from casenet.domain.errors import IllegalTransition, InvalidInput, NotPermitted

OWNER = UUID("00000000-0000-0000-0000-0000000000a1")
GRANTEE = UUID("00000000-0000-0000-0000-0000000000b2")
CREATOR = uuid4()
SUPERVISOR = uuid4()


def new_grant(**changes: Any) -> EmergencyGrant:
    fields: dict[str, Any] = {
        "case_id": uuid4(),
        "client_id": uuid4(),
        "owner_agency_id": OWNER,
        "recording_agency_id": OWNER,
        "grantee_agency_id": GRANTEE,
        "sections": ["summary", "identity"],
        "basis": "safeguarding",
        "justification": "Bruises on the child's arms.",
        "minutes": 1440,
        "worker_id": CREATOR,
        **changes,
    }
    return EmergencyGrant.create(**fields)


def test_a_grant_lasts_its_minutes_and_is_due_for_review_72_hours_after_creation() -> None:
    grant = new_grant(minutes=90)
    (event,) = grant.collect_events()
    assert isinstance(event, EmergencyGrantCreated)
    assert event.expires_at - event.timestamp == timedelta(minutes=90)
    assert event.review_due_at - event.timestamp == timedelta(hours=72)
    assert grant.sections == ("identity", "summary")  # normalised to SECTIONS' order
    assert grant.status_at(grant.created_at) == "active"
    assert grant.status_at(grant.expires_at - timedelta(microseconds=1)) == "active"
    assert grant.status_at(grant.expires_at) == "expired"
    assert grant.status_at(grant.created_at - timedelta(seconds=1)) == "not_yet_granted"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"basis": "hunch"}, "basis"),
        ({"basis": "safeguarding\n"}, "basis"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 4321}, "minutes"),
        ({"minutes": True}, "minutes"),
        ({"sections": []}, "sections"),
        ({"sections": ["diary"]}, "sections"),
        ({"justification": "  "}, "justification"),
        ({"justification": "a\x00b"}, "justification"),
        ({"grantee_agency_id": OWNER}, "grantee_agency_id"),
    ],
)
def test_a_grant_the_domain_cannot_accept_names_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        new_grant(**changes)
    assert refused.value.field == field


def test_the_longest_and_shortest_grants_are_accepted() -> None:
    assert new_grant(minutes=1).minutes == 1
    assert new_grant(minutes=4320).expires_at - new_grant().created_at <= timedelta(hours=72)


def test_only_the_owner_creates_revokes_and_reviews() -> None:
    with pytest.raises(NotPermitted):
        new_grant(recording_agency_id=GRANTEE)
    grant = new_grant()
    with pytest.raises(NotPermitted):
        grant.revoke(recording_agency_id=GRANTEE, worker_id=uuid4(), reason="r")
    with pytest.raises(NotPermitted):
        grant.review(
            reviewing_agency_id=GRANTEE, reviewer_worker_id=uuid4(), finding="justified", note="n"
        )
    assert grant.version == 1


def test_its_creator_may_not_review_it_and_a_second_review_is_refused() -> None:
    grant = new_grant()
    with pytest.raises(NotPermitted):
        grant.review(
            reviewing_agency_id=OWNER, reviewer_worker_id=CREATOR, finding="justified", note="n"
        )
    grant.review(
        reviewing_agency_id=OWNER, reviewer_worker_id=SUPERVISOR, finding="unjustified", note="n"
    )
    assert (grant.finding, grant.reviewer_worker_id) == ("unjustified", SUPERVISOR)
    with pytest.raises(EmergencyGrantAlreadyReviewed) as again:
        grant.review(
            reviewing_agency_id=OWNER, reviewer_worker_id=uuid4(), finding="justified", note="n"
        )
    assert isinstance(again.value, IllegalTransition)  # the API's 409
    assert grant.finding == "unjustified"
    assert [type(e) for e in grant.collect_events()] == [
        EmergencyGrantCreated,
        EmergencyGrantReviewed,
    ]


def test_a_review_needs_a_known_finding_and_a_note() -> None:
    grant = new_grant()
    for finding, note in (("fine", "n"), ("Justified", "n"), ("justified", " ")):
        with pytest.raises(InvalidInput):
            grant.review(
                reviewing_agency_id=OWNER, reviewer_worker_id=SUPERVISOR, finding=finding, note=note
            )
    assert grant.finding is None


def test_a_revoked_grant_cannot_be_revoked_again_but_is_still_reviewed() -> None:
    grant = new_grant()
    grant.revoke(recording_agency_id=OWNER, worker_id=CREATOR, reason="Police took over")
    assert grant.status_at(datetime.now(UTC)) == "revoked"
    with pytest.raises(EmergencyGrantNotActive):
        grant.revoke(recording_agency_id=OWNER, worker_id=CREATOR, reason="again")
    grant.review(
        reviewing_agency_id=OWNER, reviewer_worker_id=SUPERVISOR, finding="justified", note="ok"
    )
    assert [type(e) for e in grant.collect_events()][1:] == [
        EmergencyGrantRevoked,
        EmergencyGrantReviewed,
    ]


def test_an_expired_grant_cannot_be_revoked() -> None:
    grant = new_grant(minutes=60, now=datetime.now(UTC) - timedelta(hours=2))
    assert grant.status_at(datetime.now(UTC)) == "expired"
    with pytest.raises(EmergencyGrantNotActive):
        grant.revoke(recording_agency_id=OWNER, worker_id=CREATOR, reason="late")


def test_the_policy_sees_the_grant_as_the_aggregate_holds_it() -> None:
    grant = new_grant(basis="court_order")
    grant.revoke(recording_agency_id=OWNER, worker_id=CREATOR, reason="done")
    facts = grant.facts()
    assert (facts.grant_id, facts.legal_basis, facts.sections) == (
        grant.id,
        "court_order",
        ("identity", "summary"),
    )
    assert facts.revoked_at == grant.revoked_at
    assert not facts.is_active_at(datetime.now(UTC))


def test_an_overdue_review_is_noted_once_and_never_for_a_reviewed_grant() -> None:
    grant = new_grant(minutes=60)
    grant.collect_events()
    with pytest.raises(EmergencyReviewNotDue):  # not due yet (though expired)
        grant.note_review_due(now=grant.review_due_at - timedelta(microseconds=1))
    grant.revoke(recording_agency_id=OWNER, worker_id=CREATOR, reason="Police took over")
    grant.note_review_due(now=grant.review_due_at)  # revoked: still to be reviewed
    *_, event = grant.collect_events()
    assert isinstance(event, EmergencyReviewDueNoted)
    assert event.review_due_at == grant.review_due_at
    with pytest.raises(EmergencyReviewNotDue):
        grant.note_review_due(now=grant.review_due_at + timedelta(days=1))
    grant.review(
        reviewing_agency_id=OWNER, reviewer_worker_id=SUPERVISOR, finding="justified", note="n"
    )  # a notice is no review: the review is still made

    reviewed = new_grant()
    reviewed.review(
        reviewing_agency_id=OWNER, reviewer_worker_id=SUPERVISOR, finding="justified", note="n"
    )
    with pytest.raises(EmergencyReviewNotDue):
        reviewed.note_review_due(now=reviewed.review_due_at + timedelta(days=1))
