"""The consent receipt as a page for the client: ``Accept: text/html`` on the receipt.

What the JSON receipt says, in the words of ``domain.wording`` (the audit report's
too): who may see what, why, until when, how the consent was recorded and by whom, its
status, whom to contact, and how to withdraw it. One self-contained page: inline CSS
(allowed by its hash in the Content-Security-Policy, which allows nothing else), no
script, no external asset, every value escaped. It prints on one sheet.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from litestar import Response

from casenet.api.client_pages import (
    BASE_CSS,
    PageOperation,
    content_security_policy,
    page_response,
)
from casenet.application.receipts import ConsentReceipt
from casenet.domain.wording import (
    METHOD_WORDS,
    PURPOSE_WORDS,
    as_sentence,
    in_words,
    reader_time,
    sections_in_words,
)

#: The page's only allowance: its own stylesheet, by hash.
CONTENT_SECURITY_POLICY = content_security_policy(BASE_CSS)
_CSS = BASE_CSS


def receipt_page(
    receipt: ConsentReceipt, *, recorded_by: str, worker: str | None, now: datetime
) -> Response[Any]:
    """The receipt as an HTML response; ``recorded_by``: the name of the agency that
    recorded the consent, ``worker``: the name of its worker who did (if known)."""
    html = render_receipt(receipt, recorded_by=recorded_by, worker=worker, now=now)
    return page_response(html, CONTENT_SECURITY_POLICY)


def render_receipt(
    receipt: ConsentReceipt, *, recorded_by: str, worker: str | None, now: datetime
) -> str:
    """The page's HTML."""
    grantee = escape(receipt.grantee_agency_name)
    agency = escape(recorded_by)
    shares = "".join(f"<li>{escape(words)}</li>" for words in sections_in_words(receipt.sections))
    # A consent no longer in force reads in the past, and has nothing left to withdraw.
    active = receipt.status == "active"
    # Given by a parent, guardian or representative: the client did not agree it
    # themself, and it is not theirs alone to withdraw.
    own = receipt.given_by == "self"
    agreed = "you" if own else f"{escape(receipt.given_by_description)},"
    withdrawn = "you withdraw it" if own else "it is withdrawn"
    if receipt.valid_until is None:
        until = f"Until {withdrawn}: it has no end date." if active else "It had no end date."
    elif active:
        until = f"Until {reader_time(receipt.valid_until)}, unless {withdrawn} before."
    else:
        until = f"It was to last until {reader_time(receipt.valid_until)}."
    by = f"{escape(worker)} of {agency}" if worker else agency
    withdraw = (
        f"<h2>How to withdraw it</h2><p>{escape(receipt.how_to_withdraw)}</p>"
        if active
        else "<h2>Giving a new consent</h2><p>If you want something shared again, ask "
        "the agency that recorded this one: it will record a new consent with you.</p>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>Your consent receipt</title><style>{_CSS}</style></head><body>"
        "<h1>Your consent receipt</h1>"
        f"<p class=muted>A record of what {agreed} agreed may be shared about you. "
        "Keep it.</p>"
        f"{_status(receipt)}"
        f"<h2>{'Who may see it' if active else 'Who it was given to'}</h2><p>{grantee}</p>"
        f"<h2>{'What they may see' if active else 'What it covered'}</h2><ul>{shares}</ul>"
        + (
            "<p class=muted>Nothing else about you is shared under this consent.</p>"
            if active
            else ""
        )
        + f"<h2>Why</h2><p>{escape(as_sentence(in_words(PURPOSE_WORDS, receipt.purpose)))}.</p>"
        f"<h2>Until when</h2><p>{escape(until)}</p>"
        "<h2>Who gave it</h2>"
        f"<p>{escape(_giver(receipt))}.</p>"
        "<h2>How it was recorded</h2>"
        f"<p>{escape(as_sentence(in_words(METHOD_WORDS, receipt.method)))}, on "
        f"{escape(reader_time(receipt.recorded_at))}, recorded by {by}.</p>"
        f"<h2>Who to contact</h2><p>{agency}, the agency that recorded your consent"
        + (f" ({escape(worker)} recorded it)" if worker else "")
        + ". Ask them for any question about what is shared, with whom, and who saw it.</p>"
        f"{withdraw}"
        f"<p class=muted>Receipt reference <code>{receipt.consent_id}</code>. "
        f"Made {escape(reader_time(now))}.</p></body></html>\n"
    )


def _giver(receipt: ConsentReceipt) -> str:
    """Who gave the consent, to start a sentence: a name is shown as it was written."""
    words = receipt.given_by_description
    return as_sentence(words) if receipt.given_by == "self" else words


def _status(receipt: ConsentReceipt) -> str:
    if receipt.status == "withdrawn" and receipt.withdrawn_at is not None:
        who = "You withdrew this consent" if receipt.given_by == "self" else "It was withdrawn"
        words = f"{who} on {reader_time(receipt.withdrawn_at)}."
        words += " Nothing is shared under it any more."
    elif receipt.status == "expired" and receipt.valid_until is not None:
        words = f"This consent ended on {reader_time(receipt.valid_until)}."
        words += " Nothing is shared under it any more."
    else:
        words = "This consent is in force: what it covers may be shared."
    return f"<p class='status {escape(receipt.status)}'>{escape(words)}</p>"


#: The receipt's operation: its 200 is the JSON receipt or this page.
ReceiptOperation = PageOperation
