"""Property-based conformance: the running API against the OpenAPI document it serves.

Schemathesis loads ``/schema/openapi.json`` from a real application (``create_app`` over a
fresh store, SQLite or PostgreSQL, seeded with ``casenet demo``'s network) and, for every
operation, sends requests generated from the document (valid ones, and invalid ones that
break it) with a real bearer token: the owner agency's caseworker's, the receiving
agency's caseworker's (the consent's grantee, the referral's receiver), or the operator's.
Half of the time a path id is swapped for one that exists (the demo's case, consent,
referral, client, agencies, a worker), so the routes past the 404 are reached too.

Every response must pass:

* ``not_a_server_error``: never a 5xx;
* ``status_code_conformance``: the status is one the operation documents;
* ``content_type_conformance``: the media type is the one documented for that status;
* ``response_schema_conformance``: the body validates against the documented schema.

The run is bounded (``MAX_EXAMPLES`` per operation, generation mode and caller) and
repeatable (``derandomize``: the same examples every run). Failures are collected across
all operations and reported together: the check, the response and a curl command that
reproduces it (the first example per operation, mode and check).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402
from schemathesis.python import asgi as schemathesis_asgi  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from casenet.api.app import create_app  # noqa: E402
from casenet.application import Casenet  # noqa: E402
from casenet.bootstrap import build_casenet  # noqa: E402
from casenet.cli import seed_demo  # noqa: E402
from casenet.settings import Settings, load_settings  # noqa: E402

#: Examples per operation and generation mode (positive, negative), per caller: most for
#: the owner, who reaches the most code. Keep each store's run (every caller) about a
#: minute; generating the examples costs more than answering them.
MAX_EXAMPLES = {"owner_caseworker": 10, "grantee_caseworker": 5, "operator": 5}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
#: Operations that destroy what the others need (the client's data, a worker's token):
#: run last, so that the rest of the run still meets the demo network intact.
LAST = ("revoke_worker", "erase_client")


@dataclass
class Seeded:
    """The demo network: tokens and the ids that exist."""

    operator_token: str
    tokens: dict[str, str]  # worker name -> token
    ids: dict[str, list[str]]  # path parameter name -> existing ids


@dataclass
class Report:
    examples: int = 0
    operations: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # key -> first message


def seed(casenet: Casenet, settings: Settings) -> Seeded:
    lines = seed_demo(casenet)
    tokens: dict[str, str] = {}
    for line in lines[1:]:
        # f"{agency.name:<28} {role:<10} {name:<15} {token}"
        if line.startswith("case "):
            break
        tokens[line[40:56].strip()] = line.rsplit(" ", 1)[1]
    summary = next(line for line in lines if line.startswith("case "))
    case_id, client_id, consent_id, referral_id = re.findall(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", summary
    )
    actors = {name: casenet.directory.authenticate(token) for name, token in tokens.items()}
    assert all(actors.values()), "every demo token authenticates"
    agencies = sorted({str(a.agency_id) for a in actors.values() if a is not None})
    # Never the callers' own workers: revoking them would end the run early.
    workers = [str(actors["Sid School"].worker_id)] if actors["Sid School"] else []
    return Seeded(
        operator_token=settings.operator_token,
        tokens=tokens,
        ids={
            "case_id": [case_id],
            "client_id": [client_id],
            "consent_id": [consent_id],
            "referral_id": [referral_id],
            "agency_id": agencies,
            "worker_id": workers,
        },
    )


@dataclass
class Served:
    app: Any
    seeded: Seeded


@pytest.fixture
def served(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Served]:
    """The real application over a fresh, seeded store (``database_url``: either store)."""
    # Schemathesis writes crash reports under ./.schemathesis: keep them in the test's
    # own directory, so a run leaves the work tree as it found it.
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        {
            "CASENET_DATABASE_URL": database_url,
            "CASENET_DATA_DIR": str(tmp_path / "data"),
            "CASENET_ENV": "development",
        }
    )
    casenet = build_casenet(settings)
    try:
        seeded = seed(casenet, settings)
        app = create_app(settings, casenet)
        yield Served(app, seeded)
        # Schemathesis keeps an application's lifespan running for the process: stop it
        # (and the projection runner it started) before the store closes.
        schemathesis_asgi.shutdown_lifespans()
    finally:
        casenet.close()


def operations_of(schema: Any) -> list[Any]:
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(
        operations,
        key=lambda op: (op.definition.raw.get("operationId") in LAST, op.label),
    )


def exercise(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    ids: dict[str, list[str]],
    report: Report,
    max_examples: int,
) -> None:
    """Up to ``max_examples`` generated requests to one operation; failures into ``report``."""
    strategy = operation.as_strategy(generation_mode=mode)
    known = {name for name in ids if ids[name]}

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        for name in list(case.path_parameters or {}):
            if name in known and data.draw(st.booleans(), label=f"existing {name}"):
                case.path_parameters[name] = data.draw(st.sampled_from(ids[name]))
        report.examples += 1
        try:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{operation.label} [{mode.value}] {failure.title}"
                report.failures.setdefault(key, str(group)[:3000])
            return
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1

    try:
        run()
    except Unsatisfiable:
        # Nothing to break (no parameters, no body, no token required): no negative case.
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request"


def conformance(served: Served, caller: str) -> Report:
    app = served.app
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    headers = {"Authorization": f"Bearer {TOKENS[caller](served.seeded)}"}
    report = Report()
    for operation in operations_of(schema):
        report.operations += 1
        for mode in MODES:
            exercise(operation, mode, headers, served.seeded.ids, report, MAX_EXAMPLES[caller])
    return report


def assert_conforms(report: Report, started: float) -> None:
    seconds = time.monotonic() - started
    print(
        f"schemathesis: {report.operations} operations, {report.examples} requests in "
        f"{seconds:.1f} s; statuses {dict(sorted(report.statuses.items()))}; "
        f"{len(report.failures)} failures"
    )
    assert report.operations >= 35, "the document lost operations"
    assert report.examples >= report.operations * len(MODES)
    assert not report.failures, "\n\n".join(
        f"{key}\n{message}" for key, message in sorted(report.failures.items())
    )


TOKENS: dict[str, Callable[[Seeded], str]] = {
    "owner_caseworker": lambda seeded: seeded.tokens["Ana Welfare"],
    # The receiving agency: the shared read (a disclosure) and the referral's lifecycle.
    "grantee_caseworker": lambda seeded: seeded.tokens["Hal Hospital"],
    "operator": lambda seeded: seeded.operator_token,
}


@pytest.mark.slow
@pytest.mark.parametrize("caller", list(TOKENS))
def test_every_operation_conforms_to_the_served_openapi_document(
    served: Served, caller: str
) -> None:
    """Zero server errors, zero undocumented statuses, media types or bodies."""
    started = time.monotonic()
    report = conformance(served, caller)
    assert_conforms(report, started)


def test_the_seed_gives_every_path_parameter_an_existing_id(served: Served) -> None:
    """The swap of path ids reaches past the 404 only if the ids are real."""
    ids = served.seeded.ids
    assert all(UUID(value) for values in ids.values() for value in values)
    assert {"case_id", "client_id", "consent_id", "referral_id", "agency_id", "worker_id"} <= {
        name for name, values in ids.items() if values
    }
