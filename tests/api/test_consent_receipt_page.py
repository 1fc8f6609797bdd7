"""The consent receipt as a page for the client (``Accept: text/html``), on each store.

JSON stays the default (no Accept, ``*/*``, ``application/json``); a browser's Accept
gets a self-contained page in the plain words the audit report uses, every value
escaped, no script, a Content-Security-Policy that allows only its own stylesheet. An
agency that may not see the consent gets the 404 a random id gets, byte for byte,
whatever it accepts.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from html import escape, unescape
from typing import Any

import pytest
from tests.support.http import Api, Probe, Route

from casenet.api.receipt_page import CONTENT_SECURITY_POLICY
from casenet.domain.wording import HOW_TO_WITHDRAW, reader_time

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def story(operator: Api) -> dict[str, Any]:
    """A case of an NGO, and two consents: one to an agency named like a script, with an
    end date; one to a hospital, withdrawn."""
    ngo = operator.agency("Harbour & Co <NGO>")
    evil = operator.agency(EVIL)
    hospital = operator.agency("City Hospital", "hospital")
    ana = operator.worker(ngo, "caseworker", name="Ana <b>Welfare</b>")
    hal = operator.worker(hospital, "caseworker", name="Hal Hospital")
    case = ana.post("/v1/cases", {"client": {"name": "Ida Canary"}, "summary": "x"})
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    to_evil = ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": evil["id"],
            "sections": ["notes.mental_health", "identity"],
            "purpose": "care_coordination",
            "method": "verbal",
            "valid_until": until.isoformat(),
        },
    )
    to_hospital = ana.post(
        f"/v1/cases/{case['id']}/consents",
        {
            "grantee_agency_id": hospital["id"],
            "sections": ["needs"],
            "purpose": "referral",
            "method": "written",
        },
    )
    ana.post(f"/v1/consents/{to_hospital['id']}/withdraw", {"reason": "changed mind"}, status=200)
    return {"ana": ana, "hal": hal, "to_evil": to_evil, "to_hospital": to_hospital, "until": until}


def page(api: Api, consent_id: str, accept: str = BROWSER) -> tuple[str, Any]:
    response = api.expect(
        200, "GET", f"/v1/consents/{consent_id}/receipt", headers={"Accept": accept}
    )
    assert response.headers["content-type"].startswith("text/html")
    return response.text, response.headers


def visible_text(html: str) -> str:
    """What a reader sees: the text without tags, the style sheet or attributes."""
    body = html.split("<body>", 1)[1]
    return unescape(re.sub(r"<[^>]+>", " ", body))


def test_json_stays_the_default_and_the_answer_to_application_json(
    story: dict[str, Any],
) -> None:
    ana, consent = story["ana"], story["to_evil"]
    for accept in (None, "*/*", "application/json", "application/json, text/html;q=0.5"):
        headers = {} if accept is None else {"Accept": accept}
        response = ana.expect(200, "GET", f"/v1/consents/{consent['id']}/receipt", headers=headers)
        assert response.headers["content-type"].startswith("application/json"), accept
        receipt = response.json()
        assert receipt["grantee_agency_name"] == EVIL
        # The JSON's descriptions are the page's words, in the consent's section order.
        assert receipt["section_descriptions"] == ["name and date of birth", "mental health notes"]


def test_the_page_says_everything_in_plain_words(story: dict[str, Any]) -> None:
    html, headers = page(story["ana"], story["to_evil"]["id"])
    text = " ".join(visible_text(html).split())
    assert "This consent is in force" in text
    assert f"Who may see it {EVIL}" in text  # the agency by its name, shown as text
    assert "name and date of birth" in text
    assert "mental health notes" in text
    assert "notes.mental_health" not in text
    assert "care_coordination" not in text
    assert "To coordinate care between the agencies involved." in text
    assert f"Until {reader_time(story['until'])}, unless you withdraw it before." in text
    assert re.search(r"\d{4}-\d\d-\d\dT", text) is None  # no ISO instant is shown
    assert "Given out loud and noted by the worker, on " in text
    assert "recorded by Ana <b>Welfare</b> of Harbour & Co <NGO>." in text
    assert "Who to contact Harbour & Co <NGO>, the agency that recorded your consent" in text
    assert " ".join(HOW_TO_WITHDRAW.split()) in text
    assert story["to_evil"]["id"] in text
    assert "Ida Canary" not in html  # the client's own data is not on the receipt
    assert headers["vary"] == "Accept"


def test_the_page_is_escaped_self_contained_and_locked_down(story: dict[str, Any]) -> None:
    html, headers = page(story["ana"], story["to_evil"]["id"])
    lowered = html.lower()
    assert escape(EVIL) in html
    assert "<script" not in lowered
    assert "<b>welfare" not in lowered
    for asset in ("http://", "https://", " src=", "<link", "@import", "url("):
        assert asset not in lowered, asset
    policy = headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    # The only thing the policy allows is the page's own style sheet, by its hash.
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    assert headers["x-content-type-options"] == "nosniff"


def test_a_withdrawn_consent_says_so(story: dict[str, Any]) -> None:
    html, _ = page(story["ana"], story["to_hospital"]["id"], accept="text/html")
    text = " ".join(visible_text(html).split())
    assert "You withdrew this consent on " in text
    assert "Nothing is shared under it any more." in text
    assert "This consent is in force" not in text
    # In the past tense, with nothing left to withdraw.
    assert "Who it was given to City Hospital What it covered the kinds of help needed" in text
    assert "How to withdraw it" not in text
    assert "It had no end date." in text


def test_an_agency_that_may_not_see_it_gets_a_random_ids_404_whatever_it_accepts(
    story: dict[str, Any], id_routes: list[Route], probe: Probe
) -> None:
    [route] = [r for r in id_routes if r.method == "GET" and r.template.endswith("/receipt")]
    ids = {"consent_id": story["to_evil"]["id"]}
    hal: Api = story["hal"]
    for accept in (BROWSER, "text/html", "application/json", "*/*"):
        real, _random = probe.indistinguishable(route, hal, ids, hal.agency_id, {"Accept": accept})
        assert real.status_code == 404
        assert real.headers["content-type"].startswith("application/problem+json")
    probe.check()


def test_the_openapi_document_lists_both_media_types(openapi: dict[str, Any]) -> None:
    ok = openapi["paths"]["/v1/consents/{consent_id}/receipt"]["get"]["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/html"}
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/ConsentReceipt")
