"""A server killed mid-scenario (SIGKILL: no shutdown, no flush) and started again on the
same store loses nothing it acknowledged, and answers an idempotent retry with its
first response. On SQLite and on PostgreSQL.

The scenario runs once per store (a module fixture): a network, a case opened with an
``Idempotency-Key``, notes, consents (one withdrawn), a referral taken through several
transitions, a conversation, a closed case; then writers keep adding notes and opening
cases on several connections while the whole server (granian's main process and its
worker) is killed under them. Every write that answered 2xx before the kill must be
there after the restart; each test below checks one part of that.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import httpx
import pytest

from casenet.infrastructure.idempotency import LEASE

CLIENT = {"name": "Rosa Lim", "date_of_birth": "1971-07-15", "phone": "+1 555 0142"}
CASE_BODY = {
    "client": CLIENT,
    "summary": "Carer for her mother; eviction notice.",
    "needs": ["housing"],
}
WRITERS = 3
#: How long the writers run before the kill.
WRITING_FOR = 1.0


class Writer(threading.Thread):
    """Adds notes to a case (or opens cases) until the server dies under it, each with
    its own Idempotency-Key; remembers what was acknowledged and what got no answer."""

    def __init__(self, url: str, token: str, case_id: str | None, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.url, self.token, self.case_id = url, token, case_id
        self.acknowledged: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.unanswered: list[tuple[str, str, dict[str, Any]]] = []
        self.other: list[str] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=10) as http:
            for i in range(100_000):
                key = f"{self.name}-{i}-{uuid4()}"
                if self.case_id:
                    path = f"/v1/cases/{self.case_id}/notes"
                    body: dict[str, Any] = {"text": f"{self.name} note {i}", "category": "general"}
                else:
                    path = "/v1/cases"
                    body = {"client": {"name": f"{self.name} client {i}"}, "summary": "s"}
                try:
                    answer = http.post(
                        self.url + path, json=body, headers={**headers, "Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    self.unanswered.append((key, path, body))
                    return
                if answer.status_code == 201:
                    self.acknowledged.append((key, body, answer.json()))
                else:
                    self.other.append(f"{answer.status_code} {answer.text[:200]}")
                    return


@pytest.fixture(scope="module")
def story(new_server: Any, connect: Any) -> SimpleNamespace:
    server = new_server()
    server.start()
    operator = connect(server)
    agency_key = {"Idempotency-Key": f"agency-{uuid4()}"}
    agency_body = {"name": "Northside Welfare", "kind": "ngo"}
    agency_first = operator.expect(
        201, "POST", "/v1/agencies", json_body=agency_body, headers=agency_key
    )
    ngo = agency_first.json()
    hospital = operator.agency("Northside Hospital", "hospital")
    ana = operator.worker(ngo, "caseworker")
    sam = operator.worker(ngo, "supervisor")
    hal = operator.worker(hospital, "caseworker")

    case_key = {"Idempotency-Key": f"case-{uuid4()}"}
    case_first = ana.expect(201, "POST", "/v1/cases", json_body=CASE_BODY, headers=case_key)
    case_id = case_first.json()["id"]
    note_key = {"Idempotency-Key": f"note-{uuid4()}"}
    note_body = {"text": "Mother has dementia; day care needed.", "category": "health"}
    note_first = ana.expect(
        201, "POST", f"/v1/cases/{case_id}/notes", json_body=note_body, headers=note_key
    )
    legal = ana.post(
        f"/v1/cases/{case_id}/notes", {"text": "Eviction hearing.", "category": "legal"}
    )
    consent = ana.post(
        f"/v1/cases/{case_id}/consents",
        {
            "grantee_agency_id": hospital["id"],
            "sections": ["identity", "notes.health"],
            "purpose": "referral",
            "method": "written",
        },
    )
    withdrawn = ana.post(
        f"/v1/cases/{case_id}/consents",
        {
            "grantee_agency_id": hospital["id"],
            "sections": ["contact"],
            "purpose": "care_coordination",
            "method": "verbal",
        },
    )
    referral = ana.post(
        "/v1/referrals",
        {
            "case_id": case_id,
            "to_agency_id": hospital["id"],
            "service_type": "health",
            "reason": "Day care for her mother.",
            "urgency": "urgent",
            "consent_id": consent["id"],
        },
    )
    for action, body in (("accept", None), ("start", None), ("hold", {"reason": "Waiting"})):
        hal.post(f"/v1/referrals/{referral['id']}/{action}", body, status=200)
    messages = [
        ana.post(f"/v1/referrals/{referral['id']}/messages", {"text": "Any news?"}),
        hal.post(f"/v1/referrals/{referral['id']}/messages", {"text": "Next week."}),
    ]
    other_case = ana.post("/v1/cases", {"client": {"name": "Tam"}, "summary": "s"})
    ana.post(f"/v1/cases/{other_case['id']}/close", {"reason": "Moved away"}, status=200)
    # The last sequential write before the kill: a withdrawal.
    ana.post(f"/v1/consents/{withdrawn['id']}/withdraw", {"reason": "Client asked"}, status=200)

    # Concurrent notes on one case would rightly conflict (409): a case per note writer.
    writer_cases = [
        ana.post("/v1/cases", {"client": {"name": f"W{i}"}, "summary": "s"})["id"]
        for i in range(1, WRITERS)
    ]
    writers = [Writer(server.url, ana.token, None, "writer0")] + [
        Writer(server.url, ana.token, writer_case, f"writer{i}")
        for i, writer_case in enumerate(writer_cases, start=1)
    ]
    for writer in writers:
        writer.start()
    time.sleep(WRITING_FOR)
    server.kill()
    for writer in writers:
        writer.join(timeout=30)
        assert not writer.is_alive()
    log_before = server.log()
    server.start()

    return SimpleNamespace(
        server=server,
        log_before=log_before,
        operator=operator,
        ngo=ngo,
        hospital=hospital,
        ana=ana,
        sam=sam,
        hal=hal,
        agency=(agency_key, agency_body, agency_first),
        case=(case_key, CASE_BODY, case_first),
        note=(note_key, note_body, note_first),
        case_id=case_id,
        notes=[note_first.json(), legal],
        consent=consent,
        withdrawn=withdrawn,
        referral=referral,
        messages=messages,
        other_case=other_case,
        writers=writers,
    )


def test_the_writers_were_writing_when_the_server_was_killed(story: SimpleNamespace) -> None:
    for writer in story.writers:
        assert writer.acknowledged, f"{writer.name} wrote nothing before the kill"
        assert not writer.other, writer.other  # only the kill stopped them
    assert story.server.starts == 2


def test_every_acknowledged_case_and_note_is_there(story: SimpleNamespace) -> None:
    ana = story.ana
    case = ana.get(f"/v1/cases/{story.case_id}")
    assert case["client"] == {**CLIENT, "address": None}
    assert case["summary"] == CASE_BODY["summary"]
    notes = {n["id"]: n for n in case["notes"]}
    for note in story.notes:
        assert notes[note["id"]] == note
    for writer in story.writers[1:]:
        written = ana.get(f"/v1/cases/{writer.case_id}")["notes"]
        by_id = {n["id"]: n["text"] for n in written}
        for _, body, created in writer.acknowledged:
            assert by_id[created["id"]] == body["text"]
        texts = [n["text"] for n in written]
        assert len(texts) == len(set(texts)), "a note was written twice"

    cases = {c["id"]: c for c in ana.walk("/v1/cases", limit=500)}
    assert story.case_id in cases
    assert cases[story.other_case["id"]]["status"] == "closed"
    for _, body, created in story.writers[0].acknowledged:
        assert cases[created["id"]]["client_name"] == body["client"]["name"]
        assert ana.get(f"/v1/cases/{created['id']}")["client"]["name"] == body["client"]["name"]


def test_consents_and_their_withdrawal_are_there(story: SimpleNamespace) -> None:
    consents = story.ana.get(f"/v1/cases/{story.case_id}/consents")["items"]
    assert [(c["id"], c["status"]) for c in consents] == [
        (story.consent["id"], "active"),
        (story.withdrawn["id"], "withdrawn"),
    ]
    seen = story.hal.get(f"/v1/cases/{story.case_id}")
    assert seen["sections"] == ["identity", "notes.health"]
    assert seen["shared_under"] == [story.consent["id"]]
    assert "phone" not in seen["client"]  # the withdrawn consent grants nothing


def test_every_referral_transition_and_message_is_there(story: SimpleNamespace) -> None:
    referral_id = story.referral["id"]
    for party in (story.ana, story.hal):
        referral = party.get(f"/v1/referrals/{referral_id}")
        assert referral["status"] == "on_hold"
        assert [h["status"] for h in referral["history"]] == [
            "requested",
            "accepted",
            "in_progress",
            "on_hold",
        ]
        conversation = party.get(f"/v1/referrals/{referral_id}/messages")["items"]
        assert [m["id"] for m in conversation] == [m["id"] for m in story.messages]
    # And the loop goes on where it stopped.
    story.hal.post(f"/v1/referrals/{referral_id}/start", None, status=200)


def test_an_idempotent_retry_after_the_restart_returns_the_first_response(
    story: SimpleNamespace,
) -> None:
    ana, operator = story.ana, story.operator

    def count() -> tuple[int, ...]:
        return (
            len(ana.walk("/v1/cases", limit=500)),
            len(operator.walk("/v1/agencies", limit=500)),
            *(
                len(ana.get(f"/v1/cases/{case_id}")["notes"])
                for case_id in [story.case_id] + [w.case_id for w in story.writers[1:]]
            ),
        )

    before = count()
    for api, path, (key, body, first) in (
        (ana, "/v1/cases", story.case),
        (ana, f"/v1/cases/{story.case_id}/notes", story.note),
        (operator, "/v1/agencies", story.agency),
    ):
        retry = api.expect(201, "POST", path, json_body=body, headers=key)
        assert retry.json() == first.json()
        assert retry.json()["id"] == first.json()["id"]
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.headers.get("etag") == first.headers.get("etag")
        assert retry.headers.get("location") == first.headers.get("location")
    for writer in story.writers:
        for key, body, created in writer.acknowledged[-2:]:
            path = f"/v1/cases/{writer.case_id}/notes" if writer.case_id else "/v1/cases"
            retry = ana.expect(201, "POST", path, json_body=body, headers={"Idempotency-Key": key})
            assert retry.json() == created
            assert retry.headers["idempotent-replayed"] == "true"
    assert count() == before, "a retry wrote something new"


def test_a_request_the_kill_left_unanswered_can_be_retried(story: SimpleNamespace) -> None:
    """A request in flight when the server died got no answer: the client cannot know
    whether it was written. Retrying it with the same key and body must settle it: a
    201 (the first response if it was written, else a first write), never a refusal,
    and in the end the note or case exists exactly once."""
    ana = story.ana
    for writer in story.writers:
        for key, path, body in writer.unanswered:
            # Within the lease (2 s) of the killed attempt's reservation the answer is
            # 409 "still running; retry soon" (API.md): retry as a client would.
            deadline = time.monotonic() + 5 * LEASE.total_seconds()
            while True:
                retry = ana.request(
                    "POST", path, json_body=body, headers={"Idempotency-Key": key}
                )
                if retry.status_code != 409 or time.monotonic() > deadline:
                    break
                assert "still running" in retry.json()["detail"], retry.text
                time.sleep(0.2)
            assert retry.status_code == 201, (
                f"retry of a request the kill interrupted ({path}): "
                f"{retry.status_code} {retry.text}"
            )
            again = ana.request("POST", path, json_body=body, headers={"Idempotency-Key": key})
            assert (again.status_code, again.json()) == (201, retry.json())
            if writer.case_id:
                texts = [n["text"] for n in ana.get(f"/v1/cases/{writer.case_id}")["notes"]]
                assert texts.count(body["text"]) == 1
            else:
                names = [c["client_name"] for c in ana.walk("/v1/cases", limit=500)]
                assert names.count(body["client"]["name"]) == 1


def test_tokens_and_the_read_models_survived(story: SimpleNamespace) -> None:
    assert story.ana.get("/v1/me")["worker"]["id"] == story.ana.worker_id
    shared = story.hal.get("/v1/shared-cases")["items"]
    assert [s["case_id"] for s in shared] == [story.case_id]
    disclosures = story.sam.get(f"/v1/disclosures?case_id={story.case_id}")["items"]
    assert disclosures
    reads = [d for d in disclosures if d["sections"] != ["referral"]]
    assert {d["recipient_agency_id"] for d in reads} == {story.hospital["id"]}
    # The referral's reason and the two messages, each to the agency that did not write it.
    told = [d["recipient_agency_id"] for d in disclosures if d["sections"] == ["referral"]]
    assert sorted(told) == sorted([story.hospital["id"], story.hospital["id"], story.ngo["id"]])
