"""Reading cases: read models for finding, aggregates for content, the policy on top.

Every read starts by bringing the read models it asks up to the log's head (read your
writes: ``Projections.current``), scopes its query to the caller's agency before it
runs, and applies the visibility policy again at the request's instant: a consent
that expired or was withdrawn a moment ago shows nothing, even if a read model were
behind. The SQL is the read models' own (``infrastructure.projections.*``), the views
are ``rendering``'s; what is here is who may see what, and in which order to ask.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from casenet.application.actor import AUDITOR, SUPERVISOR, Actor
from casenet.application.grant_terms import consent_facts, emergency_facts
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.parties import KnownParties
from casenet.application.rendering import (
    render_case,
    render_case_item,
    render_consent,
    render_disclosure,
)
from casenet.application.store import CasenetApplication
from casenet.application.views import (
    Access,
    AccessGrant,
    CaseListItem,
    CaseView,
    ConsentView,
    DisclosureView,
    SharedCase,
)
from casenet.domain.aggregate import utcnow
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.disclosure import Disclosure
from casenet.domain.errors import InvalidInput, NotFound, NotPermitted
from casenet.domain.visibility import (
    OWNER,
    CaseFacts,
    ConsentFacts,
    EmergencyFacts,
    Grant,
    access_at,
    owner_grant,
    sections_visible_to,
)
from casenet.infrastructure.crypto import Binding
from casenet.infrastructure.mapper import SubjectKeys, decrypt_stored_field
from casenet.infrastructure.projections import cases as cases_model
from casenet.infrastructure.projections import consents as consents_model
from casenet.infrastructure.projections import directory as directory_model
from casenet.infrastructure.projections import disclosures as disclosures_model
from casenet.infrastructure.projections.facts import normalise_time

CASE_OVERSEERS = frozenset({SUPERVISOR, AUDITOR})


def client_registered_by(app: CasenetApplication, client_id: UUID, agency_id: UUID) -> bool:
    """Whether ``agency_id`` registered the client, from the read model: asked before the
    client is loaded, so an unknown and another agency's client cost and answer alike."""
    db = app.database
    return app.projections.current(
        ["cases"], lambda: cases_model.client_registered_by(db, client_id, agency_id)
    )


def case_owned_by(app: CasenetApplication, case_id: UUID, agency_id: UUID) -> bool:
    """Whether ``agency_id`` owns the case, from the read model (as above)."""
    db = app.database
    return app.projections.current(
        ["cases"], lambda: cases_model.case_owned_by(db, case_id, agency_id)
    )


class CaseQueries:
    """Cases, consents and access, as the caller's agency may see them."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app
        self.db = app.database
        #: Cases' and consents' parties (ids, never stale: see ``parties``).
        self.parties = KnownParties()

    def covering_consent(self, consent_id: UUID, case_id: UUID, agency_id: UUID) -> str:
        """The purpose of the consent if it is one of the case's, granted to ``agency_id``;
        else InvalidInput, the same for a consent of another case or agency as for an id
        that does not exist: decided from what is known (a consent this process granted)
        or one statement scoped to the case and agency, with nothing loaded."""
        purpose = self.parties.covering_purpose(consent_id, case_id, agency_id)
        if purpose is None:
            purpose = self.app.projections.current(
                ["consents"],
                lambda: consents_model.covering_purpose(self.db, consent_id, case_id, agency_id),
            )
        if purpose is None:
            raise InvalidInput("consent_id", "no consent of this case for this agency")
        return purpose

    def case_facts(self, case_id: UUID, owner_agency_id: UUID) -> CaseFacts:
        """What the policy needs of a case, from its ids and the owner's directory entry."""
        restricted = directory_model.is_restricted(self.db, owner_agency_id)
        return CaseFacts(case_id, owner_agency_id, restricted)

    def consent_facts(self, case_id: UUID, agency_id: UUID | None = None) -> list[ConsentFacts]:
        """The case's consents (to ``agency_id`` only, if given), active or not."""
        return [consent_facts(r) for r in consents_model.consent_terms(self.db, case_id, agency_id)]

    def emergency_facts(self, case_id: UUID, agency_id: UUID | None = None) -> list[EmergencyFacts]:
        """The case's emergency grants (to ``agency_id`` only, if given), active or not."""
        rows = consents_model.emergency_terms(self.db, case_id, agency_id)
        return [emergency_facts(r) for r in rows]

    def scoped_case(
        self, actor: Actor, case_id: UUID, at: datetime | None = None
    ) -> tuple[UUID, Grant]:
        """The case's client and what the actor's agency may see of it; NotFound if nothing.

        Decided from the read models by one statement scoped to the caller's agency
        (the case's row only with the owner, or with this agency's consents), before
        any event is loaded or decrypted: a case the caller cannot see costs what a
        random id costs, and answers the same (no existence oracle, API.md).
        """
        agency_id = actor.agency_id
        if agency_id is None:
            raise NotFound("case not found")
        client_id = self.parties.owners_client(case_id, agency_id)
        if client_id is not None:  # the owner, known (a case's parties never change)
            return client_id, owner_grant(agency_id)
        # ``current``: never on a model a rebuild is replaying (a consent missing would
        # be a wrong 404, a withdrawal missing a disclosure).
        scope = self.app.projections.current(
            ["cases", "consents", "directory"],
            lambda: cases_model.scoped_case(self.db, case_id, agency_id),
        )
        if scope is None:
            raise NotFound("case not found")
        owner_agency_id, client_id = UUID(scope.owner_agency_id), UUID(scope.client_id)
        if owner_agency_id.int == agency_id.int:
            self.parties.remember_case(case_id, owner_agency_id, client_id)
            return client_id, owner_grant(agency_id)
        facts = CaseFacts(case_id, owner_agency_id, scope.restricted)
        consents = [consent_facts(r) for r in scope.consents]
        emergencies = [emergency_facts(r) for r in scope.emergencies]
        grant = sections_visible_to(facts, consents, agency_id, at or utcnow(), emergencies)
        if not grant.visible:
            raise NotFound("case not found")
        return client_id, grant

    def visible_case(
        self, actor: Actor, case_id: UUID, at: datetime | None = None, *, personal: bool = True
    ) -> tuple[Case, Grant]:
        """The case and what the actor's agency may see of it now; NotFound if nothing
        (decided by :meth:`scoped_case` before the case is loaded).

        ``personal=False``: the case sealed, for a caller that will not show it.
        """
        # The scoped lookup names the client, whose data key is read with the events.
        client_id, grant = self.scoped_case(actor, case_id, at)
        return self.app.get(Case, case_id, personal=personal, subjects=(client_id,)), grant

    def owner_view(self, case: Case) -> CaseView:
        """The case as its owner sees it (every section), as a command left it."""
        client = self.app.get(Client, case.client_id)
        return render_case(case, client, owner_grant(case.owner_agency_id))

    def read_case(self, actor: Actor, case_id: UUID) -> CaseView:
        """GET /v1/cases/{id}: the owner everything, a grantee its granted sections.

        A grantee's read is recorded as a disclosure before anything is returned.
        """
        # The owner's read (most reads) needs no read model; anyone else's is decided
        # by the policy before anything is loaded.
        client_id, grant = self.scoped_case(actor, case_id)
        return self._read(actor, case_id, client_id, grant)

    def _read(self, actor: Actor, case_id: UUID, client_id: UUID, grant: Grant) -> CaseView:
        """Case and client in one statement, the read recorded, the view rendered."""
        case, client = self.app.get_all((Case, case_id), (Client, client_id))
        assert isinstance(case, Case)
        assert isinstance(client, Client)
        self.record_disclosure(actor, case, grant)
        return render_case(case, client, grant)

    def record_disclosure(self, actor: Actor, case: Case, grant: Grant) -> None:
        """Rule 5: every read by another agency of a case's sections is recorded."""
        if grant.basis == OWNER or not grant.sections:
            return
        assert actor.agency_id is not None
        self.app.save(
            Disclosure.record(
                case_id=case.id,
                client_id=case.client_id,
                owner_agency_id=case.owner_agency_id,
                recipient_agency_id=actor.agency_id,
                worker_id=actor.require_worker(),
                sections=grant.sections,
                consent_ids=grant.consent_ids,
                purposes=tuple(consents_model.purposes_of(self.db, grant.consent_ids)),
                emergency_grant_ids=grant.emergency_ids,
                legal_bases=grant.legal_bases,
            )
        )

    def disclosures(
        self,
        actor: Actor,
        *,
        case_id: UUID | None,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        after: str | None,
    ) -> Page[DisclosureView]:
        """GET /v1/disclosures: the accounting of disclosures of the agency's cases."""
        agency_id = actor.require_agency()
        if case_id is not None:
            self.owned_case(actor, case_id, personal=False)
        actor.require_role(CASE_OVERSEERS, "see the accounting of disclosures")
        limit = check_limit(limit)
        cursor = decode_cursor(after, 2)
        rows = self.app.projections.current(
            ["disclosures"],
            lambda: disclosures_model.agency_disclosures(
                self.db,
                agency_id,
                case_id=case_id,
                since=since,
                until=until,
                after=cursor,
                limit=limit + 1,
            ),
        )
        items = [render_disclosure(r) for r in rows]
        return page_of(items, limit, lambda d: (normalise_time(d.at), str(d.id)))

    def list_cases(
        self, actor: Actor, *, status: str | None, limit: int | None, after: str | None
    ) -> Page[CaseListItem]:
        """GET /v1/cases: the agency's own cases, oldest first."""
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        if status is not None and status not in ("open", "closed"):
            raise InvalidInput("status", "must be open or closed")
        cursor = decode_cursor(after, 2)
        rows = self.app.projections.current(
            ["cases"],
            lambda: cases_model.agency_cases(
                self.db, agency_id, status=status, after=cursor, limit=limit + 1
            ),
        )
        keys = self._keys_of(rows)
        items = [render_case_item(r, self._client_name(r, keys)) for r in rows]
        return page_of(items, limit, lambda i: (normalise_time(i.created_at), str(i.id)))

    def _keys_of(self, rows: list[cases_model.CaseListRow]) -> SubjectKeys | None:
        """The data keys of the rows' clients, read now in one statement (no process
        keeps keys: an erasure shows in the next read of any process)."""
        if self.app.keyring is None:
            return None
        named = {r.client_id for r in rows if r.name_ciphertext is not None}
        return self.app.keyring.keys_for_reading([UUID(c) for c in named])

    def _client_name(self, row: cases_model.CaseListRow, keys: SubjectKeys | None) -> str | None:
        client_id = UUID(row.client_id)
        binding = Binding(client_id, client_id, 1, "name")
        name = decrypt_stored_field(self.app.keyring, binding, row.name_ciphertext, keys)
        return None if name is None else str(name)

    def shared_cases(
        self, actor: Actor, *, limit: int | None, after: str | None
    ) -> Page[SharedCase]:
        """GET /v1/shared-cases: cases other agencies share with the caller's, right now."""
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        now = utcnow()
        cursor = decode_cursor(after, 1)

        def shared() -> Page[SharedCase]:
            rows = consents_model.shared_with(
                self.db, agency_id, now, after=cursor[0] if cursor else None, limit=limit + 1
            )
            page = page_of(rows, limit, lambda row: (row.case_id,))
            items = []
            for row in page.items:
                case_id, owner_agency_id = UUID(row.case_id), UUID(row.owner_agency_id)
                # From the read models alone: nothing is loaded before the policy decides.
                grant = sections_visible_to(
                    self.case_facts(case_id, owner_agency_id),
                    self.consent_facts(case_id, agency_id),
                    agency_id,
                    now,
                    self.emergency_facts(case_id, agency_id),
                )
                if grant.visible:  # the policy has the last word (a restricted owner, say)
                    items.append(
                        SharedCase(
                            case_id=case_id,
                            owner_agency_id=owner_agency_id,
                            sections=list(grant.sections),
                            shared_under=list(grant.consent_ids),
                            shared_under_emergency=list(grant.emergency_ids),
                        )
                    )
            return Page(items, page.next)

        return self.app.projections.current(["consents", "directory"], shared)

    def owned_case(self, actor: Actor, case_id: UUID, *, personal: bool = True) -> Case:
        """The case for its owner: NotFound if the actor's agency cannot see it at all,
        NotPermitted if it sees it as a grantee (existence is never disclosed).
        ``personal=False``: sealed, for a command or a check that shows nothing of it."""
        case, grant = self.visible_case(actor, case_id, personal=personal)
        if grant.basis != OWNER:
            raise NotPermitted("only the owning agency may do this")
        return case

    def access(self, actor: Actor, case_id: UUID, at: datetime | None) -> Access:
        """GET /v1/cases/{id}/access: who could see which sections at ``at``."""
        case = self.owned_case(actor, case_id)
        actor.require_role(CASE_OVERSEERS, "see who had access")
        instant = at or utcnow()
        if instant.tzinfo is None:
            raise InvalidInput("at", "must carry a timezone")
        # The owner's read skipped the read models: read your writes here.
        grants = self.app.projections.current(
            ["consents", "directory"],
            lambda: access_at(
                self.case_facts(case.id, case.owner_agency_id),
                self.consent_facts(case_id),
                instant,
                self.emergency_facts(case_id),
            ),
        )
        return Access(
            at=instant,
            case_id=case_id,
            grants=[
                AccessGrant(
                    agency_id=g.agency_id,
                    sections=list(g.sections),
                    basis=g.basis,
                    consent_id=g.consent_ids[0] if g.consent_ids else None,
                    consent_ids=list(g.consent_ids),
                    emergency_grant_ids=list(g.emergency_ids),
                    legal_bases=list(g.legal_bases),
                )
                for g in grants
            ],
        )

    def consents_of_case(self, actor: Actor, case_id: UUID) -> list[ConsentView]:
        """GET /v1/cases/{id}/consents: every consent of the case, for the owner."""
        self.owned_case(actor, case_id, personal=False)
        consent_ids = self.app.projections.current(  # as in access()
            ["consents"], lambda: consents_model.consent_ids_of_case(self.db, case_id)
        )
        return [render_consent(self.app.get(Consent, c)) for c in consent_ids]

    def consent(self, actor: Actor, consent_id: UUID) -> Consent:
        """The consent, for workers of the agency that owns its case; the agency is
        checked on the read model before the consent is loaded (no existence oracle)."""
        agency_id = actor.agency_id
        if agency_id is None or not self.app.projections.current(
            ["consents"], lambda: consents_model.consent_owned_by(self.db, consent_id, agency_id)
        ):
            raise NotFound("consent not found")
        return self.app.get(Consent, consent_id)
