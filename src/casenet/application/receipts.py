"""The consent receipt: what a client consented to, in words they can keep.

One receipt for ``GET /v1/consents/{id}/receipt`` (JSON, or the page of
``api.receipt_page``) and for each consent of the client's subject-access copy.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from casenet.domain.aggregate import shown
from casenet.domain.consent import Consent
from casenet.domain.wording import (
    HOW_TO_WITHDRAW,
    PURPOSE_WORDS,
    given_by_in_words,
    in_words,
    sections_in_words,
)


class ConsentReceipt(msgspec.Struct, kw_only=True):
    """What the client consented to, in words they can keep."""

    consent_id: UUID
    case_id: UUID
    status: str
    sections: list[str]
    section_descriptions: list[str]
    grantee_agency_id: UUID
    grantee_agency_name: str
    purpose: str
    purpose_description: str
    valid_until: datetime | None
    method: str
    recorded_at: datetime
    recorded_by_worker_id: UUID
    withdrawn_at: datetime | None
    how_to_withdraw: str
    #: ``self`` (the client), ``parent``, ``guardian`` or ``legal_representative``.
    given_by: str = "self"
    #: Who consented for the client (null when the client did, and after erasure).
    representative_name: str | None = None
    #: Who gave it, told to the client: "you", or "Rosa Lopez, your guardian".
    given_by_description: str = "you"


def consent_receipt(consent: Consent, grantee_agency_name: str, now: datetime) -> ConsentReceipt:
    """The receipt of ``consent`` (decrypted), its status at ``now``."""
    shown(consent)
    return ConsentReceipt(
        consent_id=consent.id,
        case_id=consent.case_id,
        status=consent.status_at(now),
        sections=list(consent.sections),
        section_descriptions=sections_in_words(consent.sections),
        grantee_agency_id=consent.grantee_agency_id,
        grantee_agency_name=grantee_agency_name,
        purpose=consent.purpose,
        purpose_description=in_words(PURPOSE_WORDS, consent.purpose),
        valid_until=consent.valid_until,
        method=consent.method,
        recorded_at=consent.granted_at,
        recorded_by_worker_id=consent.recorded_by_worker_id,
        withdrawn_at=consent.withdrawn_at,
        how_to_withdraw=HOW_TO_WITHDRAW,
        given_by=consent.given_by,
        representative_name=consent.representative_name,
        given_by_description=given_by_in_words(consent.given_by, consent.representative_name),
    )
