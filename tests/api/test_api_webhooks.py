"""Webhooks (API.md, "Webhooks"), in process on SQLite and on PostgreSQL, delivering to
a real receiver on 127.0.0.1 (tests/support/receiver.py).

The server's own delivery thread is off in this module (``APP_ENVIRON``): each test runs
a worker of its own, with a backoff of fractions of a second, so retries and giving up
take seconds. The feed item types are the feed's (``item.type``); a webhook's body is
the item exactly as ``GET /v1/feed`` gives it to the agency.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
import standardwebhooks
from tests.support.cli import CASENET
from tests.support.http import Probe
from tests.support.receiver import Receiver

from casenet.application import Actor
from casenet.application.views import FEED_ITEM_TYPES
from casenet.application.webhook_delivery import Backoff, DeliveryOptions, WebhookDelivery
from casenet.application.webhooks import WebhookService
from casenet.domain.errors import InvalidInput
from casenet.infrastructure.webhook_http import TargetRule, system_resolve

APP_ENVIRON = {"CASENET_WEBHOOK_WORKER": "off"}
QUICK = Backoff(base=0.1, cap=0.8, give_up_after=3600)


@pytest.fixture(scope="module")
def net(operator: Any) -> SimpleNamespace:
    """An NGO that grants consents to a hospital, whose admin registers webhooks."""
    ngo = operator.agency("Hook NGO", "ngo")
    hospital = operator.agency("Hook Hospital", "hospital")
    school = operator.agency("Hook School", "school")
    return SimpleNamespace(
        hospital=hospital,
        ana=operator.worker(ngo, "caseworker", "Ana Hook"),
        ngo_admin=operator.worker(ngo, "admin", "Nia Hook"),
        hal=operator.worker(hospital, "caseworker", "Hal Hook"),
        admin=operator.worker(hospital, "admin", "Hope Hook"),
        school_admin=operator.worker(school, "admin", "Sam Hook"),
        operator=operator,
    )


def grant(net: SimpleNamespace) -> str:
    """A case of the NGO with a consent for the hospital: one item in the hospital's feed."""
    case = net.ana.post("/v1/cases", {"client": {"name": "Ida Hook"}, "summary": "Hook"})
    consent = net.ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": net.hospital["id"],
            "sections": ["identity"],
            "purpose": "referral",
            "method": "verbal",
        },
    )
    return str(consent["id"])


def worker(
    app_server: Any, backoff: Backoff = QUICK, rule: TargetRule | None = None
) -> WebhookDelivery:
    casenet = app_server.casenet
    metrics = app_server.http.app.state.metrics
    options = DeliveryOptions(backoff=backoff, timeout=2.0, lease=10.0)
    return WebhookDelivery(
        casenet.app, rule or casenet.webhooks.rule, options, observe=metrics.webhook_attempted
    )


@contextmanager
def delivering(delivery: WebhookDelivery) -> Iterator[None]:
    """``delivery`` running in a thread of its own while the block runs."""
    stop = threading.Event()
    thread = threading.Thread(target=delivery.run, args=(stop,), kwargs={"interval": 0.02})
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def drain(delivery: WebhookDelivery) -> None:
    """Deliver until nothing is due (for receivers that answer 2xx)."""
    for _ in range(100):
        if not delivery.deliver_due():
            return
    raise AssertionError("still delivering after 100 passes")


def feed_since(api: Any, cursor: str) -> list[dict[str, Any]]:
    return list(api.get(f"/v1/feed?after={cursor}&limit=500")["items"])


def item_id(item: dict[str, Any]) -> str:
    return str(item.get("id", item["position"]))


def test_deliveries_are_signed_and_are_the_agencys_feed_items_in_order(
    net: SimpleNamespace, app_server: Any
) -> None:
    start = net.hal.get("/v1/feed?limit=500")["next"]
    with Receiver() as receiver:
        hook = net.admin.post("/v1/webhooks", {"url": receiver.url})
        assert hook["secret"].startswith("whsec_")
        assert hook["types"] == []
        for _ in range(3):
            grant(net)
        drain(worker(app_server))
        got = receiver.wait_for(3)
        feed = feed_since(net.hal, start)
        assert len(feed) == 3
        verifier = standardwebhooks.Webhook(hook["secret"])
        assert [verifier.verify(r.body, r.headers) for r in got] == feed
        assert [r.headers["webhook-id"] for r in got] == [item_id(i) for i in feed]
        assert all(r.headers["Content-Type"] == "application/json" for r in got)
        assert all(r.headers["webhook-signature"].startswith("v1,") for r in got)
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            verifier.verify(got[0].body + b" ", got[0].headers)
        drain(worker(app_server))
        assert len(receiver.received) == 3  # nothing twice
    net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook['id']}")


def test_a_webhook_gets_only_the_types_it_asked_for(net: SimpleNamespace, app_server: Any) -> None:
    start = net.hal.get("/v1/feed?limit=500")["next"]
    types = ["consent_withdrawn"]
    with Receiver() as every, Receiver() as some:
        all_hook = net.admin.post("/v1/webhooks", {"url": every.url})
        some_hook = net.admin.post("/v1/webhooks", {"url": some.url, "types": types})
        assert some_hook["types"] == types
        consents = [grant(net), grant(net)]
        net.ana.post(f"/v1/consents/{consents[0]}/withdraw", {"reason": "asked"}, status=200)
        drain(worker(app_server))
        feed = feed_since(net.hal, start)
        assert [r.json() for r in every.wait_for(len(feed))] == feed
        wanted = [i for i in feed if i["type"] in types]
        assert len(wanted) == 1  # the withdrawal,
        assert len(feed) > 1  # among the grants
        assert [r.json() for r in some.wait_for(1)] == wanted
        assert len(some.delivered()) == 1
        assert app_server.casenet.webhooks.backlog() == 0  # the others were passed over
    for hook in (all_hook, some_hook):
        net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook['id']}")


def test_emergency_grants_and_erasures_are_delivered_as_the_feed_gives_them(
    net: SimpleNamespace, app_server: Any
) -> None:
    start = net.hal.get("/v1/feed?limit=500")["next"]
    types = ["emergency_grant", "client_erased"]
    with Receiver() as receiver:
        hook = net.admin.post("/v1/webhooks", {"url": receiver.url, "types": types})
        grant(net)  # a consent_granted item, not asked for
        case = net.ana.post("/v1/cases", {"client": {"name": "Eda Hook"}, "summary": "Hook"})
        net.ana.post(
            f"/v1/cases/{case['id']}/emergency-grants",
            {
                "grantee_agency_id": net.hospital["id"],
                "sections": ["identity"],
                "basis": "vital_interests",
                "justification": "Unconscious at the door",
                "minutes": 60,
            },
        )
        net.ngo_admin.post(f"/v1/clients/{case['client_id']}/erasure", None, status=200)
        drain(worker(app_server))
        feed = feed_since(net.hal, start)
        wanted = [i for i in feed if i["type"] in types]
        assert [i["type"] for i in wanted] == types
        verifier = standardwebhooks.Webhook(hook["secret"])
        assert [verifier.verify(r.body, r.headers) for r in receiver.wait_for(2)] == wanted
        assert len(receiver.delivered()) == 2
    net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook['id']}")


def metric(operator: Any, name: str) -> float:
    text = operator.request("GET", "/metrics").text
    lines = [line for line in text.splitlines() if line.startswith(name)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_a_failing_receiver_gets_retries_with_growing_delays_then_everything_in_order(
    net: SimpleNamespace, app_server: Any
) -> None:
    start = net.hal.get("/v1/feed?limit=500")["next"]
    failed_before = metric(net.operator, 'casenet_webhook_deliveries_total{outcome="failed"}')
    with Receiver() as receiver:
        receiver.fail_next(4)
        hook = net.admin.post("/v1/webhooks", {"url": receiver.url})
        grant(net), grant(net)
        assert metric(net.operator, "casenet_webhook_backlog") == 2
        with delivering(worker(app_server)):
            got = receiver.wait_for(2, timeout=30)
        feed = feed_since(net.hal, start)
        assert [r.json() for r in got] == feed
        first = [r for r in receiver.received if r.headers["webhook-id"] == item_id(feed[0])]
        assert [r.status for r in first] == [500, 500, 500, 500, 204]
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(first)]
        for n, gap in enumerate(gaps[:4], start=1):
            assert gap >= min(QUICK.cap, QUICK.base * 2 ** (n - 1)) / 2 - 0.01, gaps
        assert gaps[3] > gaps[0], gaps
    attempts = net.admin.get(f"/v1/webhooks/{hook['id']}/deliveries")["items"]
    assert [(a["outcome"], a["attempt"], a["status_code"]) for a in attempts] == [
        ("failed", 1, 500),
        ("failed", 2, 500),
        ("failed", 3, 500),
        ("failed", 4, 500),
        ("delivered", 5, 204),
        ("delivered", 1, 204),
    ]
    assert all(a["next_attempt_at"] for a in attempts[:4])
    assert attempts[4]["next_attempt_at"] is None
    assert [a["item_id"] for a in attempts] == [item_id(feed[0])] * 5 + [item_id(feed[1])]
    page = net.admin.get(f"/v1/webhooks/{hook['id']}/deliveries?limit=4")
    rest = net.admin.get(f"/v1/webhooks/{hook['id']}/deliveries?after={page['next']}")
    assert page["items"] + rest["items"] == attempts
    assert metric(net.operator, "casenet_webhook_backlog") == 0
    failed = metric(net.operator, 'casenet_webhook_deliveries_total{outcome="failed"}')
    assert failed - failed_before == 4
    net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook['id']}")


def test_the_delay_before_a_retry_counts_from_the_failed_answer_not_the_attempts_start(
    net: SimpleNamespace, app_server: Any
) -> None:
    """A receiver slow to fail (0.4 s, four times the first delay) still gets the whole
    delay after its answer; counted from the start it would be retried at once."""
    slow = 0.4
    with Receiver(delay=slow) as receiver:
        receiver.fail_next(1)
        hook = net.admin.post("/v1/webhooks", {"url": receiver.url})
        try:
            grant(net)
            with delivering(worker(app_server)):
                receiver.wait_for(1, timeout=30)
            first = net.admin.get(f"/v1/webhooks/{hook['id']}/deliveries")["items"][0]
        finally:
            net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook['id']}")
    assert (first["outcome"], first["status_code"]) == ("failed", 500)
    started = datetime.fromisoformat(first["attempted_at"])
    due = datetime.fromisoformat(first["next_attempt_at"])
    assert (due - started).total_seconds() >= slow + QUICK.base / 2 - 0.01


def test_an_item_failing_past_the_limit_is_given_up_and_the_next_one_goes(
    net: SimpleNamespace, app_server: Any
) -> None:
    start = net.hal.get("/v1/feed?limit=500")["next"]
    with Receiver() as receiver:
        receiver.fail_next(10**6)
        hook = net.admin.post("/v1/webhooks", {"url": receiver.url})
        grant(net)
        path = f"/v1/webhooks/{hook['id']}/deliveries?limit=500"
        brief = Backoff(base=0.05, cap=0.1, give_up_after=0.5)
        with delivering(worker(app_server, brief)):
            deadline = time.monotonic() + 20
            while "given_up" not in [a["outcome"] for a in net.admin.get(path)["items"]]:
                assert time.monotonic() < deadline, net.admin.get(path)
                time.sleep(0.05)
            receiver.fail_next(0)
            grant(net)
            got = receiver.wait_for(1)
        feed = feed_since(net.hal, start)
        assert [r.json() for r in got] == feed[1:]
    attempts = net.admin.get(path)["items"]
    outcomes = [a["outcome"] for a in attempts]
    assert outcomes[-2:] == ["given_up", "delivered"]
    assert set(outcomes[:-2]) == {"failed"}
    assert len(outcomes) >= 4
    assert {a["item_id"] for a in attempts[:-1]} == {item_id(feed[0])}
    net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook['id']}")


def test_only_the_agencys_admin_sees_its_webhooks(net: SimpleNamespace) -> None:
    hook = net.admin.post("/v1/webhooks", {"url": "http://127.0.0.1:9/nobody"})
    listed = net.admin.get("/v1/webhooks")
    assert [h["id"] for h in listed["items"]] == [hook["id"]]
    assert "secret" not in listed["items"][0]
    assert set(listed["items"][0]) == {"id", "url", "types", "created_at"}
    probe = Probe()
    for method, suffix in (("GET", "/deliveries"), ("DELETE", "")):
        for outsider in (net.school_admin, net.operator):
            real = outsider.request(method, f"/v1/webhooks/{hook['id']}{suffix}")
            random = outsider.request(method, f"/v1/webhooks/{uuid4()}{suffix}")
            assert real.status_code == 404
            probe.same(f"{outsider!r} {method} {suffix}", real, random)
        net.hal.expect(403, method, f"/v1/webhooks/{hook['id']}{suffix}")
    probe.check()
    assert net.school_admin.get("/v1/webhooks")["items"] == []
    net.hal.expect(403, "GET", "/v1/webhooks")
    net.hal.expect(403, "POST", "/v1/webhooks", json_body={"url": "http://127.0.0.1:9/x"})
    net.operator.expect(403, "POST", "/v1/webhooks", json_body={"url": "http://127.0.0.1:9/x"})

    net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook['id']}")
    assert net.admin.get("/v1/webhooks")["items"] == []
    net.admin.expect(404, "DELETE", f"/v1/webhooks/{hook['id']}")
    net.admin.expect(404, "GET", f"/v1/webhooks/{hook['id']}/deliveries")


def test_bad_registrations_are_422_naming_the_field(net: SimpleNamespace) -> None:
    answer = net.admin.expect(
        422, "POST", "/v1/webhooks", json_body={"url": "http://127.0.0.1:9/", "types": ["x"]}
    )
    assert answer.headers["content-type"].startswith("application/problem+json")
    (error,) = answer.json()["errors"]
    assert error["field"] == "types"
    assert all(kind in error["message"] for kind in FEED_ITEM_TYPES)
    for url in ("ftp://example.org/", "https://user:pw@example.org/", "not a url"):
        answer = net.admin.expect(422, "POST", "/v1/webhooks", json_body={"url": url})
        assert answer.json()["errors"][0]["field"] == "url"
    assert net.admin.get("/v1/webhooks")["items"] == []


def test_a_retried_registration_answers_the_first_response(net: SimpleNamespace) -> None:
    body = {"url": "http://127.0.0.1:9/retried"}
    headers = {"Idempotency-Key": f"hook-{uuid4()}"}
    first = net.admin.expect(201, "POST", "/v1/webhooks", json_body=body, headers=headers)
    again = net.admin.expect(201, "POST", "/v1/webhooks", json_body=body, headers=headers)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [h["id"] for h in net.admin.get("/v1/webhooks")["items"]] == [first.json()["id"]]
    net.admin.expect(200, "DELETE", f"/v1/webhooks/{first.json()['id']}")


def test_in_production_a_name_resolving_to_loopback_is_refused_at_delivery_time(
    net: SimpleNamespace, app_server: Any
) -> None:
    """DNS rebinding: the name resolved to a public address when it was registered,
    to 127.0.0.1 when delivered; the delivery connects to nothing and says why."""
    app = app_server.casenet.app
    admin = Actor(UUID(net.admin.agency_id), UUID(net.admin.worker_id), "admin")
    production = TargetRule(production=True)
    with pytest.raises(InvalidInput, match="non-public"):
        WebhookService(app, production).register(admin, url="https://localhost/", types=None)
    with pytest.raises(InvalidInput, match="https"):
        WebhookService(app, production).register(admin, url="http://example.org/", types=None)

    answers = iter([["93.184.216.34"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers, None) or system_resolve(host, port)

    with Receiver() as receiver:
        url = f"https://localhost:{receiver.port}/casenet/webhook"
        rule = TargetRule(production=True, resolve=rebinding)
        hook, _ = WebhookService(app, rule).register(admin, url=url, types=None)
        grant(net)
        worker(app_server, rule=rule).deliver_due()
        assert receiver.received == []
    (attempt,) = net.admin.get(f"/v1/webhooks/{hook.id}/deliveries")["items"]
    assert attempt["outcome"] == "refused"
    assert attempt["status_code"] is None
    assert "non-public" in attempt["error"]
    assert attempt["next_attempt_at"] is not None
    net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook.id}")


def test_several_workers_at_once_deliver_each_item_once_in_order(
    net: SimpleNamespace, app_server: Any
) -> None:
    start = net.hal.get("/v1/feed?limit=500")["next"]
    with Receiver(delay=0.01) as receiver:
        hook = net.admin.post("/v1/webhooks", {"url": receiver.url})
        for _ in range(12):
            grant(net)
        workers = [worker(app_server) for _ in range(3)]
        with delivering(workers[0]), delivering(workers[1]), delivering(workers[2]):
            receiver.wait_for(12)
            time.sleep(0.3)
        assert [r.json() for r in receiver.received] == feed_since(net.hal, start)
    net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook['id']}")


def test_casenet_webhooks_deliver_is_a_worker_of_its_own(
    net: SimpleNamespace, app_server: Any, module_database_url: str
) -> None:
    start = net.hal.get("/v1/feed?limit=500")["next"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    environ.update(
        CASENET_DATABASE_URL=module_database_url,
        CASENET_DATA_DIR=str(app_server.settings.data_dir),
        CASENET_OPERATOR_TOKEN=app_server.settings.operator_token,
    )
    with Receiver() as receiver:
        hook = net.admin.post("/v1/webhooks", {"url": receiver.url})
        grant(net), grant(net)
        process = subprocess.Popen(
            [*CASENET, "webhooks", "deliver", "--interval", "0.1"],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            got = receiver.wait_for(2, timeout=60)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert err == b""
        assert b"delivering webhooks" in out
        assert [r.json() for r in got] == feed_since(net.hal, start)
    net.admin.expect(200, "DELETE", f"/v1/webhooks/{hook['id']}")
