"""The client's right of access (GDPR Art. 15): a copy of everything held about them.

Asked by a supervisor or an admin of the agency that registered the client, who hands
it to the client. The agency is checked on the read model before anything is loaded,
so another agency's client and a random id answer alike (404). Everything is then
loaded in one statement with the client's data key (decrypted: the copy is the
client's own), the agencies by name in a second, and the accounting of disclosures
from its read model.

Each copy is itself recorded, as a ``SubjectAccessProvided`` event on the client (who
asked, when): in the audit trail of the log, and listed in every later copy.
"""

from __future__ import annotations

from uuid import UUID

from casenet.application.actor import ADMIN, SUPERVISOR, Actor
from casenet.application.case_queries import client_registered_by
from casenet.application.rendering import render_disclosure
from casenet.application.store import CasenetApplication
from casenet.application.subject_access_views import (
    AgencyRef,
    SubjectAccess,
    SubjectAccessRequest,
    SubjectClient,
    SubjectDisclosure,
    subject_case,
    subject_consent,
    subject_emergency_grant,
    subject_referral,
)
from casenet.application.views import DisclosureView
from casenet.domain.agency import Agency
from casenet.domain.aggregate import Aggregate, DomainEvent, utcnow
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.emergency import EmergencyGrant
from casenet.domain.errors import NotFound
from casenet.domain.referral import Referral
from casenet.domain.wording import sections_in_words
from casenet.infrastructure.projections import cases as cases_model
from casenet.infrastructure.projections import consents as consents_model
from casenet.infrastructure.projections import disclosures as disclosures_model
from casenet.infrastructure.projections import emergency_grants as emergency_model
from casenet.infrastructure.projections import referrals as referrals_model

#: Who may make the copy for the client (API.md, "The client's own rights").
SUBJECT_ACCESS_ROLES = frozenset({SUPERVISOR, ADMIN})
#: Disclosures read per statement (the accounting of one case may be long).
_PAGE = 500


class SubjectAccessService:
    """Makes, and records, the client's copy of their data."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app
        self.db = app.database

    def copy_for_client(self, actor: Actor, client_id: UUID) -> SubjectAccess:
        """Everything casenet holds about the client, decrypted, for the client."""
        agency_id = actor.agency_id
        if agency_id is None or not client_registered_by(self.app, client_id, agency_id):
            raise NotFound("client not found")
        actor.require_role(SUBJECT_ACCESS_ROLES, "make a copy of a client's data")
        wanted = self.app.projections.current(
            ["cases", "consents", "referrals"], lambda: self._aggregates_of(client_id)
        )
        history: dict[UUID, list[DomainEvent]] = {}
        loaded = self.app.get_all(
            (Client, client_id), *wanted, subjects=(client_id,), history=history
        )
        client = loaded[0]
        assert isinstance(client, Client)
        client.provide_subject_access(agency_id=agency_id, worker_id=actor.require_worker())
        self.app.save(client)
        disclosures = self._disclosures([a for a in loaded if isinstance(a, Case)])
        return self._copy(client, loaded[1:], history, disclosures)

    def _aggregates_of(self, client_id: UUID) -> list[tuple[type[Aggregate], UUID]]:
        """The client's cases and, per case, its consents, emergency grants and referrals."""
        wanted: list[tuple[type[Aggregate], UUID]] = []
        for case_id in cases_model.case_ids_of_client(self.db, client_id):
            wanted.append((Case, case_id))
            wanted += [(Consent, i) for i in consents_model.consent_ids_of_case(self.db, case_id)]
            grants = emergency_model.emergency_grant_ids_of_case(self.db, case_id)
            wanted += [(EmergencyGrant, i) for i in grants]
            referrals = referrals_model.referral_ids_of_case(self.db, case_id)
            wanted += [(Referral, i) for i in referrals]
        return wanted

    def _disclosures(self, cases: list[Case]) -> list[DisclosureView]:
        """The accounting of disclosures of the client's cases, oldest first."""

        def read() -> list[DisclosureView]:
            found: list[DisclosureView] = []
            for case in cases:
                after: tuple[str, ...] | None = None
                while True:
                    rows = disclosures_model.agency_disclosures(
                        self.db, case.owner_agency_id, case_id=case.id,
                        since=None, until=None, after=after, limit=_PAGE,
                    )  # fmt: skip
                    found += [render_disclosure(row) for row in rows]
                    if len(rows) < _PAGE:
                        break
                    after = (rows[-1].at, rows[-1].disclosure_id)
            return sorted(found, key=lambda d: (d.at, str(d.id)))

        return self.app.projections.current(["disclosures"], read)

    def _agencies(self, ids: set[UUID]) -> dict[UUID, AgencyRef]:
        """The agencies named in the copy, by id, read in one statement."""
        ordered = sorted(ids, key=str)
        found = self.app.get_all(*[(Agency, i) for i in ordered])
        return {a.id: AgencyRef(id=a.id, name=a.name) for a in found if isinstance(a, Agency)}

    def _copy(
        self,
        client: Client,
        aggregates: list[Aggregate],
        history: dict[UUID, list[DomainEvent]],
        disclosures: list[DisclosureView],
    ) -> SubjectAccess:
        """Long because it lists every kind of record of the copy, each in its place."""
        now = utcnow()
        cases = [a for a in aggregates if isinstance(a, Case)]
        consents = [a for a in aggregates if isinstance(a, Consent)]
        grants = [a for a in aggregates if isinstance(a, EmergencyGrant)]
        referrals = [a for a in aggregates if isinstance(a, Referral)]
        agency_ids = {client.registered_by_agency_id}
        agency_ids |= {c.owner_agency_id for c in cases}
        agency_ids |= {c.grantee_agency_id for c in consents}
        agency_ids |= {g.grantee_agency_id for g in grants}
        agency_ids |= {d.recipient_agency_id for d in disclosures}
        for referral in referrals:
            agency_ids |= {referral.from_agency_id, referral.to_agency_id}
            agency_ids |= {s.agency_id for s in referral.history}
            agency_ids |= {m.agency_id for m in referral.messages}
        names = self._agencies(agency_ids)

        def agency(agency_id: UUID) -> AgencyRef:
            return names.get(agency_id) or AgencyRef(id=agency_id, name="an agency")

        return SubjectAccess(
            client_id=client.id,
            produced_at=now,
            registered_by=agency(client.registered_by_agency_id),
            erased=client.erased,
            erased_at=client.erased_at,
            client=SubjectClient(
                name=client.name,
                date_of_birth=client.date_of_birth,
                phone=client.phone,
                address=client.address,
            ),
            cases=[subject_case(c, history[c.id], agency) for c in cases],
            consents=[subject_consent(c, history[c.id], agency, now) for c in consents],
            emergency_grants=[
                subject_emergency_grant(g, history[g.id], agency, now) for g in grants
            ],
            disclosures=[
                SubjectDisclosure(
                    at=d.at,
                    case_id=d.case_id,
                    agency=agency(d.recipient_agency_id),
                    sections=d.sections,
                    section_descriptions=sections_in_words(d.sections),
                    basis=d.basis,
                    purposes=d.purposes,
                    consent_ids=d.consent_ids,
                    emergency_grant_ids=d.emergency_grant_ids,
                )
                for d in disclosures
            ],
            referrals=[subject_referral(r, history[r.id], agency) for r in referrals],
            requests=[
                SubjectAccessRequest(at=s.at, agency_id=s.agency_id, worker_id=s.worker_id)
                for s in client.subject_accesses
            ],
        )
