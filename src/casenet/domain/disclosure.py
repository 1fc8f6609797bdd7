"""A disclosure: one read, by another agency, of sections of a case (rule 5).

A referral discloses too: its reason, when it is requested, to the receiving agency,
and each message to the agency that did not write it (section ``referral``; the
worker is the one who wrote it, and the consent the referral's, if it names one).

Disclosures are events like any other, so the accounting of disclosures and the
audit export are built from the same append-only log as everything else.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from casenet.domain.aggregate import Aggregate, DomainEvent, when


class DisclosureRecorded(DomainEvent, frozen=True, kw_only=True):
    """Who read which sections of whose case, under which consents, for what purpose."""

    case_id: UUID
    client_id: UUID
    owner_agency_id: UUID
    recipient_agency_id: UUID
    worker_id: UUID
    sections: tuple[str, ...]
    consent_ids: tuple[UUID, ...]
    purposes: tuple[str, ...]


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
        )

    @when(DisclosureRecorded)
    def _recorded(self, event: DisclosureRecorded) -> None:
        self.case_id = event.case_id
        self.recipient_agency_id = event.recipient_agency_id
        self.sections = event.sections
