"""The visibility policy: which sections of a case an agency may see, at an instant.

This is the only implementation of DESIGN.md's confidentiality rules 1-4. The
projections use it to build per-agency views and the read path applies it again
at request time, because a consent may have expired a second ago.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from casenet.domain.sections import IDENTIFYING, SECTIONS

OWNER = "owner"
CONSENT = "consent"

ACTIVE = "active"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"
NOT_YET_GRANTED = "not_yet_granted"


def consent_status(
    granted_at: datetime, withdrawn_at: datetime | None, valid_until: datetime | None, at: datetime
) -> str:
    """A consent's status at ``at``: expiry is computed from the clock, never stored (rule 2)."""
    if at < granted_at:
        return NOT_YET_GRANTED
    if withdrawn_at is not None and at >= withdrawn_at:
        return WITHDRAWN
    if valid_until is not None and at >= valid_until:
        return EXPIRED
    return ACTIVE


@dataclass(frozen=True)
class CaseFacts:
    """What the policy needs of a case: who owns it, and whether the owner is restricted."""

    case_id: UUID
    owner_agency_id: UUID
    owner_restricted: bool


@dataclass(frozen=True)
class ConsentFacts:
    """What the policy needs of one consent of the case."""

    consent_id: UUID
    grantee_agency_id: UUID
    sections: tuple[str, ...]
    granted_at: datetime
    withdrawn_at: datetime | None
    valid_until: datetime | None

    def is_active_at(self, at: datetime) -> bool:
        """Granted by ``at``, not withdrawn by then, not yet expired."""
        status = consent_status(self.granted_at, self.withdrawn_at, self.valid_until, at)
        return status == ACTIVE


@dataclass(frozen=True)
class Grant:
    """What one agency may see of a case, and on what basis."""

    agency_id: UUID
    sections: tuple[str, ...]
    basis: str  # "owner" or "consent"
    consent_ids: tuple[UUID, ...] = ()

    @property
    def visible(self) -> bool:
        return bool(self.sections)


def owner_grant(agency_id: UUID) -> Grant:
    """Rule 1: the owning agency sees every section."""
    return Grant(agency_id, SECTIONS, OWNER)


def sections_visible_to(
    case: CaseFacts, consents: Iterable[ConsentFacts], agency_id: UUID, at: datetime
) -> Grant:
    """The sections of ``case`` that ``agency_id`` may see at ``at``.

    1. The owning agency sees everything.
    2. Another agency sees a section only while an active consent of this case grants
       it that section; with none, the case does not exist for it (empty grant).
    3. Only consents of this case count (the caller passes this case's consents).
    4. A restricted owner never discloses identifying sections, whatever a consent says.
    """
    if agency_id == case.owner_agency_id:
        return owner_grant(agency_id)
    granted: set[str] = set()
    under: list[UUID] = []
    for consent in consents:
        if consent.grantee_agency_id != agency_id or not consent.is_active_at(at):
            continue
        allowed = set(consent.sections)
        if case.owner_restricted:
            allowed -= IDENTIFYING
        if allowed:
            granted |= allowed
            under.append(consent.consent_id)
    sections = tuple(section for section in SECTIONS if section in granted)
    return Grant(agency_id, sections, CONSENT, tuple(sorted(under, key=str)))


def access_at(case: CaseFacts, consents: Iterable[ConsentFacts], at: datetime) -> list[Grant]:
    """Who could see which sections of ``case`` at ``at``: the owner, then each grantee."""
    consents = list(consents)
    grantees = sorted({c.grantee_agency_id for c in consents} - {case.owner_agency_id}, key=str)
    grants = [sections_visible_to(case, consents, case.owner_agency_id, at)]
    for agency_id in grantees:
        grant = sections_visible_to(case, consents, agency_id, at)
        if grant.visible:
            grants.append(grant)
    return grants
