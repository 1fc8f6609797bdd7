"""Consents' and emergency grants' terms, from the read models' rows to the policy's facts."""

from __future__ import annotations

from uuid import UUID

import msgspec

from casenet.domain.visibility import ConsentFacts, EmergencyFacts
from casenet.infrastructure.projections.consents import ConsentTermsRow, EmergencyTermsRow
from casenet.infrastructure.projections.facts import parse_time


def consent_facts(row: ConsentTermsRow) -> ConsentFacts:
    """A consent's terms as the policy takes them."""
    granted_at = parse_time(row.granted_at)
    assert granted_at is not None
    return ConsentFacts(
        consent_id=UUID(row.consent_id),
        grantee_agency_id=UUID(row.grantee_agency_id),
        sections=tuple(msgspec.json.decode(row.sections)),
        granted_at=granted_at,
        withdrawn_at=parse_time(row.withdrawn_at),
        valid_until=parse_time(row.valid_until),
    )


def emergency_facts(row: EmergencyTermsRow) -> EmergencyFacts:
    """An emergency grant's terms as the policy takes them."""
    created_at, expires_at = parse_time(row.created_at), parse_time(row.expires_at)
    assert created_at is not None
    assert expires_at is not None
    return EmergencyFacts(
        grant_id=UUID(row.grant_id),
        grantee_agency_id=UUID(row.grantee_agency_id),
        sections=tuple(msgspec.json.decode(row.sections)),
        legal_basis=row.basis,
        created_at=created_at,
        revoked_at=parse_time(row.revoked_at),
        expires_at=expires_at,
    )
