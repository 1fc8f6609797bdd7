"""The visibility policy: which sections of a case an agency may see, at an instant.

This is the only implementation of DESIGN.md's confidentiality rules 1-4 and 2b
(emergency grants: disclosure without consent, under a legal basis). The
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
EMERGENCY = "emergency"

ACTIVE = "active"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"
REVOKED = "revoked"
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


def emergency_status(
    created_at: datetime, revoked_at: datetime | None, expires_at: datetime, at: datetime
) -> str:
    """An emergency grant's status at ``at``: like a consent's, expiry by the clock."""
    status = consent_status(created_at, revoked_at, expires_at, at)
    return REVOKED if status == WITHDRAWN else status


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
class EmergencyFacts:
    """What the policy needs of one emergency grant of the case (rule 2b)."""

    grant_id: UUID
    grantee_agency_id: UUID
    sections: tuple[str, ...]
    legal_basis: str  # vital_interests, safeguarding, court_order, legal_obligation
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime

    def is_active_at(self, at: datetime) -> bool:
        """Created by ``at``, not revoked by then, not yet expired."""
        return emergency_status(self.created_at, self.revoked_at, self.expires_at, at) == ACTIVE


@dataclass(frozen=True)
class Grant:
    """What one agency may see of a case, and on what basis.

    ``basis``: ``owner``; ``consent`` when a consent grants some of the sections (the
    ``consent_ids``); ``emergency`` when only emergency grants do. ``emergency_ids`` and
    ``legal_bases`` name the emergency grants that grant some of them, and their bases.
    """

    agency_id: UUID
    sections: tuple[str, ...]
    basis: str  # "owner", "consent" or "emergency"
    consent_ids: tuple[UUID, ...] = ()
    emergency_ids: tuple[UUID, ...] = ()
    legal_bases: tuple[str, ...] = ()

    @property
    def visible(self) -> bool:
        return bool(self.sections)


def owner_grant(agency_id: UUID) -> Grant:
    """Rule 1: the owning agency sees every section."""
    return Grant(agency_id, SECTIONS, OWNER)


def _allowed(case: CaseFacts, sections: tuple[str, ...]) -> set[str]:
    """Rule 4: a restricted owner never discloses identifying sections."""
    allowed = set(sections)
    return allowed - IDENTIFYING if case.owner_restricted else allowed


def sections_visible_to(
    case: CaseFacts,
    consents: Iterable[ConsentFacts],
    agency_id: UUID,
    at: datetime,
    emergencies: Iterable[EmergencyFacts] = (),
) -> Grant:
    """The sections of ``case`` that ``agency_id`` may see at ``at``.

    1. The owning agency sees everything.
    2. Another agency sees a section only while an active consent of this case grants
       it that section; with none, the case does not exist for it (empty grant).
    2b. An active emergency grant of this case grants its sections exactly as a consent
       does (rule 4 included), on its legal basis.
    3. Only consents and emergency grants of this case count (the caller passes them).
    4. A restricted owner never discloses identifying sections, whatever a consent says.
    """
    if agency_id == case.owner_agency_id:
        return owner_grant(agency_id)
    granted: set[str] = set()
    under: list[UUID] = []
    for consent in consents:
        if consent.grantee_agency_id != agency_id or not consent.is_active_at(at):
            continue
        if allowed := _allowed(case, consent.sections):
            granted |= allowed
            under.append(consent.consent_id)
    emergency: list[EmergencyFacts] = []
    for grant in emergencies:
        if grant.grantee_agency_id != agency_id or not grant.is_active_at(at):
            continue
        if allowed := _allowed(case, grant.sections):
            granted |= allowed
            emergency.append(grant)
    sections = tuple(section for section in SECTIONS if section in granted)
    return Grant(
        agency_id,
        sections,
        CONSENT if under or not emergency else EMERGENCY,
        tuple(sorted(under, key=str)),
        tuple(sorted((g.grant_id for g in emergency), key=str)),
        tuple(sorted({g.legal_basis for g in emergency})),
    )


def access_at(
    case: CaseFacts,
    consents: Iterable[ConsentFacts],
    at: datetime,
    emergencies: Iterable[EmergencyFacts] = (),
) -> list[Grant]:
    """Who could see which sections of ``case`` at ``at``: the owner, then each grantee,
    its consents' grant and then its emergency grants' (basis ``emergency``), each if it
    grants anything. Together they grant what ``sections_visible_to`` does."""
    consents, emergencies = list(consents), list(emergencies)
    grantees = {c.grantee_agency_id for c in consents} | {e.grantee_agency_id for e in emergencies}
    grants = [sections_visible_to(case, consents, case.owner_agency_id, at)]
    for agency_id in sorted(grantees - {case.owner_agency_id}, key=str):
        for grant in (
            sections_visible_to(case, consents, agency_id, at),
            sections_visible_to(case, (), agency_id, at, emergencies),
        ):
            if grant.visible:
                grants.append(grant)
    return grants
