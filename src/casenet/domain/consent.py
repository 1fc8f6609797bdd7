"""A client's consent to disclose sections of their case to one named agency."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, PersonalText, utcnow, when
from casenet.domain.errors import ConsentNotActive, InvalidInput, NotPermitted
from casenet.domain.sections import check_sections
from casenet.domain.values import check_choice, check_instant, check_optional_text, check_text
from casenet.domain.visibility import ACTIVE, EXPIRED, WITHDRAWN, ConsentFacts, consent_status

PURPOSES = ("referral", "care_coordination")
METHODS = ("verbal", "written", "electronic")
#: Who gave the consent: the client, or someone who may consent for them.
SELF = "self"
GIVERS = (SELF, "parent", "guardian", "legal_representative")

__all__ = [
    "ACTIVE",
    "EXPIRED",
    "GIVERS",
    "METHODS",
    "PURPOSES",
    "SELF",
    "WITHDRAWN",
    "Consent",
    "ConsentExpiryNoted",
    "ConsentGranted",
    "ConsentWithdrawn",
]


class ConsentGranted(DomainEvent, frozen=True, kw_only=True):
    """Version 2 added who gave it: ``given_by`` and the ``representative_name`` of a
    parent, guardian or legal representative (version 1 consents were the client's own)."""

    case_id: UUID
    client_id: UUID
    owner_agency_id: UUID
    grantee_agency_id: UUID
    sections: tuple[str, ...]
    purpose: str
    valid_until: datetime | None
    method: str
    evidence: PersonalText
    recorded_by_worker_id: UUID
    given_by: str
    representative_name: PersonalText

    class_version: ClassVar[int] = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["given_by"] = SELF
        state["representative_name"] = None


class ConsentWithdrawn(DomainEvent, frozen=True, kw_only=True):
    client_id: UUID
    reason: PersonalText
    recorded_by_worker_id: UUID


class ConsentExpiryNoted(DomainEvent, frozen=True, kw_only=True):
    """The notice that a consent ran out (for the feed): recorded by casenet itself
    once, after ``valid_until``; the consent was expired already, by the clock."""

    valid_until: datetime


class Consent(Aggregate):
    """Granted by the client, recorded by a worker of the owning agency.

    Expiry is not an event: a consent past ``valid_until`` is expired by the clock.
    Casenet notes it afterwards, once (:meth:`note_expiry`), so both agencies hear of it.
    """

    case_id: UUID
    client_id: UUID
    owner_agency_id: UUID
    grantee_agency_id: UUID
    sections: tuple[str, ...]
    purpose: str
    valid_until: datetime | None
    method: str
    evidence: str | None
    recorded_by_worker_id: UUID
    given_by: str
    representative_name: str | None
    granted_at: datetime
    withdrawn_at: datetime | None
    expiry_noted: bool

    @classmethod
    def grant(
        cls,
        *,
        case_id: UUID,
        client_id: UUID,
        owner_agency_id: UUID,
        recording_agency_id: UUID,
        grantee_agency_id: UUID,
        sections: list[str] | tuple[str, ...],
        purpose: str,
        method: str,
        worker_id: UUID,
        valid_until: datetime | None = None,
        evidence: str | None = None,
        given_by: str = SELF,
        representative_name: str | None = None,
        now: datetime | None = None,
        new_id: UUID | None = None,
    ) -> Consent:
        # No re-disclosure: only the agency that owns the case records its consents.
        if recording_agency_id != owner_agency_id:
            raise NotPermitted("only the owning agency records consents for a case")
        if grantee_agency_id == owner_agency_id:
            raise InvalidInput("grantee_agency_id", "the owning agency needs no consent")
        check_choice(purpose, PURPOSES, "purpose")
        check_choice(method, METHODS, "method")
        if valid_until is not None:
            # In range and in UTC: every read model compares it, for ever.
            valid_until = check_instant(valid_until, "valid_until")
            if valid_until <= (now or utcnow()):
                raise InvalidInput("valid_until", "must be in the future")
        check_optional_text(evidence, "evidence", max_length=2_000)
        check_giver(given_by, representative_name)
        return cls._start(
            new_id or uuid4(),
            ConsentGranted,
            case_id=case_id,
            client_id=client_id,
            owner_agency_id=owner_agency_id,
            grantee_agency_id=grantee_agency_id,
            sections=check_sections(sections),
            purpose=purpose,
            valid_until=valid_until,
            method=method,
            evidence=evidence,
            recorded_by_worker_id=worker_id,
            given_by=given_by,
            representative_name=representative_name,
        )

    def status_at(self, at: datetime) -> str:
        """``active``, ``withdrawn`` or ``expired`` at instant ``at``."""
        return consent_status(self.granted_at, self.withdrawn_at, self.valid_until, at)

    def is_active_at(self, at: datetime) -> bool:
        return self.status_at(at) == ACTIVE

    def facts(self) -> ConsentFacts:
        """What the visibility policy needs of this consent."""
        return ConsentFacts(
            consent_id=self.id,
            grantee_agency_id=self.grantee_agency_id,
            sections=self.sections,
            granted_at=self.granted_at,
            withdrawn_at=self.withdrawn_at,
            valid_until=self.valid_until,
        )

    def withdraw(self, *, recording_agency_id: UUID, worker_id: UUID, reason: str) -> None:
        if recording_agency_id != self.owner_agency_id:
            raise NotPermitted("only the owning agency records a withdrawal")
        status = self.status_at(utcnow())
        if status != ACTIVE:
            raise ConsentNotActive("consent", status, "withdraw")
        check_text(reason, "reason", max_length=2_000)
        self._record(
            ConsentWithdrawn,
            client_id=self.client_id,
            reason=reason,
            recorded_by_worker_id=worker_id,
        )

    def note_expiry(self, *, now: datetime | None = None) -> None:
        """Record that the consent ran out; only once, and never for a withdrawn one."""
        status = self.status_at(now or utcnow())
        if status != EXPIRED or self.expiry_noted:
            raise ConsentNotActive("consent", status, "note the expiry of")
        assert self.valid_until is not None  # (expired: it has one)
        self._record(ConsentExpiryNoted, valid_until=self.valid_until)

    @when(ConsentGranted)
    def _granted(self, event: ConsentGranted) -> None:
        self.case_id = event.case_id
        self.client_id = event.client_id
        self.owner_agency_id = event.owner_agency_id
        self.grantee_agency_id = event.grantee_agency_id
        self.sections = event.sections
        self.purpose = event.purpose
        self.valid_until = event.valid_until
        self.method = event.method
        self.evidence = event.evidence
        self.recorded_by_worker_id = event.recorded_by_worker_id
        self.given_by = event.given_by
        self.representative_name = event.representative_name
        self.granted_at = event.timestamp
        self.withdrawn_at = None
        self.expiry_noted = False

    @when(ConsentWithdrawn)
    def _withdrawn(self, event: ConsentWithdrawn) -> None:
        self.withdrawn_at = event.timestamp

    @when(ConsentExpiryNoted)
    def _expiry_noted(self, event: ConsentExpiryNoted) -> None:
        self.expiry_noted = True


def check_giver(given_by: str, representative_name: str | None) -> None:
    """The client consents for themself, unnamed; anyone else who may is named."""
    check_choice(given_by, GIVERS, "given_by")
    if given_by == SELF:
        if representative_name is not None:
            raise InvalidInput("representative_name", "only when given_by is not self")
    elif representative_name is None:
        raise InvalidInput("representative_name", f"required when given_by is {given_by}")
    else:
        check_text(representative_name, "representative_name", max_length=500)
