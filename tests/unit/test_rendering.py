"""Rendering: a domain object or a read model's row becomes a view, showing only what
the grant names. No I/O: every object is built in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import msgspec
import pytest

from casenet.application.rendering import (
    render_case,
    render_case_item,
    render_client,
    render_consent,
    render_disclosure,
    render_feed_item,
    render_referral,
    render_referral_item,
    visible_version,
)
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.referral import Referral
from casenet.domain.sections import CONTACT, IDENTITY, NEEDS, SECTIONS, SUMMARY
from casenet.domain.visibility import CONSENT, OWNER, Grant
from casenet.infrastructure.projections.cases import CaseListRow
from casenet.infrastructure.projections.disclosures import DisclosureListRow
from casenet.infrastructure.projections.feed import FeedRow
from casenet.infrastructure.projections.referrals import ReferralRow

OWNER_AGENCY, GRANTEE, WORKER = uuid4(), uuid4(), uuid4()


def a_client() -> Client:
    return Client.register(
        agency_id=OWNER_AGENCY,
        name="Amina",
        date_of_birth="1990-01-01",
        phone="+1 555 0100",
        address="1 Main St",
    )


def a_case(client: Client) -> Case:
    case = Case.open(
        owner_agency_id=OWNER_AGENCY,
        worker_id=WORKER,
        client_id=client.id,
        summary="Needs housing",
        needs=["housing"],
    )
    case.add_note(worker_id=WORKER, category="health", text="Asthma")
    case.add_note(worker_id=WORKER, category="legal", text="Court date")
    return case


def granted(*sections: str) -> Grant:
    return Grant(GRANTEE, tuple(sections), CONSENT, (uuid4(),))


def test_the_owner_sees_every_section_and_the_aggregates_version() -> None:
    client = a_client()
    case = a_case(client)
    view = render_case(case, client, Grant(OWNER_AGENCY, SECTIONS, OWNER))
    assert view.version == case.version
    assert view.summary == "Needs housing"
    assert view.needs == ["housing"]
    assert isinstance(view.notes, list)
    assert [n.text for n in view.notes] == ["Asthma", "Court date"]
    assert view.client == render_client(client, SECTIONS)
    assert view.shared_under == []


def test_a_grantee_sees_only_its_sections_and_the_version_of_what_it_can_see() -> None:
    client = a_client()
    case = a_case(client)  # opened (1), a health note (2), a legal note (3)
    grant = granted(IDENTITY, "notes.health")
    view = render_case(case, client, grant)

    encoded = msgspec.json.decode(msgspec.json.encode(view))
    assert "summary" not in encoded
    assert "needs" not in encoded
    assert encoded["client"] == {"name": "Amina", "date_of_birth": "1990-01-01"}
    assert [n["category"] for n in encoded["notes"]] == ["health"]
    # The legal note moved the aggregate to version 3; the grantee cannot see it.
    assert (view.version, case.version) == (2, 3)
    assert view.updated_at == case.notes[0].created_at
    assert view.shared_under == list(grant.consent_ids)


def test_a_change_the_grantee_cannot_see_moves_neither_its_version_nor_its_time() -> None:
    client = a_client()
    case = a_case(client)
    assert visible_version(case, (SUMMARY,)) == case.status_changed
    assert visible_version(case, ("notes.legal",))[0] == case.version


def test_the_client_shows_identity_and_contact_as_far_as_granted() -> None:
    client = a_client()
    assert render_client(client, (NEEDS,)) is msgspec.UNSET
    assert msgspec.structs.asdict(render_client(client, (CONTACT,))) == {  # type: ignore[arg-type]
        "name": msgspec.UNSET,
        "date_of_birth": msgspec.UNSET,
        "phone": "+1 555 0100",
        "address": "1 Main St",
    }


def test_an_erased_client_shows_no_summary_nor_note_text() -> None:
    client = a_client()
    case = a_case(client)
    client.erase(agency_id=None, worker_id=None)
    view = render_case(case, client, Grant(OWNER_AGENCY, SECTIONS, OWNER))
    assert view.erased
    assert view.summary is None
    assert isinstance(view.notes, list)
    assert {n.text for n in view.notes} == {None}


def test_a_sealed_aggregate_cannot_be_rendered() -> None:
    client = a_client()
    case = a_case(client)
    case.sealed = True
    with pytest.raises(RuntimeError, match="sealed Case"):
        render_case(case, client, Grant(OWNER_AGENCY, SECTIONS, OWNER))


def test_a_consents_status_is_computed_at_read_time() -> None:
    client = a_client()
    case = a_case(client)
    until = datetime.now(UTC) + timedelta(days=1)

    def consent(valid_until: datetime | None) -> Consent:
        return Consent.grant(
            case_id=case.id,
            client_id=client.id,
            owner_agency_id=OWNER_AGENCY,
            recording_agency_id=OWNER_AGENCY,
            grantee_agency_id=GRANTEE,
            sections=[IDENTITY],
            purpose="referral",
            method="written",
            worker_id=WORKER,
            valid_until=valid_until,
        )

    active = consent(until)
    assert render_consent(active).status == "active"
    assert render_consent(active).valid_until == until
    withdrawn = consent(None)
    withdrawn.withdraw(recording_agency_id=OWNER_AGENCY, worker_id=WORKER, reason="asked")
    assert render_consent(withdrawn).status == "withdrawn"


def test_a_referral_shows_its_history_and_the_client_as_given() -> None:
    client = a_client()
    referral = Referral.request(
        case_id=uuid4(),
        client_id=client.id,
        from_agency_id=OWNER_AGENCY,
        to_agency_id=GRANTEE,
        service_type="housing",
        reason="Evicted",
        urgency="urgent",
        worker_id=WORKER,
    )
    referral.move("accept", agency_id=GRANTEE, worker_id=WORKER)
    view = render_referral(referral, msgspec.UNSET)
    assert [h.status for h in view.history] == ["requested", "accepted"]
    assert view.status == "accepted"
    assert view.client is msgspec.UNSET
    shown = render_referral(referral, render_client(client, (IDENTITY,)))
    assert msgspec.json.decode(msgspec.json.encode(shown))["client"] == {
        "name": "Amina",
        "date_of_birth": "1990-01-01",
    }


AT = "2024-05-01T10:00:00.000000Z"


def test_rows_become_list_items() -> None:
    case_id, client_id = uuid4(), uuid4()
    item = render_case_item(
        CaseListRow(str(case_id), 3, "open", str(client_id), '["housing"]', 2, AT, AT, None, 0),
        "Amina",
    )
    assert (item.id, item.client_id, item.client_name) == (case_id, client_id, "Amina")
    assert (item.needs, item.note_count, item.erased) == (["housing"], 2, False)
    assert item.created_at == datetime(2024, 5, 1, 10, tzinfo=UTC)

    referral_id = uuid4()
    row = ReferralRow(
        referral_id=str(referral_id),
        case_id=str(case_id),
        client_id=str(client_id),
        from_agency_id=str(OWNER_AGENCY),
        to_agency_id=str(GRANTEE),
        service_type="housing",
        urgency="urgent",
        status="completed",
        consent_id=None,
        outcome="housed",
        message_count=4,
        version=5,
        created_at=AT,
        updated_at=AT,
    )
    listed = render_referral_item(row)
    assert (listed.id, listed.status, listed.outcome, listed.message_count) == (
        referral_id,
        "completed",
        "housed",
        4,
    )
    # Due a day after it was requested (urgent); overdue only while still requested.
    assert listed.response_due_at == datetime(2024, 5, 2, 10, tzinfo=UTC)
    assert not listed.overdue
    assert render_referral_item(msgspec.structs.replace(row, status="requested")).overdue

    item_id, referral_id = uuid4(), uuid4()
    body = f'{{"id":"{item_id}","referral_id":"{referral_id}","status":"accepted"}}'
    entry = render_feed_item(FeedRow(str(GRANTEE), 7, "referral_status_changed", AT, body))
    assert (entry.id, entry.position, entry.type, entry.referral_id, entry.status) == (
        item_id,
        7,
        "referral_status_changed",
        referral_id,
        "accepted",
    )
    # Absent from the body: absent from the item's JSON (not null).
    assert "case_id" not in msgspec.json.decode(msgspec.json.encode(entry))


def test_a_disclosure_without_a_consent_is_one_a_referral_made() -> None:
    consent_id = uuid4()

    def row(consent_ids: str) -> DisclosureListRow:
        return DisclosureListRow(
            str(uuid4()),
            str(uuid4()),
            str(OWNER_AGENCY),
            str(GRANTEE),
            str(WORKER),
            '["identity"]',
            consent_ids,
            '["referral"]',
            AT,
            "[]",
            "[]",
        )

    assert render_disclosure(row(f'["{consent_id}"]')).basis == CONSENT
    assert render_disclosure(row(f'["{consent_id}"]')).consent_ids == [consent_id]
    assert render_disclosure(row("[]")).basis == "referral"
