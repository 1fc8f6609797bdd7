"""A ciphertext is bound to its client, aggregate, event and field: moved, it is refused.

Through the real store and mapper: every ciphertext the story wrote, put in place of
every other personal field in the log (another field of its event, another event of
its aggregate, another aggregate of its client, another client's event), fails to
decrypt with ``CiphertextInvalid``; so does a ciphertext with any one byte changed, and
an event whose clear client id was changed to another client's. Done in the database
itself, the aggregate no longer loads, while the untouched ones still do.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec
import pytest
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.utils import resolve_topic
from test_encryption_story import (
    ClientStory,
    every_notification,
    register_network,
    write_client_story,
)

from casenet.application import Casenet
from casenet.application.store import CasenetApplication
from casenet.domain.case import Case, CaseNoteAdded
from casenet.domain.client import Client, ClientRegistered
from casenet.domain.consent import Consent, ConsentGranted
from casenet.infrastructure.crypto import CiphertextInvalid
from casenet.infrastructure.mapper import personal_fields

Slot = tuple[Notification, str]  # a personal field of a stored event

OTHER_FIELD = "another field of the same event"
OTHER_VERSION = "another event of the same aggregate"
OTHER_AGGREGATE = "another aggregate of the same client"
OTHER_CLIENT = "another client's event"


def state_of(stored: StoredEvent) -> dict[str, Any]:
    state: dict[str, Any] = msgspec.json.decode(stored.state)
    return state


def with_state(stored: StoredEvent, **changes: Any) -> StoredEvent:
    state = {**state_of(stored), **changes}
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=msgspec.json.encode(state),
    )


def subject_in(stored: StoredEvent) -> str:
    event_type = resolve_topic(stored.topic)
    if event_type.subject_field == "originator_id":
        return str(stored.originator_id)
    return str(state_of(stored)[event_type.subject_field])


def kind_of_move(source: Slot, target: Slot) -> str:
    (src, _), (dst, _) = source, target
    if src.id == dst.id:
        return OTHER_FIELD
    if src.originator_id == dst.originator_id:
        return OTHER_VERSION
    if subject_in(src) == subject_in(dst):
        return OTHER_AGGREGATE
    return OTHER_CLIENT


def personal_slots(app: CasenetApplication) -> list[Slot]:
    return [
        (notification, name)
        for notification in every_notification(app)
        for name in personal_fields(resolve_topic(notification.topic))
    ]


def refused(app: CasenetApplication, stored: StoredEvent) -> bool:
    try:
        app.mapper.to_domain_event(stored)
    except CiphertextInvalid:
        return True
    return False


def flip_byte(ciphertext: str, index: int) -> str:
    blob = bytearray(base64.b64decode(ciphertext))
    blob[index % len(blob)] ^= 0x01
    return base64.b64encode(bytes(blob)).decode()


class SwapContract:
    def write(self, casenet: Casenet) -> list[ClientStory]:
        network = register_network(casenet)
        return [write_client_story(casenet, network) for _ in range(2)]

    def test_every_ciphertext_moved_to_any_other_personal_field_fails_to_decrypt(
        self, casenet: Casenet
    ) -> None:
        self.write(casenet)
        app = casenet.app
        slots = personal_slots(app)
        sources = [(slot, state_of(slot[0])[slot[1]]) for slot in slots]
        sources = [(slot, value) for slot, value in sources if value is not None]
        assert {resolve_topic(n.topic) for (n, _), _ in sources} >= {
            ClientRegistered, CaseNoteAdded, ConsentGranted,
        }
        moves: Counter[str] = Counter()
        accepted = []
        for source, ciphertext in sources:
            # In place, it decrypts: what follows fails because of the move alone.
            assert not refused(app, source[0])
            for target in slots:
                if (target[0].id, target[1]) == (source[0].id, source[1]):
                    continue
                kind = kind_of_move(source, target)
                moves[kind] += 1
                if not refused(app, with_state(target[0], **{target[1]: ciphertext})):
                    accepted.append((kind, source[0].topic, source[1], target[0].topic, target[1]))
        assert accepted == []
        assert set(moves) == {OTHER_FIELD, OTHER_VERSION, OTHER_AGGREGATE, OTHER_CLIENT}

    def test_a_ciphertext_with_any_byte_changed_fails_to_decrypt(self, casenet: Casenet) -> None:
        self.write(casenet)
        app = casenet.app
        ciphertexts = [
            (notification, name, state_of(notification)[name])
            for notification, name in personal_slots(app)
            if state_of(notification)[name] is not None
        ]
        accepted: list[tuple[str, str, object]] = []
        for number, (notification, name, ciphertext) in enumerate(ciphertexts):
            # Every byte of the first ciphertext (header, key id, nonce, body, tag), then
            # one byte of each other, at a different place each time.
            indexes = range(len(base64.b64decode(ciphertext))) if number == 0 else [number * 7]
            for index in indexes:
                tampered = with_state(notification, **{name: flip_byte(ciphertext, index)})
                if not refused(app, tampered):
                    accepted.append((notification.topic, name, index))
            for broken in (ciphertext[:-8], "not base64 at all!", ""):
                if not refused(app, with_state(notification, **{name: broken})):
                    accepted.append((notification.topic, name, broken))
        assert accepted == []

    def test_an_event_whose_client_id_is_changed_to_another_client_fails_to_decrypt(
        self, casenet: Casenet
    ) -> None:
        first, second = self.write(casenet)
        notes = [
            n for n in every_notification(casenet.app)
            if resolve_topic(n.topic) is CaseNoteAdded
            and state_of(n)["client_id"] == str(first.client_id)
        ]
        assert notes
        for note in notes:
            assert not refused(casenet.app, note)
            assert refused(casenet.app, with_state(note, client_id=str(second.client_id)))

    def test_moved_or_tampered_in_the_database_the_aggregate_no_longer_loads(
        self, casenet: Casenet, open_casenet: Callable[[], Casenet]
    ) -> None:
        first, second = self.write(casenet)
        app = casenet.app
        log = every_notification(app)

        def stored(topic_type: type, client: ClientStory) -> list[Notification]:
            return [
                n for n in log
                if resolve_topic(n.topic) is topic_type and subject_in(n) == str(client.client_id)
            ]

        def overwrite(target: Notification, **changes: Any) -> None:
            # The id as the store's events table holds it (SQLite: 32 hex digits).
            param = app.store.stored_id(UUID(str(target.originator_id)))
            table = app.recorder.events_table_name  # type: ignore[attr-defined]
            with app.database.cursor(commit=True) as cursor:
                cursor.execute(
                    app.database.sql(
                        f"UPDATE {table} SET state = %s "
                        "WHERE originator_id = %s AND originator_version = %s"
                    ),
                    (with_state(target, **changes).state, param, target.originator_version),
                )
                assert cursor.rowcount == 1

        # The first client's note text, moved onto the second client's note.
        first_note = stored(CaseNoteAdded, first)[0]
        first_note_text = getattr(app.mapper.to_domain_event(first_note), "text")  # noqa: B009
        assert first_note_text in first.canaries
        overwrite(stored(CaseNoteAdded, second)[0], text=state_of(first_note)["text"])
        # The second client's name, moved onto their phone number.
        registered = stored(ClientRegistered, second)[0]
        overwrite(registered, phone=state_of(registered)["name"])
        # One byte of the first client's consent evidence, flipped.
        granted = stored(ConsentGranted, first)[0]
        overwrite(granted, evidence=flip_byte(state_of(granted)["evidence"], 40))

        fresh = open_casenet().app  # another process: nothing cached
        with pytest.raises(CiphertextInvalid):
            fresh.get(Case, second.case_id)
        with pytest.raises(CiphertextInvalid):
            fresh.get(Client, second.client_id)
        with pytest.raises(CiphertextInvalid):
            fresh.get(Consent, first.consent_ids[0])
        # What was not touched still loads and reads.
        assert fresh.get(Case, first.case_id).notes[0].text == first_note_text
        assert fresh.get(Client, first.client_id).name is not None
        assert fresh.get(Consent, second.consent_ids[0]).evidence is not None


class TestSwapsOnSQLite(SwapContract):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestSwapsOnPostgres(SwapContract):
    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url
