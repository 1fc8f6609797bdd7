"""The referral lifecycle, driven at random by either agency (or a stranger) against a model.

The model is the lifecycle of API.md written out independently of the code's table.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from casenet.domain.aggregate import project_aggregate
from casenet.domain.errors import DomainError, IllegalTransition, InvalidInput, NotPermitted
from casenet.domain.referral import Referral
from casenet.domain.values import forbidden_character

#: (status, action) -> status afterwards; any other pair is an illegal transition.
MODEL = {
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
#: Who may take each action: cancel is the referring agency's, the rest the receiver's.
SIDE = {
    "accept": "receiving",
    "reject": "receiving",
    "start": "receiving",
    "hold": "receiving",
    "complete": "receiving",
    "fail": "receiving",
    "cancel": "referring",
}
EVENT_NAME = {
    "accept": "ReferralAccepted",
    "reject": "ReferralRejected",
    "start": "ReferralStarted",
    "hold": "ReferralPutOnHold",
    "complete": "ReferralCompleted",
    "fail": "ReferralFailed",
    "cancel": "ReferralCancelled",
}
VALID_OUTCOMES = frozenset(
    {
        "got_help",
        "not_eligible",
        "no_capacity",
        "could_not_contact",
        "no_longer_interested",
        "referred_elsewhere",
        "needs_client_action",
    }
)
#: A way to each status from ``requested``, through steps the model allows.
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
PARTIES = ("referring", "receiving", "third")

outcomes = st.one_of(
    st.sampled_from(sorted(VALID_OUTCOMES)),
    st.sampled_from(["", "GOT_HELP", "got help", "success", "completed"]),
    st.text(max_size=20),
    st.none(),
)
notes = st.none() | st.sampled_from(["moved to Tuesdays", "called twice"])
# Texts the domain accepts (no control characters: see test_values.py for the others).
message_texts = st.text(min_size=1, max_size=40).filter(
    lambda text: text.strip() != "" and forbidden_character(text) is None
)


class ReferralLifecycle(RuleBasedStateMachine):
    """One referral; every step is an action or a message by one of three agencies."""

    def __init__(self) -> None:
        super().__init__()
        self.agency = {party: uuid4() for party in PARTIES}
        self.worker = {party: uuid4() for party in PARTIES}
        self.referral = Referral.request(
            case_id=uuid4(),
            client_id=uuid4(),
            from_agency_id=self.agency["referring"],
            to_agency_id=self.agency["receiving"],
            service_type="housing",
            reason="Facing eviction",
            urgency="urgent",
            worker_id=self.worker["referring"],
        )
        self.events = self.referral.collect_events()
        self.status = "requested"
        self.transitions = 0
        self.messages = 0
        self.outcome: tuple[str | None, str | None] = (None, None)
        #: (status, agency, worker, outcome) for each step of the history, as the model sees it.
        self.history: list[tuple[str, UUID, UUID, str | None]] = [
            ("requested", self.agency["referring"], self.worker["referring"], None)
        ]

    def expected_error(
        self, action: str, party: str, outcome: str | None
    ) -> type[DomainError] | None:
        """The error the rules demand for this action, or None when it must succeed."""
        # Who may act is checked before whether the status allows it.
        if party != SIDE[action]:
            return NotPermitted
        if (self.status, action) not in MODEL:
            return IllegalTransition
        if action == "complete" and outcome not in VALID_OUTCOMES:
            return InvalidInput  # a word outside the vocabulary: 422 (issue 17)
        return None

    def assert_nothing_recorded(self, version: int) -> None:
        assert self.referral.collect_events() == []
        assert (self.referral.status, self.referral.version) == (self.status, version)

    @initialize(start=st.sampled_from(sorted(PATH_TO)))
    def walk_to_a_starting_status(self, start: str) -> None:
        """Start anywhere in the lifecycle: random walks from ``requested`` end early."""
        for action in PATH_TO[start]:
            self.take_action(action, SIDE[action], "got_help", None)
        assert self.status == start

    # Attempts by the wrong party, or of an action the status forbids, only ever fail;
    # this rule takes a step the model allows, to keep the walk moving through the lifecycle.
    @rule(data=st.data(), outcome=outcomes, note=notes)
    def act_as_the_side_whose_action_it_is(
        self, data: st.DataObject, outcome: str | None, note: str | None
    ) -> None:
        allowed = sorted(action for (status, action) in MODEL if status == self.status)
        # A final status allows nothing: then any action, which must fail.
        action = data.draw(st.sampled_from(allowed or sorted(SIDE)), label="action")
        self.take_action(action, SIDE[action], outcome, note)

    @rule(
        action=st.sampled_from(sorted(SIDE)),
        party=st.sampled_from(PARTIES),
        outcome=outcomes,
        note=notes,
    )
    def act_as_any_agency(
        self, action: str, party: str, outcome: str | None, note: str | None
    ) -> None:
        self.take_action(action, party, outcome, note)

    def take_action(self, action: str, party: str, outcome: str | None, note: str | None) -> None:
        version = self.referral.version
        error = self.expected_error(action, party, outcome)

        def act() -> None:
            self.referral.move(
                action,
                agency_id=self.agency[party],
                worker_id=self.worker[party],
                reason=f"reason to {action}",
                outcome=outcome,
                note=note,
            )

        if error is not None:
            with pytest.raises(error):
                act()
            self.assert_nothing_recorded(version)
            return
        act()
        [event] = self.referral.collect_events()
        assert type(event).__name__ == EVENT_NAME[action]
        assert event.originator_version == version + 1
        self.events.append(event)
        self.status = MODEL[self.status, action]
        self.transitions += 1
        recorded_outcome = outcome if action == "complete" else None
        if action == "complete":
            self.outcome = (outcome, note)
        self.history.append((self.status, self.agency[party], self.worker[party], recorded_outcome))

    @rule(party=st.sampled_from(PARTIES), text=message_texts)
    def post_message(self, party: str, text: str) -> None:
        version = self.referral.version
        if party == "third":
            with pytest.raises(NotPermitted):
                self.referral.post_message(
                    agency_id=self.agency[party], worker_id=self.worker[party], text=text
                )
            self.assert_nothing_recorded(version)
            return
        self.referral.post_message(
            agency_id=self.agency[party], worker_id=self.worker[party], text=text
        )
        [event] = self.referral.collect_events()
        assert type(event).__name__ == "ReferralMessagePosted"
        self.events.append(event)
        self.messages += 1

    @invariant()
    def status_is_the_models(self) -> None:
        assert self.referral.status == self.status

    @invariant()
    def version_counts_every_recorded_event(self) -> None:
        assert self.referral.version == 1 + self.transitions + self.messages
        assert [e.originator_version for e in self.events] == list(range(1, len(self.events) + 1))

    @invariant()
    def history_is_the_models(self) -> None:
        history = [(h.status, h.agency_id, h.worker_id, h.outcome) for h in self.referral.history]
        assert history == self.history
        assert (self.referral.outcome, self.referral.outcome_note) == self.outcome
        assert len(self.referral.messages) == self.messages

    @invariant()
    def replaying_every_event_gives_the_same_referral(self) -> None:
        rebuilt: Referral | None = project_aggregate(None, self.events)
        assert isinstance(rebuilt, Referral)
        assert (rebuilt.status, rebuilt.version) == (self.referral.status, self.referral.version)
        assert (rebuilt.outcome, rebuilt.outcome_note) == (
            self.referral.outcome,
            self.referral.outcome_note,
        )
        assert [(h.status, h.at, h.agency_id, h.worker_id, h.outcome) for h in rebuilt.history] == [
            (h.status, h.at, h.agency_id, h.worker_id, h.outcome) for h in self.referral.history
        ]
        assert [(m.id, m.agency_id, m.text) for m in rebuilt.messages] == [
            (m.id, m.agency_id, m.text) for m in self.referral.messages
        ]


ReferralLifecycle.TestCase.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None
)
TestReferralLifecycle = ReferralLifecycle.TestCase
