"""Who a case or a consent is between, as this process learnt it: ids only, never stale.

Kept because it is correct in every process without any invalidation: what it holds
is fixed when the aggregate is created and no event changes it afterwards (a case's
owning agency and client; a consent's case, grantee and purpose), so an entry learnt
in this process can never disagree with what another process writes later. It holds
ids and a purpose code, nothing personal and nothing secret; an erasure destroys the
client's key, not these ids, and the owner's read still loads the case through the
key ring, so the erasure shows at once everywhere. What it saves is the scoped lookup
on the read models (and the catch-up check around it): several round trips on the
owner's read, the most frequent request, and on a command that names a consent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar
from uuid import UUID

from casenet.domain.case import Case
from casenet.domain.consent import Consent

#: Cases (and consents) a process remembers (about 250 bytes each).
PARTIES_KEPT = 20_000

K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    """Facts that never change (ids only), the oldest forgotten past ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[K, V] = {}
        self.get: Callable[[K], V | None] = self._entries.get

    def __setitem__(self, key: K, value: V) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self.size:
            # Threads share the map: another may have removed the same oldest key.
            entries.pop(next(iter(entries), key), None)
        entries[key] = value


class KnownParties:
    """The parties of the cases and consents this process opened, granted or looked up.

    Keyed by the id's int, agencies as ints: hashed and compared in C (a UUID's hash
    and equality are Python code).
    """

    def __init__(self, size: int = PARTIES_KEPT) -> None:
        #: case id -> (owning agency, client)
        self._cases: BoundedMap[int, tuple[int, UUID]] = BoundedMap(size)
        #: consent id -> (case, grantee agency, purpose)
        self._consents: BoundedMap[int, tuple[int, int, str]] = BoundedMap(size)

    def remember_case(self, case_id: UUID, owner_agency_id: UUID, client_id: UUID) -> None:
        self._cases[case_id.int] = (owner_agency_id.int, client_id)

    def remember_opened(self, case: Case) -> None:
        """A case's parties, as the command that opened it knows them."""
        self.remember_case(case.id, case.owner_agency_id, case.client_id)

    def remember_granted(self, consent: Consent) -> None:
        """A consent's case, grantee and purpose, as the command that granted it knows them."""
        entry = (consent.case_id.int, consent.grantee_agency_id.int, consent.purpose)
        self._consents[consent.id.int] = entry

    def owners_client(self, case_id: UUID, agency_id: UUID | None) -> UUID | None:
        """The case's client if ``agency_id`` is known to own the case, else None."""
        parties = self._cases.get(case_id.int)
        if parties is None or agency_id is None or agency_id.int != parties[0]:
            return None
        return parties[1]

    def covering_purpose(self, consent_id: UUID, case_id: UUID, agency_id: UUID) -> str | None:
        """The consent's purpose if it is known to be the case's, granted to ``agency_id``;
        None if not known (which is not to say it is not)."""
        known = self._consents.get(consent_id.int)
        if known is not None and known[:2] == (case_id.int, agency_id.int):
            return known[2]
        return None
