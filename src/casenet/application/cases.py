"""Case services: open a case for a client, write notes, close and reopen it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid5

from casenet.application.actor import CASE_WRITERS, Actor
from casenet.application.case_queries import CaseQueries
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
        self,
        actor: Actor,
        *,
        client: ClientDetails,
        summary: str,
        needs: list[str],
        new_id: UUID | None = None,
    ) -> Case:
        """Register the client and open their case, in one atomic write.

        ``new_id``: a retried request's id; if that case exists, it is the answer.
        """
        actor.require_role(CASE_WRITERS, "open a case")
        agency_id = actor.require_agency()
        if (existing := self.app.find(Case, new_id)) is not None:
            return self.owned_case(actor, existing.id)
        registered = Client.register(
            new_id=None if new_id is None else uuid5(new_id, "client"),
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
            new_id=new_id,
        )
        self.app.save(registered, case)
        self.queries.parties.remember_opened(case)
        return case

    def owned_case(self, actor: Actor, case_id: UUID, *, personal: bool = True) -> Case:
        """The case for its owner (NotFound if invisible, NotPermitted for a grantee);
        ``personal=False``: sealed, for a command whose answer does not show it."""
        return self.queries.owned_case(actor, case_id, personal=personal)

    def add_note(
        self,
        actor: Actor,
        case_id: UUID,
        *,
        category: str,
        text: str,
        expected_version: int | None = None,
        new_id: UUID | None = None,
    ) -> tuple[Case, Note]:
        # Adding a note reads no personal field: the case's earlier notes stay sealed.
        case = self.owned_case(actor, case_id, personal=False)
        actor.require_role(CASE_WRITERS, "write notes")
        if new_id is not None and case.note(new_id) is not None:
            # A retry of a note that was written: answered with the note as stored.
            case = self.owned_case(actor, case_id)
            written = case.note(new_id)
            assert written is not None
            return case, written
        check_expected_version(expected_version, case.version)
        note = case.add_note(
            worker_id=actor.require_worker(), category=category, text=text, new_id=new_id
        )
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
