"""A disclosure: one read, by another agency, of sections of a case (rule 5).

A referral discloses too: its reason, when it is requested, to the receiving agency,
and each message to the agency that did not write it (section ``referral``; the
worker is the one who wrote it, and the consent the referral's, if it names one).

A read under an emergency grant (rule 2b) names the grants and their legal bases
(``safeguarding``, ...). Those two fields came later: a disclosure stored before them
reads with none, which is what it was.

Disclosures are events like any other, so the accounting of disclosures and the
audit export are built from the same append-only log as everything else.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, when


class DisclosureRecorded(DomainEvent, frozen=True, kw_only=True):
    """Who read which sections of whose case, under which consents (for what purpose)
    and which emergency grants (on what legal basis)."""

    case_id: UUID
    client_id: UUID
    owner_agency_id: UUID
    recipient_agency_id: UUID
    worker_id: UUID
    sections: tuple[str, ...]
    consent_ids: tuple[UUID, ...]
    purposes: tuple[str, ...]
    emergency_grant_ids: tuple[UUID, ...] = ()
    legal_bases: tuple[str, ...] = ()


class Disclosure(Aggregate):
    """Recorded once, never changed."""

    case_id: UUID
    recipient_agency_id: UUID
    sections: tuple[str, ...]

    @classmethod
    def record(
        cls,
        *,
        case_id: UUID,
        client_id: UUID,
        owner_agency_id: UUID,
        recipient_agency_id: UUID,
        worker_id: UUID,
        sections: tuple[str, ...],
        consent_ids: tuple[UUID, ...],
        purposes: tuple[str, ...],
        emergency_grant_ids: tuple[UUID, ...] = (),
        legal_bases: tuple[str, ...] = (),
        new_id: UUID | None = None,
    ) -> Disclosure:
        return cls._start(
            new_id or uuid4(),
            DisclosureRecorded,
            case_id=case_id,
            client_id=client_id,
            owner_agency_id=owner_agency_id,
            recipient_agency_id=recipient_agency_id,
            worker_id=worker_id,
            sections=sections,
            consent_ids=consent_ids,
            purposes=tuple(sorted(set(purposes))),
            emergency_grant_ids=emergency_grant_ids,
            legal_bases=tuple(sorted(set(legal_bases))),
        )

    @when(DisclosureRecorded)
    def _recorded(self, event: DisclosureRecorded) -> None:
        self.case_id = event.case_id
        self.recipient_agency_id = event.recipient_agency_id
        self.sections = event.sections
