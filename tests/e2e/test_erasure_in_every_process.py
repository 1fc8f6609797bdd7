"""Erasure is immediate in every process serving the store (API.md, "Erasure is
immediate everywhere"), on SQLite and on PostgreSQL.

Two ``casenet serve`` processes share one store. Readers hit server B without pause,
as the owner and as a grantee: the case, the case list, the referral (its reason), its
messages and the consent (its evidence), each read timed from the moment it is sent.
The client is erased on server A, or with ``casenet clients erase`` from a third
process. Every read that *started* after the erasure answered must show ``erased:
true``, ``null`` in place of every personal value, and no byte of the client's data;
the reads before it must have shown the data (or the readers could not tell).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

CASENET = [sys.executable, "-m", "casenet.cli"]
#: How long the readers go on after the erasure answered: past the 2 s that data keys
#: used to stay cached in a process, so that a leak through such a cache cannot hide.
READ_ON_FOR = 2.5
READERS = 3
#: Reads that must start after the erasure answered, or the test proved nothing.
AT_LEAST_AFTER = 30


@dataclass(frozen=True)
class Read:
    started: float  # time.monotonic() when the request was sent
    name: str
    status: int
    body: Any
    text: str


@dataclass
class Story:
    """One client's case with a canary in every personal value."""

    canaries: list[str]
    case_id: str
    client_id: str
    consent_id: str
    referral_id: str


#: The e2e fixtures' classes (tests/e2e/conftest.py): the test folders are not packages.
LiveServer = Api = Any



@pytest.fixture(scope="module")
def net(servers: tuple[LiveServer, LiveServer], connect: Callable[..., Api]) -> SimpleNamespace:
    """An NGO (its admin and caseworker) and a hospital's caseworker, each with a
    client of server A and one of server B."""
    a, b = servers
    operator = connect(a)
    ngo = operator.agency("Eastside Welfare NGO", "ngo")
    hospital = operator.agency("City Hospital Social Work", "hospital")
    workers = {
        "admin": operator.worker(ngo, "admin"),
        "ana": operator.worker(ngo, "caseworker"),
        "hal": operator.worker(hospital, "caseworker"),
    }
    on_b = {name: connect(b, w.token, **w.identity) for name, w in workers.items()}
    return SimpleNamespace(hospital=hospital, **workers, b=SimpleNamespace(**on_b))


def write_story(net: SimpleNamespace, tag: str) -> Story:
    """A case with notes, a consent with evidence for the hospital, a referral with a
    reason and a message from each side: every personal value carries a canary."""
    canaries = [f"canary-{tag}-{n}" for n in range(9)]
    ana, hal = net.ana, net.hal
    case = ana.post(
        "/v1/cases",
        {
            "client": {
                "name": canaries[0],
                "date_of_birth": "1984-03-02",
                "phone": canaries[1],
                "address": canaries[2],
            },
            "summary": canaries[3],
            "needs": ["health"],
        },
    )
    ana.post(f"/v1/cases/{case['id']}/notes", {"text": canaries[4], "category": "health"})
    consent = ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": net.hospital["id"],
            "sections": ["identity", "contact", "notes.health"],
            "purpose": "referral",
            "method": "written",
            "evidence": canaries[5],
        },
    )
    referral = ana.post(
        "/v1/referrals",
        {
            "case_id": case["id"],
            "to_agency_id": net.hospital["id"],
            "service_type": "health",
            "reason": canaries[6],
            "urgency": "routine",
            "consent_id": consent["id"],
        },
    )
    ana.post(f"/v1/referrals/{referral['id']}/messages", {"text": canaries[7]})
    hal.post(f"/v1/referrals/{referral['id']}/messages", {"text": canaries[8]})
    return Story(canaries, case["id"], case["client_id"], consent["id"], referral["id"])


def reads_of(net: SimpleNamespace, story: Story) -> list[tuple[str, Api, str]]:
    """What the readers ask server B for, over and over."""
    ana, hal = net.b.ana, net.b.hal
    return [
        ("owner case", ana, f"/v1/cases/{story.case_id}"),
        ("grantee case", hal, f"/v1/cases/{story.case_id}"),
        ("case list", ana, "/v1/cases?limit=500"),
        ("referral", ana, f"/v1/referrals/{story.referral_id}"),
        ("grantee referral", hal, f"/v1/referrals/{story.referral_id}"),
        ("messages", hal, f"/v1/referrals/{story.referral_id}/messages"),
        ("consent", ana, f"/v1/consents/{story.consent_id}"),
    ]


@dataclass
class Readers:
    """Threads reading from one server until told to stop, each with its own client."""

    targets: list[tuple[str, Api, str]]
    reads: list[Read]
    stop: threading.Event
    threads: list[threading.Thread]


@pytest.fixture
def reading() -> Iterator[Callable[[list[tuple[str, Api, str]]], Readers]]:
    started: list[Readers] = []

    def start(targets: list[tuple[str, Api, str]]) -> Readers:
        readers = Readers(targets, [], threading.Event(), [])
        lock = threading.Lock()

        def loop(offset: int) -> None:
            with httpx.Client(timeout=30) as http:
                turn = offset
                while not readers.stop.is_set():
                    name, api, path = targets[turn % len(targets)]
                    turn += 1
                    sent = time.monotonic()
                    try:
                        answer = http.get(
                            api.server.url + path,
                            headers={"Authorization": f"Bearer {api.token}"},
                        )
                        body = answer.json()
                    except (httpx.HTTPError, ValueError) as error:  # counted, as a failure
                        read = Read(sent, name, 0, None, f"{type(error).__name__}: {error}")
                    else:
                        read = Read(sent, name, answer.status_code, body, answer.text)
                    with lock:
                        readers.reads.append(read)

        for offset in range(READERS):
            thread = threading.Thread(target=loop, args=(offset,), daemon=True)
            readers.threads.append(thread)
            thread.start()
        started.append(readers)
        return readers

    yield start
    for readers in started:
        readers.stop.set()
        for thread in readers.threads:
            thread.join(timeout=60)


def leaks(read: Read, story: Story) -> list[str]:
    """What a read that started after the erasure shows that it must not."""
    found = [c for c in story.canaries if c in read.text]
    if read.status != 200:
        return [*found, f"status {read.status}: {read.text[:200]}"]
    body = read.body
    if read.name in ("owner case", "grantee case"):
        if body["erased"] is not True:
            found.append("erased is not true")
        found += [f"client.{k}" for k, v in body["client"].items() if v is not None]
        if body.get("summary") is not None:
            found.append("summary")
        found += ["a note's text" for note in body["notes"] if note["text"] is not None]
    elif read.name == "case list":
        [item] = [i for i in body["items"] if i["id"] == story.case_id]
        if item["erased"] is not True or item["client_name"] is not None:
            found.append(f"list item {item}")
    elif read.name in ("referral", "grantee referral"):
        if body["reason"] is not None:
            found.append("reason")
        found += [f"client.{k}" for k, v in body.get("client", {}).items() if v is not None]
    elif read.name == "messages":
        found += ["a message's text" for m in body["items"] if m["text"] is not None]
    elif read.name == "consent" and body["evidence"] is not None:
        found.append("evidence")
    return found


def shows_the_data(read: Read, story: Story) -> bool:
    return read.status == 200 and any(c in read.text for c in story.canaries)


def erase_while_reading(
    net: SimpleNamespace,
    story: Story,
    reading: Callable[[list[tuple[str, Api, str]]], Readers],
    erase: Callable[[], None],
) -> tuple[list[Read], list[Read]]:
    """Readers on server B; ``erase`` once they have shown the data; reads on for
    READ_ON_FOR seconds after it answered. The reads before it and after it."""
    targets = reads_of(net, story)
    readers = reading(targets)
    deadline = time.monotonic() + 30
    while {r.name for r in readers.reads if shows_the_data(r, story)} != {t[0] for t in targets}:
        assert time.monotonic() < deadline, "server B never showed the client's data"
        time.sleep(0.05)
    time.sleep(0.3)  # every reader has read recently: whatever B keeps, it has
    erase()
    answered = time.monotonic()
    time.sleep(READ_ON_FOR)
    readers.stop.set()
    for thread in readers.threads:
        thread.join(timeout=60)
    before = [r for r in readers.reads if r.started < answered]
    after = [r for r in readers.reads if r.started > answered]
    return before, after


def check(story: Story, before: list[Read], after: list[Read], how: str) -> None:
    assert any(shows_the_data(r, story) for r in before)
    leaked = [(r.name, round(r.started, 3), found) for r in after if (found := leaks(r, story))]
    print(  # the figure for the note (pytest -s shows it)
        f"\n{how}: {len(after)} reads in a second process started after the erasure "
        f"answered, {len(leaked)} showed personal data"
    )
    assert len(after) >= AT_LEAST_AFTER, f"only {len(after)} reads after the erasure"
    assert not leaked, f"{len(leaked)} of {len(after)} reads after the erasure: {leaked[:10]}"


def test_an_erasure_on_one_server_shows_at_once_on_another(
    net: SimpleNamespace, reading: Callable[[list[tuple[str, Api, str]]], Readers]
) -> None:
    story = write_story(net, "http")

    def erase() -> None:
        erased = net.admin.post(f"/v1/clients/{story.client_id}/erasure", status=200)
        assert erased["erased"] is True

    before, after = erase_while_reading(net, story, reading, erase)
    check(story, before, after, "erasure over HTTP on server A, reads on server B")


def test_an_erasure_by_the_cli_shows_at_once_on_a_running_server(
    net: SimpleNamespace,
    servers: tuple[LiveServer, LiveServer],
    reading: Callable[[list[tuple[str, Api, str]]], Readers],
) -> None:
    story = write_story(net, "cli")

    def erase() -> None:
        result = subprocess.run(
            [*CASENET, "clients", "erase", story.client_id],
            capture_output=True,
            text=True,
            env=servers[0].environ(),
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert story.client_id in result.stdout

    before, after = erase_while_reading(net, story, reading, erase)
    check(story, before, after, "erasure by `casenet clients erase`, reads on server B")
