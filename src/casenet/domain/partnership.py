"""A partnership: two agencies that work together (rule 7: it holds no client data).

One agency's admin asks, the other's accepts or declines; either side may end it.
Only the two agencies ever know it exists.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from casenet.domain.aggregate import Aggregate, DomainEvent, when
from casenet.domain.errors import IllegalTransition, InvalidInput, NotPermitted

REQUESTED = "requested"
ACTIVE = "active"
DECLINED = "declined"
ENDED = "ended"
STATUSES = (REQUESTED, ACTIVE, DECLINED, ENDED)
#: Statuses in which a pair of agencies may not ask again (one live partnership a pair).
LIVE = (REQUESTED, ACTIVE)

#: Partnership ids: ``uuid5(PAIR_NAMESPACE, "<lower id>/<higher id>/<n>")``, the n-th of
#: the pair, so two requests racing for the same pair write the same aggregate and one
#: of them loses (409) instead of both becoming live.
PAIR_NAMESPACE = UUID("0b7cf1f4-2b0e-4c59-93f4-5a8f0e0f6d21")


def pair_partnership_id(first: UUID, second: UUID, earlier: int) -> UUID:
    """The id of the pair's next partnership, after ``earlier`` ones."""
    low, high = sorted((str(first), str(second)))
    return uuid5(PAIR_NAMESPACE, f"{low}/{high}/{earlier}")


class PartnershipRequested(DomainEvent, frozen=True, kw_only=True):
    requester_agency_id: UUID
    partner_agency_id: UUID
    worker_id: UUID


class PartnershipAccepted(DomainEvent, frozen=True, kw_only=True):
    """Carries both agencies, so a read model or the feed needs no earlier row."""

    requester_agency_id: UUID
    partner_agency_id: UUID
    worker_id: UUID


class PartnershipDeclined(DomainEvent, frozen=True, kw_only=True):
    worker_id: UUID


class PartnershipEnded(DomainEvent, frozen=True, kw_only=True):
    agency_id: UUID
    worker_id: UUID


class Partnership(Aggregate):
    """Two agencies that work together: requested, then active (or declined), then ended."""

    requester_agency_id: UUID
    partner_agency_id: UUID
    status: str

    @classmethod
    def request(
        cls, *, partnership_id: UUID, requester: UUID, partner: UUID, worker_id: UUID
    ) -> Partnership:
        if requester == partner:
            raise InvalidInput("agency_id", "must be another agency than the caller's")
        return cls._start(
            partnership_id,
            PartnershipRequested,
            requester_agency_id=requester,
            partner_agency_id=partner,
            worker_id=worker_id,
        )

    def involves(self, agency_id: UUID) -> bool:
        return agency_id in (self.requester_agency_id, self.partner_agency_id)

    def other_than(self, agency_id: UUID) -> UUID:
        """The partner of ``agency_id`` (one of the two)."""
        if agency_id == self.requester_agency_id:
            return self.partner_agency_id
        return self.requester_agency_id

    def check_answerer(self, agency_id: UUID, action: str) -> None:
        if agency_id != self.partner_agency_id:
            raise NotPermitted(f"only the asked agency may {action} a partnership")
        if self.status != REQUESTED:
            raise IllegalTransition("partnership", self.status, action)

    def accept(self, *, agency_id: UUID, worker_id: UUID) -> None:
        self.check_answerer(agency_id, "accept")
        self._record(
            PartnershipAccepted,
            requester_agency_id=self.requester_agency_id,
            partner_agency_id=self.partner_agency_id,
            worker_id=worker_id,
        )

    def decline(self, *, agency_id: UUID, worker_id: UUID) -> None:
        self.check_answerer(agency_id, "decline")
        self._record(PartnershipDeclined, worker_id=worker_id)

    def end(self, *, agency_id: UUID, worker_id: UUID) -> None:
        if not self.involves(agency_id):
            raise NotPermitted("only the two agencies may end a partnership")
        if self.status not in LIVE:
            raise IllegalTransition("partnership", self.status, "end")
        self._record(PartnershipEnded, agency_id=agency_id, worker_id=worker_id)

    @when(PartnershipRequested)
    def _requested(self, event: PartnershipRequested) -> None:
        self.requester_agency_id = event.requester_agency_id
        self.partner_agency_id = event.partner_agency_id
        self.status = REQUESTED

    @when(PartnershipAccepted)
    def _accepted(self, event: PartnershipAccepted) -> None:
        self.status = ACTIVE

    @when(PartnershipDeclined)
    def _declined(self, event: PartnershipDeclined) -> None:
        self.status = DECLINED

    @when(PartnershipEnded)
    def _ended(self, event: PartnershipEnded) -> None:
        self.status = ENDED
