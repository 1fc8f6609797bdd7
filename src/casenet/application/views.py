"""What the read services return: the resources of API.md, already redacted.

A field left ``UNSET`` is a section the caller may not see: it is absent from the
JSON, not null (null means erased or not given).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType


class ClientView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """identity: name, date_of_birth; contact: phone, address."""

    name: str | UnsetType | None = UNSET
    date_of_birth: str | UnsetType | None = UNSET
    phone: str | UnsetType | None = UNSET
    address: str | UnsetType | None = UNSET


class NoteView(msgspec.Struct, kw_only=True):
    """A note; disclosed under section ``notes.<category>``."""

    id: UUID
    category: str
    text: str | None
    author_worker_id: UUID
    created_at: datetime


class CaseView(msgspec.Struct, kw_only=True):
    """A case as the caller may see it: the owner everything, a grantee its sections.

    For a grantee, ``version`` and ``updated_at`` are those of the last change it can
    see (``rendering.visible_version``), not the aggregate's."""

    id: UUID
    version: int
    status: str
    owner_agency_id: UUID
    client_id: UUID
    erased: bool
    created_at: datetime
    updated_at: datetime
    sections: list[str]
    shared_under: list[UUID] = msgspec.field(default_factory=list)
    #: To a grantee only: its emergency grants (rule 2b) active now.
    shared_under_emergency: list[UUID] | UnsetType = UNSET
    client: ClientView | UnsetType = UNSET
    summary: str | UnsetType | None = UNSET
    needs: list[str] | UnsetType = UNSET
    notes: list[NoteView] | UnsetType = UNSET


class CaseListItem(msgspec.Struct, kw_only=True):
    """One of the agency's own cases, as a list shows it."""

    id: UUID
    version: int
    status: str
    client_id: UUID
    client_name: str | None
    erased: bool
    needs: list[str]
    note_count: int
    created_at: datetime
    updated_at: datetime


class SharedCase(msgspec.Struct, kw_only=True):
    """A case another agency shares with the caller's, and the sections granted now."""

    case_id: UUID
    owner_agency_id: UUID
    sections: list[str]
    shared_under: list[UUID]
    shared_under_emergency: list[UUID] = msgspec.field(default_factory=list)


class AccessGrant(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Who could see which sections, on what basis: ``owner``, ``consent`` (the
    ``consent_ids``) or ``emergency`` (the ``emergency_grant_ids``, on ``legal_bases``)."""

    agency_id: UUID
    sections: list[str]
    basis: str
    consent_id: UUID | None = None
    consent_ids: list[UUID] = msgspec.field(default_factory=list)
    emergency_grant_ids: list[UUID] = msgspec.field(default_factory=list)
    legal_bases: list[str] = msgspec.field(default_factory=list)


class Access(msgspec.Struct, kw_only=True):
    """Point-in-time access to a case."""

    at: datetime
    case_id: UUID
    grants: list[AccessGrant]


class ConsentView(msgspec.Struct, kw_only=True):
    """A consent as the owning agency sees it; ``status`` is computed at read time."""

    id: UUID
    version: int
    case_id: UUID
    client_id: UUID
    grantee_agency_id: UUID
    sections: list[str]
    purpose: str
    method: str
    evidence: str | None
    valid_until: datetime | None
    status: str
    granted_at: datetime
    withdrawn_at: datetime | None
    recorded_by_worker_id: UUID
    #: ``self`` (the client), ``parent``, ``guardian`` or ``legal_representative``.
    given_by: str = "self"
    #: Who consented for the client (null when the client did, and after erasure).
    representative_name: str | None = None


class StatusChangeView(msgspec.Struct, kw_only=True, omit_defaults=True):
    status: str
    at: datetime
    agency_id: UUID
    worker_id: UUID
    outcome: str | None = None


class MessageView(msgspec.Struct, kw_only=True):
    id: UUID
    agency_id: UUID
    worker_id: UUID
    text: str | None
    created_at: datetime


class ReferralView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A referral as either party sees it; ``client`` only as consent grants."""

    id: UUID
    version: int
    case_id: UUID
    client_id: UUID
    from_agency_id: UUID
    to_agency_id: UUID
    service_type: str
    reason: str | None
    urgency: str
    consent_id: UUID | None
    status: str
    created_at: datetime
    updated_at: datetime
    history: list[StatusChangeView]
    #: When the receiving agency must have accepted or rejected it (urgent: 24 hours,
    #: routine: 7 days after it was requested); ``overdue`` while still requested past it.
    response_due_at: datetime
    overdue: bool
    outcome: str | None = None
    outcome_note: str | None = None
    client: ClientView | UnsetType = UNSET


class ReferralListItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A referral in an inbox or outbox."""

    id: UUID
    version: int
    case_id: UUID
    from_agency_id: UUID
    to_agency_id: UUID
    service_type: str
    urgency: str
    status: str
    message_count: int
    created_at: datetime
    updated_at: datetime
    response_due_at: datetime
    overdue: bool
    outcome: str | None = None


class DisclosureView(msgspec.Struct, kw_only=True):
    """One disclosure to another agency: a read of a case's sections (``worker_id`` the
    reader), or a referral's reason or message (section ``referral``, ``worker_id`` the
    writer). ``basis``: the legal basis (``safeguarding``, ...) of a read under emergency
    grants (the ``emergency_grant_ids``), else ``consent`` (the ``consent_ids``), or
    ``referral`` for a referral that names no consent."""

    id: UUID
    case_id: UUID
    at: datetime
    recipient_agency_id: UUID
    worker_id: UUID
    sections: list[str]
    purposes: list[str]
    consent_ids: list[UUID]
    basis: str
    emergency_grant_ids: list[UUID] = msgspec.field(default_factory=list)
    legal_bases: list[str] = msgspec.field(default_factory=list)


#: A feed item type of API.md ("Feed you can follow"), in its order.
FeedItemType = Literal[
    "referral_requested",
    "referral_status_changed",
    "referral_message",
    "consent_granted",
    "consent_withdrawn",
    "consent_expired",
    "emergency_grant",
    "emergency_review_due",
    "client_erased",
    "appeal_posted",
    "appeal_response",
    "partnership_requested",
    "partnership_accepted",
    "referral_overdue",
]

#: The feed item types of API.md ("Feed you can follow"), in its order. Webhooks
#: subscribe to some of them; a type whose events do not exist yet is still a valid
#: subscription (it simply receives nothing until they do).
FEED_ITEM_TYPES: tuple[str, ...] = get_args(FeedItemType)


class FeedItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An event that concerns the caller's agency, redacted for it: ids and statuses,
    never a personal value (no names, texts or reasons). A field a type does not have
    is absent, never null.

    ``id`` is the item's own: the same in both agencies' feeds and after a rebuild
    (a webhook delivery's ``webhook-id``). Per ``type``, besides ``id, type, at,
    position``:

    - ``referral_requested``: referral_id, case_id, from_agency_id, to_agency_id,
      service_type, urgency, status (``requested``);
    - ``referral_status_changed``: referral_id, from_agency_id, to_agency_id, status,
      and ``outcome`` when completed;
    - ``referral_message``: referral_id, from_agency_id, to_agency_id, message_id,
      author_agency_id (who wrote it; the text is read on the referral);
    - ``consent_granted``: consent_id, case_id, owner_agency_id, grantee_agency_id,
      sections, purpose, status (``active``), and ``valid_until`` if it has one;
    - ``consent_withdrawn``: consent_id, owner_agency_id, grantee_agency_id, status
      (``withdrawn``);
    - ``consent_expired``: consent_id, owner_agency_id, grantee_agency_id, status
      (``expired``), valid_until: told once, after the consent ran out;
    - ``emergency_grant``: emergency_grant_id, owner_agency_id, grantee_agency_id and
      status; when created (to both: ``active``) also case_id, basis, sections,
      expires_at, review_due_at; when revoked (to both) ``revoked``; when reviewed (to
      the owner alone) ``reviewed`` and the ``finding``. Never the justification;
    - ``emergency_review_due``: emergency_grant_id, owner_agency_id,
      grantee_agency_id, review_due_at: to the owner alone, once, when the review is
      overdue;
    - ``client_erased``: client_id: to the agency that registered the client and every
      agency that had a consent, an emergency grant or a referral for one of their
      cases, and to no other.
    - ``referral_overdue``: referral_id, from_agency_id, to_agency_id, status
      (``requested``), response_due_at: told once, when a referral went unanswered.
    - ``partnership_requested`` / ``partnership_accepted``: partnership_id,
      requester_agency_id, partner_agency_id, status (``requested`` / ``active``);
    - ``appeal_posted``: appeal_id, author_agency_id, need, hop, status (``open``), and
      relayed_by_agency_id when a relay reached the agency;
    - ``appeal_response``: appeal_id, author_agency_id, need, response_id,
      responder_agency_id, answer (the text is read on the appeal).
    """

    id: UUID
    type: FeedItemType
    at: datetime
    position: int
    referral_id: UUID | UnsetType = UNSET
    consent_id: UUID | UnsetType = UNSET
    case_id: UUID | UnsetType = UNSET
    from_agency_id: UUID | UnsetType = UNSET
    to_agency_id: UUID | UnsetType = UNSET
    owner_agency_id: UUID | UnsetType = UNSET
    grantee_agency_id: UUID | UnsetType = UNSET
    author_agency_id: UUID | UnsetType = UNSET
    message_id: UUID | UnsetType = UNSET
    service_type: str | UnsetType = UNSET
    urgency: str | UnsetType = UNSET
    sections: list[str] | UnsetType = UNSET
    purpose: str | UnsetType = UNSET
    valid_until: datetime | UnsetType = UNSET
    status: str | UnsetType = UNSET
    outcome: str | UnsetType = UNSET
    emergency_grant_id: UUID | UnsetType = UNSET
    client_id: UUID | UnsetType = UNSET
    basis: str | UnsetType = UNSET
    expires_at: datetime | UnsetType = UNSET
    review_due_at: datetime | UnsetType = UNSET
    finding: str | UnsetType = UNSET
    response_due_at: datetime | UnsetType = UNSET
    # The network's items (issue 19).
    partnership_id: UUID | UnsetType = UNSET
    requester_agency_id: UUID | UnsetType = UNSET
    partner_agency_id: UUID | UnsetType = UNSET
    appeal_id: UUID | UnsetType = UNSET
    need: str | UnsetType = UNSET
    hop: int | UnsetType = UNSET
    relayed_by_agency_id: UUID | UnsetType = UNSET
    response_id: UUID | UnsetType = UNSET
    responder_agency_id: UUID | UnsetType = UNSET
    answer: str | UnsetType = UNSET
