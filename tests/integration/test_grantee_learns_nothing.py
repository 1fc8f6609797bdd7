"""A grantee learns nothing it is not granted; referrals' reasons and messages are disclosures.

On both stores (API.md, "What a grantee can tell"):

* every lookup by id is scoped to the caller's agency on the read models before
  anything is loaded or decrypted: an agency that cannot see a case, consent,
  referral or client makes casenet load none of them (so it answers as fast as, and
  the same as, for a random id);
* a grantee's ``version``, ``updated_at`` and ``ETag`` of a case move only with what
  it can see: a note in a section it is not granted changes none of them;
* a referral naming another case's or agency's consent answers as a random consent;
* a referral's reason and each message are recorded as disclosures of section
  ``referral`` to the agency that did not write them, in the accounting and in the
  audit export (which still verifies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from litestar.testing import TestClient

from casenet.api.app import create_app
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.application.audit import Scope
from casenet.domain.errors import InvalidInput, NotFound
from casenet.infrastructure.audit_bundle import (
    load_public_key,
    public_key_text,
    read_records,
    verify,
)
from casenet.settings import load_settings


@dataclass
class World:
    owner: Actor
    owner_supervisor: Actor
    owner_auditor: Actor
    grantee: Actor
    outsider: Actor
    outsider_admin: Actor
    outsider_auditor: Actor
    tokens: dict[str, str]
    case_id: UUID
    client_id: UUID
    consent_id: UUID
    referral_id: UUID


def _worker(casenet: Casenet, agency_id: UUID, role: str) -> tuple[Actor, str]:
    worker, token = casenet.agencies.add_worker(
        OPERATOR_ACTOR, agency_id, name=f"A {role}", role=role
    )
    return Actor(agency_id, worker.id, role), token


@pytest.fixture
def world(casenet: Casenet) -> World:
    welfare = casenet.agencies.register(OPERATOR_ACTOR, name="Welfare NGO", kind="ngo")
    hospital = casenet.agencies.register(OPERATOR_ACTOR, name="Hospital", kind="hospital")
    school = casenet.agencies.register(OPERATOR_ACTOR, name="School", kind="school")
    owner, owner_token = _worker(casenet, welfare.id, "caseworker")
    owner_supervisor, _ = _worker(casenet, welfare.id, "supervisor")
    owner_auditor, _ = _worker(casenet, welfare.id, "auditor")
    grantee, grantee_token = _worker(casenet, hospital.id, "caseworker")
    outsider, outsider_token = _worker(casenet, school.id, "caseworker")
    outsider_admin, _ = _worker(casenet, school.id, "admin")
    outsider_auditor, _ = _worker(casenet, school.id, "auditor")
    case = casenet.cases.open_case(
        owner,
        client=ClientDetails(name="Noor Haddad", date_of_birth="1990-01-01", phone="0123"),
        summary="Lost her job",
        needs=["income"],
    )
    consent = casenet.consents.grant(
        owner,
        case.id,
        grantee_agency_id=hospital.id,
        sections=["identity", "notes.health"],
        purpose="referral",
        method="written",
    )
    referral = casenet.referrals.request(
        owner,
        case_id=case.id,
        to_agency_id=hospital.id,
        service_type="health",
        reason="Asthma review",
        urgency="routine",
        consent_id=consent.id,
    )
    return World(
        owner=owner,
        owner_supervisor=owner_supervisor,
        owner_auditor=owner_auditor,
        grantee=grantee,
        outsider=outsider,
        outsider_admin=outsider_admin,
        outsider_auditor=outsider_auditor,
        tokens={"owner": owner_token, "grantee": grantee_token, "outsider": outsider_token},
        case_id=case.id,
        client_id=case.client_id,
        consent_id=consent.id,
        referral_id=referral.id,
    )


@pytest.fixture
def loaded(casenet: Casenet, monkeypatch: pytest.MonkeyPatch) -> set[UUID]:
    """The ids of every aggregate casenet loads from the store (every load goes
    through ``get_all``) while the test runs."""
    ids: set[UUID] = set()
    real = casenet.app.get_all

    def recording(*wanted: tuple[type[Any], UUID], **options: Any) -> list[Any]:
        ids.update(aggregate_id for _, aggregate_id in wanted)
        return real(*wanted, **options)

    monkeypatch.setattr(casenet.app, "get_all", recording)
    return ids


def test_nothing_another_agency_cannot_see_is_loaded_before_it_is_refused(
    casenet: Casenet, world: World, loaded: set[UUID]
) -> None:
    outsider, admin, auditor = world.outsider, world.outsider_admin, world.outsider_auditor
    refused: list[Callable[[], object]] = [
        lambda: casenet.case_queries.read_case(outsider, world.case_id),
        lambda: casenet.case_queries.consents_of_case(outsider, world.case_id),
        lambda: casenet.case_queries.consent(outsider, world.consent_id),
        lambda: casenet.consents.withdraw(outsider, world.consent_id, reason="x"),
        lambda: casenet.referral_queries.read(outsider, world.referral_id),
        lambda: casenet.referrals.move(outsider, world.referral_id, "cancel", reason="x"),
        lambda: casenet.referrals.post_message(outsider, world.referral_id, text="Hello"),
        lambda: casenet.cases.add_note(outsider, world.case_id, category="general", text="x"),
        lambda: casenet.clients.erase(admin, world.client_id),
        lambda: casenet.audit.scope_for(auditor, case_id=world.case_id, client_id=None),
        lambda: casenet.audit.scope_for(auditor, case_id=None, client_id=world.client_id),
    ]
    for call in refused:
        with pytest.raises(NotFound):
            call()
    secret = {world.case_id, world.client_id, world.consent_id, world.referral_id}
    assert loaded & secret == set()


def test_a_grantee_whose_consent_was_withdrawn_loads_nothing_either(
    casenet: Casenet, world: World, loaded: set[UUID]
) -> None:
    casenet.consents.withdraw(world.owner, world.consent_id, reason="Client asked")
    loaded.clear()
    with pytest.raises(NotFound):
        casenet.case_queries.read_case(world.grantee, world.case_id)
    assert loaded == set()
    # The referral is the grantee's (either party may read it), the case no longer is.
    view = casenet.referral_queries.read(world.grantee, world.referral_id)
    assert view.client is msgspec.UNSET
    assert loaded == {world.referral_id}


def test_a_note_in_a_section_not_granted_moves_nothing_the_grantee_sees(
    casenet: Casenet, world: World
) -> None:
    app = create_app(load_settings({"CASENET_ENV": "development"}), casenet)
    path = f"/v1/cases/{world.case_id}"
    grantee = {"Authorization": f"Bearer {world.tokens['grantee']}"}
    owner = {"Authorization": f"Bearer {world.tokens['owner']}"}
    with TestClient(app) as client:
        before = client.get(path, headers=grantee)
        assert before.status_code == 200, before.text
        owner_before = client.get(path, headers=owner).json()["version"]

        casenet.cases.add_note(world.owner, world.case_id, category="legal", text="Court date")
        after = client.get(path, headers=grantee)
        assert after.status_code == 200
        assert after.content == before.content
        assert after.headers["etag"] == before.headers["etag"]
        assert after.json()["version"] == before.json()["version"]
        assert after.json()["updated_at"] == before.json()["updated_at"]
        # The owner sees the aggregate's version, as before.
        assert client.get(path, headers=owner).json()["version"] == owner_before + 1

        casenet.cases.add_note(world.owner, world.case_id, category="health", text="Inhaler")
        moved = client.get(path, headers=grantee)
        assert moved.json()["version"] == owner_before + 2 > before.json()["version"]
        assert moved.json()["updated_at"] > before.json()["updated_at"]
        assert moved.headers["etag"] != before.headers["etag"]
        assert [n["text"] for n in moved.json()["notes"]] == ["Inhaler"]

        # The grantee's ETag is a digest of its view: an If-Match with it is an ETag this
        # API gave (not a 400), and only the owner changes a case (403).
        note = {"text": "x", "category": "general"}
        sent = client.post(
            f"{path}/notes", json=note, headers={**grantee, "If-Match": moved.headers["etag"]}
        )
        assert sent.status_code == 403, sent.text
        # From the owner, it names no version of the case: 412.
        stale = client.post(
            f"{path}/notes", json=note, headers={**owner, "If-Match": moved.headers["etag"]}
        )
        assert stale.status_code == 412, stale.text


def test_a_referral_with_anothers_consent_answers_as_a_random_consent_id(
    casenet: Casenet, world: World
) -> None:
    assert world.grantee.agency_id is not None
    other_case = casenet.cases.open_case(
        world.owner, client=ClientDetails(name="Sam"), summary="Housing", needs=["housing"]
    )
    another_agencys = casenet.cases.open_case(
        world.outsider, client=ClientDetails(name="Ana"), summary="School", needs=["education"]
    )
    foreign = casenet.consents.grant(
        world.outsider,
        another_agencys.id,
        grantee_agency_id=world.grantee.agency_id,
        sections=["needs"],
        purpose="referral",
        method="verbal",
    )

    def answer(consent_id: UUID) -> tuple[str, str]:
        with pytest.raises(InvalidInput) as raised:
            casenet.referrals.request(
                world.owner,
                case_id=other_case.id,
                to_agency_id=world.grantee.agency_id,  # type: ignore[arg-type]
                service_type="health",
                reason="Review",
                urgency="routine",
                consent_id=consent_id,
            )
        return raised.value.field, str(raised.value)

    random = answer(uuid4())
    assert answer(foreign.id) == random  # another agency's case
    assert answer(world.consent_id) == random  # the owner's, of another case


def test_a_referrals_reason_and_messages_are_disclosures(
    casenet: Casenet, world: World, casenet_environ: dict[str, str], tmp_path: Path
) -> None:
    assert world.grantee.agency_id is not None
    assert world.owner.agency_id is not None
    message_id = uuid4()
    casenet.referrals.post_message(
        world.owner, world.referral_id, text="Thanks for seeing her", new_id=message_id
    )
    # A retried message (same id) is disclosed once.
    casenet.referrals.post_message(
        world.owner, world.referral_id, text="Thanks for seeing her", new_id=message_id
    )
    casenet.referrals.post_message(world.grantee, world.referral_id, text="Booked Monday")
    plain = casenet.referrals.request(
        world.owner,
        case_id=world.case_id,
        to_agency_id=world.outsider.agency_id,  # type: ignore[arg-type]
        service_type="education",
        reason="Homework club",
        urgency="routine",
    )

    page = casenet.case_queries.disclosures(
        world.owner_supervisor, case_id=world.case_id, since=None, until=None, limit=50,
        after=None,
    )
    referral = [d for d in page.items if d.sections == ["referral"]]
    assert [(d.recipient_agency_id, d.basis, d.consent_ids, d.purposes) for d in referral] == [
        (world.grantee.agency_id, "consent", [world.consent_id], ["referral"]),  # reason
        (world.grantee.agency_id, "consent", [world.consent_id], ["referral"]),  # message
        (world.owner.agency_id, "consent", [world.consent_id], ["referral"]),  # answer
        (world.outsider.agency_id, "referral", [], ["referral"]),  # reason, no consent
    ]
    assert [d.worker_id for d in referral] == [
        world.owner.worker_id,
        world.owner.worker_id,
        world.grantee.worker_id,
        world.owner.worker_id,
    ]
    assert plain.consent_id is None

    out = tmp_path / "bundle"
    casenet.audit.export(out, Scope("case", world.case_id))
    settings = load_settings(casenet_environ)
    verify(out, load_public_key(public_key_text(settings.signing_key)))
    exported = [
        (r["recipient_agency_id"], r["consent_ids"])
        for r in read_records(out, "disclosures.jsonl")
        if r["sections"] == ["referral"]
    ]
    assert exported == [
        (str(world.grantee.agency_id), [str(world.consent_id)]),
        (str(world.grantee.agency_id), [str(world.consent_id)]),
        (str(world.owner.agency_id), [str(world.consent_id)]),
        (str(world.outsider.agency_id), []),
    ]


def test_another_process_refers_under_a_consent_it_did_not_grant(
    casenet: Casenet, world: World, open_casenet: Callable[[], Casenet]
) -> None:
    """What a process remembers of the cases and consents it wrote is a shortcut only:
    another process (which remembers nothing) decides the same from the read models."""
    assert world.grantee.agency_id is not None
    other = open_casenet()
    referral = other.referrals.request(
        world.owner,
        case_id=world.case_id,
        to_agency_id=world.grantee.agency_id,
        service_type="health",
        reason="A second opinion",
        urgency="urgent",
        consent_id=world.consent_id,
    )
    assert referral.consent_id == world.consent_id
    with pytest.raises(InvalidInput):
        other.referrals.request(
            world.owner,
            case_id=world.case_id,
            to_agency_id=world.outsider.agency_id,  # type: ignore[arg-type]
            service_type="education",
            reason="Homework",
            urgency="routine",
            consent_id=world.consent_id,  # granted to the hospital, not the school
        )
    page = other.case_queries.disclosures(
        world.owner_supervisor, case_id=world.case_id, since=None, until=None, limit=50,
        after=None,
    )
    assert [d.purposes for d in page.items if d.sections == ["referral"]] == [["referral"]] * 2


def test_shared_cases_are_listed_without_loading_a_case(
    casenet: Casenet, world: World, loaded: set[UUID]
) -> None:
    """The policy decides each listed case from the read models (a restricted owner's
    identity-only consent lists nothing), before anything is loaded."""
    items = casenet.case_queries.shared_cases(world.grantee, limit=50, after=None).items
    assert [(i.case_id, i.sections) for i in items] == [
        (world.case_id, ["identity", "notes.health"])
    ]
    assert loaded == set()
