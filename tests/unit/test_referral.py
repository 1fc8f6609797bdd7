"""A referral between two agencies, followed from request to outcome (API.md, Referrals)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from casenet.domain.aggregate import Aggregate, project_aggregate
from casenet.domain.errors import IllegalTransition, InvalidInput, NotPermitted
from casenet.domain.referral import (
    Referral,
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralFailed,
    ReferralMessagePosted,
    ReferralPutOnHold,
    ReferralRejected,
    ReferralRequested,
    ReferralStarted,
)

REFERRING = uuid4()
RECEIVING = uuid4()
THIRD = uuid4()
CASE = uuid4()
CLIENT = uuid4()
WORKER = uuid4()

STATUSES = (
    "requested",
    "accepted",
    "rejected",
    "in_progress",
    "on_hold",
    "completed",
    "failed",
    "cancelled",
)
ACTIONS = ("accept", "reject", "start", "hold", "complete", "fail", "cancel")
OUTCOMES = (
    "got_help",
    "not_eligible",
    "no_capacity",
    "could_not_contact",
    "no_longer_interested",
    "referred_elsewhere",
    "needs_client_action",
)

#: The lifecycle of API.md, written out: (status, action) -> status afterwards.
ALLOWED = {
    ("requested", "accept"): "accepted",
    ("requested", "reject"): "rejected",
    ("requested", "cancel"): "cancelled",
    ("accepted", "start"): "in_progress",
    ("accepted", "hold"): "on_hold",
    ("accepted", "cancel"): "cancelled",
    ("in_progress", "hold"): "on_hold",
    ("on_hold", "start"): "in_progress",
    ("in_progress", "complete"): "completed",
    ("in_progress", "fail"): "failed",
    ("in_progress", "cancel"): "cancelled",
}
EVENT_OF = {
    "accept": ReferralAccepted,
    "reject": ReferralRejected,
    "start": ReferralStarted,
    "hold": ReferralPutOnHold,
    "complete": ReferralCompleted,
    "fail": ReferralFailed,
    "cancel": ReferralCancelled,
}
#: How to reach each status from ``requested``.
PATH_TO = {
    "requested": [],
    "accepted": ["accept"],
    "rejected": ["reject"],
    "in_progress": ["accept", "start"],
    "on_hold": ["accept", "hold"],
    "completed": ["accept", "start", "complete"],
    "failed": ["accept", "start", "fail"],
    "cancelled": ["cancel"],
}
NEEDS_REASON = ("reject", "hold", "fail", "cancel")


def state(value: Any) -> Any:
    """Everything an aggregate holds, as comparable plain values (for replay checks)."""
    if isinstance(value, Aggregate):
        return {k: state(v) for k, v in vars(value).items() if k != "_pending_events"}
    if isinstance(value, list | tuple):
        return [state(v) for v in value]
    if type(value).__module__.startswith("casenet.") and hasattr(value, "__slots__"):
        return {k: state(getattr(value, k)) for k in value.__slots__}
    return value


def request(**overrides: Any) -> Referral:
    fields: dict[str, Any] = {
        "case_id": CASE,
        "client_id": CLIENT,
        "from_agency_id": REFERRING,
        "to_agency_id": RECEIVING,
        "service_type": "health",
        "reason": "Appointments clash with her job",
        "urgency": "routine",
        "worker_id": WORKER,
    }
    fields.update(overrides)
    return Referral.request(**fields)


def side_of(action: str) -> UUID:
    return REFERRING if action == "cancel" else RECEIVING


def take(referral: Referral, action: str, agency: UUID | None = None, **fields: Any) -> None:
    """Take ``action`` as ``agency`` (by default the side the API names) with valid input."""
    if action in NEEDS_REASON:
        fields.setdefault("reason", f"reason to {action}")
    if action == "complete":
        fields.setdefault("outcome", "got_help")
    agency_id = side_of(action) if agency is None else agency
    referral.move(action, agency_id=agency_id, worker_id=WORKER, **fields)


def referral_in(status: str) -> Referral:
    referral = request()
    for action in PATH_TO[status]:
        take(referral, action)
    referral.collect_events()
    assert referral.status == status
    return referral


def test_requesting_records_referral_requested_and_starts_the_history() -> None:
    consent = uuid4()
    referral = request(urgency="urgent", consent_id=consent)

    [event] = referral.collect_events()

    assert type(event) is ReferralRequested
    assert (event.originator_id, event.originator_version) == (referral.id, 1)
    assert (event.case_id, event.client_id) == (CASE, CLIENT)
    assert (event.from_agency_id, event.to_agency_id) == (REFERRING, RECEIVING)
    assert (event.service_type, event.urgency) == ("health", "urgent")
    assert (event.reason, event.consent_id, event.worker_id) == (
        "Appointments clash with her job",
        consent,
        WORKER,
    )
    assert (referral.status, referral.version, referral.messages) == ("requested", 1, [])
    assert [(h.status, h.agency_id, h.worker_id) for h in referral.history] == [
        ("requested", REFERRING, WORKER)
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"to_agency_id": REFERRING}, "to_agency_id"),
        ({"urgency": "asap"}, "urgency"),
        ({"service_type": "Hospital Social Work"}, "service_type"),
        ({"reason": "   "}, "reason"),
    ],
    ids=["to_itself", "unknown_urgency", "malformed_service_type", "blank_reason"],
)
def test_a_referral_with_invalid_terms_is_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        request(**overrides)
    assert raised.value.field == field


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("status", STATUSES)
def test_the_lifecycle_allows_exactly_the_transitions_of_the_api(status: str, action: str) -> None:
    referral = referral_in(status)
    history = len(referral.history)

    if (status, action) in ALLOWED:
        take(referral, action)
        [event] = referral.collect_events()
        assert type(event) is EVENT_OF[action]
        assert (event.originator_version, event.client_id) == (len(PATH_TO[status]) + 2, CLIENT)
        assert (event.agency_id, event.worker_id) == (side_of(action), WORKER)
        assert referral.status == ALLOWED[status, action]
        assert referral.version == len(PATH_TO[status]) + 2
        assert len(referral.history) == history + 1
        assert referral.history[-1].status == ALLOWED[status, action]
        assert referral.history[-1].at == event.timestamp
    else:
        with pytest.raises(IllegalTransition) as raised:
            take(referral, action)
        assert (raised.value.status, raised.value.action) == (status, action)
        assert referral.collect_events() == []
        assert referral.status == status
        assert referral.version == len(PATH_TO[status]) + 1
        assert len(referral.history) == history


@pytest.mark.parametrize(("status", "action"), sorted(ALLOWED))
def test_an_action_by_the_wrong_agency_is_not_permitted_and_records_nothing(
    status: str, action: str
) -> None:
    wrong_side = RECEIVING if action == "cancel" else REFERRING
    for agency in (wrong_side, THIRD):
        referral = referral_in(status)
        with pytest.raises(NotPermitted):
            take(referral, action, agency)
        assert referral.collect_events() == []
        assert (referral.status, referral.version) == (status, len(PATH_TO[status]) + 1)


@pytest.mark.parametrize("action", NEEDS_REASON)
@pytest.mark.parametrize("reason", [None, "", " \t"])
def test_reject_hold_fail_and_cancel_require_a_reason(action: str, reason: str | None) -> None:
    status = next(s for (s, a) in ALLOWED if a == action)
    referral = referral_in(status)

    with pytest.raises(InvalidInput) as raised:
        take(referral, action, reason=reason)

    assert raised.value.field == "reason"
    assert referral.collect_events() == []
    assert referral.status == status


@pytest.mark.parametrize("action", NEEDS_REASON)
def test_the_reason_given_is_recorded_on_the_event(action: str) -> None:
    status = next(s for (s, a) in ALLOWED if a == action)
    referral = referral_in(status)

    take(referral, action, reason="the client asked us to")

    [event] = referral.collect_events()
    assert isinstance(event, EVENT_OF[action])
    assert event.reason == "the client asked us to"


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_completing_records_the_outcome_and_note(outcome: str) -> None:
    referral = referral_in("in_progress")

    take(referral, "complete", outcome=outcome, note="appointment moved to Tuesdays")

    [event] = referral.collect_events()
    assert type(event) is ReferralCompleted
    assert (event.outcome, event.note) == (outcome, "appointment moved to Tuesdays")
    assert (referral.status, referral.outcome) == ("completed", outcome)
    assert referral.outcome_note == "appointment moved to Tuesdays"
    assert referral.history[-1].outcome == outcome


@pytest.mark.parametrize(
    "outcome", [None, "", "GOT_HELP", "got help", "helped", "completed", "got_help "]
)
def test_completing_with_an_outcome_not_in_the_vocabulary_is_invalid_input_listing_it(
    outcome: str | None,
) -> None:
    referral = referral_in("in_progress")

    with pytest.raises(InvalidInput) as refused:
        take(referral, "complete", outcome=outcome)

    assert refused.value.field == "outcome"
    assert all(code in refused.value.message for code in OUTCOMES)

    assert referral.collect_events() == []
    assert (referral.status, referral.outcome, referral.version) == ("in_progress", None, 3)


def test_an_unknown_action_is_invalid_input() -> None:
    referral = referral_in("requested")

    with pytest.raises(InvalidInput):
        referral.move("escalate", agency_id=RECEIVING, worker_id=WORKER)

    assert referral.collect_events() == []


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("agency", [REFERRING, RECEIVING], ids=["referring", "receiving"])
def test_either_party_may_message_in_every_status(status: str, agency: UUID) -> None:
    referral = referral_in(status)
    version = referral.version

    message = referral.post_message(agency_id=agency, worker_id=WORKER, text="Any news?")

    [event] = referral.collect_events()
    assert type(event) is ReferralMessagePosted
    assert (event.message_id, event.agency_id, event.worker_id) == (message.id, agency, WORKER)
    assert (event.client_id, event.text) == (CLIENT, "Any news?")
    assert referral.messages == [message]
    assert (referral.status, referral.version) == (status, version + 1)


def test_a_third_agency_may_not_message_on_a_referral() -> None:
    referral = referral_in("in_progress")

    with pytest.raises(NotPermitted):
        referral.post_message(agency_id=THIRD, worker_id=WORKER, text="Hello")

    assert referral.collect_events() == []
    assert (referral.messages, referral.version) == ([], 3)


def test_a_blank_message_is_refused() -> None:
    referral = referral_in("requested")

    with pytest.raises(InvalidInput):
        referral.post_message(agency_id=RECEIVING, worker_id=WORKER, text="  ")

    assert referral.collect_events() == []


def test_a_referral_from_request_to_outcome_rebuilds_to_the_same_state() -> None:
    """The story of DESIGN.md: the hospital moves the appointment and closes the loop."""
    referral = request()
    take(referral, "accept")
    referral.post_message(agency_id=RECEIVING, worker_id=uuid4(), text="Which days suit her?")
    referral.post_message(agency_id=REFERRING, worker_id=WORKER, text="Tuesdays")
    take(referral, "start")
    take(referral, "hold", reason="waiting for the doctor")
    take(referral, "start")
    take(referral, "complete", outcome="got_help", note="moved to Tuesdays")
    events = referral.collect_events()

    rebuilt: Referral | None = project_aggregate(None, events)

    assert [e.originator_version for e in events] == list(range(1, 9))
    assert type(rebuilt) is Referral
    assert state(rebuilt) == state(referral)
    assert [h.status for h in rebuilt.history] == [
        "requested",
        "accepted",
        "in_progress",
        "on_hold",
        "in_progress",
        "completed",
    ]
    assert [m.text for m in rebuilt.messages] == ["Which days suit her?", "Tuesdays"]
