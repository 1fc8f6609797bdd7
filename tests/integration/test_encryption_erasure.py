"""Erasure destroys the client's data key: personal data reads None for ever, nothing else.

After ``casenet.clients.erase`` the client's aggregates still load with every clear
field (ids, statuses, categories, needs, timestamps, versions) as before and every
personal one None; the whole log still replays; another client is untouched; erasing
again is refused; a later event stores no personal data and brings no key back; and
another process, even one that read the client a moment before, reads None at once.
"""

from __future__ import annotations

import contextvars
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from eventsourcing.utils import resolve_topic
from test_encryption_story import (
    NETWORK_KEYS,
    ClientStory,
    aggregates_of,
    decoded_log,
    every_notification,
    personal_values_in_aggregates,
    personal_values_in_log,
    register_network,
    split_state,
    subject_of,
    write_client_story,
)

from casenet.application import OPERATOR_ACTOR, Casenet
from casenet.domain.aggregate import DomainEvent
from casenet.domain.case import Case, CaseNoteAdded
from casenet.domain.client import Client, ClientErased
from casenet.domain.errors import ClientAlreadyErased
from casenet.infrastructure.idempotency import ResponseGone, StoredResponse
from casenet.infrastructure.keytable import TABLE as DATA_KEYS
from casenet.infrastructure.mapper import personal_fields


def clear_fields(event: DomainEvent) -> dict[str, Any]:
    state: dict[str, Any] = msgspec.to_builtins(event)
    for name in personal_fields(type(event)):
        del state[name]
    return state


def clear_states(app: Any, story: ClientStory) -> list[dict[str, Any]]:
    return [split_state(aggregate)[0] for aggregate in aggregates_of(app, story)]


def without_erasure(client_state: dict[str, Any]) -> dict[str, Any]:
    changed_by_erasure = ("version", "modified_on", "erased", "erased_at")
    return {k: v for k, v in client_state.items() if k not in changed_by_erasure}


def key_rows(casenet: Casenet, story: ClientStory) -> list[Any]:
    database = casenet.app.database
    return database.run(
        f"SELECT wrapped, erased_at FROM {DATA_KEYS} WHERE subject_id = %s",
        (database.id_param(story.client_id),),
        commit=False,
    )


class ErasureContract:
    def test_erasure_leaves_every_clear_field_and_removes_every_personal_one(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        erased, kept = (write_client_story(casenet, network) for _ in range(2))
        before = clear_states(casenet.app, erased)
        kept_before = [split_state(a) for a in aggregates_of(casenet.app, kept)]
        log_before = decoded_log(casenet.app)
        client_before = casenet.app.get(Client, erased.client_id)
        assert personal_values_in_aggregates(casenet.app, erased) - {None}

        result = casenet.clients.erase(network.welfare_admin, erased.client_id)
        assert result.erased

        for app in (casenet.app, open_casenet().app):  # this process, and a fresh one
            after = clear_states(app, erased)
            client = app.get(Client, erased.client_id)
            assert client.erased
            assert client.version == client_before.version + 1
            assert client.created_on == client_before.created_on
            assert client.modified_on > client_before.modified_on
            # The client's clear state is the same but for the erasure itself...
            assert without_erasure(after[0]) == without_erasure(before[0])
            # ...and its case, consents and referrals are exactly as they were.
            assert after[1:] == before[1:]
            assert personal_values_in_aggregates(app, erased) == {None}
            assert [split_state(a) for a in aggregates_of(app, kept)] == kept_before

            # The whole log replays: same events, same clear fields, the erased client's
            # personal fields None, the other client's as they were.
            log_after = decoded_log(app)
            assert len(log_after) == len(log_before) + 1
            assert isinstance(log_after[-1], ClientErased)
            assert [clear_fields(e) for e in log_after[:-1]] == [
                clear_fields(e) for e in log_before
            ]
            for old, new in zip(log_before, log_after, strict=False):
                for name in personal_fields(type(old)):
                    expected = None if subject_of(old) == erased.client_id else getattr(old, name)
                    assert getattr(new, name) == expected
            values = personal_values_in_log(log_after)
            assert set(values[erased.client_id]) == {None}
            assert set(values[kept.client_id]) - {None} == kept.canaries

    def test_erasing_twice_is_refused(self, casenet: Casenet) -> None:
        network = register_network(casenet)
        story = write_client_story(casenet, network)
        casenet.clients.erase(OPERATOR_ACTOR, story.client_id)
        version = casenet.app.get(Client, story.client_id).version
        with pytest.raises(ClientAlreadyErased):
            casenet.clients.erase(OPERATOR_ACTOR, story.client_id)
        with pytest.raises(ClientAlreadyErased):
            casenet.clients.erase(network.welfare_admin, story.client_id)
        assert casenet.app.get(Client, story.client_id).version == version

    def test_a_later_event_for_an_erased_client_stores_no_personal_data_and_no_key(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        network = register_network(casenet)
        story = write_client_story(casenet, network)
        [before] = key_rows(casenet, story)
        assert before["wrapped"] is not None
        assert before["erased_at"] is None
        casenet.clients.erase(OPERATOR_ACTOR, story.client_id)
        [tombstone] = key_rows(casenet, story)
        assert tombstone["wrapped"] is None
        assert tombstone["erased_at"] is not None

        secret = "canary-written-after-erasure"
        # From this process (key ring knows) and from a fresh one (must ask the table).
        for writer in (casenet, open_casenet()):
            case, note = writer.cases.add_note(
                network.welfare_worker, story.case_id, category="health", text=secret
            )
            stored = every_notification(writer.app)[-1]
            assert resolve_topic(stored.topic) is CaseNoteAdded
            assert stored.originator_id == case.id
            assert secret.encode() not in stored.state
            assert msgspec.json.decode(stored.state)["text"] is None
            assert key_rows(writer, story) == [tombstone]  # no key came back
            fresh = open_casenet()
            reread = fresh.app.get(Case, story.case_id)
            fresh.close()
            assert reread.notes[-1].id == note.id
            assert reread.notes[-1].category == "health"
            assert reread.notes[-1].text is None
        assert casenet.app.keyring is not None
        counts = casenet.app.keyring.table.counts()
        assert counts.pop("(erased)") == 1
        assert sum(counts.values()) == NETWORK_KEYS  # no client's key came back

    def test_another_process_that_just_read_the_client_reads_none_at_once(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        # Another server process: it has just shown the client's data, through every
        # path that decrypts (aggregates, the case list's names, a referral's reason and
        # messages, a consent's evidence). The erasure answered: its very next reads,
        # with no pause, show nothing (no process keeps a data key past a read).
        network = register_network(casenet)
        erased, kept = (write_client_story(casenet, network) for _ in range(2))
        other = open_casenet()
        owner = network.welfare_worker

        def names_listed() -> dict[UUID, str | None]:
            page = other.case_queries.list_cases(owner, status=None, limit=500, after=None)
            return {item.client_id: item.client_name for item in page.items}

        assert personal_values_in_aggregates(other.app, erased) - {None}
        assert names_listed()[erased.client_id] in erased.canaries
        referral = other.referral_queries.read(owner, erased.referral_ids[0])
        assert referral.reason in erased.canaries
        assert other.case_queries.consent(owner, erased.consent_ids[0]).evidence

        casenet.clients.erase(network.welfare_admin, erased.client_id)
        assert personal_values_in_aggregates(other.app, erased) == {None}
        assert names_listed()[erased.client_id] is None
        assert other.referral_queries.read(owner, erased.referral_ids[0]).reason is None
        assert other.case_queries.consent(owner, erased.consent_ids[0]).evidence is None
        assert other.case_queries.read_case(owner, erased.case_id).erased
        # The other client, read in the same ways, is untouched.
        assert names_listed()[kept.client_id] in kept.canaries
        assert personal_values_in_aggregates(other.app, kept) - {None} <= kept.canaries
        assert other.referral_queries.read(owner, kept.referral_ids[0]).reason in kept.canaries

    def test_a_load_reads_its_keys_with_its_events_and_a_wrong_hint_changes_nothing(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        # A load told which client its aggregates are about reads that data key in the
        # statement that reads the events; a hint that names another client only costs
        # the lookup it was meant to save.
        network = register_network(casenet)
        erased, kept = (write_client_story(casenet, network) for _ in range(2))
        other = open_casenet().app
        for hint in (erased.client_id, kept.client_id):
            case = other.get(Case, erased.case_id, subjects=(hint,))
            assert case.summary in erased.canaries
            assert {n.text for n in case.notes} <= erased.canaries
        casenet.clients.erase(network.welfare_admin, erased.client_id)
        for hint in (erased.client_id, kept.client_id):
            case = other.get(Case, erased.case_id, subjects=(hint,))
            assert case.summary is None
            assert {n.text for n in case.notes} == {None}
        assert other.get(Case, kept.case_id, subjects=(kept.client_id,)).summary in kept.canaries

    def test_read_models_rebuilt_or_kept_current_by_another_process_show_none(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        # A projection worker (or a rebuild) copies ciphertexts and decrypts nothing;
        # the name in the case list is decrypted when read, with the key read then. A
        # process that listed the client, then projected the erasure or rebuilt the
        # model from the first event, lists the client erased and nameless.
        network = register_network(casenet)
        erased, kept = (write_client_story(casenet, network) for _ in range(2))
        worker = open_casenet()
        owner = network.welfare_worker

        def listed() -> dict[UUID, tuple[str | None, bool]]:
            page = worker.case_queries.list_cases(owner, status=None, limit=500, after=None)
            return {item.client_id: (item.client_name, item.erased) for item in page.items}

        assert listed()[erased.client_id][0] in erased.canaries
        casenet.clients.erase(network.welfare_admin, erased.client_id)
        worker.app.projections.catch_up(["cases"])
        assert listed()[erased.client_id] == (None, True)
        worker.app.projections.rebuild(["cases"])
        assert listed()[erased.client_id] == (None, True)
        name, was_erased = listed()[kept.client_id]
        assert name in kept.canaries
        assert not was_erased

    def test_a_key_read_with_a_load_serves_that_request_s_save_and_nothing_later(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        # A command loads its case sealed, with the client's key row in the same
        # statement, and its save encrypts with that row (no key read of its own). The
        # row is gone when the save ends, and another request (another context) never
        # sees it: a save after the erasure, even of an aggregate loaded before it,
        # stores no personal data.
        network = register_network(casenet)
        saved_twice, loaded_elsewhere = (write_client_story(casenet, network) for _ in range(2))
        other = open_casenet().app
        request, later = contextvars.copy_context(), contextvars.copy_context()
        worker_id = network.welfare_worker.worker_id

        def load(story: ClientStory) -> Case:
            return other.get(Case, story.case_id, personal=False, subjects=(story.client_id,))

        def note_saved(case: Case, text: str) -> Any:
            case.add_note(worker_id=worker_id, category="general", text=text)
            other.save(case)
            stored = every_notification(other)[-1]
            assert resolve_topic(stored.topic) is CaseNoteAdded
            return msgspec.json.decode(stored.state)["text"]

        case = request.run(load, saved_twice)
        assert request.run(note_saved, case, "before the erasure") not in (None, "")
        elsewhere = request.run(load, loaded_elsewhere)  # its row stays in `request`
        for story in (saved_twice, loaded_elsewhere):
            casenet.clients.erase(network.welfare_admin, story.client_id)
        assert request.run(note_saved, case, "saved again after the erasure") is None
        assert later.run(note_saved, elsewhere, "loaded before, saved after") is None
        for story in (saved_twice, loaded_elsewhere):
            assert {n.text for n in other.get(Case, story.case_id).notes} == {None}

    def test_another_process_no_longer_replays_a_retried_create_of_the_erased_client(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        # A create's first response (the case, with the client's name) is kept sealed
        # under the client's data key for retries; a retry served by another process
        # right after the erasure gets no personal data back.
        network = register_network(casenet)
        story = write_client_story(casenet, network)
        request, scope, key = b'{"client": "..."}', "create_case", "retry-1"
        body = f'{{"client": {{"name": "{sorted(story.canaries)[0]}"}}}}'.encode()
        assert casenet.app.idempotency.reserve(scope, key, request) is None
        casenet.app.idempotency.complete(
            scope, key, StoredResponse(201, body, {}), story.client_id
        )
        other = open_casenet().app.idempotency
        replayed = other.reserve(scope, key, request)
        assert replayed is not None
        assert replayed.body == body

        casenet.clients.erase(network.welfare_admin, story.client_id)
        with pytest.raises(ResponseGone):
            other.reserve(scope, key, request)

class TestErasureOnSQLite(ErasureContract):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url

    def test_the_erased_key_is_in_no_file_of_the_store(
        self, casenet: Casenet, sqlite_url: str
    ) -> None:
        # SQLite keeps what a write overwrote in the page's free space and, until a
        # checkpoint restarts it, in the WAL: the wrapped key must be in neither.
        network = register_network(casenet)
        stories = [write_client_story(casenet, network) for _ in range(3)]
        erased, kept = stories[1], stories[0]
        [row] = key_rows(casenet, erased)
        wrapped = bytes(row["wrapped"])
        store = Path(sqlite_url.removeprefix("sqlite:///")).parent

        def files_holding_the_key() -> list[str]:
            return sorted(f.name for f in store.iterdir() if wrapped in f.read_bytes())

        assert files_holding_the_key(), "the scan must find the key before the erasure"
        casenet.clients.erase(OPERATOR_ACTOR, erased.client_id)
        assert files_holding_the_key() == []
        assert casenet.app.get(Client, kept.client_id).name in kept.canaries


@pytest.mark.postgres
class TestErasureOnPostgres(ErasureContract):
    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url


# --- the operator's command ---------------------------------------------------------------


def casenet_command(args: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    return subprocess.run(
        [sys.executable, "-m", "casenet.cli", *args],
        capture_output=True, text=True, env={**env, **environ}, timeout=60, check=False,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_operator_erases_a_client_with_the_cli_once(
    casenet_environ: dict[str, str], open_casenet: Callable[[], Casenet]
) -> None:
    casenet = open_casenet()
    story = write_client_story(casenet, register_network(casenet))
    casenet.close()

    first = casenet_command(["clients", "erase", str(story.client_id)], casenet_environ)
    assert first.returncode == 0, first.stderr
    assert str(story.client_id) in first.stdout
    again = casenet_command(["clients", "erase", str(story.client_id)], casenet_environ)
    assert again.returncode == 1
    assert again.stderr.startswith("casenet: error: ")
    assert again.stderr.count("\n") == 1
    assert "Traceback" not in again.stderr

    reader = open_casenet()
    assert personal_values_in_aggregates(reader.app, story) == {None}
