"""The log read with plain SQL gives what the library's reader gives, on both stores.

``stored_rows`` (used by the audit export) must return, for the topics asked, exactly
the notifications the library's ``select_notifications`` returns up to ``stop``: same
positions, topics, versions and state bytes, and the aggregate id as ``str(UUID)``;
whatever the window size, windows without a wanted event included. ``next_rows``
(read by projections and rebuilds) must return the notifications of every topic that
``select_notifications(start + 1, limit, stop)`` returns, the same way (the id as
stored, which ``uuid_text`` writes as ``str(UUID)``).
"""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.utils import get_topic

from casenet.application import OPERATOR_ACTOR, Casenet
from casenet.domain.case import Case, CaseOpened
from casenet.domain.client import Client
from casenet.domain.consent import Consent, ConsentGranted, ConsentWithdrawn
from casenet.infrastructure.raw_log import next_rows, stored_rows, uuid_text


def fill(casenet: Casenet) -> None:
    owner = casenet.agencies.register(OPERATOR_ACTOR, name="Owner", kind="ngo")
    grantee = casenet.agencies.register(OPERATOR_ACTOR, name="Grantee", kind="ngo")
    worker, _ = casenet.agencies.add_worker(OPERATOR_ACTOR, owner.id, name="W", role="caseworker")
    for _ in range(3):
        client = Client.register(
            agency_id=owner.id, name="Client", date_of_birth=None, phone=None, address=None
        )
        case = Case.open(
            owner_agency_id=owner.id,
            worker_id=worker.id,
            client_id=client.id,
            summary="Summary",
            needs=["housing"],
        )
        consents = [
            Consent.grant(
                case_id=case.id,
                client_id=client.id,
                owner_agency_id=owner.id,
                recording_agency_id=owner.id,
                grantee_agency_id=grantee.id,
                sections=["needs"],
                purpose="referral",
                method="written",
                worker_id=worker.id,
            )
            for _ in range(4)
        ]
        consents[0].withdraw(recording_agency_id=owner.id, worker_id=worker.id, reason="No")
        casenet.app.save(client, case, *consents)


@pytest.mark.parametrize("batch", [1, 3, 7, 10_000])
def test_stored_rows_are_the_librarys_notifications_of_those_topics(
    casenet: Casenet, batch: int
) -> None:
    fill(casenet)
    app = casenet.app
    head = app.projections.head()
    topics = [get_topic(t) for t in (CaseOpened, ConsentGranted, ConsentWithdrawn)]
    stop = head - 2  # the last consents of the last case are beyond it
    expected = [
        (n.id, n.topic, str(n.originator_id), n.originator_version, bytes(n.state))
        for n in app.recorder.select_notifications(start=1, limit=head, stop=stop)
        if n.topic in topics
    ]
    assert len(expected) == 3 * 6 - 2  # per case: opened, 4 granted, 1 withdrawn
    assert {row[1] for row in expected} == set(topics)
    rows = list(stored_rows(app.projections.db, app.recorder, topics, stop=stop, batch=batch))
    assert [(p, t, i, v, bytes(s)) for p, t, i, v, s in rows] == expected
    assert all(str(UUID(row[2])) == row[2] for row in rows)


@pytest.mark.parametrize(
    ("start", "limit", "stop"),
    [(0, 10_000, None), (0, 5, None), (4, 7, None), (4, 100, 9), (10, 1, 11), (3, 10, 3)],
)
def test_next_rows_are_the_librarys_next_notifications(
    casenet: Casenet, start: int, limit: int, stop: int | None
) -> None:
    fill(casenet)
    app = casenet.app
    expected = [
        (n.id, n.topic, str(n.originator_id), n.originator_version, bytes(n.state))
        for n in app.recorder.select_notifications(start=start + 1, limit=limit, stop=stop)
    ]
    assert expected or stop == start
    rows = next_rows(app.projections.db, app.recorder, start, limit, stop)
    # The id as stored (SQLite: 32 hex digits), which uuid_text writes as str(UUID).
    assert [(p, t, uuid_text(i), v, bytes(s)) for p, t, i, v, s in rows] == expected
    assert all(UUID(row[2]) == UUID(uuid_text(row[2])) for row in rows)
    past = next_rows(app.projections.db, app.recorder, app.projections.head(), limit)
    assert past == []
