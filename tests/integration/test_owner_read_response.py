"""The owner's read answers with the bytes Litestar's own response would send.

``GET /v1/cases/{id}`` skips Litestar's dependency injection and builds its response
without Litestar's machinery (``EncodedWithEtag``), for speed. Through the ASGI app
on both stores: its messages equal those of ``with_etag`` rendered by Litestar; a
layer's extra header falls back to that response; an unknown or revoked token is
refused at once, and another agency's worker finds nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar import Litestar, Request

from casenet.api.app import create_app
from casenet.api.http import ENCODED_RESPONSE_FITS, EncodedWithEtag, with_etag
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.settings import load_settings

Message = dict[str, Any]


def scope_of(path: str, token: str) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"x"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }


def sent_by(asgi: Any, scope: dict[str, Any]) -> list[Message]:
    """The messages an ASGI application (or response) sends for one request."""
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    asyncio.run(asgi(scope, receive, send))
    return messages


def worker_with_token(casenet: Casenet, agency_name: str) -> tuple[Actor, str]:
    agency = casenet.agencies.register(OPERATOR_ACTOR, name=agency_name, kind="ngo")
    worker, token = casenet.agencies.add_worker(
        OPERATOR_ACTOR, agency.id, name="Wanjiru", role="caseworker"
    )
    return Actor(agency.id, worker.id, "caseworker"), token


def app_and_case(casenet: Casenet) -> tuple[Litestar, Actor, str, UUID]:
    actor, token = worker_with_token(casenet, "Eastside Welfare")
    case = casenet.cases.open_case(
        actor,
        client=ClientDetails(name="Maria", date_of_birth="1980-04-02", phone="555", address="x"),
        summary="Housing",
        needs=["housing"],
    )
    casenet.cases.add_note(actor, case.id, category="health", text="Clinic on Monday")
    app = create_app(load_settings({"CASENET_ENV": "development"}), casenet)
    return app, actor, token, case.id


def test_the_owners_read_sends_what_litestars_response_would(casenet: Casenet) -> None:
    app, actor, token, case_id = app_and_case(casenet)
    scope = scope_of(f"/v1/cases/{case_id}", token)

    for _ in range(2):  # the first read learns the case's owner, the second uses it
        sent = sent_by(app, dict(scope))
        view = casenet.case_queries.read_case(actor, case_id)
        expected = with_etag(view, view.version).to_asgi_response(None, Request(scope))
        assert sent == sent_by(expected, dict(scope))
        assert sent[0]["headers"][0] == (b"etag", b'"2"')
        assert b"Clinic on Monday" in sent[1]["body"]


def test_with_headers_from_a_layer_it_is_litestars_response(casenet: Casenet) -> None:
    _, actor, token, case_id = app_and_case(casenet)
    scope = scope_of(f"/v1/cases/{case_id}", token)
    view = casenet.case_queries.read_case(actor, case_id)
    request: Request[Any, Any, Any] = Request(scope)

    extra = {"cache-control": "no-store"}
    encoded = EncodedWithEtag(view, view.version).to_asgi_response(None, request, headers=extra)
    plain = with_etag(view, view.version).to_asgi_response(None, request, headers=extra)

    assert sent_by(encoded, dict(scope)) == sent_by(plain, dict(scope))
    assert (b"cache-control", b"no-store") in sent_by(encoded, dict(scope))[0]["headers"]


def test_an_unknown_or_revoked_token_is_refused_and_another_agency_sees_nothing(
    casenet: Casenet,
) -> None:
    app, actor, token, case_id = app_and_case(casenet)
    path = f"/v1/cases/{case_id}"
    _, stranger = worker_with_token(casenet, "City Hospital social work")

    assert sent_by(app, scope_of(path, token))[0]["status"] == 200
    assert sent_by(app, scope_of(path, "not-a-token"))[0]["status"] == 401
    assert sent_by(app, scope_of(path, stranger))[0]["status"] == 404

    assert actor.agency_id is not None
    assert actor.worker_id is not None
    casenet.agencies.revoke_worker(OPERATOR_ACTOR, actor.agency_id, actor.worker_id)
    assert sent_by(app, scope_of(path, token))[0]["status"] == 401


def test_the_installed_litestars_response_is_the_one_the_fast_path_was_written_for() -> None:
    # Should a Litestar upgrade change ASGIResponse, the owner's read falls back to the
    # plain response (slower, still right); this test says it is time to look again.
    assert ENCODED_RESPONSE_FITS
