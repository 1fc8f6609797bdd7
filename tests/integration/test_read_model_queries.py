"""The queries each read model's module holds, and the store hooks they use, on both
stores: scoped to an agency, they answer another agency's id as a random one."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

import pytest

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.domain.aggregate import utcnow
from casenet.domain.case import Case
from casenet.infrastructure.projections import cases, consents, directory, referrals
from casenet.infrastructure.sql import Database


@dataclass(frozen=True)
class Net:
    owner: UUID
    grantee: UUID
    outsider: UUID
    case: Case
    consent: UUID
    referral: UUID


def network(casenet: Casenet) -> Net:
    """An owner (restricted) with a case, a grantee holding a consent, an outsider."""
    agencies = casenet.agencies
    owner = agencies.register(OPERATOR_ACTOR, name="Owner", kind="ngo", restricted=True)
    grantee = agencies.register(OPERATOR_ACTOR, name="Grantee", kind="hospital")
    outsider = agencies.register(OPERATOR_ACTOR, name="Outsider", kind="school")
    worker, _ = agencies.add_worker(OPERATOR_ACTOR, owner.id, name="W", role="caseworker")
    actor = Actor(owner.id, worker.id, "caseworker")
    case = casenet.cases.open_case(
        actor, client=ClientDetails(name="Amina"), summary="s", needs=["housing"]
    )
    consent = casenet.consents.grant(
        actor,
        case.id,
        grantee_agency_id=grantee.id,
        sections=["identity"],
        purpose="referral",
        method="written",
    )
    referral = casenet.referrals.request(
        actor,
        case_id=case.id,
        to_agency_id=grantee.id,
        service_type="health",
        reason="r",
        urgency="routine",
        consent_id=consent.id,
    )
    projections = casenet.app.projections
    projections.catch_up(projections.names())
    return Net(owner.id, grantee.id, outsider.id, case, consent.id, referral.id)


def test_a_case_is_scoped_to_its_owner_and_its_grantees(casenet: Casenet) -> None:
    net = network(casenet)
    db, case = casenet.app.database, net.case
    assert cases.scoped_case(db, case.id, net.outsider) is None
    assert cases.scoped_case(db, uuid4(), net.owner) is None

    scope = cases.scoped_case(db, case.id, net.grantee)
    assert scope is not None
    assert (scope.owner_agency_id, scope.client_id) == (str(net.owner), str(case.client_id))
    assert scope.restricted
    assert [c.consent_id for c in scope.consents] == [str(net.consent)]
    assert scope.consents[0].withdrawn_at is None

    owned = cases.scoped_case(db, case.id, net.owner)
    assert owned is not None
    assert owned.consents == []  # the owner holds no consent on its own case

    assert cases.case_owned_by(db, case.id, net.owner)
    assert not cases.case_owned_by(db, case.id, net.grantee)
    assert cases.client_registered_by(db, case.client_id, net.owner)
    assert not cases.client_registered_by(db, case.client_id, net.grantee)


def test_consent_queries_answer_only_for_the_case_and_the_agency(casenet: Casenet) -> None:
    net = network(casenet)
    db, case = casenet.app.database, net.case
    consent_id = net.consent
    args = (db, consent_id, case.id)
    assert consents.covering_purpose(*args, net.grantee) == "referral"
    assert consents.covering_purpose(*args, net.outsider) is None
    assert consents.covering_purpose(db, consent_id, uuid4(), net.grantee) is None
    assert consents.consent_owned_by(db, consent_id, net.owner)
    assert not consents.consent_owned_by(db, consent_id, net.grantee)
    assert consents.consent_ids_of_case(db, case.id) == [consent_id]
    assert consents.purposes_of(db, [consent_id]) == ["referral"]
    assert consents.purposes_of(db, []) == []

    shared = consents.shared_with(db, net.grantee, utcnow(), after=None, limit=10)
    assert [(r.case_id, r.owner_agency_id) for r in shared] == [(str(case.id), str(net.owner))]
    later = consents.shared_with(db, net.grantee, utcnow(), after=str(case.id), limit=10)
    assert later == []


def test_directory_and_referral_queries(casenet: Casenet) -> None:
    net = network(casenet)
    db = casenet.app.database
    assert directory.is_restricted(db, net.owner)
    assert not directory.is_restricted(db, net.grantee)
    assert not directory.is_restricted(db, uuid4())
    ids = sorted(str(a) for a in (net.owner, net.grantee, net.outsider))
    assert [row.agency_id for row in directory.agencies_after(db, None)] == ids
    assert [row.agency_id for row in directory.agencies_after(db, ids[0])] == ids[1:]

    referral_id = net.referral
    assert referrals.is_party(db, referral_id, net.grantee)
    assert not referrals.is_party(db, referral_id, net.outsider)
    inbox = referrals.agency_referrals(
        db,
        net.grantee,
        incoming=True,
        status=None,
        after=None,
        limit=10,
    )
    assert [r.referral_id for r in inbox] == [str(referral_id)]
    outbox = referrals.agency_referrals(
        db,
        net.grantee,
        incoming=False,
        status=None,
        after=None,
        limit=10,
    )
    assert outbox == []


@pytest.fixture
def db(casenet: Casenet) -> Database:
    return casenet.app.database


def test_scan_reads_every_row_in_key_order_across_fetches_and_messages(db: Database) -> None:
    # Values of 300 kB: on PostgreSQL a row spans several COPY messages.
    big = bytes(range(256)) * 1200
    rows = [
        (a, b, a * 10 + b, big[: 1 + a * 7 + b] if b % 2 else big)
        for a in (2, 1)
        for b in (3, 1, 2)
    ]
    with db.cursor(commit=True) as cursor:
        cursor.execute(
            f"CREATE TABLE scanned (a INTEGER NOT NULL, b BIGINT NOT NULL, n INTEGER, "
            f"data {db.blob} NOT NULL, PRIMARY KEY (a, b))"
        )
        db.write_many(cursor, "INSERT INTO scanned VALUES (%s, %s, %s, %s)", rows)
    with db.cursor(commit=False) as cursor:
        db.begin_bulk_read(cursor)
        found = list(
            db.scan(
                cursor,
                "scanned",
                ("a", "b", "n", "data"),
                ("a", "b"),
                (int, int, int, bytes),
                fetch=2,
            )
        )
    assert found == sorted(rows)


def test_columns_and_indexes_hooks(db: Database) -> None:
    with db.cursor(commit=True) as cursor:
        cursor.execute("CREATE TABLE grown (name TEXT PRIMARY KEY)")
        for _ in range(2):  # the second time, nothing is missing
            db.add_missing_columns(cursor, "grown", [("epoch", "BIGINT NOT NULL DEFAULT 0")])
        cursor.execute("CREATE INDEX grown_epoch ON grown (epoch)")
        cursor.execute(db.sql("INSERT INTO grown (name) VALUES (%s)"), ("a",))
    assert "grown_epoch" in db.index_names()
    with db.cursor(commit=False) as cursor:
        assert db.fetch_tuples(cursor, "SELECT name, epoch FROM grown WHERE name = %s", ("a",)) == [
            ("a", 0)
        ]
