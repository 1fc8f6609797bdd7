"""Who is acting: a worker of one agency, or the operator of the network."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from casenet.domain.errors import NotPermitted

CASEWORKER = "caseworker"
SUPERVISOR = "supervisor"
ADMIN = "admin"
AUDITOR = "auditor"
OPERATOR = "operator"

#: Roles that record case work: open cases, notes, consents, referrals.
CASE_WRITERS = frozenset({CASEWORKER, SUPERVISOR})


@dataclass(frozen=True)
class Actor:
    """The caller of an application service; ``agency_id`` is None for the operator."""

    agency_id: UUID | None
    worker_id: UUID | None
    role: str

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    def require_role(self, roles: frozenset[str] | set[str], action: str) -> None:
        """Raise :class:`NotPermitted` unless the actor has one of ``roles``."""
        if self.role not in roles:
            raise NotPermitted(f"role {self.role} may not {action}")

    def require_agency(self) -> UUID:
        """The actor's agency, or :class:`NotPermitted` for the operator."""
        if self.agency_id is None:
            raise NotPermitted("the operator acts on no agency's cases")
        return self.agency_id

    def require_worker(self) -> UUID:
        if self.worker_id is None:
            raise NotPermitted("this needs a worker's token")
        return self.worker_id


OPERATOR_ACTOR = Actor(agency_id=None, worker_id=None, role=OPERATOR)
