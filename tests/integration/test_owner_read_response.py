"""``GET /v1/cases/{id}``: what a client receives, on both stores.

The owner's read and a grantee's are ordinary handlers (``with_etag`` and
``with_view_etag``): these tests pin the answer, not how it is built. The owner gets
the whole case with its version as ETag; a grantee the sections it was granted with a
digest of exactly the bytes sent; JSON with its length; no body for HEAD; an unknown
or revoked token is refused at once, and another agency's worker finds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import UUID

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from casenet.api.app import create_app
from casenet.api.http import view_etag
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.settings import load_settings


def worker_with_token(casenet: Casenet, agency_name: str, kind: str = "ngo") -> tuple[Actor, str]:
    agency = casenet.agencies.register(OPERATOR_ACTOR, name=agency_name, kind=kind)
    worker, token = casenet.agencies.add_worker(
        OPERATOR_ACTOR, agency.id, name="Wanjiru", role="caseworker"
    )
    return Actor(agency.id, worker.id, "caseworker"), token


class Story(msgspec.Struct):
    owner: Actor
    owner_token: str
    grantee: Actor
    grantee_token: str
    case_id: UUID


@pytest.fixture
def story(casenet: Casenet) -> Story:
    owner, owner_token = worker_with_token(casenet, "Eastside Welfare")
    grantee, grantee_token = worker_with_token(casenet, "City Hospital", "hospital")
    case = casenet.cases.open_case(
        owner,
        client=ClientDetails(name="Maria", date_of_birth="1980-04-02", phone="555", address="x"),
        summary="Housing",
        needs=["housing"],
    )
    casenet.cases.add_note(owner, case.id, category="health", text="Clinic on Monday")
    assert grantee.agency_id is not None
    casenet.consents.grant(
        owner,
        case.id,
        grantee_agency_id=grantee.agency_id,
        sections=["summary"],
        purpose="referral",
        method="verbal",
    )
    return Story(owner, owner_token, grantee, grantee_token, case.id)


@pytest.fixture
def client(casenet: Casenet) -> Iterator[TestClient[Litestar]]:
    app = create_app(load_settings({"CASENET_ENV": "development"}), casenet)
    with TestClient(app) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_owner_gets_the_whole_case_with_its_version_as_etag(
    casenet: Casenet, story: Story, client: TestClient[Litestar]
) -> None:
    for _ in range(2):  # the first read learns the case's owner, the second uses it
        answer = client.get(f"/v1/cases/{story.case_id}", headers=bearer(story.owner_token))

        assert answer.status_code == 200
        assert list(answer.headers.items()) == [
            ("etag", '"2"'),
            ("content-type", "application/json"),
            ("content-length", str(len(answer.content))),
            ("x-request-id", answer.headers["x-request-id"]),
        ]
        assert re.fullmatch("[0-9a-f]{32}", answer.headers["x-request-id"])
        view = casenet.case_queries.read_case(story.owner, story.case_id)
        assert answer.content == msgspec.json.encode(view)
        body = answer.json()
        assert body["version"] == 2
        assert body["client"]["name"] == "Maria"
        assert [note["text"] for note in body["notes"]] == ["Clinic on Monday"]


def test_a_grantee_gets_its_sections_and_a_digest_of_them_as_etag(
    story: Story, client: TestClient[Litestar]
) -> None:
    answer = client.get(f"/v1/cases/{story.case_id}", headers=bearer(story.grantee_token))

    assert answer.status_code == 200
    assert list(answer.headers.items()) == [
        ("etag", view_etag(answer.content)),
        ("content-type", "application/json"),
        ("content-length", str(len(answer.content))),
        ("x-request-id", answer.headers["x-request-id"]),
    ]
    body = answer.json()
    assert body["sections"] == ["summary"]
    assert body["summary"] == "Housing"
    assert "client" not in body
    assert "notes" not in body


def test_head_sends_no_case(story: Story, client: TestClient[Litestar]) -> None:
    answer = client.head(f"/v1/cases/{story.case_id}", headers=bearer(story.owner_token))

    assert answer.status_code == 405  # as before: GET only
    assert answer.content == b""
    assert "etag" not in answer.headers


def test_an_unknown_or_revoked_token_is_refused_and_another_agency_sees_nothing(
    casenet: Casenet, story: Story, client: TestClient[Litestar]
) -> None:
    path = f"/v1/cases/{story.case_id}"
    _, stranger = worker_with_token(casenet, "Westside shelter", "shelter")

    assert client.get(path, headers=bearer(story.owner_token)).status_code == 200
    assert client.get(path, headers=bearer("not-a-token")).status_code == 401
    assert client.get(path, headers=bearer(stranger)).status_code == 404

    owner = story.owner
    assert owner.agency_id is not None
    casenet.agencies.revoke_worker(OPERATOR_ACTOR, owner.agency_id, owner.require_worker())
    assert client.get(path, headers=bearer(story.owner_token)).status_code == 401
