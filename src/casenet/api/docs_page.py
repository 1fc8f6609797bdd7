"""The API's documentation page at ``/schema``: Swagger UI, served by casenet itself.

A confidentiality product loads no third-party script: the page, Swagger UI's files
(vendored under ``static/swagger-ui``, see its ``VENDORED.md``) and the document all come
from this server, and a Content-Security-Policy forbids the browser to load anything
from anywhere else. Every unknown path under ``/schema`` is a problem+json 404 like
every other 404 (Litestar's own answers text/html).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import Response, Router
from litestar.datastructures import ResponseHeader
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

from casenet.api.errors import problem

if TYPE_CHECKING:
    from litestar import Request

#: Where the docs live: the page, ``/openapi.json`` and ``/static/...``.
DOCS_PATH = "/schema"
ASSETS = Path(__file__).parent / "static" / "swagger-ui"

#: Only this server, for everything: no inline script or style (Swagger UI sets styles
#: through the DOM, which a policy allows; tests/e2e/test_docs_page_in_a_browser.py
#: checks that the browser reports no violation).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API</title>
<link rel="icon" type="image/png" href="{path}/static/favicon-32x32.png">
<link rel="stylesheet" href="{path}/static/swagger-ui.css">
</head>
<body>
<noscript>This page needs JavaScript; the document itself is at
<a href="{path}/openapi.json">{path}/openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="{path}/static/swagger-ui-bundle.js"></script>
<script src="{path}/static/casenet-docs.js"></script>
</body>
</html>
"""


class SwaggerPage(OpenAPIRenderPlugin):
    """Swagger UI at ``/schema``, from casenet's own copy; the document is fetched from
    ``/schema/openapi.json`` by the page, so the page itself has no inline script."""

    def __init__(self) -> None:
        super().__init__(path="/")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = str(openapi_schema["info"]["title"])
        return _PAGE.format(title=title, path=DOCS_PATH).encode()


def not_found_as_problem(response: Response[Any]) -> Response[Any]:
    """Litestar answers an unknown schema path with an HTML 404; ours is problem+json."""
    if response.status_code == 404:
        return problem(404, "no such resource")
    return response


def docs_router() -> Router:
    """The router Litestar's OpenAPI plugin fills with the page and ``/openapi.json``;
    it brings the assets, the policy and the 404s along."""
    assets = create_static_files_router(
        path="/static",
        directories=[ASSETS],
        include_in_schema=False,
        # The files change only with casenet's version (a restart).
        cache_control=None,
        name="docs-assets",
    )
    return Router(
        DOCS_PATH,
        route_handlers=[assets],
        include_in_schema=False,
        after_request=not_found_as_problem,
        response_headers=[
            ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
            ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
            ResponseHeader(name="Referrer-Policy", value="no-referrer"),
        ],
    )


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """The page first (the default, at ``/schema``), then the document."""
    return [SwaggerPage(), JsonRenderPlugin()]
