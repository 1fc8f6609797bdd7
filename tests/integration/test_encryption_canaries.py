"""No plaintext personal data at rest: every byte the store wrote holds no canary.

The story (``test_encryption_story``) gives every personal value a unique random
string (and its network has a webhook, whose secret is scanned for too); then every
byte the store wrote is scanned for each of them, in the clear, as hex (how ``pg_dump``
writes ``bytea``) and as base64:

* SQLite: the database file and its ``-wal`` and ``-shm`` files (every file in the
  store's folder), while the application is open and after it is closed;
* PostgreSQL: the ``pg_dump`` of the test's database (tables, read models, data keys).

Zero occurrences, before and after some clients are erased, while the application
still reads every canary back (so the scan looks for data that exists). As a control,
the same scan of a store built with ``encrypt=False`` finds every canary.
"""

from __future__ import annotations

import base64
import glob
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable

import pytest
from test_encryption_story import (
    ClientStory,
    Network,
    decoded_log,
    personal_values_in_aggregates,
    personal_values_in_log,
    register_network,
    write_client_story,
)

from casenet.application import OPERATOR_ACTOR, Casenet
from casenet.bootstrap import build_casenet
from casenet.settings import load_settings, parse_database_url

CLIENTS = 4
ERASED = 2  # the first two: one by the operator, one by an admin of the agency


def needles(canary: str) -> tuple[list[bytes], list[bytes]]:
    """How a canary could show up: (case-insensitive forms, case-sensitive forms)."""
    raw = canary.encode()
    anycase = [raw, raw.hex().encode()]
    # Base64 of the canary at each of the three alignments, without the edge characters
    # that depend on the bytes around it.
    base64s = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        start = 4 if shift else 0
        stop = 4 * ((shift + len(raw)) // 3)
        base64s.append(encoded[start:stop])
    return anycase, base64s


def canaries_in(blobs: dict[str, bytes], canaries: Iterable[str]) -> dict[str, list[str]]:
    """Each canary found, with where (which file) it was found."""
    lowered = {name: blob.lower() for name, blob in blobs.items()}
    found: dict[str, list[str]] = {}
    for canary in canaries:
        anycase, exact = needles(canary)
        for name in blobs:
            if any(n.lower() in lowered[name] for n in anycase) or any(
                n in blobs[name] for n in exact
            ):
                found.setdefault(canary, []).append(name)
    return found


def test_the_needles_find_a_canary_in_every_encoding_they_look_for() -> None:
    canary = "canary-0123456789abcdef"
    for blob in (
        b"x" + canary.encode() + b"y",
        b"\\x" + canary.encode().hex().encode(),
        canary.encode().hex().upper().encode(),
        *(b"zz" + base64.b64encode(b"ab"[:shift] + canary.encode()) for shift in range(3)),
    ):
        assert canaries_in({"blob": blob}, [canary]) == {canary: ["blob"]}
    near_miss = b"canary-01234567X9abcdef"
    for blob in (near_miss, near_miss.hex().encode(), base64.b64encode(near_miss)):
        assert canaries_in({"blob": blob}, [canary]) == {}


# --- reading what each store wrote ------------------------------------------------------


def sqlite_files(database_url: str) -> dict[str, bytes]:
    """Every file in the SQLite store's folder: the database, ``-wal``, ``-shm``."""
    path = parse_database_url(database_url).path
    assert path is not None
    blobs = {p.name: p.read_bytes() for p in sorted(path.parent.iterdir()) if p.is_file()}
    assert blobs.get(path.name), f"the store file {path.name} is missing or empty"
    return blobs


def find_pg_dump() -> str | None:
    """``pg_dump`` on the PATH, else the newest under /usr/lib/postgresql."""
    on_path = shutil.which("pg_dump")
    if on_path:
        return on_path

    def major(path: str) -> int:
        match = re.search(r"/postgresql/(\d+)/", path)
        return int(match.group(1)) if match else 0

    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), key=major)
    return installed[-1] if installed else None


def pg_dump(database_url: str) -> dict[str, bytes]:
    """The plain-text dump of the test's database: schema and every row of every table."""
    executable = find_pg_dump()
    if executable is None:
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail("CI=true and pg_dump is not installed", pytrace=False)
        pytest.skip("pg_dump is not installed")
    result = subprocess.run(
        [executable, "--no-owner", "--no-privileges", f"--dbname={database_url}"],
        capture_output=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"CREATE TABLE" in result.stdout, "the dump holds no table"
    return {"pg_dump": result.stdout}


# --- the contract -------------------------------------------------------------------------


class CanaryContract:
    """Written once; each store's subclass says where its bytes are."""

    stored_bytes: Callable[[str], dict[str, bytes]]

    def write(self, casenet: Casenet) -> tuple[Network, list[ClientStory]]:
        network = register_network(casenet)
        return network, [write_client_story(casenet, network) for _ in range(CLIENTS)]

    def assert_nothing_leaked(self, database_url: str, canaries: set[str], when: str) -> None:
        blobs = type(self).stored_bytes(database_url)
        assert sum(len(b) for b in blobs.values()) > 0
        leaked = canaries_in(blobs, canaries)
        assert leaked == {}, f"{when}: {len(leaked)} canaries in {sorted(blobs)}: {leaked}"

    def test_no_canary_is_at_rest_before_or_after_erasing_clients(
        self, open_casenet: Callable[[], Casenet], database_url: str
    ) -> None:
        casenet = open_casenet()
        network, stories = self.write(casenet)
        canaries = set().union(*(story.canaries for story in stories))
        assert len(canaries) == sum(len(story.canaries) for story in stories)
        # The application reads every one of them back: the scan looks for real data.
        in_log = personal_values_in_log(decoded_log(casenet.app))
        for story in stories:
            assert set(in_log[story.client_id]) - {None} == story.canaries
        casenet.app.projections.ensure_current()  # read models hold what they hold

        canaries.add(network.webhook_secret)  # a webhook's secret, too
        self.assert_nothing_leaked(database_url, canaries, "open")
        casenet.close()
        self.assert_nothing_leaked(database_url, canaries, "closed")

        casenet = open_casenet()
        erased, kept = stories[:ERASED], stories[ERASED:]
        casenet.clients.erase(OPERATOR_ACTOR, erased[0].client_id)
        casenet.clients.erase(network.welfare_admin, erased[1].client_id)
        casenet.app.projections.ensure_current()
        in_log = personal_values_in_log(decoded_log(casenet.app))
        for story in erased:
            assert set(in_log[story.client_id]) == {None}
            assert personal_values_in_aggregates(casenet.app, story) == {None}
        for story in kept:
            assert set(in_log[story.client_id]) - {None} == story.canaries

        self.assert_nothing_leaked(database_url, canaries, "open, after erasure")
        casenet.close()
        self.assert_nothing_leaked(database_url, canaries, "closed, after erasure")

    def test_the_scan_finds_every_canary_in_a_store_without_encryption(
        self, casenet_environ: dict[str, str], database_url: str
    ) -> None:
        clear = build_casenet(load_settings(casenet_environ), encrypt=False)
        try:
            network, stories = self.write(clear)
            clear.app.projections.ensure_current()
        finally:
            clear.close()
        canaries = set().union(*(story.canaries for story in stories))
        canaries.add(network.webhook_secret)
        found = canaries_in(type(self).stored_bytes(database_url), canaries)
        assert set(found) == canaries


class TestCanariesOnSQLite(CanaryContract):
    stored_bytes = staticmethod(sqlite_files)

    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestCanariesOnPostgres(CanaryContract):
    stored_bytes = staticmethod(pg_dump)

    @pytest.fixture
    def database_url(self, postgres_database_url: str) -> str:
        return postgres_database_url
