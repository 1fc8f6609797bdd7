"""Withdrawal and expiry take effect for every read that starts after them (rule 2).

There is no background runner in these tests: nothing keeps the read models current
but the read path itself, so each read after a withdrawal finds the read models behind
and must bring them up to date (or decide without them) before it answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import pytest

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.application.views import ClientView
from casenet.domain.aggregate import utcnow
from casenet.domain.case import Case
from casenet.domain.consent import Consent
from casenet.domain.errors import NotFound
from casenet.domain.referral import Referral


@dataclass(frozen=True)
class Scene:
    owner: Actor
    grantee: Actor
    bystander: Actor
    case: Case


def scene(casenet: Casenet) -> Scene:
    """A welfare NGO's case with a health note and a legal note; a hospital; a school."""
    actors = []
    for name in ("Welfare NGO", "Hospital", "School"):
        agency = casenet.agencies.register(OPERATOR_ACTOR, name=name, kind="ngo")
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name=f"{name} worker", role="caseworker"
        )
        actors.append(Actor(agency.id, worker.id, "caseworker"))
    owner = actors[0]
    case = casenet.cases.open_case(
        owner,
        client=ClientDetails(name="Amina Njeri", date_of_birth="1984-02-29",
                             phone="+254 700 000000", address="12 River Road"),
        summary="Job clashes with her husband's hospital appointments",
        needs=["employment", "health"],
    )
    casenet.cases.add_note(owner, case.id, category="health", text="Dialysis on Tuesdays")
    casenet.cases.add_note(owner, case.id, category="legal", text="Tenancy dispute")
    return Scene(owner, actors[1], actors[2], case)


def grant(
    casenet: Casenet, s: Scene, sections: list[str], valid_until: datetime | None = None
) -> Consent:
    assert s.grantee.agency_id is not None
    return casenet.consents.grant(
        s.owner, s.case.id, grantee_agency_id=s.grantee.agency_id, sections=sections,
        purpose="referral", method="verbal", valid_until=valid_until,
    )


def refer(casenet: Casenet, s: Scene, consent_id: UUID) -> Referral:
    assert s.grantee.agency_id is not None
    return casenet.referrals.request(
        s.owner, case_id=s.case.id, to_agency_id=s.grantee.agency_id,
        service_type="health", reason="Move the Tuesday slot",
        urgency="routine", consent_id=consent_id,
    )


def consents_lag(casenet: Casenet) -> int:
    return {s.name: s.lag for s in casenet.app.projections.status()}["consents"]


def shared_case_ids(casenet: Casenet, actor: Actor) -> list[UUID]:
    page = casenet.case_queries.shared_cases(actor, limit=100, after=None)
    return [c.case_id for c in page.items]


class WithdrawalContract:
    """Written once; each subclass names the store."""

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError("a subclass names the store")

    def test_after_withdrawal_no_read_by_the_grantee_shows_anything(
        self, casenet: Casenet
    ) -> None:
        s = scene(casenet)
        consent = grant(casenet, s, ["identity", "summary", "notes.health"])
        referral = refer(casenet, s, consent.id)
        before = casenet.case_queries.read_case(s.grantee, s.case.id)
        assert before.sections == ["identity", "summary", "notes.health"]
        assert isinstance(before.client, ClientView)
        assert before.client.name == "Amina Njeri"
        assert shared_case_ids(casenet, s.grantee) == [s.case.id]
        assert isinstance(casenet.referral_queries.read(s.grantee, referral.id).client, ClientView)

        casenet.consents.withdraw(s.owner, consent.id, reason="Client asked to stop")

        assert consents_lag(casenet) > 0, "the read model is behind: the read path must cope"
        with pytest.raises(NotFound):
            casenet.case_queries.read_case(s.grantee, s.case.id)
        assert shared_case_ids(casenet, s.grantee) == []
        view = casenet.referral_queries.read(s.grantee, referral.id)
        assert view.client is msgspec.UNSET
        assert view.id == referral.id, "the referral itself stays visible to its receiver"
        with pytest.raises(NotFound):
            casenet.case_queries.visible_case(s.grantee, s.case.id)

    def test_each_read_right_after_a_withdrawal_sees_it_whichever_read_comes_first(
        self, casenet: Casenet
    ) -> None:
        s = scene(casenet)
        reads: list[Callable[[UUID], Any]] = [
            lambda _: casenet.case_queries.read_case(s.grantee, s.case.id).sections,
            lambda _: shared_case_ids(casenet, s.grantee),
            lambda referral_id: casenet.referral_queries.read(s.grantee, referral_id).client,
        ]
        for read in reads:
            consent = grant(casenet, s, ["contact", "needs"])
            referral_id = refer(casenet, s, consent.id).id
            assert read(referral_id)
            casenet.consents.withdraw(s.owner, consent.id, reason="Withdrawn")
            assert consents_lag(casenet) > 0
            try:
                shown = read(referral_id)
            except NotFound:
                shown = None
            assert not shown, "a read after the withdrawal showed the withdrawn consent"

    def test_only_the_sections_of_the_consent_still_active_remain_visible(
        self, casenet: Casenet
    ) -> None:
        s = scene(casenet)
        withdrawn = grant(casenet, s, ["identity", "contact", "summary", "notes.legal"])
        kept = grant(casenet, s, ["needs", "notes.health"])
        referral = refer(casenet, s, withdrawn.id)
        both = casenet.case_queries.read_case(s.grantee, s.case.id)
        assert both.sections == [
            "identity", "contact", "needs", "summary", "notes.health", "notes.legal",
        ]
        assert set(both.shared_under) == {withdrawn.id, kept.id}

        casenet.consents.withdraw(s.owner, withdrawn.id, reason="Client asked to stop")

        view = casenet.case_queries.read_case(s.grantee, s.case.id)
        assert view.sections == ["needs", "notes.health"]
        assert view.shared_under == [kept.id]
        assert view.client is msgspec.UNSET
        assert view.summary is msgspec.UNSET
        assert view.needs == ["employment", "health"]
        assert isinstance(view.notes, list)
        assert [n.category for n in view.notes] == ["health"]
        shared = casenet.case_queries.shared_cases(s.grantee, limit=100, after=None).items
        assert [(c.case_id, c.sections, c.shared_under) for c in shared] == [
            (s.case.id, ["needs", "notes.health"], [kept.id])
        ]
        assert casenet.referral_queries.read(s.grantee, referral.id).client is msgspec.UNSET
        # Nobody else gained anything, and the owner still sees everything.
        with pytest.raises(NotFound):
            casenet.case_queries.read_case(s.bystander, s.case.id)
        assert len(casenet.case_queries.read_case(s.owner, s.case.id).sections) > 6

    def test_a_withdrawal_is_seen_by_another_instance_that_was_current_before_it(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        other = open_casenet()  # another API process on the same store
        s = scene(casenet)
        consent = grant(casenet, s, ["needs"])
        assert other.case_queries.read_case(s.grantee, s.case.id).sections == ["needs"]

        casenet.consents.withdraw(s.owner, consent.id, reason="Withdrawn")

        with pytest.raises(NotFound):
            other.case_queries.read_case(s.grantee, s.case.id)
        assert shared_case_ids(other, s.grantee) == []

    def test_an_expired_consent_grants_nothing_and_no_event_marks_it(
        self, casenet: Casenet
    ) -> None:
        s = scene(casenet)
        valid_until = utcnow() + timedelta(seconds=1.5)
        consent = grant(casenet, s, ["needs", "summary"], valid_until=valid_until)
        lasting = grant(casenet, s, ["notes.health"])
        _, now = casenet.case_queries.visible_case(s.grantee, s.case.id)
        assert now.sections == ("needs", "summary", "notes.health")
        head = casenet.app.projections.head()

        _, at_expiry = casenet.case_queries.visible_case(s.grantee, s.case.id, at=valid_until)
        assert at_expiry.sections == ("notes.health",)
        assert at_expiry.consent_ids == (lasting.id,)
        just_before = valid_until - timedelta(microseconds=1)
        _, before = casenet.case_queries.visible_case(s.grantee, s.case.id, at=just_before)
        assert before.sections == ("needs", "summary", "notes.health")

        time.sleep(max(0.0, (valid_until - utcnow()).total_seconds()) + 0.05)

        view = casenet.case_queries.read_case(s.grantee, s.case.id)
        assert view.sections == ["notes.health"]
        assert view.shared_under == [lasting.id]
        shared = casenet.case_queries.shared_cases(s.grantee, limit=100, after=None).items
        assert [c.shared_under for c in shared] == [[lasting.id]]
        reloaded = casenet.app.get(Consent, consent.id)
        assert (reloaded.version, reloaded.withdrawn_at) == (1, None), "expiry is not an event"
        assert [
            n for n in casenet.app.recorder.select_notifications(start=head + 1, limit=1000)
            if str(n.originator_id) == str(consent.id)
        ] == []
        access = casenet.case_queries.access(
            Actor(s.owner.agency_id, s.owner.worker_id, "supervisor"), s.case.id, None
        )
        assert [(g.agency_id, g.sections) for g in access.grants][1:] == [
            (s.grantee.agency_id, ["notes.health"])
        ]

    def test_a_consent_that_expired_alone_hides_the_case(self, casenet: Casenet) -> None:
        s = scene(casenet)
        valid_until = utcnow() + timedelta(seconds=1)
        consent = grant(casenet, s, ["needs"], valid_until=valid_until)
        referral = refer(casenet, s, consent.id)
        assert shared_case_ids(casenet, s.grantee) == [s.case.id]

        time.sleep(max(0.0, (valid_until - utcnow()).total_seconds()) + 0.05)

        with pytest.raises(NotFound):
            casenet.case_queries.read_case(s.grantee, s.case.id)
        assert shared_case_ids(casenet, s.grantee) == []
        assert casenet.referral_queries.read(s.grantee, referral.id).client is msgspec.UNSET


class TestSQLite(WithdrawalContract):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgres(WithdrawalContract):
    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url
