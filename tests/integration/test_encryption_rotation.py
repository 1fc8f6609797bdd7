"""Master key rotation re-wraps every data key under the newest master key, events untouched.

Clients are written under master key ``k1``; then, with ``k1,k2`` configured,
``keyring.rotate()`` runs while another application keeps appending events (new
clients, notes). Afterwards no row of the events table that existed before has changed
(every column), every live data key is wrapped by ``k2``, an application with only
``k2`` reads everything, and one with only ``k1`` (or a wrong ``k2``) refuses to start.
The operator's ``casenet keys rotate`` and ``keys status`` do the same from the shell.
"""

from __future__ import annotations

import base64
import gc
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from test_encryption_story import (
    NETWORK_KEYS,
    Network,
    canary,
    decoded_log,
    personal_values_in_log,
    register_network,
    write_client_story,
)

from casenet.application import OPERATOR_ACTOR, Casenet, ClientDetails
from casenet.bootstrap import build_casenet
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.infrastructure.crypto import KeyRing, MasterKeyMismatch, MasterKeyMissing
from casenet.infrastructure.keytable import TABLE as DATA_KEYS
from casenet.settings import load_settings

PLAIN_CLIENTS = 60  # clients with a case only, so that rotation has keys to work through
WRITER_SECONDS = 1.5

MasterKey = tuple[str, str]  # (key id, base64 of 32 bytes)
Build = Callable[..., Casenet]


def new_master_key(key_id: str) -> MasterKey:
    return key_id, base64.b64encode(os.urandom(32)).decode()


def master_keys_setting(*keys: MasterKey) -> str:
    return ",".join(f"{key_id}:{key}" for key_id, key in keys)


@pytest.fixture
def build(database_url: str, tmp_path: Path) -> Iterator[Build]:
    """Build casenets on this test's database with the given master keys (newest last)."""
    opened: list[Casenet] = []

    def build_with(*keys: MasterKey) -> Casenet:
        settings = load_settings(
            {
                "CASENET_DATABASE_URL": database_url,
                "CASENET_DATA_DIR": str(tmp_path / "data"),
                "CASENET_MASTER_KEYS": master_keys_setting(*keys),
            }
        )
        casenet = build_casenet(settings)
        opened.append(casenet)
        return casenet

    yield build_with
    for casenet in reversed(opened):
        casenet.close()


def refuses_to_start(build: Build, error: type[Exception], *keys: MasterKey) -> None:
    with pytest.raises(error) as refused:
        build(*keys)
    assert keys[-1][1] not in str(refused.value)  # no key material in the message
    # The exception's traceback holds the half-built application and its connections (a
    # pool of ten on PostgreSQL): let go of it now rather than when the GC gets round to it.
    del refused
    gc.collect()


def keyring(casenet: Casenet) -> KeyRing:
    assert casenet.app.keyring is not None
    return casenet.app.keyring


def rows(casenet: Casenet, query: str) -> list[dict[str, Any]]:
    return [
        {name: row[name] for name in row.keys()}  # noqa: SIM118  (sqlite3.Row has no iter of names)
        for row in casenet.app.database.run(query, commit=False)
    ]


def events_table(casenet: Casenet) -> dict[tuple[str, int], dict[str, Any]]:
    """Every row of the events table, every column (with its position), by event."""
    table = casenet.app.recorder.events_table_name  # type: ignore[attr-defined]
    position = "rowid, " if casenet.app.database.dialect == "sqlite" else ""
    return {
        (str(row["originator_id"]), int(row["originator_version"])): row
        for row in rows(casenet, f"SELECT {position}* FROM {table}")
    }


def data_keys(casenet: Casenet) -> dict[str, dict[str, Any]]:
    return {str(row["subject_id"]): row for row in rows(casenet, f"SELECT * FROM {DATA_KEYS}")}


class Writer(threading.Thread):
    """Another application appending events: new clients, and notes on existing cases."""

    def __init__(self, casenet: Casenet, network: Network, cases: list[UUID]) -> None:
        super().__init__(daemon=True)
        self.casenet, self.network, self.cases = casenet, network, cases
        self.canaries: dict[UUID, set[str]] = {}  # by client, what this writer wrote
        self.new_clients: list[UUID] = []
        self.spans: list[tuple[float, float]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        worker = self.network.welfare_worker
        deadline = time.monotonic() + WRITER_SECONDS
        try:
            while time.monotonic() < deadline:
                started = time.monotonic()
                name, summary, note, other_note = canary(), canary(), canary(), canary()
                case = self.casenet.cases.open_case(
                    worker, client=ClientDetails(name=name), summary=summary, needs=["housing"]
                )
                self.casenet.cases.add_note(worker, case.id, category="general", text=note)
                self.new_clients.append(case.client_id)
                self.canaries[case.client_id] = {name, summary, note}
                existing = self.casenet.app.get(Case, self.cases[len(self.spans) % len(self.cases)])
                self.casenet.cases.add_note(worker, existing.id, category="family", text=other_note)
                self.canaries.setdefault(existing.client_id, set()).add(other_note)
                self.spans.append((started, time.monotonic()))
        except BaseException as error:  # noqa: BLE001  (re-raised by the test's thread)
            self.error = error


class RotationContract:
    def test_rotation_while_writing_rewraps_every_key_and_changes_no_event(
        self, build: Build
    ) -> None:
        k1, k2 = new_master_key("k1"), new_master_key("k2")
        first = build(k1)
        network = register_network(first)
        stories = [write_client_story(first, network) for _ in range(3)]
        expected = {story.client_id: set(story.canaries) for story in stories}
        for _ in range(PLAIN_CLIENTS):
            name, summary = canary(), canary()
            case = first.cases.open_case(
                network.welfare_worker, client=ClientDetails(name=name), summary=summary,
                needs=["income"],
            )
            expected[case.client_id] = {name, summary}
        erased = stories[0]
        first.clients.erase(OPERATOR_ACTOR, erased.client_id)
        expected[erased.client_id] = set()
        live = len(expected) - 1 + NETWORK_KEYS  # every client's but the erased one
        assert keyring(first).table.counts() == {"k1": live, "(erased)": 1}
        refuses_to_start(build, MasterKeyMissing, k2)  # the keys are all under k1 yet

        events_before, keys_before = events_table(first), data_keys(first)
        first.close()
        rotator, writing = build(k1, k2), build(k1, k2)
        writer = Writer(writing, network, [story.case_id for story in stories[1:]])
        writer.start()
        deadline = time.monotonic() + 10
        while not writer.spans and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        rotation_started = time.monotonic()
        moved = keyring(rotator).rotate()
        rotation_ended = time.monotonic()
        writer.join(timeout=60)
        if writer.error is not None:
            raise writer.error
        assert not writer.is_alive()
        during = [(s, e) for s, e in writer.spans if s < rotation_ended and e > rotation_started]
        print(
            f"[measure] rotated {moved} keys in {rotation_ended - rotation_started:.3f} s "
            f"while the writer did {len(during)} of its {len(writer.spans)} units"
        )
        assert during, "the writer must append while the rotation runs"

        assert moved == live
        assert keyring(rotator).rotate() == 0  # nothing left under k1
        assert keyring(rotator).table.counts() == {
            "k2": live + len(writer.new_clients), "(erased)": 1,
        }
        # Not one event row changed, not one column; the writer's rows were only added.
        events_after = events_table(rotator)
        assert {key: events_after[key] for key in events_before} == events_before
        # Per unit: the client, the case, a note on it, a note on an existing case.
        assert len(events_after) == len(events_before) + 4 * len(writer.spans)
        # Each data key is the same key (same id the ciphertexts name), wrapped anew.
        keys_after = data_keys(rotator)
        for subject, old in keys_before.items():
            new = keys_after[subject]
            assert bytes(new["data_key_id"]) == bytes(old["data_key_id"])
            if old["wrapped"] is None:
                assert new == old
            else:
                assert (old["master_key_id"], new["master_key_id"]) == ("k1", "k2")
                assert bytes(new["wrapped"]) != bytes(old["wrapped"])

        for client_id, written in writer.canaries.items():
            expected.setdefault(client_id, set()).update(written)
        rotator.close()
        writing.close()
        reader = build(k2)  # k1 retired: every event still decrypts
        values = personal_values_in_log(decoded_log(reader.app))
        assert {c: set(v) - {None} for c, v in values.items() if c in expected} == expected
        assert set(values[erased.client_id]) == {None}
        assert reader.app.get(Case, stories[1].case_id).summary in stories[1].canaries

        reader.close()
        refuses_to_start(build, MasterKeyMissing, k1)
        wrong_k2 = new_master_key("k2")
        refuses_to_start(build, MasterKeyMismatch, wrong_k2)
        refuses_to_start(build, MasterKeyMismatch, k1, wrong_k2)


class TestRotationOnSQLite(RotationContract):
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url

    def test_no_old_wrapping_is_left_in_the_stores_files(
        self, build: Build, sqlite_url: str
    ) -> None:
        # Once rotated, a key wrapped by the old master key must not stay on disk (in
        # a page's free space or in the WAL): the old master key may be retired.
        k1, k2 = new_master_key("k1"), new_master_key("k2")
        first = build(k1)
        network = register_network(first)
        stories = [write_client_story(first, network) for _ in range(3)]
        old = [bytes(row["wrapped"]) for row in data_keys(first).values()]
        assert len(old) == 3 + NETWORK_KEYS
        first.close()
        store = Path(sqlite_url.removeprefix("sqlite:///")).parent

        def files_holding_an_old_wrapping() -> list[str]:
            return sorted(
                f.name for f in store.iterdir() if any(w in f.read_bytes() for w in old)
            )

        assert files_holding_an_old_wrapping(), "the scan must find them before"
        rotated = build(k1, k2)
        assert keyring(rotated).rotate() == 3 + NETWORK_KEYS
        assert files_holding_an_old_wrapping() == []
        assert keyring(rotated).table.counts() == {"k2": 3 + NETWORK_KEYS}
        assert rotated.app.get(Client, stories[2].client_id).name in stories[2].canaries


@pytest.mark.postgres
class TestRotationOnPostgres(RotationContract):
    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url


# --- the operator's commands --------------------------------------------------------------

KEY_COUNT = re.compile(r"^\s*(\d+) data keys wrapped by master key (\S+)$", re.MULTILINE)
ERASED_COUNT = re.compile(r"^\s*(\d+) clients erased", re.MULTILINE)


def casenet_command(
    args: list[str], database_url: str, data_dir: Path, *keys: MasterKey
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    env.update(
        CASENET_DATABASE_URL=database_url,
        CASENET_DATA_DIR=str(data_dir),
        CASENET_MASTER_KEYS=master_keys_setting(*keys),
    )
    return subprocess.run(
        [sys.executable, "-m", "casenet.cli", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


def key_counts(output: str) -> dict[str, int]:
    counts = {key_id: int(n) for n, key_id in KEY_COUNT.findall(output)}
    erased = ERASED_COUNT.findall(output)
    if erased:
        counts["(erased)"] = int(erased[0])
    return counts


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_operator_rotates_master_keys_with_the_cli(
    build: Build, database_url: str, tmp_path: Path
) -> None:
    k1, k2 = new_master_key("k1"), new_master_key("k2")
    casenet = build(k1)
    network = register_network(casenet)
    stories = [write_client_story(casenet, network) for _ in range(3)]
    casenet.clients.erase(OPERATOR_ACTOR, stories[0].client_id)
    casenet.close()
    data_dir = tmp_path / "cli"

    def run(args: list[str], *keys: MasterKey) -> subprocess.CompletedProcess[str]:
        return casenet_command(args, database_url, data_dir, *keys)

    status = run(["keys", "status"], k1)
    assert status.returncode == 0, status.stderr
    assert "newest master key: k1" in status.stdout
    assert key_counts(status.stdout) == {"k1": 2 + NETWORK_KEYS, "(erased)": 1}

    rotated = run(["keys", "rotate"], k1, k2)
    assert rotated.returncode == 0, rotated.stderr
    assert f"re-wrapped {2 + NETWORK_KEYS} data keys under master key k2" in rotated.stdout
    assert key_counts(rotated.stdout) == {"k2": 2 + NETWORK_KEYS, "(erased)": 1}

    again = run(["keys", "rotate"], k1, k2)
    assert again.returncode == 0, again.stderr
    assert "re-wrapped 0 data keys" in again.stdout

    status = run(["keys", "status"], k2)
    assert status.returncode == 0, status.stderr
    assert key_counts(status.stdout) == {"k2": 2 + NETWORK_KEYS, "(erased)": 1}

    for keys in ((k1,), (new_master_key("k2"),)):
        refused = run(["keys", "status"], *keys)
        assert refused.returncode == 1
        assert refused.stderr.startswith("casenet: error: ")
        assert refused.stderr.count("\n") == 1
        assert "Traceback" not in refused.stderr
        assert "k2" in refused.stderr
        assert keys[0][1] not in refused.stderr + refused.stdout  # no key material shown

    reader = build(k2)
    values = personal_values_in_log(decoded_log(reader.app))
    for story in stories[1:]:
        assert set(values[story.client_id]) - {None} == story.canaries
