"""The docs page, loaded by a real browser from a real server, renders every operation
and makes the browser load nothing from any other host.

Debian's chromium, headless, with every host name but 127.0.0.1 unresolvable (so a
regression cannot reach the internet from a test) and a NetLog of every request it
made: the page's requests (those made for the server's site: chromium's own update and
account checks are made for no site) all go to the server. The page's
Content-Security-Policy would block a foreign load before it reached the network, so the
browser's console must also report no CSP violation: the page tried none.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.e2e.conftest import LiveServer
from tests.support.browser import QUIET, chromium


def load(url: str, tmp_path: Path) -> tuple[str, list[dict[str, Any]], str]:
    """Load ``url`` until the page is idle: the DOM after its scripts ran, the requests
    of the NetLog (each one's params), and the browser's log."""
    net_log = tmp_path / "net.json"
    answer = subprocess.run(
        [
            chromium(),
            *QUIET,
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            f"--log-net-log={net_log}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    log = json.loads(net_log.read_text())
    starts = {
        number
        for name, number in log["constants"]["logEventTypes"].items()
        if name == "URL_REQUEST_START_JOB"
    }
    requests = [e["params"] for e in log["events"] if e["type"] in starts and "params" in e]
    return answer.stdout, requests, answer.stderr


def test_the_docs_page_renders_every_operation_from_the_server_alone(
    live_server: LiveServer, tmp_path: Path
) -> None:
    document = live_server.http.get(f"{live_server.url}/schema/openapi.json").json()
    paths = set(document["paths"])

    dom, requests, browser_log = load(f"{live_server.url}/schema", tmp_path)

    # Swagger UI ran: every path of the document is an operation block in the DOM.
    rendered = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert rendered == paths
    assert "Add a worker; the token is shown once" in dom
    # The page's own requests: to the server, and nowhere else.
    server = urlsplit(live_server.url).netloc
    page = [r for r in requests if "127.0.0.1" in r.get("network_isolation_key", "")]
    assert {urlsplit(r["url"]).path for r in page} >= {
        "/schema",
        "/schema/openapi.json",
        "/schema/static/swagger-ui-bundle.js",
        "/schema/static/swagger-ui.css",
        "/schema/static/casenet-docs.js",
    }
    assert {urlsplit(r["url"]).netloc for r in page} == {server}
    # Nor did it try and get blocked by its policy.
    console = [line for line in browser_log.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if "Content Security Policy" in line], console
