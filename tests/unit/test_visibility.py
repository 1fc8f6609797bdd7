"""The visibility policy (DESIGN.md, confidentiality rules 1-4), with hand-written answers.

The property at the end checks the policy against a reference written here, in a few
lines, independently of ``casenet.domain.visibility``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from casenet.domain.emergency import LEGAL_BASES
from casenet.domain.sections import SECTIONS
from casenet.domain.visibility import (
    CONSENT,
    EMERGENCY,
    OWNER,
    CaseFacts,
    ConsentFacts,
    EmergencyFacts,
    Grant,
    access_at,
    sections_visible_to,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
OWNER_ID = UUID("00000000-0000-0000-0000-00000000000a")
HOSPITAL = UUID("00000000-0000-0000-0000-00000000000b")
SCHOOL = UUID("00000000-0000-0000-0000-00000000000c")
CASE = CaseFacts(uuid4(), OWNER_ID, owner_restricted=False)
RESTRICTED_CASE = CaseFacts(uuid4(), OWNER_ID, owner_restricted=True)


def consent(
    grantee: UUID,
    sections: tuple[str, ...],
    *,
    granted: int = 0,
    withdrawn: int | None = None,
    until: int | None = None,
    consent_id: UUID | None = None,
) -> ConsentFacts:
    """A consent granted ``granted`` minutes after T0, withdrawn/expiring likewise."""
    return ConsentFacts(
        consent_id=consent_id or uuid4(),
        grantee_agency_id=grantee,
        sections=sections,
        granted_at=T0 + timedelta(minutes=granted),
        withdrawn_at=None if withdrawn is None else T0 + timedelta(minutes=withdrawn),
        valid_until=None if until is None else T0 + timedelta(minutes=until),
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- rule 1: the owner sees everything; a grantee only what an active consent grants ----


def test_the_owner_sees_every_section_without_any_consent() -> None:
    grant = sections_visible_to(CASE, [], OWNER_ID, at(0))

    assert grant == Grant(OWNER_ID, SECTIONS, OWNER, ())
    assert grant.visible


def test_a_restricted_owner_still_sees_its_own_identifying_sections() -> None:
    grant = sections_visible_to(RESTRICTED_CASE, [], OWNER_ID, at(0))

    assert grant.sections == SECTIONS
    assert "identity" in grant.sections


def test_an_agency_without_consent_sees_nothing_and_the_case_does_not_exist_for_it() -> None:
    grant = sections_visible_to(CASE, [], HOSPITAL, at(0))

    assert grant.sections == ()
    assert not grant.visible
    assert grant.consent_ids == ()


def test_a_grantee_sees_only_the_granted_sections_in_the_policy_order() -> None:
    c = consent(HOSPITAL, ("notes.health", "needs"))

    grant = sections_visible_to(CASE, [c], HOSPITAL, at(1))

    assert grant.sections == ("needs", "notes.health")
    assert grant.basis == CONSENT
    assert grant.consent_ids == (c.consent_id,)


# --- rule 2: only while the consent is active --------------------------------------------


def test_before_granted_at_a_consent_grants_nothing() -> None:
    c = consent(HOSPITAL, ("needs",), granted=10)

    assert not sections_visible_to(CASE, [c], HOSPITAL, at(9.99)).visible
    assert sections_visible_to(CASE, [c], HOSPITAL, at(10)).sections == ("needs",)


def test_from_the_instant_of_withdrawal_a_consent_grants_nothing() -> None:
    c = consent(HOSPITAL, ("needs",), withdrawn=30)
    just_before = at(30) - timedelta(microseconds=1)

    assert sections_visible_to(CASE, [c], HOSPITAL, just_before).sections == ("needs",)
    assert not sections_visible_to(CASE, [c], HOSPITAL, at(30)).visible
    assert not sections_visible_to(CASE, [c], HOSPITAL, at(31)).visible


def test_from_valid_until_on_a_consent_has_expired_and_grants_nothing() -> None:
    c = consent(HOSPITAL, ("summary",), until=60)
    just_before = at(60) - timedelta(microseconds=1)

    assert sections_visible_to(CASE, [c], HOSPITAL, just_before).sections == ("summary",)
    assert not sections_visible_to(CASE, [c], HOSPITAL, at(60)).visible
    assert not sections_visible_to(CASE, [c], HOSPITAL, at(6000)).visible


def test_a_withdrawal_before_expiry_ends_the_consent_at_the_withdrawal() -> None:
    c = consent(HOSPITAL, ("summary",), withdrawn=20, until=60)

    assert sections_visible_to(CASE, [c], HOSPITAL, at(19)).visible
    assert not sections_visible_to(CASE, [c], HOSPITAL, at(40)).visible


# --- several consents: the union, and exactly the consents that contribute -------------


def test_several_active_consents_give_the_union_and_name_every_contributor() -> None:
    first = consent(HOSPITAL, ("needs", "summary"))
    second = consent(HOSPITAL, ("summary", "notes.legal"), granted=5)
    withdrawn = consent(HOSPITAL, ("identity",), withdrawn=3)
    expired = consent(HOSPITAL, ("contact",), until=4)
    later = consent(HOSPITAL, ("notes.family",), granted=100)

    grant = sections_visible_to(CASE, [first, second, withdrawn, expired, later], HOSPITAL, at(10))

    assert grant.sections == ("needs", "summary", "notes.legal")
    assert grant.consent_ids == tuple(sorted([first.consent_id, second.consent_id], key=str))


def test_at_an_earlier_instant_only_the_consents_active_then_contribute() -> None:
    first = consent(HOSPITAL, ("needs",))
    second = consent(HOSPITAL, ("notes.legal",), granted=5)
    withdrawn = consent(HOSPITAL, ("identity",), withdrawn=3)

    grant = sections_visible_to(CASE, [first, second, withdrawn], HOSPITAL, at(2))

    assert grant.sections == ("identity", "needs")
    assert set(grant.consent_ids) == {first.consent_id, withdrawn.consent_id}


def test_consents_for_another_agency_do_not_count() -> None:
    for_school = consent(SCHOOL, ("needs", "summary"))

    assert not sections_visible_to(CASE, [for_school], HOSPITAL, at(1)).visible
    assert sections_visible_to(CASE, [for_school], SCHOOL, at(1)).sections == ("needs", "summary")


# --- rule 4: a restricted owner never discloses identifying sections --------------------


def test_a_restricted_owner_never_discloses_identity_or_contact_whatever_the_consent() -> None:
    c = consent(HOSPITAL, ("identity", "contact", "needs"))

    grant = sections_visible_to(RESTRICTED_CASE, [c], HOSPITAL, at(1))

    assert grant.sections == ("needs",)
    assert grant.consent_ids == (c.consent_id,)


def test_a_consent_of_only_identifying_sections_of_a_restricted_owner_shows_nothing() -> None:
    identifying = consent(HOSPITAL, ("identity", "contact"))
    other = consent(HOSPITAL, ("needs",), withdrawn=1)

    grant = sections_visible_to(RESTRICTED_CASE, [identifying, other], HOSPITAL, at(2))

    assert grant.sections == ()
    assert not grant.visible
    assert grant.consent_ids == (), "a consent that contributes nothing is not a basis"


def test_an_identifying_only_consent_does_not_appear_in_shared_under_beside_another() -> None:
    identifying = consent(HOSPITAL, ("identity",))
    needs = consent(HOSPITAL, ("needs",))

    grant = sections_visible_to(RESTRICTED_CASE, [identifying, needs], HOSPITAL, at(1))

    assert grant.sections == ("needs",)
    assert grant.consent_ids == (needs.consent_id,)


def test_the_same_consent_of_an_unrestricted_owner_discloses_identity() -> None:
    c = consent(HOSPITAL, ("identity", "contact"))

    assert sections_visible_to(CASE, [c], HOSPITAL, at(1)).sections == ("identity", "contact")


# --- access_at: who could see what ------------------------------------------------------


def test_access_lists_the_owner_first_then_each_grantee_that_sees_something() -> None:
    hospital = consent(HOSPITAL, ("needs",))
    school = consent(SCHOOL, ("summary",), until=30)
    school_identity = consent(SCHOOL, ("identity",))

    grants = access_at(CASE, [school, hospital, school_identity], at(10))

    assert [g.agency_id for g in grants] == [OWNER_ID, HOSPITAL, SCHOOL]
    assert grants[0] == Grant(OWNER_ID, SECTIONS, OWNER, ())
    assert grants[1] == Grant(HOSPITAL, ("needs",), CONSENT, (hospital.consent_id,))
    assert grants[2].sections == ("identity", "summary")


def test_access_leaves_out_grantees_that_see_nothing_at_the_instant() -> None:
    hospital = consent(HOSPITAL, ("needs",), withdrawn=5)
    school = consent(SCHOOL, ("summary",), until=30)

    assert [g.agency_id for g in access_at(CASE, [hospital, school], at(40))] == [OWNER_ID]
    assert [g.agency_id for g in access_at(CASE, [hospital, school], at(1))] == [
        OWNER_ID, HOSPITAL, SCHOOL,
    ]


def test_access_of_a_restricted_owner_leaves_out_an_identifying_only_grantee() -> None:
    identifying = consent(HOSPITAL, ("contact",))

    grants = access_at(RESTRICTED_CASE, [identifying], at(1))

    assert [g.agency_id for g in grants] == [OWNER_ID]


# --- the property: against a reference written here -------------------------------------

AGENCIES = (OWNER_ID, HOSPITAL, SCHOOL)
IDENTIFYING_HERE = {"identity", "contact"}


def reference_sections(
    restricted: bool, consents: list[ConsentFacts], agency: UUID, instant: datetime
) -> tuple[set[str], set[UUID]]:
    """What DESIGN.md says, written out independently: (sections, contributing consents)."""
    if agency == OWNER_ID:
        return set(SECTIONS), set()
    sections: set[str] = set()
    contributors: set[UUID] = set()
    for c in consents:
        active = c.granted_at <= instant and not (
            (c.withdrawn_at is not None and instant >= c.withdrawn_at)
            or (c.valid_until is not None and instant >= c.valid_until)
        )
        given_here = set(c.sections) - (IDENTIFYING_HERE if restricted else set())
        if c.grantee_agency_id == agency and active and given_here:
            sections |= given_here
            contributors.add(c.consent_id)
    return sections, contributors


minutes = st.integers(min_value=0, max_value=120)


@st.composite
def consent_facts(draw: st.DrawFn) -> ConsentFacts:
    granted = draw(minutes)
    withdrawn = draw(st.none() | st.integers(min_value=granted, max_value=150))
    until = draw(st.none() | st.integers(min_value=granted + 1, max_value=150))
    return consent(
        draw(st.sampled_from(AGENCIES[1:])),
        tuple(draw(st.sets(st.sampled_from(SECTIONS), min_size=1))),
        granted=granted,
        withdrawn=withdrawn,
        until=until,
    )


@settings(max_examples=200, deadline=None)
@given(
    restricted=st.booleans(),
    consents=st.lists(consent_facts(), max_size=6),
    instant=st.integers(min_value=-5, max_value=160),
)
def test_a_section_is_visible_iff_an_active_consent_of_that_agency_grants_it(
    restricted: bool, consents: list[ConsentFacts], instant: int
) -> None:
    case = CaseFacts(uuid4(), OWNER_ID, restricted)
    when = at(instant)
    for agency in AGENCIES:
        expected, contributors = reference_sections(restricted, consents, agency, when)

        grant = sections_visible_to(case, consents, agency, when)

        assert set(grant.sections) == expected
        assert len(grant.sections) == len(set(grant.sections))
        assert set(grant.consent_ids) == contributors
        assert grant.basis == (OWNER if agency == OWNER_ID else CONSENT)
    listed = access_at(case, consents, when)
    assert listed[0].agency_id == OWNER_ID
    assert {g.agency_id for g in listed[1:]} == {
        a for a in AGENCIES[1:] if reference_sections(restricted, consents, a, when)[0]
    }


# --- rule 2b: emergency grants beside consents ------------------------------------------


def emergency(
    grantee: UUID,
    sections: tuple[str, ...],
    *,
    created: int = 0,
    revoked: int | None = None,
    lasts: int = 60,
    basis: str = "safeguarding",
) -> EmergencyFacts:
    """An emergency grant created ``created`` minutes after T0, for ``lasts`` minutes."""
    return EmergencyFacts(
        grant_id=uuid4(),
        grantee_agency_id=grantee,
        sections=sections,
        legal_basis=basis,
        created_at=at(created),
        revoked_at=None if revoked is None else at(revoked),
        expires_at=at(created + lasts),
    )


def test_an_emergency_grant_discloses_its_sections_while_active_on_basis_emergency() -> None:
    grant = emergency(SCHOOL, ("identity", "summary"), created=10, lasts=60, basis="court_order")
    assert not sections_visible_to(CASE, [], SCHOOL, at(9), [grant]).visible
    during = sections_visible_to(CASE, [], SCHOOL, at(10), [grant])
    assert during == Grant(
        SCHOOL, ("identity", "summary"), EMERGENCY, (), (grant.grant_id,), ("court_order",)
    )
    assert not sections_visible_to(CASE, [], SCHOOL, at(70), [grant]).visible  # expired
    assert not sections_visible_to(CASE, [], HOSPITAL, at(20), [grant]).visible  # not its grant


def test_a_revoked_emergency_grant_discloses_nothing_from_the_revocation_on() -> None:
    grant = emergency(SCHOOL, ("summary",), revoked=5)
    assert sections_visible_to(CASE, [], SCHOOL, at(4), [grant]).visible
    assert not sections_visible_to(CASE, [], SCHOOL, at(5), [grant]).visible


def test_a_restricted_owner_never_discloses_identity_under_an_emergency_grant() -> None:
    only_identity = emergency(SCHOOL, ("identity", "contact"))
    assert not sections_visible_to(RESTRICTED_CASE, [], SCHOOL, at(1), [only_identity]).visible
    mixed = emergency(SCHOOL, ("identity", "needs"))
    assert sections_visible_to(RESTRICTED_CASE, [], SCHOOL, at(1), [mixed]).sections == ("needs",)


def test_access_lists_a_grantees_consent_and_emergency_grants_apart() -> None:
    c = consent(SCHOOL, ("needs",))
    e = emergency(SCHOOL, ("summary",), basis="vital_interests")
    grants = access_at(CASE, [c], at(1), [e])
    assert [(g.agency_id, g.basis, g.sections) for g in grants] == [
        (OWNER_ID, OWNER, SECTIONS),
        (SCHOOL, CONSENT, ("needs",)),
        (SCHOOL, EMERGENCY, ("summary",)),
    ]
    both = sections_visible_to(CASE, [c], SCHOOL, at(1), [e])
    assert (both.basis, both.sections) == (CONSENT, ("needs", "summary"))
    assert (both.consent_ids, both.emergency_ids) == ((c.consent_id,), (e.grant_id,))


@st.composite
def emergency_facts(draw: st.DrawFn) -> EmergencyFacts:
    created = draw(minutes)
    return emergency(
        draw(st.sampled_from(AGENCIES[1:])),
        tuple(draw(st.sets(st.sampled_from(SECTIONS), min_size=1))),
        created=created,
        revoked=draw(st.none() | st.integers(min_value=created, max_value=150)),
        lasts=draw(st.integers(min_value=1, max_value=72 * 60)),
        basis=draw(st.sampled_from(LEGAL_BASES)),
    )


def reference_emergency(
    restricted: bool, grants: list[EmergencyFacts], agency: UUID, instant: datetime
) -> tuple[set[str], set[UUID], set[str]]:
    """Rule 2b written out: (sections, contributing grants, their legal bases)."""
    sections: set[str] = set()
    contributors: set[UUID] = set()
    bases: set[str] = set()
    for g in grants:
        active = g.created_at <= instant < g.expires_at and (
            g.revoked_at is None or instant < g.revoked_at
        )
        given_here = set(g.sections) - (IDENTIFYING_HERE if restricted else set())
        if g.grantee_agency_id == agency and active and given_here:
            sections |= given_here
            contributors.add(g.grant_id)
            bases.add(g.legal_basis)
    return sections, contributors, bases


@settings(max_examples=300, deadline=None)
@given(
    restricted=st.booleans(),
    consents=st.lists(consent_facts(), max_size=5),
    grants=st.lists(emergency_facts(), max_size=5),
    instant=st.integers(min_value=-5, max_value=160),
)
def test_consents_and_emergency_grants_together_grant_the_union_of_what_each_would(
    restricted: bool, consents: list[ConsentFacts], grants: list[EmergencyFacts], instant: int
) -> None:
    case = CaseFacts(uuid4(), OWNER_ID, restricted)
    when = at(instant)
    for agency in AGENCIES[1:]:
        by_consent, consent_ids = reference_sections(restricted, consents, agency, when)
        by_emergency, grant_ids, bases = reference_emergency(restricted, grants, agency, when)

        grant = sections_visible_to(case, consents, agency, when, grants)

        assert set(grant.sections) == by_consent | by_emergency
        assert set(grant.consent_ids) == consent_ids
        assert set(grant.emergency_ids) == grant_ids
        assert set(grant.legal_bases) == bases
        assert grant.basis == (EMERGENCY if grant_ids and not consent_ids else CONSENT)
        if restricted:
            assert not set(grant.sections) & IDENTIFYING_HERE
        listed = [g for g in access_at(case, consents, when, grants) if g.agency_id == agency]
        assert [g.basis for g in listed] == [
            basis for basis, ids in ((CONSENT, consent_ids), (EMERGENCY, grant_ids)) if ids
        ]
        assert {s for g in listed for s in g.sections} == set(grant.sections)
    assert sections_visible_to(case, consents, OWNER_ID, when, grants).sections == SECTIONS
