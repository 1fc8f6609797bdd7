"""Reads served by a hot standby (``CASENET_REPLICA_URLS``), still read-your-writes.

A real primary and its real standby (tests/conftest.py: ``replica_url``). A routed read
(the API's GET and HEAD; here ``casenet.replica_reads()``) runs on the standby once it
has replayed the primary's WAL position taken at the read's start; the tests pause the
standby's replay (``pg_wal_replay_pause()``, resumed in a ``finally``: others use the
standby) to make it lag, and point casenet at a closed port to make it down.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient

from casenet.api.app import create_app
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.application.views import ClientView
from casenet.bootstrap import build_casenet
from casenet.domain.errors import NotFound
from casenet.infrastructure.persistence import replicas
from casenet.settings import Settings, load_settings

pytestmark = pytest.mark.postgres

OPERATOR_TOKEN = "replica-operator-token-" + "x7Qp2" * 10
#: The wait of a test that asserts the standby served: on this shared machine its replay
#: stalls at times (another test's CREATE DATABASE copies a whole template).
PATIENT_MS = 5000


class Opener:
    """Builds casenets on this test's database whose reads may go to replicas."""

    def __init__(self, database_url: str, replica_url: str, data_dir: Path) -> None:
        self.database_url = database_url
        self.replica_url = replica_url
        self.data_dir = data_dir
        self.opened: list[Casenet] = []

    def settings(self, replica_urls: str | None = None, wait_ms: int = 50) -> Settings:
        return load_settings(
            {
                "CASENET_DATABASE_URL": self.database_url,
                "CASENET_DATA_DIR": str(self.data_dir),
                "CASENET_REPLICA_URLS": replica_urls or self.replica_url,
                "CASENET_REPLICA_WAIT_MS": str(wait_ms),
                "CASENET_OPERATOR_TOKEN": OPERATOR_TOKEN,
                "CASENET_WEBHOOK_WORKER": "off",
            }
        )

    def __call__(self, replica_urls: str | None = None, wait_ms: int = 50) -> Casenet:
        self.opened.append(build_casenet(self.settings(replica_urls, wait_ms)))
        return self.opened[-1]


@pytest.fixture
def open_routed(postgres_database_url: str, replica_url: str, tmp_path: Path) -> Iterator[Opener]:
    opener = Opener(postgres_database_url, replica_url, tmp_path / "data")
    yield opener
    for instance in opener.opened:
        instance.close()


@contextmanager
def replay_paused(replica_url: str) -> Iterator[None]:
    """The standby replays nothing within (it still receives the WAL)."""
    with psycopg.connect(replica_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")


def served(casenet: Casenet) -> int:
    stats = casenet.replica_stats()
    assert stats is not None
    return stats.served


def fallbacks(casenet: Casenet, reason: str) -> int:
    stats = casenet.replica_stats()
    assert stats is not None
    return stats.fallbacks[reason]


def scene(casenet: Casenet) -> tuple[Actor, Actor, UUID, UUID]:
    """An owner's case (client registered), a grantee agency: owner, grantee, case, client."""
    actors = []
    for name in ("Welfare NGO", "Hospital"):
        agency = casenet.agencies.register(OPERATOR_ACTOR, name=name, kind="ngo")
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name=f"{name} worker", role="caseworker"
        )
        actors.append(Actor(agency.id, worker.id, "caseworker"))
    case = casenet.cases.open_case(
        actors[0],
        client=ClientDetails(name="Amina Njeri", date_of_birth="1984-02-29"),
        summary="Job clashes with appointments",
        needs=["employment", "health"],
    )
    return actors[0], actors[1], case.id, case.client_id


def grant(casenet: Casenet, owner: Actor, grantee: Actor, case_id: UUID) -> UUID:
    assert grantee.agency_id is not None
    consent = casenet.consents.grant(
        owner, case_id, grantee_agency_id=grantee.agency_id,
        sections=["identity", "needs", "notes.health"], purpose="referral", method="verbal",
    )  # fmt: skip
    return consent.id


def test_a_routed_read_runs_on_the_standby_and_others_on_the_primary(
    open_routed: Opener,
) -> None:
    casenet = open_routed(wait_ms=PATIENT_MS)
    db = casenet.app.database
    in_recovery = "SELECT pg_is_in_recovery()"
    with casenet.replica_reads():
        assert db.read(in_recovery, tuples=True) == [(True,)]
        with db.on_primary():
            assert db.read(in_recovery, tuples=True) == [(False,)]
        assert db.read(in_recovery, tuples=True) == [(True,)]
    assert db.read(in_recovery, tuples=True) == [(False,)], "outside a routed request"
    assert served(casenet) == 2


def test_a_case_read_is_served_by_the_standby_and_sees_the_write_before_it(
    open_routed: Opener,
) -> None:
    casenet = open_routed(wait_ms=PATIENT_MS)
    owner, _, case_id, _ = scene(casenet)
    before = served(casenet)
    casenet.cases.add_note(owner, case_id, category="health", text="Dialysis on Tuesdays")
    with casenet.replica_reads():
        view = casenet.case_queries.read_case(owner, case_id)
    assert [n.text for n in view.notes or []] == ["Dialysis on Tuesdays"]
    assert served(casenet) > before
    assert fallbacks(casenet, replicas.DOWN) == 0


def test_a_read_of_read_models_takes_the_wal_position_with_their_positions(
    open_routed: Opener,
) -> None:
    """The statement that reads the models' positions on the primary also gives the WAL
    position the standby must reach: no second round trip to ask for it. A catch-up
    (a write) makes the next routed read ask afresh."""
    casenet = open_routed(wait_ms=PATIENT_MS)
    owner, grantee, case_id, _ = scene(casenet)
    grant(casenet, owner, grantee, case_id)
    casenet.app.projections.catch_up(casenet.app.projections.names())  # nothing left behind
    stats = casenet.replica_stats()
    assert stats is not None
    before = stats
    with casenet.replica_reads():
        shared = casenet.case_queries.shared_cases(grantee, limit=10, after=None).items
    after = casenet.replica_stats()
    assert after is not None
    assert [c.case_id for c in shared] == [case_id]
    assert after.served > before.served, "the standby served the shared cases"
    assert after.positions == before.positions, "no WAL position asked for on its own"
    casenet.cases.add_note(owner, case_id, category="health", text="Written after")
    with casenet.replica_reads():
        notes = casenet.case_queries.read_case(owner, case_id).notes or []
    assert [n.text for n in notes] == ["Written after"]
    last = casenet.replica_stats()
    assert last is not None
    assert last.positions > after.positions, "the owner's read asked"


def test_with_replay_paused_a_read_after_a_write_sees_it_from_the_primary(
    open_routed: Opener, replica_url: str
) -> None:
    casenet = open_routed()
    owner, grantee, case_id, _ = scene(casenet)
    with replay_paused(replica_url):
        casenet.cases.add_note(owner, case_id, category="health", text="Seen at once")
        consent_id = grant(casenet, owner, grantee, case_id)
        lagged = fallbacks(casenet, replicas.LAG)
        with casenet.replica_reads():
            notes = casenet.case_queries.read_case(owner, case_id).notes or []
        with casenet.replica_reads():
            shared = casenet.case_queries.shared_cases(grantee, limit=10, after=None).items
        with casenet.replica_reads():
            feed = casenet.feed.feed(grantee, limit=100, after=None).items
        assert [n.text for n in notes] == ["Seen at once"]
        assert [c.case_id for c in shared] == [case_id]
        assert consent_id in {getattr(item, "consent_id", None) for item in feed}
        assert fallbacks(casenet, replicas.LAG) >= lagged + 3, "each read waited, then fell back"
    patient = open_routed(wait_ms=PATIENT_MS)
    with patient.replica_reads():
        assert patient.case_queries.read_case(grantee, case_id).sections
    assert served(patient) > 0, "the standby serves again once it replays"


def test_a_withdrawal_takes_effect_at_once_though_the_standby_lags(
    open_routed: Opener, replica_url: str
) -> None:
    casenet = open_routed()
    owner, grantee, case_id, _ = scene(casenet)
    consent_id = grant(casenet, owner, grantee, case_id)
    with casenet.replica_reads():
        assert isinstance(casenet.case_queries.read_case(grantee, case_id).client, ClientView)
    with replay_paused(replica_url):  # the standby still holds the consent as active
        casenet.consents.withdraw(owner, consent_id, reason="Client asked to stop")
        with casenet.replica_reads(), pytest.raises(NotFound):
            casenet.case_queries.read_case(grantee, case_id)
        with casenet.replica_reads():
            assert casenet.case_queries.shared_cases(grantee, limit=10, after=None).items == []
    with casenet.replica_reads(), pytest.raises(NotFound):
        casenet.case_queries.read_case(grantee, case_id)


def test_an_erasure_takes_effect_at_once_though_the_standby_lags(
    open_routed: Opener, replica_url: str
) -> None:
    casenet = open_routed()
    owner, _, case_id, client_id = scene(casenet)
    with casenet.replica_reads():
        assert isinstance(casenet.case_queries.read_case(owner, case_id).client, ClientView)
    with replay_paused(replica_url):  # the standby still holds the client's data key
        casenet.clients.erase(OPERATOR_ACTOR, client_id)
        with casenet.replica_reads():
            view = casenet.case_queries.read_case(owner, case_id)
        assert view.client is msgspec.UNSET or getattr(view.client, "name", None) != ("Amina Njeri")
    with casenet.replica_reads():
        after = casenet.case_queries.read_case(owner, case_id)
    assert getattr(after.client, "name", None) != "Amina Njeri"


def closed_port() -> int:
    """A local port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_replica_that_refuses_connections_leaves_reads_to_the_primary(
    open_routed: Opener,
    postgres_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(replicas, "DOWN_SECONDS", 0.3)
    dbname = postgres_database_url.rsplit("/", 1)[1]
    casenet = open_routed(f"postgresql://postgres@127.0.0.1:{closed_port()}/{dbname}")
    owner, _, case_id, _ = scene(casenet)
    for _ in range(3):
        with casenet.replica_reads():
            assert casenet.case_queries.read_case(owner, case_id).id == case_id
    assert served(casenet) == 0
    assert fallbacks(casenet, replicas.DOWN) >= 3
    tried = [r for r in caplog.records if r.name == "casenet.replicas"]
    assert len(tried) == 1, "marked down once, not tried again for a while"
    assert "Amina" not in tried[0].getMessage()
    time.sleep(0.35)
    with casenet.replica_reads():
        casenet.case_queries.read_case(owner, case_id)
    assert len([r for r in caplog.records if r.name == "casenet.replicas"]) == 2, "tried again"


def test_get_requests_of_the_api_are_served_by_the_standby(
    open_routed: Opener,
) -> None:
    """The routing reaches the worker thread a ``sync_to_thread`` handler runs in."""
    casenet = open_routed(wait_ms=PATIENT_MS)
    owner, *_ = scene(casenet)
    app = create_app(open_routed.settings(wait_ms=PATIENT_MS), casenet)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        before = served(casenet)
        assert client.get("/health/ready").status_code == 200
        assert client.get(f"/v1/agencies/{owner.agency_id}", headers=headers).status_code == 200
        assert served(casenet) > before
        metrics = client.get("/metrics", headers=headers).text
    assert metrics_value(metrics, "casenet_replica_reads_total") >= served(casenet) - 1 > 0
    assert 'casenet_replica_fallbacks_total{reason="down"} 0.0' in metrics
    assert "casenet_replica_wait_seconds_count" in metrics


def test_ready_while_the_replica_is_down(open_routed: Opener) -> None:
    down = f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres"
    casenet = open_routed(down)
    with TestClient(create_app(open_routed.settings(down), casenet)) as client:
        assert client.get("/health/ready").status_code == 200


def metrics_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_replica_with_every_connection_in_use_leaves_the_read_to_the_primary(
    open_routed: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replicas, "MAX_CONNECTIONS", 0)  # as if every one were in use
    casenet = open_routed()
    owner, _, case_id, _ = scene(casenet)
    with casenet.replica_reads():
        assert casenet.case_queries.read_case(owner, case_id).id == case_id
    assert served(casenet) == 0
    assert fallbacks(casenet, replicas.BUSY) == 1
    assert fallbacks(casenet, replicas.DOWN) == 0
