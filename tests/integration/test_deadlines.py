"""The deadline step on SQLite and PostgreSQL: two processes (two casenets on one store)
that run it at the same instant note each expired consent once between them, and never
a withdrawn one or one still active; the notice reads back from the log. The same for
an emergency grant's overdue review: noted once, never for a reviewed grant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from tests.support.deadlines import run_at_once

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.domain.aggregate import utcnow
from casenet.domain.consent import Consent
from casenet.domain.emergency import EmergencyGrant


def test_two_processes_note_an_expired_consent_once_and_a_withdrawn_never(
    casenet: Casenet, open_casenet: Callable[[], Casenet]
) -> None:
    agencies = casenet.agencies
    owner = agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
    grantee = agencies.register(OPERATOR_ACTOR, name="Hospital", kind="hospital")
    worker, _ = agencies.add_worker(OPERATOR_ACTOR, owner.id, name="W", role="caseworker")
    actor = Actor(owner.id, worker.id, "caseworker")
    case = casenet.cases.open_case(actor, client=ClientDetails(name="Amina"), summary="s", needs=[])
    until = utcnow() + timedelta(hours=1)

    def grant(valid_until: datetime | None = until) -> Consent:
        return casenet.consents.grant(
            actor,
            case.id,
            grantee_agency_id=grantee.id,
            sections=["identity"],
            purpose="referral",
            method="verbal",
            valid_until=valid_until,
        )

    lapsing, withdrawn, endless, later = (
        grant(),
        grant(),
        grant(None),
        grant(until + timedelta(days=1)),
    )
    casenet.consents.withdraw(actor, withdrawn.id, reason="asked")
    other = open_casenet()  # another process on the same store
    at = until + timedelta(minutes=1)
    assert run_at_once([casenet, other], at) == 1
    versions = {
        c.id: casenet.app.get(Consent, c.id).version for c in (lapsing, withdrawn, endless, later)
    }
    assert versions == {lapsing.id: 2, withdrawn.id: 2, endless.id: 1, later.id: 1}
    assert casenet.app.get(Consent, lapsing.id).expiry_noted
    assert not casenet.app.get(Consent, withdrawn.id).expiry_noted
    assert other.projections.deadlines.run(now=at + timedelta(days=2)) == 1  # ``later``
    assert casenet.projections.deadlines.run(now=at + timedelta(days=3)) == 0


def test_two_processes_note_an_overdue_review_once_and_a_reviewed_grant_never(
    casenet: Casenet, open_casenet: Callable[[], Casenet]
) -> None:
    agencies = casenet.agencies
    owner = agencies.register(OPERATOR_ACTOR, name="School", kind="school")
    grantee = agencies.register(OPERATOR_ACTOR, name="Child protection", kind="child_protection")
    creator, _ = agencies.add_worker(OPERATOR_ACTOR, owner.id, name="C", role="supervisor")
    reviewer, _ = agencies.add_worker(OPERATOR_ACTOR, owner.id, name="R", role="supervisor")
    actor = Actor(owner.id, creator.id, "supervisor")
    case = casenet.cases.open_case(actor, client=ClientDetails(name="Lena"), summary="s", needs=[])

    def grant() -> EmergencyGrant:
        return casenet.emergency_grants.create(
            actor,
            case.id,
            grantee_agency_id=grantee.id,
            sections=["summary"],
            basis="safeguarding",
            justification="Bruises",
            minutes=60,
        )

    overdue, reviewed = grant(), grant()
    casenet.emergency_grants.review(
        Actor(owner.id, reviewer.id, "supervisor"), reviewed.id, finding="justified", note="ok"
    )
    other = open_casenet()
    assert casenet.projections.deadlines.run(now=overdue.review_due_at - timedelta(seconds=1)) == 0
    at = overdue.review_due_at + timedelta(minutes=1)
    assert run_at_once([casenet, other], at) == 1
    assert casenet.app.get(EmergencyGrant, overdue.id).review_due_noted
    assert not casenet.app.get(EmergencyGrant, reviewed.id).review_due_noted
    assert other.projections.deadlines.run(now=at + timedelta(days=2)) == 0
