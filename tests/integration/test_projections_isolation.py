"""One read model that fails on an event stops alone; everything else keeps working.

Before issue 15 the runner applied every model in lockstep, in one transaction: a
model that failed on one event stopped all of them there, every read of every agency
answered 500 (after restarts too: nothing remembered why), and ``/health/ready``
answered 200. Now only that model stops, before the event, with a safe reason in
``projections status``, ``/health/ready`` and the logs; reads that need it answer 503
problem+json; a fixed version resumes it at its start.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import TestClient

from casenet.api.app import create_app
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.infrastructure.projections import ReadModelStopped
from casenet.infrastructure.projections.facts import StoredFact
from casenet.settings import load_settings

SECRET = "Amina Secret-Name"


class ModelBug(Exception):
    """What a read model's bug raises (its message quotes the data, as drivers' do)."""


def break_model(casenet: Casenet, name: str, poison: UUID, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make read model ``name`` fail on every batch that holds an event of ``poison``."""
    model = casenet.app.projections.models[name]
    apply = model.apply_batch

    def failing(db: Any, cursor: Any, facts: Sequence[StoredFact]) -> None:
        if any(fact.aggregate_id == str(poison) for fact in facts):
            raise ModelBug(f"cannot apply {SECRET}")
        apply(db, cursor, facts)

    monkeypatch.setattr(model, "apply_batch", failing)


def network(casenet: Casenet) -> dict[str, Any]:
    agencies = casenet.agencies
    welfare = agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
    hospital = agencies.register(OPERATOR_ACTOR, name="Hospital", kind="hospital")
    school = agencies.register(OPERATOR_ACTOR, name="School", kind="school")
    tokens, actors = {}, {}
    for agency in (welfare, hospital, school):
        worker, token = agencies.add_worker(OPERATOR_ACTOR, agency.id, name="W", role="supervisor")
        actors[agency.name], tokens[agency.name] = Actor(agency.id, worker.id, "supervisor"), token
    owner = actors["Welfare NGO"]
    case = casenet.cases.open_case(
        owner, client=ClientDetails(name=SECRET), summary="Needs a slot", needs=[]
    )
    casenet.consents.grant(
        owner, case.id, grantee_agency_id=hospital.id, sections=["identity", "summary"],
        purpose="referral", method="verbal",
    )
    first = casenet.referrals.request(
        owner, case_id=case.id, to_agency_id=hospital.id, service_type="health",
        reason="Move the slot", urgency="routine",
    )
    return {"actors": actors, "tokens": tokens, "case": case, "hospital": hospital,
            "first_referral": first}


def test_a_model_that_fails_on_an_event_stops_alone_and_says_why(
    casenet: Casenet,
    open_casenet: Callable[[], Casenet],
    casenet_environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    net = network(casenet)
    projections = casenet.app.projections
    projections.ensure_current()
    owner = net["actors"]["Welfare NGO"]
    poisoned = casenet.referrals.request(
        owner, case_id=net["case"].id, to_agency_id=net["hospital"].id,
        service_type="health", reason="Again", urgency="urgent",
    )
    poison_at = projections.head() - 1  # the disclosure of its reason comes after it
    casenet.cases.add_note(owner, net["case"].id, text="Later", category="general")
    break_model(casenet, "referrals", poisoned.id, monkeypatch)

    with caplog.at_level(logging.INFO), pytest.raises(ReadModelStopped) as stopped:
        projections.catch_up(projections.names())
    with pytest.raises(ReadModelStopped):  # without trying again: it would answer stale
        projections.ensure_current(["referrals"])
    projections.ensure_current(["cases", "consents", "feed"])

    head = projections.head()
    reason = f"ModelBug applying ReferralRequested at position {poison_at}"
    assert stopped.value.name == "referrals"
    assert {s.name: (s.position, s.stopped) for s in projections.status()} == {
        **dict.fromkeys(projections.models, (head, None)),
        "referrals": (poison_at - 1, reason),
    }
    assert f"read model referrals stopped at position {poison_at - 1}: {reason}" in caplog.text
    assert SECRET not in caplog.text
    assert "Traceback" not in caplog.text
    # Another process sees it too, and `projections status` prints it.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    status = subprocess.run(
        [sys.executable, "-m", "casenet.cli", "projections", "status"],
        env={**environ, **casenet_environ}, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    lag = head - poison_at + 1
    assert f"referrals position {poison_at - 1} lag {lag} STOPPED: {reason}" in status
    assert f"cases position {head} lag 0" in status

    settings = load_settings(casenet_environ)
    hospital_token, school_token = net["tokens"]["Hospital"], net["tokens"]["School"]
    with TestClient(app=create_app(settings, casenet)) as client:
        def get(path: str, token: str | None = None) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return client.get(path, headers=headers)

        ready = get("/health/ready")
        assert ready.status_code == 503
        assert ready.headers["content-type"].startswith("application/problem+json")
        assert f"read model referrals stopped: {reason}" in ready.json()["detail"]
        # Reads that need the stopped model: 503 problem+json, never stale, never 500.
        inbox = get("/v1/referrals?direction=incoming", hospital_token)
        assert inbox.status_code == 503, inbox.text
        assert inbox.headers["content-type"].startswith("application/problem+json")
        assert inbox.json()["detail"] == "the referrals read model is not available; retry later"
        assert SECRET not in inbox.text
        # Every other read, of every agency, answers.
        assert get(f"/v1/cases/{net['case'].id}", hospital_token).status_code == 200
        assert get("/v1/shared-cases", hospital_token).status_code == 200
        assert get("/v1/feed", hospital_token).status_code == 200
        assert get("/v1/me", school_token).status_code == 200
        assert get("/v1/agencies", school_token).status_code == 200
        assert get("/v1/cases", school_token).status_code == 200
        # A referral by id is looked up in the referrals model first, scoped to the
        # caller's agency (no existence oracle): it needs the stopped model too.
        referral = get(f"/v1/referrals/{net['first_referral'].id}", hospital_token)
        assert referral.status_code == 503, referral.text
        assert SECRET not in referral.text

    # The fixed version: its runner resumes the model at start, and it catches up.
    monkeypatch.undo()
    fixed = open_casenet()
    stop = threading.Event()
    runner = threading.Thread(target=fixed.app.projections.run_forever, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while fixed.app.projections.stopped() or fixed.app.projections.position(
            "referrals"
        ) < fixed.app.projections.head():
            assert time.monotonic() < deadline, fixed.app.projections.status()
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join()
    incoming = fixed.referral_queries.list(
        net["actors"]["Hospital"], direction="incoming", status=None, limit=None, after=None
    )
    assert {item.id for item in incoming.items} == {net["first_referral"].id, poisoned.id}
    live = fixed.app.projections.checksum("referrals")
    fixed.app.projections.rebuild(["referrals"])
    assert fixed.app.projections.checksum("referrals") == live


def test_a_store_of_the_code_before_gets_the_new_columns_at_its_first_start(
    casenet: Casenet, open_casenet: Callable[[], Casenet]
) -> None:
    network(casenet)
    db = casenet.app.database
    with db.cursor(commit=True) as cursor:  # the positions table as the code before made it
        cursor.execute(
            "CREATE TABLE old_positions (name TEXT PRIMARY KEY, position BIGINT NOT NULL, "
            "rebuilding INTEGER NOT NULL DEFAULT 0)"
        )
        cursor.execute(
            "INSERT INTO old_positions SELECT name, position, rebuilding "
            "FROM casenet_projection_positions"
        )
        cursor.execute("DROP TABLE casenet_projection_positions")
        cursor.execute("ALTER TABLE old_positions RENAME TO casenet_projection_positions")
        cursor.execute("UPDATE casenet_schema SET fingerprint = 'the code before'")
    casenet.close()

    started = open_casenet()

    projections = started.app.projections
    assert projections.stopped() == {}
    projections.catch_up(projections.names())
    head = projections.head()
    assert {(s.position, s.stopped) for s in projections.status()} == {(head, None)}
    projections.rebuild(["consents"])


def test_a_rebuild_whose_model_fails_says_so_in_one_line_and_rebuilds_the_others(
    casenet: Casenet,
    casenet_environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from casenet import cli
    from casenet.infrastructure.projections.feed import FeedModel

    net = network(casenet)
    casenet.close()
    apply = FeedModel.apply_batch

    def failing(self: FeedModel, db: Any, cursor: Any, facts: Sequence[StoredFact]) -> None:
        if any(fact.aggregate_id == str(net["first_referral"].id) for fact in facts):
            raise ModelBug(f"cannot apply {SECRET}")
        apply(self, db, cursor, facts)

    monkeypatch.setattr(FeedModel, "apply_batch", failing)
    for variable, value in casenet_environ.items():
        monkeypatch.setenv(variable, value)

    assert cli.main(["projections", "rebuild"]) == 1  # was: a traceback, every model at 0

    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("casenet: error: read model feed stopped at position ")
    assert err[-1].endswith(": ModelBug applying ReferralRequested at position 10")
    assert SECRET not in "\n".join(err)
    monkeypatch.undo()
    for variable, value in casenet_environ.items():
        monkeypatch.setenv(variable, value)
    assert cli.main(["projections", "status"]) == 0
    status = capsys.readouterr().out.splitlines()
    assert [line for line in status if "STOPPED" in line] == [
        # lag 2: the referral, and the disclosure of its reason
        "feed position 9 lag 2 (rebuilding) STOPPED: ModelBug applying ReferralRequested "
        "at position 10"
    ]
    assert cli.main(["projections", "rebuild", "feed"]) == 0  # the fixed version
    assert "STOPPED" not in capsys.readouterr().out
