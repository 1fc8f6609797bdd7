"""Needs and service types recorded before the vocabulary of needs existed still replay
and read, on both stores: the vocabulary checks commands, never the events it replays.

The old records are made the only way they ever were: by the commands of a casenet
whose vocabulary had other codes (here, the vocabulary widened for the write).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.domain import vocabulary
from casenet.domain.agency import Service
from casenet.domain.errors import InvalidInput

OLD = "healthcare_access"


def test_old_codes_replay_and_read_while_new_commands_refuse_them(
    open_casenet: Callable[[], Casenet], monkeypatch: pytest.MonkeyPatch
) -> None:
    casenet = open_casenet()
    with monkeypatch.context() as before:
        before.setattr(vocabulary, "NEED_CODES", (*vocabulary.NEED_CODES, OLD))
        agency = casenet.agencies.register(
            OPERATOR_ACTOR,
            name="Old Clinic",
            kind="hospital",
            services=[Service.of_type(type=OLD, description="Appointments")],
        )
        worker, _ = casenet.agencies.add_worker(
            OPERATOR_ACTOR, agency.id, name="Ola", role="caseworker"
        )
        actor = Actor(agency.id, worker.id, "caseworker")
        case = casenet.cases.open_case(
            actor, client=ClientDetails(name="Old Client"), summary="s", needs=["housing", OLD]
        )
    casenet.close()

    # Another process, on the same store: every event replays from storage.
    again = open_casenet()
    assert again.case_queries.read_case(actor, case.id).needs == ["housing", OLD]
    [listed] = again.case_queries.list_cases(actor, status=None, limit=10, after=None).items
    assert listed.needs == ["housing", OLD]
    directory = again.app.get(type(agency), agency.id)
    assert [s.type for s in directory.services] == [OLD]
    # What is recorded from now on is from the vocabulary.
    with pytest.raises(InvalidInput) as refused:
        again.cases.open_case(actor, client=ClientDetails(name="N"), summary="s", needs=[OLD])
    assert refused.value.field == "needs"
    assert "housing" in refused.value.message
