"""The domain's value rules: nothing a command records is unstorable or unprojectable.

Every aggregate refuses text with NUL or another control character (PostgreSQL text
cannot hold NUL: one such worker name once stopped the read models of every agency),
codes and vocabularies with a trailing newline, and instants outside 1900-2200 UTC or
without an offset (a ``valid_until`` of 9999-12-31T23:59:59-01:00 once broke every
consent-based read); accepted instants are recorded in UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casenet.domain.agency import Agency, Service
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent, ConsentGranted
from casenet.domain.errors import InvalidInput
from casenet.domain.referral import Referral
from casenet.domain.values import (
    EARLIEST,
    LATEST,
    check_instant,
    check_text,
    forbidden_character,
)

OWNER, GRANTEE, WORKER, CLIENT, CASE = (uuid4() for _ in range(5))

#: The control characters a text may not hold (all but tab, newline, carriage return),
#: DEL, the C1 controls and the lone surrogates.
FORBIDDEN = [
    *(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"),
    "\x7f",
    "\x85",
    "\x9f",
    "\ud800",
    "\udfff",
]


def agency() -> Agency:
    return Agency.register(name="Eastside Welfare", kind="ngo")


def case() -> Case:
    return Case.open(
        owner_agency_id=OWNER, worker_id=WORKER, client_id=CLIENT, summary="s", needs=[]
    )


def referral() -> Referral:
    return Referral.request(
        case_id=CASE,
        client_id=CLIENT,
        from_agency_id=OWNER,
        to_agency_id=GRANTEE,
        service_type="housing",
        reason="r",
        urgency="routine",
        worker_id=WORKER,
    )


def grant(**overrides: Any) -> Consent:
    fields: dict[str, Any] = {
        "case_id": CASE,
        "client_id": CLIENT,
        "owner_agency_id": OWNER,
        "recording_agency_id": OWNER,
        "grantee_agency_id": GRANTEE,
        "sections": ["identity"],
        "purpose": "referral",
        "method": "verbal",
        "worker_id": WORKER,
    }
    return Consent.grant(**{**fields, **overrides})


def started_referral() -> Referral:
    started = referral()
    started.move("accept", agency_id=GRANTEE, worker_id=WORKER)
    started.move("start", agency_id=GRANTEE, worker_id=WORKER)
    return started


#: Every command that records a text a client of the API or CLI sends: (field, command).
TEXT_COMMANDS: list[tuple[str, Callable[[str], object]]] = [
    ("name", lambda t: Agency.register(name=t, kind="ngo")),
    ("name", lambda t: agency().add_worker(name=t, role="admin", token_hash="h")),
    (
        "services.description",
        lambda t: Agency.register(
            name="a", kind="ngo", services=[Service.of_type(type="housing", description=t)]
        ),
    ),
    (
        "services.areas",
        lambda t: agency().replace_services([Service.of_type("housing", "d", t)]),
    ),
    ("client.name", lambda t: Client.register(agency_id=OWNER, name=t)),
    ("client.date_of_birth", lambda t: Client.register(agency_id=OWNER, name="n", date_of_birth=t)),
    ("client.phone", lambda t: Client.register(agency_id=OWNER, name="n", phone=t)),
    ("client.address", lambda t: Client.register(agency_id=OWNER, name="n", address=t)),
    (
        "summary",
        lambda t: Case.open(
            owner_agency_id=OWNER, worker_id=WORKER, client_id=CLIENT, summary=t, needs=[]
        ),
    ),
    ("text", lambda t: case().add_note(worker_id=WORKER, category="health", text=t)),
    ("reason", lambda t: case().close(worker_id=WORKER, reason=t)),
    ("evidence", lambda t: grant(evidence=t)),
    ("reason", lambda t: grant().withdraw(recording_agency_id=OWNER, worker_id=WORKER, reason=t)),
    (
        "reason",
        lambda t: Referral.request(
            case_id=CASE,
            client_id=CLIENT,
            from_agency_id=OWNER,
            to_agency_id=GRANTEE,
            service_type="housing",
            reason=t,
            urgency="routine",
            worker_id=WORKER,
        ),
    ),
    ("reason", lambda t: referral().move("reject", agency_id=GRANTEE, worker_id=WORKER, reason=t)),
    (
        "note",
        lambda t: started_referral().move(
            "complete", agency_id=GRANTEE, worker_id=WORKER, outcome="got_help", note=t
        ),
    ),
    ("text", lambda t: referral().post_message(agency_id=GRANTEE, worker_id=WORKER, text=t)),
]


@pytest.mark.parametrize("character", FORBIDDEN, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize(("field", "command"), TEXT_COMMANDS, ids=lambda x: str(x))
def test_every_command_refuses_a_control_character_naming_the_field(
    field: str, command: Callable[[str], object], character: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        command(f"Ana{character}Lima")
    assert refused.value.field == field
    assert f"U+{ord(character):04X}" in refused.value.message


@pytest.mark.parametrize(("field", "command"), TEXT_COMMANDS, ids=lambda x: str(x))
def test_tab_newline_and_carriage_return_are_text(
    field: str, command: Callable[[str], object]
) -> None:
    command("Ana\tLima\r\nsecond line")  # no error


@pytest.mark.parametrize(
    ("field", "command"),
    [
        ("kind", lambda v: Agency.register(name="a", kind=v)),
        ("services.needs", lambda v: agency().replace_services([Service.of_type(v, "d")])),
        (
            "needs",
            lambda v: Case.open(
                owner_agency_id=OWNER, worker_id=WORKER, client_id=CLIENT, summary="s", needs=[v]
            ),
        ),
        (
            "service_type",
            lambda v: Referral.request(
                case_id=CASE,
                client_id=CLIENT,
                from_agency_id=OWNER,
                to_agency_id=GRANTEE,
                service_type=v,
                reason="r",
                urgency="routine",
                worker_id=WORKER,
            ),
        ),
    ],
)
@pytest.mark.parametrize("value", ["housing\n", "housing\r", "Housing", "housing ", "ho\x00"])
def test_codes_match_whole(field: str, command: Callable[[str], object], value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        command(value)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("field", "command", "word"),
    [
        ("role", lambda v: agency().add_worker(name="n", role=v, token_hash="h"), "admin"),
        ("category", lambda v: case().add_note(worker_id=WORKER, category=v, text="t"), "health"),
        ("purpose", lambda v: grant(purpose=v), "referral"),
        ("method", lambda v: grant(method=v), "written"),
        ("sections", lambda v: grant(sections=[v]), "identity"),
        (
            "urgency",
            lambda v: Referral.request(
                case_id=CASE,
                client_id=CLIENT,
                from_agency_id=OWNER,
                to_agency_id=GRANTEE,
                service_type="housing",
                reason="r",
                urgency=v,
                worker_id=WORKER,
            ),
            "urgent",
        ),
    ],
)
@pytest.mark.parametrize("spoil", ["{}\n", "{}\r\n", " {}", "{} ", "{}\x00"])
def test_vocabularies_match_exactly(
    field: str, command: Callable[[str], object], word: str, spoil: str
) -> None:
    command(word)  # the word itself is fine
    for value in (spoil.format(word), word.upper()):
        with pytest.raises(InvalidInput) as refused:
            command(value)
        assert refused.value.field == field


def test_an_outcome_with_a_trailing_newline_is_not_an_outcome() -> None:
    with pytest.raises(InvalidInput):  # issue 17: a word outside a vocabulary is 422
        started_referral().move(
            "complete", agency_id=GRANTEE, worker_id=WORKER, outcome="got_help\n"
        )


# --- instants ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "valid_until",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),  # the poison
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2200, 1, 1, tzinfo=UTC),
        datetime(2199, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))),  # 2200 in UTC
        datetime(2100, 1, 1),  # no offset
    ],
    ids=str,
)
def test_a_consent_refuses_a_valid_until_out_of_range_or_without_offset(
    valid_until: datetime,
) -> None:
    with pytest.raises(InvalidInput) as refused:
        grant(valid_until=valid_until)
    assert refused.value.field == "valid_until"


def test_a_consent_records_valid_until_in_utc() -> None:
    given_at = datetime(2199, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=-1, minutes=-30)))
    consent = grant(valid_until=given_at)
    recorded = consent.collect_events()[0]
    assert isinstance(recorded, ConsentGranted)
    assert recorded.valid_until == given_at
    assert recorded.valid_until is not None
    assert recorded.valid_until.tzinfo is UTC
    assert consent.valid_until == datetime(2199, 12, 31, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "instant",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # UTC form before year 1
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1899, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1900, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # 1899 in UTC
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-23))),
        datetime(2200, 1, 1, tzinfo=UTC),
        datetime(2000, 1, 1),
    ],
    ids=str,
)
def test_instants_out_of_range_or_without_offset_are_refused(instant: datetime) -> None:
    with pytest.raises(InvalidInput):
        check_instant(instant, "at")


#: The offsets RFC 3339 can carry (what a client sends: no zone names, no DST gaps).
offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ).map(lambda d: timedelta(minutes=d // timedelta(minutes=1))),
)


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets)
)
def test_any_instant_is_refused_or_the_same_instant_in_utc(instant: datetime) -> None:
    try:
        normal = check_instant(instant, "at")
    except InvalidInput:
        utc = instant.replace(tzinfo=None) - (instant.utcoffset() or timedelta())
        assert not EARLIEST.replace(tzinfo=None) <= utc < LATEST.replace(tzinfo=None)
        return
    assert normal.tzinfo is UTC
    assert normal == instant
    assert EARLIEST <= normal < LATEST


# --- texts, generated -----------------------------------------------------------------


@given(st.text(max_size=30), st.sampled_from(FORBIDDEN), st.text(max_size=30))
def test_any_text_with_a_control_character_is_refused(
    before: str, character: str, after: str
) -> None:
    with pytest.raises(InvalidInput):
        check_text(f"x{before}{character}{after}", "text")
    with pytest.raises(InvalidInput):
        Agency.register(name=f"x{before}{character}{after}"[:200], kind="ngo")


@given(st.text(min_size=1, max_size=200))
def test_any_other_text_is_recorded_as_it_was_sent(text: str) -> None:
    if not text.strip() or forbidden_character(text) is not None:
        with pytest.raises(InvalidInput):
            Agency.register(name=text, kind="ngo")
        return
    recorded = Agency.register(name=text, kind="ngo").collect_events()[0]
    assert recorded.name == text  # type: ignore[attr-defined]
    assert text.encode("utf-8").decode("utf-8") == text  # storable as UTF-8
