"""HTTP helpers shared by the API layers: one implementation for in-process and live servers.

``tests/api`` serves the application in process (Litestar's ``TestClient``, an
``httpx.Client`` whose base URL is the app); ``tests/e2e`` starts real ``casenet serve``
processes and talks to them with a plain ``httpx.Client``. Both hand these helpers a
:class:`Server`: an ``httpx.Client`` and the URL prefix its requests take (``""`` for the
in-process client, which has the app as its base URL).

* :class:`Api`: a client with one bearer token; ``operator.agency(...)`` registers an
  agency, ``operator.worker(agency_id, role)`` returns an :class:`Api` for a new worker;
* :func:`routes_from`: every operation of an OpenAPI document whose path has an id
  parameter, as :class:`Route` objects that know a valid body for their operation;
* :class:`Probe`: calls a route with real ids and with random ones, and records where
  the answers differ (status, body byte for byte, headers but the volatile ones).

Imported as ``tests.support.http``: the repository root is on ``sys.path`` (pyproject's
``pythonpath``), and ``tests`` is a namespace package (it has no ``__init__.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import uuid4

import httpx
import pytest


class Server(Protocol):
    """Where an :class:`Api` sends its requests."""

    @property
    def http(self) -> httpx.Client: ...

    @property
    def url(self) -> str: ...


# --- a client ------------------------------------------------------------------------


class Api:
    """A client of ``server`` with one bearer token (or none)."""

    def __init__(self, server: Server, token: str | None, **identity: Any) -> None:
        self.server = server
        self.token = token
        self.identity = identity  # agency_id, worker_id, role, label

    @property
    def agency_id(self) -> str:
        return str(self.identity["agency_id"])

    @property
    def worker_id(self) -> str:
        return str(self.identity["worker_id"])

    @property
    def role(self) -> str:
        return str(self.identity.get("role", "operator"))

    def __repr__(self) -> str:
        return f"<{self.identity.get('label', self.role)}>"

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        all_headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        all_headers.update(headers or {})
        if json_body is not None:
            kwargs["json"] = json_body
        return self.server.http.request(
            method, self.server.url + path, headers=all_headers, **kwargs
        )

    def expect(self, status: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (
            f"{self!r} {method} {path}: expected {status}, got {response.status_code}: "
            f"{response.text[:500]}"
        )
        return response

    def get(self, path: str, status: int = 200, **kwargs: Any) -> Any:
        return self.expect(status, "GET", path, **kwargs).json()

    def post(self, path: str, body: Any = None, status: int = 201, **kwargs: Any) -> Any:
        return self.expect(status, "POST", path, json_body=body, **kwargs).json()

    def walk(self, path: str, limit: int = 1, *, follow: bool = False) -> list[Any]:
        """Every item of a list, page by page (``limit`` a page), following ``next``.
        ``follow``: a list followed for ever (the feed): its end is the first empty page,
        and every page has a ``next``."""
        items: list[Any] = []
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}limit={limit}"
        for _ in range(10_000):
            page = self.get(url)
            assert len(page["items"]) <= limit
            items.extend(page["items"])
            if follow:
                assert page["next"] is not None, f"a followed list with no next: {url}"
                if not page["items"]:
                    return items
            elif page["next"] is None:
                return items
            assert page["items"], f"an empty page with a next cursor: {url}"
            url = f"{path}{separator}limit={limit}&after={page['next']}"
        raise AssertionError(f"{path}: the cursor never ends")

    # operator's helpers

    def agency(self, name: str, kind: str = "ngo", **extra: Any) -> dict[str, Any]:
        agency: dict[str, Any] = self.post("/v1/agencies", {"name": name, "kind": kind, **extra})
        return agency

    def worker(self, agency: dict[str, Any] | str, role: str, name: str = "") -> Api:
        agency_id = agency if isinstance(agency, str) else agency["id"]
        created = self.post(
            f"/v1/agencies/{agency_id}/workers", {"name": name or f"{role} worker", "role": role}
        )
        label = f"{agency['name'] if isinstance(agency, dict) else agency_id} {role}"
        return Api(
            self.server,
            created["token"],
            agency_id=agency_id,
            worker_id=created["id"],
            role=role,
            label=label,
        )


# --- routes with id path parameters, from the served OpenAPI document ---------------

#: The path parameters that name a resource by id.
ID_PARAMETERS = frozenset(
    {
        "case_id",
        "consent_id",
        "referral_id",
        "client_id",
        "agency_id",
        "worker_id",
        "note_id",
        "grant_id",
        "webhook_id",
        "partnership_id",
        "appeal_id",
        "service_id",
    }
)


def request_body(operation_id: str, agency_id: str) -> dict[str, Any] | None:
    """A body the operation accepts (so that what is tested is authorization, not body
    validation); ``agency_id`` is a real agency where the body names one. KeyError for an
    operation this table does not know."""
    reason = {"reason": "The client asked for it."}
    return {
        # agencies
        "add_worker": {"name": "Eve Intruder", "role": "caseworker"},
        "list_workers": None,
        "revoke_worker": None,
        "replace_services": {
            "services": [{"type": "housing", "description": "Emergency beds", "area": "north"}]
        },
        "get_agency": None,
        "hsds_get_organization": None,
        "hsds_get_service": None,
        # cases
        "get_case": None,
        "add_note": {"text": "Seen at the drop-in today.", "category": "general"},
        "close_case": reason,
        "reopen_case": reason,
        "get_case_access": None,
        "grant_consent": {
            "grantee_agency_id": agency_id,
            "sections": ["identity", "notes.health"],
            "purpose": "referral",
            "method": "verbal",
        },
        "list_case_consents": None,
        # consents
        "get_consent": None,
        "withdraw_consent": reason,
        "get_consent_receipt": None,
        # referrals
        "get_referral": None,
        "accept_referral": None,
        "reject_referral": reason,
        "start_referral": None,
        "hold_referral": reason,
        "complete_referral": {"outcome": "got_help"},
        "fail_referral": reason,
        "cancel_referral": reason,
        "post_referral_message": {"text": "Any news?"},
        "list_referral_messages": None,
        # clients
        "erase_client": None,
        "get_subject_access": None,
        # emergency grants
        "create_emergency_grant": {
            "grantee_agency_id": agency_id,
            "sections": ["identity", "summary"],
            "basis": "safeguarding",
            "justification": "Bruises seen on the child's arms.",
            "minutes": 60,
        },
        "list_case_emergency_grants": None,
        "get_emergency_grant": None,
        "revoke_emergency_grant": reason,
        "review_emergency_grant": {"finding": "justified", "note": "Right call."},
        # webhooks
        "remove_webhook": None,
        "list_webhook_deliveries": None,
        # the network
        "get_partnership": None,
        "accept_partnership": None,
        "decline_partnership": None,
        "end_partnership": None,
        "get_appeal": None,
        "answer_appeal": {"answer": "can_help", "text": "We have two donors."},
        "relay_appeal": None,
        "close_appeal": {"reason": "Enough donors came forward."},
        # FHIR R5
        "fhir_read_consent": None,
        "fhir_read_service_request": None,
        "fhir_read_task": None,
        "fhir_update_task": {"resourceType": "Task", "status": "accepted", "intent": "order"},
        "fhir_read_organization": None,
        "fhir_read_healthcare_service": None,
        "fhir_read_bundle": None,
    }[operation_id]


@dataclass(frozen=True)
class Route:
    """One operation on a path with id parameters."""

    method: str
    template: str
    operation_id: str
    parameters: tuple[str, ...]
    has_body: bool
    headers: tuple[str, ...] = ()  # the header parameters it documents

    def path(self, ids: dict[str, str]) -> str:
        path = self.template
        for name in self.parameters:
            path = path.replace("{" + name + "}", ids[name])
        return path

    def random_path(self) -> str:
        return self.path({name: str(uuid4()) for name in self.parameters})

    def body(self, agency_id: str) -> dict[str, Any] | None:
        return request_body(self.operation_id, agency_id)

    def call(
        self, api: Api, path: str, agency_id: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = self.body(agency_id)
        return api.request(self.method, path, json_body=body, headers=headers)

    def header_variants(self) -> list[dict[str, str]]:
        """No headers, then each documented header with a plausible value (a fresh
        Idempotency-Key each time: a key names one request)."""
        variants: list[dict[str, str]] = [{}]
        if "If-Match" in self.headers:
            variants += [{"If-Match": '"1"'}, {"If-Match": '"999"'}]
        if "Idempotency-Key" in self.headers:
            variants.append({"Idempotency-Key": "fresh"})
        return variants

    def __str__(self) -> str:
        return f"{self.method} {self.template} ({self.operation_id})"


#: Headers that differ between any two answers, whatever was asked: when, and which request.
VOLATILE_HEADERS = frozenset({"date", "x-request-id", "request-id"})


def comparable_headers(response: httpx.Response) -> list[tuple[str, str]]:
    """Every header of ``response`` but the volatile ones, names lowercased, in order."""
    return [
        (name.lower(), value)
        for name, value in response.headers.multi_items()
        if name.lower() not in VOLATILE_HEADERS
    ]


@dataclass
class Probe:
    """Calls a route with real ids and with random ones: the answers must not differ."""

    failures: list[str] = field(default_factory=list)

    def indistinguishable(
        self,
        route: Route,
        api: Api,
        ids: dict[str, str],
        agency_id: str,
        headers: dict[str, str] | None = None,
    ) -> tuple[httpx.Response, httpx.Response]:
        def fresh() -> dict[str, str]:
            return {k: (str(uuid4()) if v == "fresh" else v) for k, v in (headers or {}).items()}

        real = route.call(api, route.path(ids), agency_id, fresh())
        random = route.call(api, route.random_path(), agency_id, fresh())
        self.same(f"{api!r} {route} {headers or ''}", real, random)
        return real, random

    def same(self, where: str, real: httpx.Response, random: httpx.Response) -> None:
        """Record a failure unless ``real`` is a refusal identical to ``random``: status,
        body byte for byte, and every header but the volatile ones."""
        if 200 <= real.status_code < 300:
            self.failures.append(f"{where}: {real.status_code} {real.text[:200]}")
        elif (real.status_code, real.content) != (random.status_code, random.content):
            self.failures.append(
                f"{where}: real ids {real.status_code} {real.text[:200]} "
                f"but random ids {random.status_code} {random.text[:200]}"
            )
        elif comparable_headers(real) != comparable_headers(random):
            self.failures.append(
                f"{where}: headers differ: {comparable_headers(real)} "
                f"vs {comparable_headers(random)}"
            )

    def check(self) -> None:
        assert not self.failures, "\n".join(self.failures)


def routes_from(openapi: dict[str, Any]) -> list[Route]:
    routes = []
    for template, operations in sorted(openapi["paths"].items()):
        for method, operation in sorted(operations.items()):
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            parameters = operation.get("parameters", [])
            path_ids = tuple(p["name"] for p in parameters if p["in"] == "path")
            if not path_ids:
                continue
            unknown = set(path_ids) - ID_PARAMETERS
            assert not unknown, f"{method} {template}: unknown path parameters {unknown}"
            required_queries = [
                p["name"] for p in parameters if p["in"] == "query" and p.get("required")
            ]
            assert not required_queries, f"{template}: required {required_queries}"
            route = Route(
                method=method.upper(),
                template=template,
                operation_id=operation["operationId"],
                parameters=path_ids,
                has_body="requestBody" in operation,
                headers=tuple(p["name"] for p in parameters if p["in"] == "header"),
            )
            try:
                body = route.body(str(uuid4()))
            except KeyError:
                pytest.fail(f"no request body in the table for {route}", pytrace=False)
            assert (body is not None) == route.has_body, f"the body table is wrong for {route}"
            routes.append(route)
    return routes
