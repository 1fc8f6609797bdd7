"""Small cells of the network's figures, for any referrals at all (hypothesis): every
count below 5 of another agency is null, with what is derived from it, and its row says
so; the caller's own rows are whole; no count of 5 or more is ever withheld. And the
due times: urgent 24 hours, routine 7 days; overdue only while still requested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casenet.application.network_metrics import SMALL_CELL, figures_of
from casenet.domain.errors import IllegalTransition
from casenet.domain.referral import Referral
from casenet.infrastructure.projections.facts import normalise_time
from casenet.infrastructure.projections.network_metrics import ReferralTimesRow

AGENCIES = [UUID(int=n) for n in (1, 2, 3)]
START = datetime(2026, 1, 1, tzinfo=UTC)
COUNTS = ("received", "accepted", "rejected", "completed", "got_help", "overdue")
#: Each count, and the median derived from it.
DERIVED = {"accepted": "median_hours_to_accept", "completed": "median_hours_to_complete"}


@st.composite
def referral_rows(draw: st.DrawFn) -> ReferralTimesRow:
    requested = START + timedelta(hours=draw(st.integers(0, 1000)))
    due = requested + timedelta(hours=draw(st.sampled_from([24, 168])))
    fate = draw(st.sampled_from(["waiting", "rejected", "cancelled", "accepted", "completed"]))
    answered = requested + timedelta(hours=draw(st.integers(1, 300)))
    row = ReferralTimesRow(
        referral_id=str(uuid4()),
        to_agency_id=str(draw(st.sampled_from(AGENCIES))),
        service_type=draw(st.sampled_from(["health", "housing"])),
        requested_at=normalise_time(requested),
        response_due_at=normalise_time(due),
    )
    if fate != "waiting":
        row.answered_at = normalise_time(answered)
    if fate == "rejected":
        row.rejected_at = row.answered_at
    if fate in ("accepted", "completed"):
        row.accepted_at = row.answered_at
    if fate == "completed":
        row.completed_at = normalise_time(answered + timedelta(hours=draw(st.integers(1, 900))))
        row.outcome = draw(st.sampled_from(["got_help", "not_eligible"]))
    return row


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(referral_rows(), max_size=40), viewer=st.sampled_from([*AGENCIES, None]))
def test_every_count_below_5_of_another_agency_is_withheld_with_what_derives_from_it(
    rows: list[ReferralTimesRow], viewer: UUID | None
) -> None:
    now = START + timedelta(days=60)
    whole = {(f.agency_id, f.service_type): f for f in figures_of(rows, own_agency=None, now=now)}
    shown = figures_of(rows, own_agency=viewer, now=now)
    assert [(f.agency_id, f.service_type) for f in shown] == list(whole)
    for figures in shown:
        truth = whole[(figures.agency_id, figures.service_type)]
        true_counts = {
            name: sum(
                1
                for r in rows
                if (UUID(r.to_agency_id), r.service_type)
                == (figures.agency_id, figures.service_type)
                and _counts(r, now, name)
            )
            for name in COUNTS
        }
        own = figures.agency_id == viewer
        withheld = False
        for name, count in true_counts.items():
            if own or count >= SMALL_CELL:
                assert getattr(figures, name) == count
            else:
                assert getattr(figures, name) is None
                assert getattr(truth, name) is None  # the operator's report withholds too
                withheld = True
                if name in DERIVED:
                    assert getattr(figures, DERIVED[name]) is None
        assert figures.suppressed is withheld


def _counts(row: ReferralTimesRow, now: datetime, name: str) -> bool:
    """Whether the row counts in figure ``name`` (written apart from the code's)."""
    if name == "received":
        return True
    if name == "overdue":
        left = datetime.fromisoformat(row.answered_at) if row.answered_at else now
        return left > datetime.fromisoformat(row.response_due_at)
    if name == "got_help":
        return row.outcome == "got_help"
    return getattr(row, f"{name}_at") is not None


def test_the_median_is_of_the_hours_from_request_to_acceptance() -> None:
    rows = []
    for hours in (1, 2, 3, 10, 40):
        requested = START
        rows.append(
            ReferralTimesRow(
                referral_id=str(uuid4()),
                to_agency_id=str(AGENCIES[0]),
                service_type="health",
                requested_at=normalise_time(requested),
                response_due_at=normalise_time(requested + timedelta(hours=24)),
                answered_at=normalise_time(requested + timedelta(hours=hours)),
                accepted_at=normalise_time(requested + timedelta(hours=hours)),
            )
        )
    (figures,) = figures_of(rows, own_agency=None, now=START + timedelta(days=9))
    assert figures.median_hours_to_accept == 3.0
    assert figures.overdue is None  # one (40 hours) of 5: withheld
    assert figures.median_hours_to_complete is None


def a_referral(urgency: str) -> Referral:
    return Referral.request(
        case_id=uuid4(),
        client_id=uuid4(),
        from_agency_id=AGENCIES[0],
        to_agency_id=AGENCIES[1],
        service_type="health",
        reason="r",
        urgency=urgency,
        worker_id=uuid4(),
    )


@pytest.mark.parametrize(("urgency", "hours"), [("urgent", 24), ("routine", 168)])
def test_a_referral_is_due_after_its_urgency_allows_and_noted_overdue_once(
    urgency: str, hours: int
) -> None:
    referral = a_referral(urgency)
    assert referral.response_due_at == referral.created_on + timedelta(hours=hours)
    due = referral.response_due_at
    assert not referral.is_overdue_at(due)
    with pytest.raises(IllegalTransition):
        referral.note_overdue(now=due)
    referral.note_overdue(now=due + timedelta(seconds=1))
    assert referral.overdue_noted
    with pytest.raises(IllegalTransition):
        referral.note_overdue(now=due + timedelta(days=1))


@pytest.mark.parametrize("action", ["accept", "reject", "cancel"])
def test_a_referral_answered_is_never_overdue(action: str) -> None:
    referral = a_referral("urgent")
    side = AGENCIES[0] if action == "cancel" else AGENCIES[1]
    referral.move(action, agency_id=side, worker_id=uuid4(), reason="x")
    later = referral.response_due_at + timedelta(days=1)
    assert not referral.is_overdue_at(later)
    with pytest.raises(IllegalTransition):
        referral.note_overdue(now=later)
