"""What the pages casenet hands to a client share: one look, one kind of response.

A page for the client (the consent receipt, the subject-access copy) is one
self-contained HTML document: its stylesheet inline and allowed by its hash in the
Content-Security-Policy, which allows nothing else (no script, no external asset); the
page is asked for with ``Accept: text/html`` on a route whose default answer is JSON.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.enums import MediaType
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Schema

from casenet.api.operation_docs import DocumentedOperation

#: The look every client page starts from (a page may add rules of its own).
BASE_CSS = """
body { font: 17px/1.55 system-ui, sans-serif; max-width: 38em; margin: 2em auto; padding: 0 1em;
  color: #111; }
h1 { font-size: 1.6em; margin-bottom: .1em; } h2 { font-size: 1.1em; margin: 1.3em 0 .3em; }
.status { padding: .6em .9em; border-radius: 4px; font-weight: bold; margin: 1em 0; }
.active { background: #e6f4e6; border: 1px solid #2b7a2b; }
.withdrawn, .expired { background: #f7e8e8; border: 1px solid #a32020; }
.muted { color: #444; font-size: .9em; } ul { padding-left: 1.3em; margin: .2em 0; }
code { font-size: .85em; overflow-wrap: anywhere; }
@media print { body { margin: 0; font-size: 12pt; } .status { border-width: 2px; } }
"""


def content_security_policy(css: str) -> str:
    """The page's only allowance: its own stylesheet, by hash."""
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """Whether the caller asked for the page rather than JSON (JSON when both do)."""
    wanted = request.accept.best_match([MediaType.JSON, MediaType.HTML], MediaType.JSON)
    return wanted == MediaType.HTML


def page_response(html: str, policy: str) -> Response[Any]:
    """``html`` as the answer, under ``policy``; never cached by a shared cache's key
    alone (the JSON at the same address differs)."""
    return Response(
        html,
        media_type=MediaType.HTML,
        headers={
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Vary": "Accept",
        },
    )


@dataclass
class PageOperation(DocumentedOperation):
    """An operation whose 200 is JSON or, for ``Accept: text/html``, a page (Litestar
    documents one media type per response): who may call it and its examples as for
    every operation."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.description = "JSON, or a page for the client for `Accept: text/html`."
            ok.content[MediaType.HTML.value] = OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING, description="A self-contained page")
            )
        super().__post_init__()
