"""Random histories through the services: the read path answers what the policy says.

Each example registers a small network of its own (one agency maybe restricted), runs a
random list of operations through the application services (open cases, notes, consents
with and without an end, withdrawals, emergency grants and their revocations, referrals,
a grantee trying to pass a case on), then, for every agency, every case and several
instants, compares what the read path answers (``CaseQueries.visible_case``, ``access``,
``shared_cases``, ``read_case``, ``ReferralQueries.read``: read models plus the policy
at read time) with the policy evaluated directly on the events, decoded from the
notification log.

Examples share the test's store (each has agencies of its own, so nothing leaks
between them); that keeps a hundred-odd histories within seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.application.views import ClientView
from casenet.domain.agency import AgencyRegistered
from casenet.domain.aggregate import utcnow
from casenet.domain.case import CaseOpened
from casenet.domain.consent import Consent, ConsentGranted, ConsentWithdrawn
from casenet.domain.emergency import (
    LEGAL_BASES,
    EmergencyGrant,
    EmergencyGrantCreated,
    EmergencyGrantNotActive,
    EmergencyGrantRevoked,
)
from casenet.domain.errors import ConsentNotActive, NotFound, NotPermitted
from casenet.domain.referral import ReferralRequested
from casenet.domain.sections import CONTACT, IDENTITY, NOTE_CATEGORIES, SECTIONS
from casenet.domain.visibility import (
    CaseFacts,
    ConsentFacts,
    EmergencyFacts,
    access_at,
    sections_visible_to,
)

MAX_EXAMPLES = 25
ALL = 1_000_000  # more notifications than any test writes: "the whole log"

# Offsets of valid_until from now, and time zones to state it in: the instant is what
# counts, however it is written (UTC, behind, ahead by a fraction of an hour).
UNTIL_SECONDS = (90, 600, 3600, 86_400)
ZONES = (
    UTC,
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=14)),
)

# --- operations --------------------------------------------------------------------------
# Indices are taken modulo what exists when the operation runs, so every list is valid.

opens = st.tuples(st.just("open"), st.integers(0, 3))
notes = st.tuples(st.just("note"), st.integers(0, 9), st.sampled_from(NOTE_CATEGORIES))
grants = st.tuples(
    st.just("grant"),
    st.integers(0, 9),  # case
    st.integers(1, 3),  # grantee: owner index + this, modulo the agencies (never the owner)
    st.frozensets(st.sampled_from(SECTIONS), min_size=1, max_size=5),
    st.none() | st.tuples(st.sampled_from(UNTIL_SECONDS), st.sampled_from(ZONES)),
)
withdrawals = st.tuples(st.just("withdraw"), st.integers(0, 9))
referrals = st.tuples(st.just("refer"), st.integers(0, 9), st.integers(1, 3), st.booleans())
regrants = st.tuples(st.just("regrant"), st.integers(0, 9), st.integers(1, 3))
emergencies = st.tuples(
    st.just("emergency"),
    st.integers(0, 9),  # case
    st.integers(1, 3),  # grantee, as for a consent
    st.frozensets(st.sampled_from(SECTIONS), min_size=1, max_size=5),
    st.sampled_from((1, 90, 4320)),  # minutes
    st.sampled_from(LEGAL_BASES),
)
revocations = st.tuples(st.just("revoke"), st.integers(0, 9))
operations = st.lists(
    st.one_of(
        opens, notes, grants, grants, withdrawals, referrals, regrants, emergencies, revocations
    ),
    min_size=2,
    max_size=12,
)


@dataclass
class Network:
    """One example's agencies, their workers, and what the operations made."""

    agencies: list[UUID]
    restricted: UUID | None
    caseworkers: dict[UUID, Actor]
    supervisors: dict[UUID, Actor]
    cases: list[UUID] = field(default_factory=list)
    owner: dict[UUID, UUID] = field(default_factory=dict)
    consents: list[UUID] = field(default_factory=list)
    emergencies: list[UUID] = field(default_factory=list)
    referrals: list[UUID] = field(default_factory=list)
    checkpoints: list[datetime] = field(default_factory=list)
    first_notification: int = 1


def register_network(casenet: Casenet, count: int, restricted: int | None) -> Network:
    first_notification = casenet.app.projections.head() + 1
    agencies: list[UUID] = []
    caseworkers: dict[UUID, Actor] = {}
    supervisors: dict[UUID, Actor] = {}
    for index in range(count):
        agency = casenet.agencies.register(
            OPERATOR_ACTOR, name=f"Agency {index}", kind="ngo", restricted=index == restricted
        )
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name=f"Worker {index}", role="caseworker"
        )
        supervisor, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name=f"Supervisor {index}", role="supervisor"
        )
        agencies.append(agency.id)
        caseworkers[agency.id] = Actor(agency.id, worker.id, "caseworker")
        supervisors[agency.id] = Actor(agency.id, supervisor.id, "supervisor")
    return Network(
        agencies=agencies,
        restricted=None if restricted is None else agencies[restricted],
        caseworkers=caseworkers,
        supervisors=supervisors,
        first_notification=first_notification,
    )


def open_case(casenet: Casenet, net: Network, agency: UUID) -> None:
    case = casenet.cases.open_case(
        net.caseworkers[agency],
        client=ClientDetails(
            name="Grace Wanjiku", date_of_birth="1990-05-17", phone="+254 711 000000",
            address="7 Market Lane",
        ),
        summary="Needs help with rent and school fees",
        needs=["housing", "education"],
    )
    net.cases.append(case.id)
    net.owner[case.id] = agency


def run(casenet: Casenet, net: Network, operation: tuple[Any, ...]) -> None:
    kind = operation[0]
    if kind == "open":
        open_case(casenet, net, net.agencies[operation[1] % len(net.agencies)])
        return
    case_id = net.cases[operation[1] % len(net.cases)]
    owner = net.owner[case_id]
    if kind in ("grant", "refer", "regrant", "emergency"):  # another agency: owner's index + offset
        count = len(net.agencies)
        offset = 1 + (operation[2] - 1) % (count - 1)
        other = net.agencies[(net.agencies.index(owner) + offset) % count]
    if kind == "note":
        casenet.cases.add_note(
            net.caseworkers[owner], case_id, category=operation[2], text="Spoke with the client"
        )
    elif kind == "grant":
        until = operation[4]
        valid_until = None if until is None else (
            utcnow() + timedelta(seconds=until[0])
        ).astimezone(until[1])
        consent = casenet.consents.grant(
            net.caseworkers[owner],
            case_id,
            grantee_agency_id=other,
            sections=sorted(operation[3]),
            purpose="referral",
            method="verbal",
            valid_until=valid_until,
        )
        net.consents.append(consent.id)
    elif kind == "withdraw":
        if not net.consents:
            return
        consent_id = net.consents[operation[1] % len(net.consents)]
        owner = casenet.app.get(Consent, consent_id).owner_agency_id
        try:
            casenet.consents.withdraw(net.caseworkers[owner], consent_id, reason="Client asked")
        except ConsentNotActive:
            assert casenet.app.get(Consent, consent_id).withdrawn_at is not None
    elif kind == "emergency":
        grant = casenet.emergency_grants.create(
            net.caseworkers[owner],
            case_id,
            grantee_agency_id=other,
            sections=sorted(operation[3]),
            basis=operation[5],
            justification="Signs of neglect",
            minutes=operation[4],
        )
        net.emergencies.append(grant.id)
    elif kind == "revoke":
        if not net.emergencies:
            return
        grant_id = net.emergencies[operation[1] % len(net.emergencies)]
        owner = casenet.app.get(EmergencyGrant, grant_id).owner_agency_id
        try:
            casenet.emergency_grants.revoke(net.caseworkers[owner], grant_id, reason="Safe now")
        except EmergencyGrantNotActive:
            assert casenet.app.get(EmergencyGrant, grant_id).revoked_at is not None
    elif kind == "refer":
        covering = [
            c for c in (casenet.app.get(Consent, i) for i in net.consents)
            if c.case_id == case_id and c.grantee_agency_id == other
        ]
        referral = casenet.referrals.request(
            net.caseworkers[owner],
            case_id=case_id,
            to_agency_id=other,
            service_type="housing",
            reason="Rent arrears",
            urgency="routine",
            consent_id=covering[0].id if covering and operation[3] else None,
        )
        net.referrals.append(referral.id)
    elif kind == "regrant":
        # Rule 3: a receiving agency cannot pass anything on: not even the existence.
        truth = truth_from_log(casenet, net.first_notification)
        sees_it = sections_visible_to(
            case_facts(truth, case_id),
            truth.consents.get(case_id, []),
            other,
            utcnow(),
            truth.emergencies.get(case_id, []),
        ).visible
        expected = NotPermitted if sees_it else NotFound
        with pytest.raises(expected):
            casenet.consents.grant(
                net.caseworkers[other],
                case_id,
                grantee_agency_id=net.agencies[(net.agencies.index(other) + 1)
                                               % len(net.agencies)],
                sections=["needs"],
                purpose="referral",
                method="verbal",
            )


# --- the truth: the policy on the events ---------------------------------------------------


@dataclass
class Truth:
    """What the events say, decoded from the notification log (no read model involved)."""

    restricted: dict[UUID, bool]
    owner: dict[UUID, UUID]
    consents: dict[UUID, list[ConsentFacts]]
    referrals: dict[UUID, tuple[UUID, UUID]]  # referral -> (case, receiving agency)
    emergencies: dict[UUID, list[EmergencyFacts]] = field(default_factory=dict)


def truth_from_log(casenet: Casenet, start: int) -> Truth:
    """Every event from notification ``start`` on (the example's own), decoded."""
    restricted: dict[UUID, bool] = {}
    owner: dict[UUID, UUID] = {}
    granted: dict[UUID, ConsentGranted] = {}
    withdrawn: dict[UUID, datetime] = {}
    referrals: dict[UUID, tuple[UUID, UUID]] = {}
    created: dict[UUID, EmergencyGrantCreated] = {}
    revoked: dict[UUID, datetime] = {}
    for notification in casenet.app.recorder.select_notifications(start=start, limit=ALL):
        event = casenet.app.mapper.to_domain_event(notification)
        if isinstance(event, AgencyRegistered):
            restricted[event.originator_id] = event.restricted
        elif isinstance(event, CaseOpened):
            owner[event.originator_id] = event.owner_agency_id
        elif isinstance(event, ConsentGranted):
            granted[event.originator_id] = event
        elif isinstance(event, ConsentWithdrawn):
            withdrawn[event.originator_id] = event.timestamp
        elif isinstance(event, ReferralRequested):
            referrals[event.originator_id] = (event.case_id, event.to_agency_id)
        elif isinstance(event, EmergencyGrantCreated):
            created[event.originator_id] = event
        elif isinstance(event, EmergencyGrantRevoked):
            revoked[event.originator_id] = event.timestamp
    consents: dict[UUID, list[ConsentFacts]] = {}
    for consent_id, event in granted.items():
        consents.setdefault(event.case_id, []).append(
            ConsentFacts(
                consent_id=consent_id,
                grantee_agency_id=event.grantee_agency_id,
                sections=event.sections,
                granted_at=event.timestamp,
                withdrawn_at=withdrawn.get(consent_id),
                valid_until=event.valid_until,
            )
        )
    emergencies: dict[UUID, list[EmergencyFacts]] = {}
    for grant_id, made in created.items():
        emergencies.setdefault(made.case_id, []).append(
            EmergencyFacts(
                grant_id=grant_id,
                grantee_agency_id=made.grantee_agency_id,
                sections=made.sections,
                legal_basis=made.basis,
                created_at=made.timestamp,
                revoked_at=revoked.get(grant_id),
                expires_at=made.expires_at,
            )
        )
    return Truth(restricted, owner, consents, referrals, emergencies)


def case_facts(truth: Truth, case_id: UUID) -> CaseFacts:
    owner = truth.owner[case_id]
    return CaseFacts(case_id, owner, truth.restricted[owner])


def instants_to_check(net: Network, truth: Truth, now: datetime) -> list[datetime]:
    """Before anything, after each operation, around each expiry, now, and much later."""
    instants = {net.checkpoints[0] - timedelta(seconds=1), *net.checkpoints, now}
    for case_id in net.cases:
        for consent in truth.consents.get(case_id, []):
            if consent.valid_until is not None:
                instants |= {consent.valid_until - timedelta(microseconds=1), consent.valid_until}
        for grant in truth.emergencies.get(case_id, []):
            instants |= {grant.expires_at - timedelta(microseconds=1), grant.expires_at}
    instants.add(now + timedelta(days=2))
    return sorted(instants)


def check_read_path(casenet: Casenet, net: Network) -> None:
    queries = casenet.case_queries
    truth = truth_from_log(casenet, net.first_notification)
    now = utcnow()
    assert set(net.cases) <= set(truth.owner)
    for case_id in net.cases:
        for consent in truth.consents.get(case_id, []):
            assert casenet.app.get(Consent, consent.consent_id).facts() == consent
        for grant in truth.emergencies.get(case_id, []):
            assert casenet.app.get(EmergencyGrant, grant.grant_id).facts() == grant
    instants = instants_to_check(net, truth, now)
    # The owner's view of who had access first, straight after the last write: it must
    # not depend on some other read having caught the read models up before it.
    for instant in instants:
        for case_id in net.cases:
            facts = case_facts(truth, case_id)
            access = queries.access(net.supervisors[facts.owner_agency_id], case_id, instant)
            assert [
                (g.agency_id, tuple(g.sections), g.basis, tuple(g.consent_ids),
                 tuple(g.emergency_grant_ids), tuple(g.legal_bases))
                for g in access.grants
            ] == [
                (g.agency_id, g.sections, g.basis, g.consent_ids, g.emergency_ids, g.legal_bases)
                for g in access_at(
                    facts,
                    truth.consents.get(case_id, []),
                    instant,
                    truth.emergencies.get(case_id, []),
                )
            ], instant
    for instant in instants:
        for case_id in net.cases:
            facts = case_facts(truth, case_id)
            consents = truth.consents.get(case_id, [])
            emergency = truth.emergencies.get(case_id, [])
            for agency in net.agencies:
                expected = sections_visible_to(facts, consents, agency, instant, emergency)
                if expected.visible:
                    _, grant = queries.visible_case(net.caseworkers[agency], case_id, at=instant)
                    assert grant == expected, (instant, agency == facts.owner_agency_id)
                else:
                    with pytest.raises(NotFound):
                        queries.visible_case(net.caseworkers[agency], case_id, at=instant)
    check_reads_now(casenet, net, truth)


def check_reads_now(casenet: Casenet, net: Network, truth: Truth) -> None:
    """The reads that take no instant: valid_until is far enough ahead to be stable."""
    queries = casenet.case_queries
    for agency in net.agencies:
        actor = net.caseworkers[agency]
        now = utcnow()
        expected_shared = {}
        for case_id in net.cases:
            grant = sections_visible_to(
                case_facts(truth, case_id),
                truth.consents.get(case_id, []),
                agency,
                now,
                truth.emergencies.get(case_id, []),
            )
            if truth.owner[case_id] != agency and grant.visible:
                expected_shared[case_id] = (
                    list(grant.sections),
                    list(grant.consent_ids),
                    list(grant.emergency_ids),
                )
            if not grant.visible:
                with pytest.raises(NotFound):
                    queries.read_case(actor, case_id)
                continue
            view = queries.read_case(actor, case_id)
            assert view.sections == list(grant.sections)
            assert view.shared_under == list(grant.consent_ids)
            if truth.owner[case_id] != agency:
                assert view.shared_under_emergency == list(grant.emergency_ids)
            assert (view.client is not msgspec.UNSET) == bool(
                {IDENTITY, CONTACT} & set(grant.sections)
            )
            assert (view.summary is not msgspec.UNSET) == ("summary" in grant.sections)
            assert (view.needs is not msgspec.UNSET) == ("needs" in grant.sections)
            shown_notes = view.notes if isinstance(view.notes, list) else []
            assert {f"notes.{n.category}" for n in shown_notes} <= set(grant.sections)
        shared = queries.shared_cases(actor, limit=100, after=None).items
        assert {
            s.case_id: (s.sections, s.shared_under, s.shared_under_emergency) for s in shared
        } == expected_shared
    for referral_id in net.referrals:
        case_id, receiver = truth.referrals[referral_id]
        grant = sections_visible_to(
            case_facts(truth, case_id),
            truth.consents.get(case_id, []),
            receiver,
            utcnow(),
            truth.emergencies.get(case_id, []),
        )
        view = casenet.referral_queries.read(net.caseworkers[receiver], referral_id)
        client = view.client
        assert (client is not msgspec.UNSET) == bool({IDENTITY, CONTACT} & set(grant.sections))
        if isinstance(client, ClientView):
            assert (client.name is not msgspec.UNSET) == (IDENTITY in grant.sections)
            assert (client.phone is not msgspec.UNSET) == (CONTACT in grant.sections)


# --- the property, on each store -----------------------------------------------------------


class ReadPathEqualsPolicyOnEvents:
    """Written once; each subclass names the store."""

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError("a subclass names the store")

    @pytest.fixture
    def prepared(self, casenet: Casenet) -> Callable[..., None]:
        def example(count: int, restricted: int | None, ops: list[tuple[Any, ...]]) -> None:
            net = register_network(casenet, count, restricted)
            net.checkpoints.append(utcnow())
            open_case(casenet, net, net.agencies[0])
            for operation in ops:
                run(casenet, net, operation)
                net.checkpoints.append(utcnow())
            check_read_path(casenet, net)

        return example

    @pytest.mark.slow
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        count=st.integers(3, 4),
        restricted=st.none() | st.integers(0, 2),
        ops=operations,
    )
    def test_every_agency_at_every_instant_sees_what_the_policy_says_of_the_events(
        self,
        prepared: Callable[..., None],
        count: int,
        restricted: int | None,
        ops: list[tuple[Any, ...]],
    ) -> None:
        prepared(count, restricted, ops)

    def test_a_consent_valid_until_written_with_an_offset_ends_at_that_instant(
        self, prepared: Callable[..., None]
    ) -> None:
        # The explicit regression of the property's first finding (see the report).
        for zone in ZONES:
            prepared(3, None, [("grant", 0, 1, frozenset({"needs"}), (3600, zone))])

    def test_a_fixed_history_with_every_kind_of_operation(
        self, prepared: Callable[..., None]
    ) -> None:
        prepared(
            4,
            1,
            [
                ("open", 1),
                ("grant", 0, 1, frozenset({"identity", "needs", "notes.health"}), None),
                ("grant", 1, 1, frozenset({"identity", "summary"}), (600, ZONES[1])),
                ("grant", 0, 1, frozenset({"contact"}), (90, ZONES[2])),
                ("note", 0, "health"),
                ("note", 0, "legal"),
                ("refer", 0, 1, True),
                ("refer", 1, 1, False),
                ("regrant", 0, 1),
                ("withdraw", 0),
                ("regrant", 0, 1),
                ("grant", 0, 2, frozenset({"summary"}), None),
                ("emergency", 0, 2, frozenset({"identity", "notes.legal"}), 90, "safeguarding"),
                ("emergency", 1, 1, frozenset({"contact", "summary"}), 1, "court_order"),
                ("emergency", 0, 1, frozenset({"needs"}), 4320, "vital_interests"),
                ("revoke", 2),
                ("revoke", 2),
                ("refer", 1, 1, False),
            ],
        )


class TestSQLite(ReadPathEqualsPolicyOnEvents):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgres(ReadPathEqualsPolicyOnEvents):
    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url

