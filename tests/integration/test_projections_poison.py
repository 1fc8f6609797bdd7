"""A store written by the code before issue 15 may hold events no read model could take:
a name with a NUL in it (PostgreSQL's text refuses NUL: the read models stopped there,
and every worker request of every agency answered 500, after restarts too), a consent
``valid_until`` at the edge of the representable range with an offset (its UTC
overflows: grantee reads, shared cases, access, the audit export and rebuild died).

Today's API refuses such input, so these tests append the events directly, past every
check, as the old code stored them; then a casenet started on the store must serve:
every read model reaches the log's head, reads answer, a rebuild completes with the
same checksums, and the audit export works (from the read model and from the log alike).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.application.agencies import hash_token
from casenet.application.audit import Scope
from casenet.domain.agency import Agency, AgencyRegistered, WorkerAdded
from casenet.domain.case import Case
from casenet.domain.consent import Consent, ConsentGranted
from casenet.infrastructure.audit_bundle import load_public_key, public_key_text, verify

#: Past the end of the range once in UTC, and before its start.
LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1)))
FIRST_INSTANT = datetime(1, 1, 1, 0, 0, 0, tzinfo=timezone(timedelta(hours=1)))


@dataclass
class Poisoned:
    owner: Actor
    grantee: Actor
    nul_worker_token: str
    case_id: UUID
    poisoned_case_id: UUID


def poison_store(casenet: Casenet, poison: str) -> Poisoned:
    """A small network through the services, then the old code's poison appended as is."""
    agencies, app = casenet.agencies, casenet.app
    welfare = agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
    hospital = agencies.register(OPERATOR_ACTOR, name="Hospital", kind="hospital")
    actors = {}
    for agency in (welfare, hospital):
        worker, _ = agencies.add_worker(OPERATOR_ACTOR, agency.id, name="W", role="supervisor")
        actors[agency.id] = Actor(agency.id, worker.id, "supervisor")
    owner, grantee = actors[welfare.id], actors[hospital.id]
    case = casenet.cases.open_case(
        owner, client=ClientDetails(name="Amina"), summary="Needs a hospital slot", needs=[]
    )
    casenet.consents.grant(
        owner,
        case.id,
        grantee_agency_id=hospital.id,
        sections=["identity", "summary"],
        purpose="referral",
        method="verbal",
    )
    poisoned_case = casenet.cases.open_case(
        owner, client=ClientDetails(name="Baraka"), summary="Another", needs=[]
    )
    # (1) NUL in an agency's name and in a worker's name.
    nul = "\x00" if poison == "nul" else ""
    nul_agency = Agency._start(
        uuid4(),
        AgencyRegistered,
        name=f"Poison{nul}Agency",
        kind="ngo",
        restricted=False,
        services=(),
    )
    app.save(nul_agency)
    token = secrets.token_urlsafe(32)
    hospital_agency = app.get(Agency, hospital.id)
    hospital_agency._record(
        WorkerAdded,
        worker_id=uuid4(),
        name=f"Eve{nul}Null",
        role="caseworker",
        token_hash=hash_token(token),
    )
    app.save(hospital_agency)
    # (2) Consents valid until the edges of the range, with offsets.
    stored_case = app.get(Case, poisoned_case.id)
    edges = (
        (LAST_INSTANT, FIRST_INSTANT) if poison == "edges" else (LAST_INSTANT.replace(year=2100),)
    )
    for edge in edges:
        app.save(
            Consent._start(
                uuid4(),
                ConsentGranted,
                case_id=stored_case.id,
                client_id=stored_case.client_id,
                owner_agency_id=welfare.id,
                grantee_agency_id=hospital.id,
                sections=("identity", "summary"),
                purpose="referral",
                valid_until=edge,
                method="verbal",
                evidence=None,
                given_by="self",
                representative_name=None,
                recorded_by_worker_id=owner.worker_id,
            )
        )
    return Poisoned(owner, grantee, token, case.id, poisoned_case.id)


def _bundle(casenet: Casenet, out: Path, scope: Scope, **kwargs: datetime) -> bytes:
    casenet.audit.export(out, scope, **kwargs)
    verify(out, load_public_key(public_key_text(casenet.audit._signing_seed)))
    return b"".join(
        (out / name).read_bytes() for name in sorted(p.name for p in out.glob("*.jsonl"))
    )


@pytest.mark.parametrize("poison", ["nul", "edges"])
def test_a_store_with_poison_events_starts_serves_rebuilds_and_exports(
    casenet: Casenet, open_casenet: Callable[[], Casenet], tmp_path: Path, poison: str
) -> None:
    poisoned = poison_store(casenet, poison)
    casenet.close()
    served = open_casenet()  # a restart of the fixed code on the old store
    projections = served.app.projections
    projections.catch_up(projections.names())
    head = projections.head()
    assert [(s.name, s.position, s.stopped) for s in projections.status()] == [
        (name, head, None) for name in projections.models
    ]
    # Every worker, the NUL one too, authenticates; grantee reads answer.
    nul_worker = served.directory.authenticate(poisoned.nul_worker_token)
    assert nul_worker is not None
    assert nul_worker.agency_id == poisoned.grantee.agency_id
    view = served.case_queries.read_case(poisoned.grantee, poisoned.case_id)
    assert view.client is not None
    assert view.client.name == "Amina"
    # The consent valid until the end of time grants; the one of year 1 expired.
    shared = served.case_queries.shared_cases(poisoned.grantee, limit=None, after=None)
    assert {item.case_id for item in shared.items} == {poisoned.case_id, poisoned.poisoned_case_id}
    served.case_queries.read_case(poisoned.grantee, poisoned.poisoned_case_id)
    for at in (None, datetime(9999, 12, 31, 22, tzinfo=UTC), datetime(1900, 1, 1, tzinfo=UTC)):
        served.case_queries.access(poisoned.owner, poisoned.poisoned_case_id, at)
    served.case_queries.consents_of_case(poisoned.owner, poisoned.poisoned_case_id)
    served.feed.feed(poisoned.grantee, limit=None, after=None)
    served.directory.directory(service_type=None, area=None, limit=None, after=None)
    # The audit export, from the read model.
    everything = _bundle(served, tmp_path / "all", Scope("all"))
    of_case = _bundle(served, tmp_path / "case", Scope("case", poisoned.poisoned_case_id))
    if poison == "edges":  # clamped to the last instant there is
        assert b"9999-12-31T23:59:59.999999Z" in of_case
    _bundle(
        served,
        tmp_path / "range",
        Scope("all"),
        since=datetime(1900, 1, 1, tzinfo=UTC),
        until=datetime(2200, 1, 1, tzinfo=UTC),
    )
    # A rebuild completes, to the same content, and the export from the log (used
    # while the audit model is rebuilt) gives the same bytes.
    projections.catch_up(projections.names())  # the disclosures of the reads above
    sums = {name: projections.checksum(name) for name in projections.models}
    projections.reset(projections.names())
    assert _bundle(served, tmp_path / "from-log", Scope("all")) == everything
    projections.rebuild(projections.names())
    assert {name: projections.checksum(name) for name in projections.models} == sums
    assert _bundle(served, tmp_path / "after", Scope("all")) == everything
