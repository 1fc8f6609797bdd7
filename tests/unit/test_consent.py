"""A client's consent: granted to one agency, expired by the clock, withdrawn by the owner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from casenet.domain import aggregate as aggregate_module
from casenet.domain import consent as consent_module
from casenet.domain.aggregate import Aggregate, project_aggregate
from casenet.domain.consent import Consent, ConsentExpiryNoted, ConsentGranted, ConsentWithdrawn
from casenet.domain.errors import ConsentNotActive, IllegalTransition, InvalidInput, NotPermitted

OWNER = uuid4()
GRANTEE = uuid4()
CASE = uuid4()
CLIENT = uuid4()
WORKER = uuid4()
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)

#: The sections of API.md, in their canonical order.
SECTIONS = (
    "identity",
    "contact",
    "needs",
    "summary",
    "notes.general",
    "notes.health",
    "notes.mental_health",
    "notes.substance_use",
    "notes.sexual_health",
    "notes.legal",
    "notes.financial",
    "notes.family",
)


class Clock:
    """The domain's notion of now, moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current += delta
        return self.current


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(T0)
    monkeypatch.setattr(aggregate_module, "utcnow", clock.now)
    monkeypatch.setattr(consent_module, "utcnow", clock.now)
    return clock


def state(value: Any) -> Any:
    """Everything an aggregate holds, as comparable plain values (for replay checks)."""
    if isinstance(value, Aggregate):
        return {k: state(v) for k, v in vars(value).items() if k != "_pending_events"}
    if isinstance(value, list | tuple):
        return [state(v) for v in value]
    return value


def grant(**overrides: Any) -> Consent:
    fields: dict[str, Any] = {
        "case_id": CASE,
        "client_id": CLIENT,
        "owner_agency_id": OWNER,
        "recording_agency_id": OWNER,
        "grantee_agency_id": GRANTEE,
        "sections": ["notes.health", "identity"],
        "purpose": "referral",
        "method": "written",
        "worker_id": WORKER,
    }
    fields.update(overrides)
    return Consent.grant(**fields)


def granted(**overrides: Any) -> Consent:
    consent = grant(**overrides)
    consent.collect_events()
    return consent


def test_granting_records_consent_granted_with_everything_the_client_agreed_to(
    clock: Clock,
) -> None:
    until = T0 + timedelta(days=30)
    consent = grant(
        sections=["notes.health", "identity", "notes.health"],
        valid_until=until,
        evidence="signed form 12",
    )

    [event] = consent.collect_events()

    assert type(event) is ConsentGranted
    assert (event.originator_id, event.originator_version, event.timestamp) == (consent.id, 1, T0)
    assert (event.case_id, event.client_id) == (CASE, CLIENT)
    assert (event.owner_agency_id, event.grantee_agency_id) == (OWNER, GRANTEE)
    assert event.sections == ("identity", "notes.health")
    assert (event.purpose, event.method) == ("referral", "written")
    assert event.evidence == "signed form 12"
    assert event.valid_until == until
    assert event.recorded_by_worker_id == WORKER
    assert consent.status_at(T0) == "active"
    assert consent.version == 1


def test_every_section_purpose_and_method_of_the_api_can_be_granted(clock: Clock) -> None:
    for purpose in ("referral", "care_coordination"):
        for method in ("verbal", "written", "electronic"):
            consent = grant(sections=list(reversed(SECTIONS)), purpose=purpose, method=method)
            assert consent.sections == SECTIONS
            assert (consent.purpose, consent.method) == (purpose, method)


def test_a_consent_grants_nothing_before_the_instant_it_was_granted(clock: Clock) -> None:
    consent = granted()

    assert not consent.is_active_at(T0 - timedelta(microseconds=1))
    assert consent.is_active_at(T0)


def test_a_consent_without_an_end_date_stays_active_until_withdrawn(clock: Clock) -> None:
    consent = granted()

    assert consent.status_at(T0 + timedelta(days=3650)) == "active"


def test_a_consent_expires_at_valid_until_by_the_clock_alone(clock: Clock) -> None:
    until = T0 + timedelta(days=7)
    consent = granted(valid_until=until)

    assert consent.status_at(until - timedelta(microseconds=1)) == "active"
    assert consent.status_at(until) == "expired"
    assert consent.status_at(until + timedelta(days=1)) == "expired"
    assert not consent.is_active_at(until)
    clock.advance(timedelta(days=8))
    assert consent.collect_events() == []
    assert consent.version == 1


def test_valid_until_in_another_timezone_expires_at_the_same_instant(clock: Clock) -> None:
    until = datetime(2030, 3, 2, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    consent = granted(valid_until=until)

    assert consent.status_at(datetime(2030, 3, 2, 8, 59, tzinfo=UTC)) == "active"
    assert consent.status_at(datetime(2030, 3, 2, 9, 0, tzinfo=UTC)) == "expired"


def test_withdrawn_consent_grants_nothing_from_the_instant_of_withdrawal(clock: Clock) -> None:
    consent = granted(valid_until=T0 + timedelta(days=30))
    withdrawn_at = clock.advance(timedelta(hours=5))
    other_worker = uuid4()

    consent.withdraw(recording_agency_id=OWNER, worker_id=other_worker, reason="changed mind")

    [event] = consent.collect_events()
    assert type(event) is ConsentWithdrawn
    assert (event.originator_id, event.originator_version) == (consent.id, 2)
    assert (event.client_id, event.reason) == (CLIENT, "changed mind")
    assert event.recorded_by_worker_id == other_worker
    assert event.timestamp == withdrawn_at
    assert consent.status_at(withdrawn_at - timedelta(microseconds=1)) == "active"
    assert consent.status_at(withdrawn_at) == "withdrawn"
    assert consent.status_at(T0 + timedelta(days=60)) == "withdrawn"
    assert consent.version == 2


def test_a_withdrawn_consent_cannot_be_withdrawn_again(clock: Clock) -> None:
    consent = granted()
    clock.advance(timedelta(minutes=1))
    consent.withdraw(recording_agency_id=OWNER, worker_id=WORKER, reason="changed mind")
    consent.collect_events()

    with pytest.raises(ConsentNotActive) as raised:
        consent.withdraw(recording_agency_id=OWNER, worker_id=WORKER, reason="again")

    assert raised.value.status == "withdrawn"
    assert consent.collect_events() == []
    assert consent.version == 2


def test_an_expired_consent_cannot_be_withdrawn(clock: Clock) -> None:
    consent = granted(valid_until=T0 + timedelta(days=1))
    clock.advance(timedelta(days=2))

    with pytest.raises(ConsentNotActive) as raised:
        consent.withdraw(recording_agency_id=OWNER, worker_id=WORKER, reason="too late")

    assert raised.value.status == "expired"
    assert isinstance(raised.value, IllegalTransition)  # the API answers 409
    assert consent.collect_events() == []
    assert (consent.version, consent.withdrawn_at) == (1, None)


@pytest.mark.parametrize("agency", [GRANTEE, uuid4()], ids=["grantee", "third_agency"])
def test_only_the_owning_agency_records_a_withdrawal(clock: Clock, agency: Any) -> None:
    consent = granted()

    with pytest.raises(NotPermitted):
        consent.withdraw(recording_agency_id=agency, worker_id=WORKER, reason="not mine")

    assert consent.collect_events() == []
    assert consent.status_at(T0 + timedelta(days=1)) == "active"


def test_a_withdrawal_without_a_reason_is_refused_and_records_nothing(clock: Clock) -> None:
    consent = granted()

    with pytest.raises(InvalidInput) as raised:
        consent.withdraw(recording_agency_id=OWNER, worker_id=WORKER, reason=" ")

    assert raised.value.field == "reason"
    assert consent.collect_events() == []
    assert consent.is_active_at(T0 + timedelta(days=1))


@pytest.mark.parametrize("agency", [GRANTEE, uuid4()], ids=["grantee", "third_agency"])
def test_no_re_disclosure_only_the_owning_agency_records_a_consent(
    clock: Clock, agency: Any
) -> None:
    with pytest.raises(NotPermitted):
        grant(recording_agency_id=agency)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grantee_agency_id": OWNER}, "grantee_agency_id"),
        ({"sections": ["identity", "diagnosis"]}, "sections"),
        ({"sections": ["notes"]}, "sections"),
        ({"sections": []}, "sections"),
        ({"purpose": "research"}, "purpose"),
        ({"purpose": "Referral"}, "purpose"),
        ({"method": "telepathy"}, "method"),
        ({"valid_until": T0}, "valid_until"),
        ({"valid_until": T0 - timedelta(days=1)}, "valid_until"),
        ({"valid_until": datetime(2031, 1, 1)}, "valid_until"),
        ({"evidence": "  "}, "evidence"),
    ],
    ids=[
        "grantee_is_owner",
        "unknown_section",
        "bare_notes_section",
        "no_sections",
        "unknown_purpose",
        "purpose_wrong_case",
        "unknown_method",
        "valid_until_now",
        "valid_until_past",
        "valid_until_naive",
        "blank_evidence",
    ],
)
def test_a_consent_with_invalid_terms_is_refused(
    clock: Clock, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        grant(**overrides)
    assert raised.value.field == field


def test_a_consent_rebuilt_from_its_events_equals_the_consent_that_recorded_them(
    clock: Clock,
) -> None:
    consent = grant(valid_until=T0 + timedelta(days=9), evidence="verbal, witnessed")
    clock.advance(timedelta(days=1))
    consent.withdraw(recording_agency_id=OWNER, worker_id=WORKER, reason="changed mind")
    events = consent.collect_events()

    rebuilt: Consent | None = project_aggregate(None, events)

    assert type(rebuilt) is Consent
    assert state(rebuilt) == state(consent)
    assert rebuilt.withdrawn_at == T0 + timedelta(days=1)
    assert rebuilt.status_at(T0 + timedelta(hours=1)) == "active"
    assert rebuilt.status_at(T0 + timedelta(days=2)) == "withdrawn"


def test_the_expiry_of_a_consent_is_noted_once_after_valid_until(clock: Clock) -> None:
    until = T0 + timedelta(days=1)
    consent = grant(valid_until=until)
    history = consent.collect_events()
    with pytest.raises(ConsentNotActive):
        consent.note_expiry()  # still active
    clock.advance(timedelta(days=1))  # at valid_until: expired
    consent.note_expiry()
    [event] = consent.collect_events()
    assert isinstance(event, ConsentExpiryNoted)
    assert (event.valid_until, event.originator_version) == (until, 2)
    assert consent.status_at(clock.now()) == "expired"  # as before: by the clock
    with pytest.raises(ConsentNotActive):
        consent.note_expiry()  # once
    assert consent.collect_events() == []
    replayed = project_aggregate(None, [*history, event])
    assert isinstance(replayed, Consent)
    assert replayed.expiry_noted


def test_no_expiry_is_noted_for_a_withdrawn_consent_or_one_without_an_end(
    clock: Clock,
) -> None:
    withdrawn = granted(valid_until=T0 + timedelta(days=1))
    withdrawn.withdraw(recording_agency_id=OWNER, worker_id=WORKER, reason="asked")
    endless = granted()
    clock.advance(timedelta(days=30))
    for consent in (withdrawn, endless):
        consent.collect_events()
        with pytest.raises(ConsentNotActive):
            consent.note_expiry()
        assert consent.collect_events() == []


def test_a_consent_is_the_clients_own_unless_it_names_who_gave_it(clock: Clock) -> None:
    own = grant()
    by_guardian = grant(given_by="guardian", representative_name="Rosa Lopez")

    [own_event], [guardian_event] = own.collect_events(), by_guardian.collect_events()

    assert (own_event.given_by, own_event.representative_name) == ("self", None)
    assert (guardian_event.given_by, guardian_event.representative_name) == (
        "guardian",
        "Rosa Lopez",
    )
    assert (by_guardian.given_by, by_guardian.representative_name) == ("guardian", "Rosa Lopez")
    for giver in ("parent", "legal_representative"):
        assert grant(given_by=giver, representative_name="Sam Okafor").given_by == giver


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"given_by": "aunt", "representative_name": "Rosa"}, "given_by", "one of self, parent"),
        ({"given_by": "Self"}, "given_by", "must be one of"),
        ({"given_by": "guardian"}, "representative_name", "required when given_by is guardian"),
        ({"given_by": "parent", "representative_name": "  "}, "representative_name", "blank"),
        ({"representative_name": "Rosa Lopez"}, "representative_name", "not self"),
        (
            {"given_by": "self", "representative_name": "Rosa Lopez"},
            "representative_name",
            "not self",
        ),
    ],
    ids=["unknown_giver", "wrong_case", "unnamed_guardian", "blank_name", "named_self",
         "named_self_explicit"],
)
def test_who_gave_a_consent_is_checked_and_a_refusal_records_nothing(
    clock: Clock, overrides: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        grant(**overrides)
    assert raised.value.field == field
    assert message in str(raised.value)
