"""``/schema``: the docs page and its assets come from casenet itself, under a policy that
lets the browser load nothing from anywhere else; everything else under ``/schema`` is a
404 like every other (problem+json, the same bytes). No token is needed for any of it.

That the page renders in a browser, with no request leaving the server, is
tests/e2e/test_docs_page_in_a_browser.py.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import TestClient

from casenet.api.docs_page import ASSETS


@pytest.fixture(scope="module")
def client(app_server: Any) -> TestClient[Any]:
    http: TestClient[Any] = app_server.http
    return http


def test_the_page_is_html_under_a_policy_of_this_server_only(client: TestClient[Any]) -> None:
    page = client.get("/schema")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline or foreign script
    assert "unsafe-inline" not in policy
    assert "http" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    # Every script, style and icon the page names is on this server and served.
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    assert all(s.startswith("/schema/") for s in sources)
    assert "<script>" not in page.text  # nothing inline: the policy would refuse it
    for source in sources:
        assert client.get(source).status_code == 200, source


def test_the_assets_are_the_vendored_files(client: TestClient[Any]) -> None:
    for name, media_type in [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("casenet-docs.js", "text/javascript"),
    ]:
        answer = client.get(f"/schema/static/{name}")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith(media_type)
        assert answer.content == (ASSETS / name).read_bytes()
    assert (ASSETS / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_the_page_and_the_document_need_no_token(client: TestClient[Any]) -> None:
    assert "authorization" not in {k.lower() for k in client.headers}
    assert client.get("/schema").status_code == 200
    assert client.get("/schema/openapi.json").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/schema/swagger",
        "/schema/redoc",
        "/schema/elements",
        "/schema/openapi.yaml",
        "/schema/static/nothing.js",
        "/schema/static/../docs_page.py",
        "/schema/static/%2e%2e/docs_page.py",
    ],
)
def test_any_other_path_under_schema_is_the_usual_404(client: TestClient[Any], path: str) -> None:
    usual = client.get(f"/v1/nothing-{uuid4()}")
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.content == usual.content
