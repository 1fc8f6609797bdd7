"""``existence``: a real id the caller cannot see costs what a random id costs.

API.md ("What a grantee can tell"): asking about a case, consent or referral the
caller's agency cannot see takes as long, within noise, as asking about a random id.
Through the ASGI app in-process (Litestar's TestClient), a worker of an agency that
was never granted anything asks, alternately, for one of another agency's real ids
(cases with notes, consents with evidence, referrals with messages: things that cost
a load and a decryption, were they loaded) and for a random one. The figure is the
median latency (ms) of a random id; the ceiling, that of a real-invisible id; the
target, a ratio within 10% of 1 either way (the condition).
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path
from uuid import UUID, uuid4

from litestar.testing import TestClient

from benchmarks import Options, Row, workload
from benchmarks.commands import stores
from casenet.api.app import create_app
from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.bootstrap import build_casenet
from casenet.settings import Settings, load_settings

KINDS = 20
ROUTES = {"case": "/v1/cases/{}", "consent": "/v1/consents/{}", "referral": "/v1/referrals/{}"}


def hidden_ids(casenet: Casenet) -> tuple[dict[str, list[UUID]], str]:
    """Another agency's cases, consents and referrals; the token of an outsider."""
    owner_agency = casenet.agencies.register(OPERATOR_ACTOR, name="Owner", kind="ngo")
    grantee = casenet.agencies.register(OPERATOR_ACTOR, name="Grantee", kind="hospital")
    outsider = casenet.agencies.register(OPERATOR_ACTOR, name="Outsider", kind="school")
    worker, _ = casenet.agencies.add_worker(
        OPERATOR_ACTOR, owner_agency.id, name="W", role="caseworker"
    )
    owner = Actor(owner_agency.id, worker.id, "caseworker")
    _, token = casenet.agencies.add_worker(OPERATOR_ACTOR, outsider.id, name="O", role="supervisor")
    ids: dict[str, list[UUID]] = {kind: [] for kind in ROUTES}
    for i in range(KINDS):
        case = casenet.cases.open_case(
            owner,
            client=ClientDetails(name=f"Client {i}", phone="0123", address="Street 1"),
            summary="S" * 500,
            needs=["income"],
        )
        for _ in range(5):
            casenet.cases.add_note(owner, case.id, category="health", text="T" * 500)
        consent = casenet.consents.grant(
            owner,
            case.id,
            grantee_agency_id=grantee.id,
            sections=["identity", "notes.health"],
            purpose="referral",
            method="written",
            evidence="E" * 300,
        )
        referral = casenet.referrals.request(
            owner,
            case_id=case.id,
            to_agency_id=grantee.id,
            service_type="health",
            reason="R" * 500,
            urgency="routine",
            consent_id=consent.id,
        )
        for _ in range(5):
            casenet.referrals.post_message(owner, referral.id, text="M" * 500)
        ids["case"].append(case.id)
        ids["consent"].append(consent.id)
        ids["referral"].append(referral.id)
    return ids, token


def medians(settings: Settings, casenet: Casenet, samples: int) -> dict[str, tuple[float, float]]:
    """Per route: (median of random ids, median of real-invisible ids), in ms."""
    ids, token = hidden_ids(casenet)
    headers = {"Authorization": f"Bearer {token}"}
    found: dict[str, tuple[float, float]] = {}
    with TestClient(create_app(settings, casenet)) as client:
        for kind, template in ROUTES.items():
            times: dict[bool, list[float]] = {True: [], False: []}
            for i in range(samples):
                order = (True, False) if i % 2 else (False, True)  # no side always first
                for real in order:
                    path = template.format(ids[kind][i % KINDS] if real else uuid4())
                    started = time.perf_counter()
                    answer = client.get(path, headers=headers)
                    times[real].append(time.perf_counter() - started)
                    assert answer.status_code == 404, answer.text
            found[kind] = (
                statistics.median(times[False]) * 1e3,
                statistics.median(times[True]) * 1e3,
            )
    return found


@workload("existence")
def existence(options: Options) -> list[Row]:
    samples = 200 if options.quick else 1500
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line a request otherwise
    rows = []
    for store, fresh in stores():
        with tempfile.TemporaryDirectory() as scratch, fresh(Path(scratch)) as url:
            settings = load_settings({"CASENET_DATABASE_URL": url, "CASENET_DATA_DIR": scratch})
            casenet = build_casenet(settings)
            try:
                found = medians(settings, casenet, samples)
            finally:
                casenet.close()
        for kind, (random, invisible) in found.items():
            ratio = random / invisible
            rows.append(
                Row(
                    workload="existence",
                    store=store,
                    figure=f"GET {ROUTES[kind].format('{id}')}: median ms, random vs invisible id",
                    value=random,
                    ceiling=invisible,
                    condition="ratio within 0.90-1.10",
                    condition_met=0.9 <= ratio <= 1.1,
                    details={"samples": samples},
                )
            )
    return rows
