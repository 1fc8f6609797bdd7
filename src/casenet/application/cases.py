"""Case services: open a case for a client, write notes, close and reopen it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from casenet.application.actor import CASE_WRITERS, Actor
from casenet.application.queries import CaseQueries
from casenet.application.store import CasenetApplication
from casenet.domain.case import Case, Note
from casenet.domain.client import Client
from casenet.domain.errors import check_expected_version


@dataclass(frozen=True)
class ClientDetails:
    """What an agency knows of a client when it opens a case."""

    name: str
    date_of_birth: str | None = None
    phone: str | None = None
    address: str | None = None


class CaseService:
    """Commands on cases, for the workers of the owning agency."""

    def __init__(self, app: CasenetApplication, queries: CaseQueries) -> None:
        self.app = app
        self.queries = queries

    def open_case(
        self, actor: Actor, *, client: ClientDetails, summary: str, needs: list[str]
    ) -> Case:
        """Register the client and open their case, in one atomic write."""
        actor.require_role(CASE_WRITERS, "open a case")
        agency_id = actor.require_agency()
        registered = Client.register(
            agency_id=agency_id,
            name=client.name,
            date_of_birth=client.date_of_birth,
            phone=client.phone,
            address=client.address,
        )
        case = Case.open(
            owner_agency_id=agency_id,
            worker_id=actor.require_worker(),
            client_id=registered.id,
            summary=summary,
            needs=needs,
        )
        self.app.save(registered, case)
        return case

    def owned_case(self, actor: Actor, case_id: UUID) -> Case:
        """The case for its owner (NotFound if invisible, NotPermitted for a grantee)."""
        return self.queries.owned_case(actor, case_id)

    def add_note(
        self,
        actor: Actor,
        case_id: UUID,
        *,
        category: str,
        text: str,
        expected_version: int | None = None,
    ) -> tuple[Case, Note]:
        case = self.owned_case(actor, case_id)
        actor.require_role(CASE_WRITERS, "write notes")
        check_expected_version(expected_version, case.version)
        note = case.add_note(worker_id=actor.require_worker(), category=category, text=text)
        self.app.save(case)
        return case, note

    def close_case(
        self, actor: Actor, case_id: UUID, *, reason: str, expected_version: int | None = None
    ) -> Case:
        case = self.owned_case(actor, case_id)
        actor.require_role(CASE_WRITERS, "close a case")
        check_expected_version(expected_version, case.version)
        case.close(worker_id=actor.require_worker(), reason=reason)
        self.app.save(case)
        return case

    def reopen_case(
        self, actor: Actor, case_id: UUID, *, reason: str, expected_version: int | None = None
    ) -> Case:
        case = self.owned_case(actor, case_id)
        actor.require_role(CASE_WRITERS, "reopen a case")
        check_expected_version(expected_version, case.version)
        case.reopen(worker_id=actor.require_worker(), reason=reason)
        self.app.save(case)
        return case
