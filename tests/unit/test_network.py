"""The network's rules (rule 7), without a store: a partnership's transitions, and an
appeal's reach, relays (never past three hops, whatever the partner graph and the order
of relays), answers and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casenet.domain.appeal import MAX_HOPS, Appeal, AppealRelayed
from casenet.domain.errors import IllegalTransition, InvalidInput, NotFound, NotPermitted
from casenet.domain.partnership import Partnership, pair_partnership_id

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AGENCIES = [UUID(int=n + 1) for n in range(8)]


def ask(requester: UUID, partner: UUID) -> Partnership:
    return Partnership.request(
        partnership_id=uuid4(), requester=requester, partner=partner, worker_id=uuid4()
    )


def post(author: UUID, reached: list[UUID], **extra: datetime) -> Appeal:
    return Appeal.post(
        agency_id=author,
        worker_id=uuid4(),
        need="health",
        title="Donors",
        text="O negative",
        area=None,
        expires_at=extra.get("expires_at", NOW + timedelta(days=1)),
        reach="partners",
        reached=reached,
        now=NOW,
    )


def test_only_the_asked_agency_answers_and_only_once() -> None:
    a, b, c = AGENCIES[:3]
    partnership = ask(a, b)
    with pytest.raises(NotPermitted):
        partnership.accept(agency_id=a, worker_id=uuid4())
    partnership.accept(agency_id=b, worker_id=uuid4())
    assert partnership.status == "active"
    with pytest.raises(IllegalTransition):
        partnership.decline(agency_id=b, worker_id=uuid4())
    with pytest.raises(NotPermitted):
        partnership.end(agency_id=c, worker_id=uuid4())
    partnership.end(agency_id=b, worker_id=uuid4())
    with pytest.raises(IllegalTransition):
        partnership.end(agency_id=a, worker_id=uuid4())
    with pytest.raises(InvalidInput):
        ask(a, a)


def test_a_pair_has_the_same_ids_whoever_asks() -> None:
    a, b = AGENCIES[:2]
    assert pair_partnership_id(a, b, 0) == pair_partnership_id(b, a, 0)
    assert pair_partnership_id(a, b, 0) != pair_partnership_id(a, b, 1)


@settings(max_examples=200, deadline=None)
@given(
    edges=st.sets(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=20),
    relays=st.lists(st.integers(0, 7), max_size=20),
)
def test_relays_never_reach_past_three_hops(edges: set[tuple[int, int]], relays: list[int]) -> None:
    partners: dict[UUID, set[UUID]] = {agency: set() for agency in AGENCIES}
    for x, y in edges:
        if x != y:
            partners[AGENCIES[x]].add(AGENCIES[y])
            partners[AGENCIES[y]].add(AGENCIES[x])
    author = AGENCIES[0]
    appeal = post(author, sorted(partners[author]))
    for n in relays:
        relayer = AGENCIES[n]
        try:
            appeal.relay(
                agency_id=relayer, worker_id=uuid4(), partners=sorted(partners[relayer]), now=NOW
            )
        except NotFound:
            assert relayer != author
            assert relayer not in appeal.reached
    assert author not in appeal.reached
    hops = {author: 0, **appeal.reached}
    for agency, hop in appeal.reached.items():
        assert 1 <= hop <= MAX_HOPS
        # Reached through a partner one hop nearer the author.
        assert any(hops.get(p) == hop - 1 for p in partners[agency]), (agency, hop)
    # Replaying the events gives the same reach (it is recorded, not recomputed).
    replayed = Appeal(appeal.id)
    for event in appeal.collect_events():
        replayed.apply(event)
    assert replayed.reached == appeal.reached


def test_the_fourth_agency_of_a_chain_is_never_reached() -> None:
    a, b, c, d, e = AGENCIES[:5]
    appeal = post(a, [b])
    assert appeal.relay(agency_id=b, worker_id=uuid4(), partners=[a, c], now=NOW) == 1
    assert appeal.relay(agency_id=c, worker_id=uuid4(), partners=[b, d], now=NOW) == 1
    assert appeal.relay(agency_id=d, worker_id=uuid4(), partners=[c, e], now=NOW) == 0
    assert appeal.reached == {b: 1, c: 2, d: 3}
    relays = [x for x in appeal.collect_events() if isinstance(x, AppealRelayed)]
    assert [(x.agency_id, x.hop, x.reached) for x in relays] == [(b, 2, (c,)), (c, 3, (d,))]


def test_past_its_expiry_an_appeal_is_closed_and_records_nothing() -> None:
    a, b = AGENCIES[:2]
    appeal = post(a, [b], expires_at=NOW + timedelta(minutes=1))
    appeal.collect_events()
    later = NOW + timedelta(minutes=1)
    assert appeal.status(NOW) == "open"
    assert appeal.status(later) == "closed"
    with pytest.raises(IllegalTransition):
        appeal.respond(agency_id=b, worker_id=uuid4(), answer="can_help", text=None, now=later)
    with pytest.raises(IllegalTransition):
        appeal.close(agency_id=a, worker_id=uuid4(), reason="r", now=later)
    assert appeal.collect_events() == []
    with pytest.raises(InvalidInput):
        post(a, [b], expires_at=NOW)


def test_the_author_sees_every_answer_a_responder_its_own() -> None:
    a, b, c = AGENCIES[:3]
    appeal = post(a, [b, c])
    first = appeal.respond(agency_id=b, worker_id=uuid4(), answer="can_help", text=None, now=NOW)
    second = appeal.respond(agency_id=c, worker_id=uuid4(), answer="waitlist", text="May", now=NOW)
    assert appeal.responses_for(a) == [first, second]
    assert appeal.responses_for(b) == [first]
    with pytest.raises(NotPermitted):
        appeal.respond(agency_id=a, worker_id=uuid4(), answer="can_help", text=None, now=NOW)
    with pytest.raises(NotFound):
        appeal.respond(
            agency_id=AGENCIES[5], worker_id=uuid4(), answer="can_help", text=None, now=NOW
        )


@pytest.mark.parametrize(
    "expires_at",
    [datetime(9999, 12, 31, tzinfo=UTC), datetime(2030, 1, 1)],  # far; with no offset
)
def test_an_appeal_refuses_an_expiry_no_store_can_hold(expires_at: datetime) -> None:
    """The API's body checks this too; the aggregate again, so no path writes it."""
    with pytest.raises(InvalidInput) as refused:
        post(uuid4(), [], expires_at=expires_at)
    assert refused.value.field == "expires_at"
