"""A case: opened by one agency, notes by category, closed and reopened."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from casenet.domain.aggregate import Aggregate, project_aggregate
from casenet.domain.case import Case, CaseClosed, CaseNoteAdded, CaseOpened, CaseReopened
from casenet.domain.errors import IllegalTransition, InvalidInput, NotPermitted

OWNER = uuid4()
WORKER = uuid4()
CLIENT = uuid4()

#: The note categories of API.md, one section each (``notes.<category>``).
NOTE_CATEGORIES = (
    "general",
    "health",
    "mental_health",
    "substance_use",
    "sexual_health",
    "legal",
    "financial",
    "family",
)


def state(value: Any) -> Any:
    """Everything an aggregate holds, as comparable plain values (for replay checks)."""
    if isinstance(value, Aggregate):
        return {k: state(v) for k, v in vars(value).items() if k != "_pending_events"}
    if isinstance(value, dict):
        return {k: state(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [state(v) for v in value]
    if type(value).__module__.startswith("casenet.") and hasattr(value, "__slots__"):
        return {k: state(getattr(value, k)) for k in value.__slots__}
    return value


def open_case(**overrides: Any) -> Case:
    fields: dict[str, Any] = {
        "owner_agency_id": OWNER,
        "worker_id": WORKER,
        "client_id": CLIENT,
        "summary": "Needs help moving a hospital appointment",
        "needs": ["health", "employment"],
    }
    fields.update(overrides)
    return Case.open(**fields)


def case_in(status: str) -> Case:
    case = open_case()
    if status == "closed":
        case.close(worker_id=WORKER, reason="resolved")
    case.collect_events()
    return case


def test_opening_a_case_records_case_opened_with_owner_client_summary_and_needs() -> None:
    case = open_case(needs=["housing", "health", "housing"])

    [event] = case.collect_events()

    assert type(event) is CaseOpened
    assert event.originator_id == case.id
    assert event.originator_version == 1
    assert event.owner_agency_id == OWNER
    assert event.opened_by_worker_id == WORKER
    assert event.client_id == CLIENT
    assert event.summary == "Needs help moving a hospital appointment"
    assert event.needs == ("housing", "health")
    assert (case.status, case.version, case.notes) == ("open", 1, [])
    assert case.created_on == case.modified_on == event.timestamp


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"summary": "   "}, "summary"),
        ({"needs": ["Housing"]}, "needs"),
        ({"needs": ["housing support"]}, "needs"),
    ],
)
def test_a_case_cannot_be_opened_with_a_blank_summary_or_a_malformed_need(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        open_case(**overrides)
    assert raised.value.field == field


@pytest.mark.parametrize("category", NOTE_CATEGORIES)
def test_a_note_of_every_category_is_recorded_on_an_open_case(category: str) -> None:
    case = case_in("open")
    author = uuid4()

    note = case.add_note(worker_id=author, category=category, text="Spoke with the doctor")

    [event] = case.collect_events()
    assert type(event) is CaseNoteAdded
    assert event.originator_version == 2
    assert event.client_id == CLIENT
    assert event.note_id == note.id
    assert event.category == category
    assert event.text == "Spoke with the doctor"
    assert event.author_worker_id == author
    assert case.notes == [note]
    assert (note.category, note.text, note.created_at) == (category, event.text, event.timestamp)
    assert case.version == 2


@pytest.mark.parametrize(
    ("category", "text", "field"),
    [
        ("gossip", "anything", "category"),
        ("notes.health", "anything", "category"),
        ("health", " \n ", "text"),
        ("health", "x" * 10_001, "text"),
    ],
)
def test_a_note_with_an_unknown_category_or_blank_text_is_refused_and_records_nothing(
    category: str, text: str, field: str
) -> None:
    case = case_in("open")

    with pytest.raises(InvalidInput) as raised:
        case.add_note(worker_id=WORKER, category=category, text=text)

    assert raised.value.field == field
    assert case.collect_events() == []
    assert (case.version, case.notes) == (1, [])


#: (status, action) -> (event recorded, status afterwards). Every other pair is illegal.
ALLOWED = {
    ("open", "add_note"): (CaseNoteAdded, "open"),
    ("open", "close"): (CaseClosed, "closed"),
    ("closed", "reopen"): (CaseReopened, "open"),
}


def act(case: Case, action: str) -> None:
    if action == "add_note":
        case.add_note(worker_id=WORKER, category="general", text="a note")
    else:
        getattr(case, action)(worker_id=WORKER, reason="a reason")


@pytest.mark.parametrize("status", ["open", "closed"])
@pytest.mark.parametrize("action", ["add_note", "close", "reopen"])
def test_case_lifecycle_allows_exactly_the_listed_transitions(status: str, action: str) -> None:
    case = case_in(status)
    version = case.version

    if (status, action) in ALLOWED:
        event_type, after = ALLOWED[status, action]
        act(case, action)
        [event] = case.collect_events()
        assert type(event) is event_type
        assert (case.status, case.version) == (after, version + 1)
    else:
        with pytest.raises(IllegalTransition) as raised:
            act(case, action)
        assert raised.value.status == status
        assert case.collect_events() == []
        assert (case.status, case.version) == (status, version)


def test_closing_records_who_closed_the_case_and_why() -> None:
    case = case_in("open")

    case.close(worker_id=WORKER, reason="client moved away")

    [event] = case.collect_events()
    assert type(event) is CaseClosed
    assert (event.client_id, event.worker_id, event.reason) == (CLIENT, WORKER, "client moved away")


def test_reopening_records_who_reopened_the_case_and_why() -> None:
    case = case_in("closed")
    other_worker = uuid4()

    case.reopen(worker_id=other_worker, reason="client came back")

    [event] = case.collect_events()
    assert type(event) is CaseReopened
    assert (event.client_id, event.worker_id, event.reason) == (
        CLIENT,
        other_worker,
        "client came back",
    )
    assert case.status == "open"


@pytest.mark.parametrize(("status", "action"), [("open", "close"), ("closed", "reopen")])
def test_closing_or_reopening_without_a_reason_is_refused_and_records_nothing(
    status: str, action: str
) -> None:
    case = case_in(status)
    version = case.version

    with pytest.raises(InvalidInput) as raised:
        getattr(case, action)(worker_id=WORKER, reason="  ")

    assert raised.value.field == "reason"
    assert case.collect_events() == []
    assert (case.status, case.version) == (status, version)


def test_only_the_owning_agency_may_change_a_case() -> None:
    case = case_in("open")

    case.check_owned_by(OWNER)
    with pytest.raises(NotPermitted):
        case.check_owned_by(uuid4())
    assert case.collect_events() == []


def test_a_case_rebuilt_from_its_events_equals_the_case_that_recorded_them() -> None:
    case = open_case()
    case.add_note(worker_id=WORKER, category="health", text="first")
    case.close(worker_id=WORKER, reason="done")
    case.reopen(worker_id=WORKER, reason="not done")
    case.add_note(worker_id=uuid4(), category="family", text="second")
    events = case.collect_events()

    rebuilt: Case | None = project_aggregate(None, events)

    assert [e.originator_version for e in events] == [1, 2, 3, 4, 5]
    assert type(rebuilt) is Case
    assert state(rebuilt) == state(case)
    assert [n.category for n in rebuilt.notes] == ["health", "family"]
