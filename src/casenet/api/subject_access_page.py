"""The client's copy of their data as a page they can read and print (``Accept:
text/html`` on ``GET /v1/clients/{id}/subject-access``).

What the JSON copy holds, in the plain words of ``domain.wording`` (the consent
receipt's): what is known about them, their cases and notes, the consents they (or
someone for them) gave, what was shared without consent and why, who saw what and
when, and their referrals. After an erasure it says so first, and when: no personal
value is left to show. Self-contained like the receipt (``client_pages``): every value
escaped, no script, a Content-Security-Policy that allows only its own stylesheet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Any

from litestar import Response

from casenet.api.client_pages import BASE_CSS, content_security_policy, page_response
from casenet.application.subject_access_views import (
    SubjectAccess,
    SubjectCase,
    SubjectConsent,
    SubjectDisclosure,
    SubjectEmergencyGrant,
    SubjectReferral,
)
from casenet.domain.sections import note_section
from casenet.domain.wording import (
    LEGAL_BASIS_WORDS,
    METHOD_WORDS,
    OUTCOME_WORDS,
    STATUS_WORDS,
    as_sentence,
    in_words,
    listed,
    reader_time,
    sections_in_words,
)

_CSS = (
    BASE_CSS
    + """
.erased { background: #f4f0e0; border: 1px solid #8a6d1a; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: .3em 0; }
dt { font-weight: bold; } dd { margin: 0; } section { break-inside: avoid; }
blockquote { margin: .3em 0 .3em 1em; white-space: pre-wrap; }
"""
)
CONTENT_SECURITY_POLICY = content_security_policy(_CSS)
#: What stands in for a personal value that is not there (erased, or never given).
NOT_HELD = "(not held)"


def subject_access_page(copy: SubjectAccess) -> Response[Any]:
    """The copy as an HTML response."""
    return page_response(render_subject_access(copy), CONTENT_SECURITY_POLICY)


def _text(value: str | None) -> str:
    return escape(NOT_HELD if value is None else value)


def _when(instant: datetime) -> str:
    return escape(reader_time(instant))


def _items(lines: Iterable[str]) -> str:
    """A list of already escaped lines, or a sentence saying there is none."""
    rows = "".join(f"<li>{line}</li>" for line in lines)
    return f"<ul>{rows}</ul>" if rows else "<p class=muted>None.</p>"


def render_subject_access(copy: SubjectAccess) -> str:
    """The page's HTML."""
    agency = escape(copy.registered_by.name)
    if copy.erased and copy.erased_at is not None:
        status = (
            f"<p class='status erased'>Your personal data was erased on "
            f"{_when(copy.erased_at)}. Nobody can read it any more, not even us: what "
            "is left below are dates, agencies and the kinds of information, never "
            "what was written about you.</p>"
        )
    else:
        status = ""
    person = copy.client
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>Everything we hold about you</title><style>{_CSS}</style></head><body>"
        "<h1>Everything we hold about you</h1>"
        f"<p class=muted>A copy of all the information about you in casenet, the system "
        f"{agency} uses to share information with other agencies, made at your request "
        f"on {_when(copy.produced_at)}.</p>{status}"
        "<h2>About you</h2><dl>"
        f"<dt>Name</dt><dd>{_text(person.name)}</dd>"
        f"<dt>Date of birth</dt><dd>{_text(person.date_of_birth)}</dd>"
        f"<dt>Phone</dt><dd>{_text(person.phone)}</dd>"
        f"<dt>Address</dt><dd>{_text(person.address)}</dd></dl>"
        "<h2>Your cases</h2>"
        + ("".join(_case(c) for c in copy.cases) or "<p class=muted>None.</p>")
        + "<h2>Your consents</h2>"
        + ("".join(_consent(c) for c in copy.consents) or "<p class=muted>None.</p>")
        + "<h2>Shared without your consent</h2>"
        "<p class=muted>The law allows an agency to share without consent to protect "
        "someone, or when a court or the law requires it; each time is reviewed "
        "afterwards.</p>"
        + _items(_emergency(g) for g in copy.emergency_grants)
        + "<h2>Who saw your information</h2>"
        + _items(_disclosure(d) for d in copy.disclosures)
        + "<h2>Your referrals</h2>"
        + ("".join(_referral(r) for r in copy.referrals) or "<p class=muted>None.</p>")
        + "<h2>Copies you asked for</h2>"
        + _items(f"{_when(r.at)}" for r in copy.requests)
        + f"<h2>Questions</h2><p>Ask {agency}: they can explain anything in this copy, "
        "correct what is wrong, and tell you how to have it erased.</p>"
        f"<p class=muted>Reference <code>{copy.client_id}</code>. "
        f"Made {_when(copy.produced_at)}.</p></body></html>\n"
    )


def _case(case: SubjectCase) -> str:
    needs = ", ".join(n.replace("_", " ") for n in case.needs) or "none recorded"
    notes = _items(
        f"{_when(n.created_at)} ({escape(in_words_section(n.category))}):"
        f"<blockquote>{_text(n.text)}</blockquote>"
        for n in case.notes
    )
    steps = _items(
        f"{_when(s.at)}: {'closed' if s.status == 'closed' else 'opened again'}"
        f", because: {_text(s.reason)}"
        for s in case.history
    )
    return (
        f"<section><h3>Your case with {escape(case.owner_agency.name)}</h3><dl>"
        f"<dt>Opened</dt><dd>{_when(case.created_at)}</dd>"
        f"<dt>Now</dt><dd>{escape(case.status)}</dd>"
        f"<dt>Help needed</dt><dd>{escape(needs)}</dd></dl>"
        f"<p>Summary:</p><blockquote>{_text(case.summary)}</blockquote>"
        f"<p>Notes:</p>{notes}<p>Closed and opened again:</p>{steps}</section>"
    )


def in_words_section(category: str) -> str:
    """A note's category as the section it belongs to, in words ("health notes")."""
    return sections_in_words([note_section(category)])[0]


def _consent(consent: SubjectConsent) -> str:
    r = consent.receipt
    shares = listed(r.section_descriptions)
    withdrawer = "you withdraw it" if r.given_by == "self" else "it is withdrawn"
    until = reader_time(r.valid_until) if r.valid_until else f"{withdrawer} (no end date)"
    withdrawn = (
        f"<dt>Withdrawn</dt><dd>{_when(r.withdrawn_at)}, because: "
        f"{_text(consent.withdrawal_reason)}</dd>"
        if r.withdrawn_at is not None
        else ""
    )
    return (
        f"<section><h3>To {escape(r.grantee_agency_name)}</h3><dl>"
        f"<dt>Given by</dt><dd>{escape(r.given_by_description)}</dd>"
        f"<dt>What</dt><dd>{escape(shares)}</dd>"
        f"<dt>Why</dt><dd>{escape(as_sentence(r.purpose_description))}</dd>"
        f"<dt>Until</dt><dd>{escape(until)}</dd>"
        f"<dt>How</dt><dd>{escape(as_sentence(in_words(METHOD_WORDS, r.method)))}, on "
        f"{_when(r.recorded_at)}</dd>"
        f"<dt>Evidence</dt><dd>{_text(consent.evidence)}</dd>"
        f"<dt>Now</dt><dd>{escape(in_words(STATUS_WORDS, r.status))}</dd>{withdrawn}</dl>"
        "</section>"
    )


def _emergency(grant: SubjectEmergencyGrant) -> str:
    # The times first: a list of sections ending "notes on family" read on into "from".
    shares = listed(grant.section_descriptions)
    line = (
        f"From {_when(grant.created_at)} until {_when(grant.revoked_at or grant.expires_at)}"
        f", {escape(grant.agency.name)} could see your {escape(shares)}, "
        f"{escape(grant.basis_description)}. The reason written down: "
        f"<blockquote>{_text(grant.justification)}</blockquote>"
    )
    if grant.revoked_at is not None:
        line += f"It was stopped early, because: {_text(grant.revocation_reason)}. "
    if grant.review is None:
        line += "It has not been reviewed yet."
    else:
        line += (
            f"Reviewed on {_when(grant.review.reviewed_at)}: "
            f"{escape(grant.review.finding_description)}. {_text(grant.review.note)}"
        )
    return line


def _disclosure(disclosure: SubjectDisclosure) -> str:
    if disclosure.basis == "consent":
        why = "under your consent"
    elif disclosure.basis == "referral":
        why = "to take up a referral"
    else:
        why = f"without your consent, {in_words(LEGAL_BASIS_WORDS, disclosure.basis)}"
    shares = listed(disclosure.section_descriptions)
    return (
        f"{_when(disclosure.at)}: {escape(disclosure.agency.name)} saw your "
        f"{escape(shares)}, {escape(why)}."
    )


def _referral(referral: SubjectReferral) -> str:
    steps = _items(
        f"{_when(s.at)}: {escape(in_words(STATUS_WORDS, s.status))} by "
        f"{escape(s.agency.name)}"
        + (f", because: {_text(s.reason)}" if s.reason is not None else "")
        + (f" ({escape(in_words(OUTCOME_WORDS, s.outcome))})" if s.outcome else "")
        for s in referral.history
    )
    messages = _items(
        f"{_when(m.at)}, {escape(m.agency.name)}: <blockquote>{_text(m.text)}</blockquote>"
        for m in referral.messages
    )
    outcome = (
        f"<dt>Outcome</dt><dd>{escape(as_sentence(in_words(OUTCOME_WORDS, referral.outcome)))}"
        f": {_text(referral.outcome_note)}</dd>"
        if referral.outcome
        else ""
    )
    return (
        f"<section><h3>From {escape(referral.from_agency.name)} to "
        f"{escape(referral.to_agency.name)}</h3><dl>"
        f"<dt>For</dt><dd>{escape(referral.service_type.replace('_', ' '))}</dd>"
        f"<dt>Made</dt><dd>{_when(referral.created_at)}</dd>"
        f"<dt>Now</dt><dd>{escape(in_words(STATUS_WORDS, referral.status))}</dd>{outcome}</dl>"
        f"<p>Why:</p><blockquote>{_text(referral.reason)}</blockquote>"
        f"<p>What happened:</p>{steps}<p>Messages between the agencies:</p>{messages}"
        "</section>"
    )
