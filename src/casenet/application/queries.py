"""The read path: read models for finding, aggregates for content, the policy on top.

Every read starts by bringing the read models up to the log's head (read your
writes), scopes its query to the caller's agency before it runs, and applies the
visibility policy again at the request's instant: a consent that expired or was
withdrawn a moment ago shows nothing, even if a read model were behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec

from casenet.application.actor import AUDITOR, SUPERVISOR, Actor
from casenet.application.pages import Page, check_limit, decode_cursor, page_of
from casenet.application.store import CasenetApplication
from casenet.application.views import (
    Access,
    AccessGrant,
    CaseListItem,
    CaseView,
    ClientView,
    ConsentView,
    DisclosureView,
    FeedItem,
    NoteView,
    ReferralListItem,
    ReferralView,
    SharedCase,
    StatusChangeView,
)
from casenet.domain.aggregate import shown, utcnow
from casenet.domain.case import Case
from casenet.domain.client import Client
from casenet.domain.consent import Consent
from casenet.domain.disclosure import Disclosure
from casenet.domain.errors import InvalidInput, NotFound, NotPermitted
from casenet.domain.referral import Referral
from casenet.domain.sections import (
    CONTACT,
    IDENTIFYING,
    IDENTITY,
    NEEDS,
    NOTE_SECTIONS,
    REFERRAL,
    SUMMARY,
    note_section,
)
from casenet.domain.visibility import (
    CONSENT,
    OWNER,
    CaseFacts,
    ConsentFacts,
    Grant,
    access_at,
    consent_status,
    owner_grant,
    sections_visible_to,
)
from casenet.infrastructure.crypto import Binding
from casenet.infrastructure.mapper import SubjectKeys, decrypt_stored_field
from casenet.infrastructure.projections.facts import normalise_time, parse_time

CASE_OVERSEERS = frozenset({SUPERVISOR, AUDITOR})
#: Cases whose owner and client a process remembers (about 250 bytes each).
PARTIES_KEPT = 20_000

#: A case's parties and the caller's consents on it, or no row if the caller's agency
#: is neither its owner nor a grantee of any of its consents (active or not).
_SCOPED_CASE = (
    "SELECT c.owner_agency_id, c.client_id, a.restricted, k.consent_id, "
    "k.grantee_agency_id, k.sections, k.granted_at, k.withdrawn_at, k.valid_until "
    "FROM rm_cases c LEFT JOIN rm_agencies a ON a.agency_id = c.owner_agency_id "
    "LEFT JOIN rm_consents k ON k.case_id = c.case_id AND k.grantee_agency_id = %s "
    "WHERE c.case_id = %s AND (c.owner_agency_id = %s OR k.consent_id IS NOT NULL)"
)
#: The consent if the caller's agency owns its case.
_SCOPED_CONSENT = "SELECT 1 FROM rm_consents WHERE consent_id = %s AND owner_agency_id = %s"
#: The consent's purpose if it is the case's, granted to the agency.
_COVERING_CONSENT = (
    "SELECT purpose FROM rm_consents WHERE consent_id = %s AND case_id = %s "
    "AND grantee_agency_id = %s"
)
#: The referral if the caller's agency is one of its parties.
_SCOPED_REFERRAL = (
    "SELECT 1 FROM rm_referrals WHERE referral_id = %s "
    "AND (from_agency_id = %s OR to_agency_id = %s)"
)
#: The case if the caller's agency owns it.
_OWNED_CASE = "SELECT 1 FROM rm_cases WHERE case_id = %s AND owner_agency_id = %s"
#: The client if the caller's agency registered it.
_SCOPED_CLIENT = "SELECT 1 FROM rm_clients WHERE client_id = %s AND registered_by_agency_id = %s"


def client_registered_by(app: CasenetApplication, client_id: UUID, agency_id: UUID) -> bool:
    """Whether ``agency_id`` registered the client, from the read model: asked before the
    client is loaded, so an unknown and another agency's client cost and answer alike."""
    params = (str(client_id), str(agency_id))
    return bool(
        app.projections.current(
            ["cases"], lambda: app.database.run(_SCOPED_CLIENT, params, commit=False)
        )
    )


def case_owned_by(app: CasenetApplication, case_id: UUID, agency_id: UUID) -> bool:
    """Whether ``agency_id`` owns the case, from the read model (as above)."""
    params = (str(case_id), str(agency_id))
    return bool(
        app.projections.current(
            ["cases"], lambda: app.database.run(_OWNED_CASE, params, commit=False)
        )
    )


K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    """Facts that never change (ids only), the oldest forgotten past ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[K, V] = {}
        #: The dict's own ``get``: no Python frame in between.
        self.get: Callable[[K], V | None] = self._entries.get

    def __setitem__(self, key: K, value: V) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self.size:
            # Threads share the map: another may have removed the same oldest key.
            entries.pop(next(iter(entries), key), None)
        entries[key] = value


def _time(value: str) -> datetime:
    parsed = parse_time(value)
    assert parsed is not None
    return parsed


def _consent_facts(r: Any) -> ConsentFacts:
    return ConsentFacts(
        consent_id=UUID(r["consent_id"]),
        grantee_agency_id=UUID(r["grantee_agency_id"]),
        sections=tuple(msgspec.json.decode(r["sections"])),
        granted_at=_time(r["granted_at"]),
        withdrawn_at=parse_time(r["withdrawn_at"]),
        valid_until=parse_time(r["valid_until"]),
    )


class CaseQueries:
    """Cases, consents and access, as the caller's agency may see them."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app
        self.db = app.database
        #: case id -> (owning agency, client): fixed when the case opens, never personal.
        #: Keyed by the case id's int, the owner as its int: hashed and compared in C (a
        #: UUID's hash and equality are Python code).
        self._parties: BoundedMap[int, tuple[int, UUID]] = BoundedMap(PARTIES_KEPT)
        #: consent id -> (case, grantee agency, purpose): fixed when it is granted.
        self._consents: BoundedMap[int, tuple[int, int, str]] = BoundedMap(PARTIES_KEPT)

    def remember_case(self, case: Case) -> None:
        """A case's parties, as the command that opened it knows them: the owner's next
        command needs no read model to know it is the owner."""
        self._parties[case.id.int] = (case.owner_agency_id.int, case.client_id)

    def remember_consent(self, consent: Consent) -> None:
        """A consent's case, grantee and purpose, as the command that granted it knows
        them (see :meth:`covering_consent`)."""
        entry = (consent.case_id.int, consent.grantee_agency_id.int, consent.purpose)
        self._consents[consent.id.int] = entry

    def covering_consent(self, consent_id: UUID, case_id: UUID, agency_id: UUID) -> str:
        """The purpose of the consent if it is one of the case's, granted to ``agency_id``;
        else InvalidInput, the same for a consent of another case or agency as for an id
        that does not exist: decided from what is known (a consent this process granted)
        or one statement scoped to the case and agency, with nothing loaded."""
        known = self._consents.get(consent_id.int)
        if known is not None and known[:2] == (case_id.int, agency_id.int):
            return known[2]
        params = (str(consent_id), str(case_id), str(agency_id))
        rows = self.app.projections.current(
            ["consents"], lambda: self._rows(_COVERING_CONSENT, params)
        )
        if not rows:
            raise InvalidInput("consent_id", "no consent of this case for this agency")
        return str(rows[0]["purpose"])

    def _rows(self, query: str, params: tuple[Any, ...]) -> list[Any]:
        return self.db.run(query, params, commit=False)

    def case_facts(self, case: Case) -> CaseFacts:
        return self.facts_of(case.id, case.owner_agency_id)

    def facts_of(self, case_id: UUID, owner_agency_id: UUID) -> CaseFacts:
        """What the policy needs of a case, from its ids and the owner's directory entry."""
        rows = self._rows(
            "SELECT restricted FROM rm_agencies WHERE agency_id = %s", (str(owner_agency_id),)
        )
        return CaseFacts(case_id, owner_agency_id, bool(rows and rows[0]["restricted"]))

    def consent_facts(self, case_id: UUID, agency_id: UUID | None = None) -> list[ConsentFacts]:
        query = (
            "SELECT consent_id, grantee_agency_id, sections, granted_at, withdrawn_at, "
            "valid_until FROM rm_consents WHERE case_id = %s"
        )
        params: tuple[Any, ...] = (str(case_id),)
        if agency_id is not None:
            query += " AND grantee_agency_id = %s"
            params += (str(agency_id),)
        return [_consent_facts(r) for r in self._rows(query, params)]

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
        client_id = self._owners_client(actor, case_id)
        if client_id is not None:  # the owner, known (a case's parties never change)
            return client_id, owner_grant(agency_id)
        # ``current``: never on a model a rebuild is replaying (a consent missing would
        # be a wrong 404, a withdrawal missing a disclosure).
        params = (str(agency_id), str(case_id), str(agency_id))
        rows = self.app.projections.current(
            ["cases", "consents", "directory"], lambda: self._rows(_SCOPED_CASE, params)
        )
        if not rows:
            raise NotFound("case not found")
        first = rows[0]
        owner_agency_id, client_id = UUID(first["owner_agency_id"]), UUID(first["client_id"])
        if owner_agency_id.int == agency_id.int:
            self._parties[case_id.int] = (owner_agency_id.int, client_id)
            return client_id, owner_grant(agency_id)
        facts = CaseFacts(case_id, owner_agency_id, bool(first["restricted"]))
        consents = [_consent_facts(r) for r in rows]
        grant = sections_visible_to(facts, consents, agency_id, at or utcnow())
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

    def _grant(self, actor: Actor, case: Case) -> Grant:
        """The owner's grant (the owner sees everything whatever its consents say, rule 1:
        no lookups, no clock); anyone else's from :meth:`scoped_case`."""
        assert actor.agency_id is not None
        if actor.agency_id.int == case.owner_agency_id.int:  # UUID's == is Python code
            return owner_grant(actor.agency_id)
        return self.scoped_case(actor, case.id)[1]

    def _owners_client(self, actor: Actor, case_id: UUID) -> UUID | None:
        """The case's client if ``actor``'s agency is known to own the case, else None."""
        parties = self._parties.get(case_id.int)
        agency_id = actor.agency_id
        if parties is None or agency_id is None or agency_id.int != parties[0]:
            return None
        return parties[1]

    def read_owned_case(self, actor: Actor, case_id: UUID) -> CaseView | None:
        """:meth:`read_case` if ``actor``'s agency is known to own the case (one
        statement, nothing written: fit for the event loop), else None."""
        client_id = self._owners_client(actor, case_id)
        if client_id is None:
            return None
        case, client = self.app.get_all((Case, case_id), (Client, client_id))
        assert isinstance(case, Case)
        assert isinstance(client, Client)
        grant = self._grant(actor, case)
        self.record_disclosure(actor, case, grant)
        return render_case(case, client, grant)

    def read_case(self, actor: Actor, case_id: UUID) -> CaseView:
        """GET /v1/cases/{id}: the owner everything, a grantee its granted sections.

        A grantee's read is recorded as a disclosure before anything is returned.
        """
        # The owner's read (most reads): case and client in one statement.
        view = self.read_owned_case(actor, case_id)
        if view is not None:
            return view
        # Anyone else's: the policy decides before anything is loaded.
        client_id, grant = self.scoped_case(actor, case_id)
        case, client = self.app.get_all((Case, case_id), (Client, client_id))
        assert isinstance(case, Case)
        assert isinstance(client, Client)
        self.record_disclosure(actor, case, grant)
        return render_case(case, client, grant)

    def record_disclosure(self, actor: Actor, case: Case, grant: Grant) -> None:
        """Rule 5: every read by another agency of a case's sections is recorded."""
        if grant.basis != CONSENT or not grant.sections:
            return
        marks = ", ".join(["%s"] * len(grant.consent_ids))
        rows = self._rows(
            f"SELECT DISTINCT purpose FROM rm_consents WHERE consent_id IN ({marks})",  # noqa: S608
            tuple(str(c) for c in grant.consent_ids),
        )
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
                purposes=tuple(str(r["purpose"]) for r in rows),
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
        query = "SELECT * FROM rm_disclosures WHERE owner_agency_id = %s"
        params: tuple[Any, ...] = (str(agency_id),)
        if case_id is not None:
            query += " AND case_id = %s"
            params += (str(case_id),)
        if since is not None:
            query += " AND at >= %s"
            params += (normalise_time(since),)
        if until is not None:
            query += " AND at < %s"
            params += (normalise_time(until),)
        cursor = decode_cursor(after, 2)
        if cursor is not None:
            query += " AND (at > %s OR (at = %s AND disclosure_id > %s))"
            params += (cursor[0], cursor[0], cursor[1])
        rows = self.app.projections.current(
            ["disclosures"],
            lambda: self._rows(
                query + " ORDER BY at, disclosure_id LIMIT %s", (*params, limit + 1)
            ),
        )
        items = []
        for r in rows:
            consent_ids = msgspec.json.decode(r["consent_ids"])
            items.append(
                DisclosureView(
                    id=UUID(r["disclosure_id"]),
                    case_id=UUID(r["case_id"]),
                    at=_time(r["at"]),
                    recipient_agency_id=UUID(r["recipient_agency_id"]),
                    worker_id=UUID(r["worker_id"]),
                    sections=msgspec.json.decode(r["sections"]),
                    purposes=msgspec.json.decode(r["purposes"]),
                    consent_ids=consent_ids,
                    # Only a referral that names no consent discloses without one.
                    basis=CONSENT if consent_ids else REFERRAL,
                )
            )
        return page_of(items, limit, lambda d: (normalise_time(d.at), str(d.id)))

    def list_cases(
        self, actor: Actor, *, status: str | None, limit: int | None, after: str | None
    ) -> Page[CaseListItem]:
        """GET /v1/cases: the agency's own cases, oldest first."""
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        if status is not None and status not in ("open", "closed"):
            raise InvalidInput("status", "must be open or closed")
        query = (
            "SELECT c.case_id, c.version, c.status, c.client_id, c.needs, c.note_count, "
            "c.created_at, c.updated_at, k.name_ciphertext, k.erased FROM rm_cases c "
            "JOIN rm_clients k ON k.client_id = c.client_id WHERE c.owner_agency_id = %s"
        )
        params: tuple[Any, ...] = (str(agency_id),)
        if status is not None:
            query += " AND c.status = %s"
            params += (status,)
        cursor = decode_cursor(after, 2)
        if cursor is not None:
            query += " AND (c.created_at > %s OR (c.created_at = %s AND c.case_id > %s))"
            params += (cursor[0], cursor[0], cursor[1])
        query += " ORDER BY c.created_at, c.case_id LIMIT %s"
        rows = self.app.projections.current(
            ["cases"], lambda: self._rows(query, (*params, limit + 1))
        )
        keys = self._keys_of(rows)
        items = [self._case_item(r, keys) for r in rows]
        return page_of(items, limit, lambda i: (normalise_time(i.created_at), str(i.id)))

    def _keys_of(self, rows: list[Any]) -> SubjectKeys | None:
        """The data keys of the rows' clients, read now in one statement (no process
        keeps keys: an erasure shows in the next read of any process)."""
        if self.app.keyring is None:
            return None
        named = {r["client_id"] for r in rows if r["name_ciphertext"] is not None}
        return self.app.keyring.keys_for_reading([UUID(c) for c in named])

    def _case_item(self, r: Any, keys: SubjectKeys | None) -> CaseListItem:
        client_id = UUID(r["client_id"])
        name = decrypt_stored_field(
            self.app.keyring, Binding(client_id, client_id, 1, "name"), r["name_ciphertext"], keys
        )
        return CaseListItem(
            id=UUID(r["case_id"]),
            version=int(r["version"]),
            status=r["status"],
            client_id=client_id,
            client_name=name,
            erased=bool(r["erased"]),
            needs=msgspec.json.decode(r["needs"]),
            note_count=int(r["note_count"]),
            created_at=_time(r["created_at"]),
            updated_at=_time(r["updated_at"]),
        )

    def shared_cases(
        self, actor: Actor, *, limit: int | None, after: str | None
    ) -> Page[SharedCase]:
        """GET /v1/shared-cases: cases other agencies share with the caller's, right now."""
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        now = utcnow()
        cursor = decode_cursor(after, 1)
        query = (
            "SELECT DISTINCT case_id, owner_agency_id FROM rm_consents WHERE grantee_agency_id "
            "= %s AND withdrawn_at IS NULL AND (valid_until IS NULL OR valid_until > %s)"
        )
        params: tuple[Any, ...] = (str(agency_id), normalise_time(now))
        if cursor is not None:
            query += " AND case_id > %s"
            params += (cursor[0],)

        def shared() -> Page[SharedCase]:
            rows = self._rows(query + " ORDER BY case_id LIMIT %s", (*params, limit + 1))
            found = [(UUID(r["case_id"]), UUID(r["owner_agency_id"])) for r in rows]
            page = page_of(found, limit, lambda item: (str(item[0]),))
            items = []
            for case_id, owner_agency_id in page.items:
                # From the read models alone: nothing is loaded before the policy decides.
                grant = sections_visible_to(
                    self.facts_of(case_id, owner_agency_id),
                    self.consent_facts(case_id, agency_id),
                    agency_id,
                    now,
                )
                if grant.visible:  # the policy has the last word (a restricted owner, say)
                    items.append(
                        SharedCase(
                            case_id=case_id,
                            owner_agency_id=owner_agency_id,
                            sections=list(grant.sections),
                            shared_under=list(grant.consent_ids),
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
            lambda: access_at(self.case_facts(case), self.consent_facts(case_id), instant),
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
                )
                for g in grants
            ],
        )

    def consents_of_case(self, actor: Actor, case_id: UUID) -> list[ConsentView]:
        """GET /v1/cases/{id}/consents: every consent of the case, for the owner."""
        self.owned_case(actor, case_id, personal=False)
        rows = self.app.projections.current(  # as in access()
            ["consents"],
            lambda: self._rows(
                "SELECT consent_id FROM rm_consents WHERE case_id = %s "
                "ORDER BY granted_at, consent_id",
                (str(case_id),),
            ),
        )
        return [render_consent(self.app.get(Consent, UUID(r["consent_id"]))) for r in rows]

    def consent(self, actor: Actor, consent_id: UUID) -> Consent:
        """The consent, for workers of the agency that owns its case; the agency is
        checked on the read model before the consent is loaded (no existence oracle)."""
        if actor.agency_id is None:
            raise NotFound("consent not found")
        params = (str(consent_id), str(actor.agency_id))
        if not self.app.projections.current(
            ["consents"], lambda: self._rows(_SCOPED_CONSENT, params)
        ):
            raise NotFound("consent not found")
        return self.app.get(Consent, consent_id)


class FeedQueries:
    """GET /v1/feed: what concerns the caller's agency, in log order, already redacted."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app

    def feed(self, actor: Actor, *, limit: int | None, after: str | None) -> Page[FeedItem]:
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        cursor = decode_cursor(after, 1)
        try:
            position = int(cursor[0]) if cursor else 0
        except ValueError:
            raise InvalidInput("after", "is not a cursor this list gave") from None
        rows = self.app.projections.current(
            ["feed"],
            lambda: self.app.database.run(
                "SELECT position, type, at, body FROM rm_feed WHERE agency_id = %s "
                "AND position > %s ORDER BY position LIMIT %s",
                (str(agency_id), position, limit + 1),
                commit=False,
            ),
        )
        items = [
            FeedItem(
                position=int(r["position"]),
                type=str(r["type"]),
                at=_time(r["at"]),
                data=msgspec.json.decode(r["body"]),
            )
            for r in rows
        ]
        return page_of(items, limit, lambda i: (str(i.position),))


class ReferralQueries:
    """Referral inbox, outbox, and the referral as each party may see it."""

    def __init__(self, app: CasenetApplication, cases: CaseQueries) -> None:
        self.app = app
        self.cases = cases

    def list(
        self,
        actor: Actor,
        *,
        direction: str,
        status: str | None,
        limit: int | None,
        after: str | None,
    ) -> Page[ReferralListItem]:
        agency_id = actor.require_agency()
        limit = check_limit(limit)
        column = {"incoming": "to_agency_id", "outgoing": "from_agency_id"}.get(direction)
        if column is None:
            raise InvalidInput("direction", "must be incoming or outgoing")
        query = f"SELECT * FROM rm_referrals WHERE {column} = %s"  # noqa: S608 (fixed names)
        params: tuple[Any, ...] = (str(agency_id),)
        if status is not None:
            query += " AND status = %s"
            params += (status,)
        cursor = decode_cursor(after, 2)
        if cursor is not None:
            query += " AND (created_at > %s OR (created_at = %s AND referral_id > %s))"
            params += (cursor[0], cursor[0], cursor[1])
        rows = self.app.projections.current(
            ["referrals"],
            lambda: self.app.database.run(
                query + " ORDER BY created_at, referral_id LIMIT %s",
                (*params, limit + 1),
                commit=False,
            ),
        )
        items = [
            ReferralListItem(
                id=UUID(r["referral_id"]),
                version=int(r["version"]),
                case_id=UUID(r["case_id"]),
                from_agency_id=UUID(r["from_agency_id"]),
                to_agency_id=UUID(r["to_agency_id"]),
                service_type=r["service_type"],
                urgency=r["urgency"],
                status=r["status"],
                message_count=int(r["message_count"]),
                created_at=_time(r["created_at"]),
                updated_at=_time(r["updated_at"]),
                outcome=r["outcome"],
            )
            for r in rows
        ]
        return page_of(items, limit, lambda i: (normalise_time(i.created_at), str(i.id)))

    def party_referral(self, actor: Actor, referral_id: UUID, *, personal: bool = True) -> Referral:
        """The referral, if the actor's agency is one of its two parties: checked on the
        read model before the referral is loaded (no existence oracle)."""
        agency_id = actor.agency_id
        if agency_id is None:
            raise NotFound("referral not found")
        params = (str(referral_id), str(agency_id), str(agency_id))
        rows = self.app.projections.current(
            ["referrals"], lambda: self.app.database.run(_SCOPED_REFERRAL, params, commit=False)
        )
        if not rows:
            raise NotFound("referral not found")
        return self.app.get(Referral, referral_id, personal=personal)

    def read(self, actor: Actor, referral_id: UUID) -> ReferralView:
        """GET /v1/referrals/{id}: client sections for the receiver only as consent grants."""
        referral = self.party_referral(actor, referral_id)
        assert actor.agency_id is not None
        client_view: ClientView | msgspec.UnsetType = msgspec.UNSET
        try:
            case, grant = self.cases.visible_case(actor, referral.case_id, personal=False)
        except NotFound:
            pass
        else:
            client = self.app.get(Client, case.client_id)
            client_view = render_client(client, grant.sections)
            if client_view is not msgspec.UNSET:
                # What this view discloses is the client's identity and contact only.
                shown = tuple(s for s in grant.sections if s in IDENTIFYING)
                self.cases.record_disclosure(actor, case, replace(grant, sections=shown))
        return render_referral(referral, client_view)


def render_client(client: Client, sections: tuple[str, ...]) -> ClientView | msgspec.UnsetType:
    shown(client)
    identity, contact = IDENTITY in sections, CONTACT in sections
    if identity and contact:
        return ClientView(
            name=client.name,
            date_of_birth=client.date_of_birth,
            phone=client.phone,
            address=client.address,
        )
    if identity:
        return ClientView(name=client.name, date_of_birth=client.date_of_birth)
    if contact:
        return ClientView(phone=client.phone, address=client.address)
    return msgspec.UNSET


def render_case(case: Case, client: Client, grant: Grant) -> CaseView:
    """The case view with every section outside ``grant`` left out."""
    shown(case)
    sections = grant.sections
    version, updated_at = case.version, case.modified_on
    if grant.basis != OWNER:
        version, updated_at = visible_version(case, sections)
    view = CaseView(
        id=case.id,
        version=version,
        status=case.status,
        owner_agency_id=case.owner_agency_id,
        client_id=case.client_id,
        erased=client.erased,
        created_at=case.created_on,
        updated_at=updated_at,
        sections=list(sections),
        shared_under=list(grant.consent_ids),
        client=render_client(client, sections),
    )
    if SUMMARY in sections:
        view.summary = None if client.erased else case.summary
    if NEEDS in sections:
        view.needs = list(case.needs)
    # Sections are SECTIONS' own (a grant names no other): a note section is one of
    # NOTE_SECTIONS. A set test in C, where a generator of startswith cost 9.7k.
    if not NOTE_SECTIONS.isdisjoint(sections):
        view.notes = [
            NoteView(
                id=n.id,
                category=n.category,
                text=None if client.erased else n.text,
                author_worker_id=n.author_worker_id,
                created_at=n.created_at,
            )
            for n in case.notes
            if note_section(n.category) in sections
        ]
    return view


def visible_version(case: Case, sections: tuple[str, ...]) -> tuple[int, datetime]:
    """A grantee's ``version`` and ``updated_at`` of the case: those of the last change
    it can see (the opening, a closing or reopening, a note in a section it is granted).
    A change it cannot see (a note in another section) moves neither, so neither tells
    it that anything happened there (API.md, "What a grantee can tell"). It moves with
    every change the grantee can see, but may go back when a grant narrows; the ETag
    (a digest of the view) is what tells any two views apart."""
    version, at = case.status_changed
    for note in case.notes:
        if note.version > version and note_section(note.category) in sections:
            version, at = note.version, note.created_at
    return version, at


def render_consent(consent: Consent) -> ConsentView:
    shown(consent)
    return ConsentView(
        id=consent.id,
        version=consent.version,
        case_id=consent.case_id,
        client_id=consent.client_id,
        grantee_agency_id=consent.grantee_agency_id,
        sections=list(consent.sections),
        purpose=consent.purpose,
        method=consent.method,
        evidence=consent.evidence,
        valid_until=consent.valid_until,
        status=consent_status(
            consent.granted_at, consent.withdrawn_at, consent.valid_until, utcnow()
        ),
        granted_at=consent.granted_at,
        withdrawn_at=consent.withdrawn_at,
        recorded_by_worker_id=consent.recorded_by_worker_id,
    )


def render_referral(referral: Referral, client: ClientView | msgspec.UnsetType) -> ReferralView:
    shown(referral)
    return ReferralView(
        id=referral.id,
        version=referral.version,
        case_id=referral.case_id,
        client_id=referral.client_id,
        from_agency_id=referral.from_agency_id,
        to_agency_id=referral.to_agency_id,
        service_type=referral.service_type,
        reason=referral.reason,
        urgency=referral.urgency,
        consent_id=referral.consent_id,
        status=referral.status,
        created_at=referral.created_on,
        updated_at=referral.modified_on,
        history=[
            StatusChangeView(
                status=h.status,
                at=h.at,
                agency_id=h.agency_id,
                worker_id=h.worker_id,
                outcome=h.outcome,
            )
            for h in referral.history
        ],
        outcome=referral.outcome,
        outcome_note=referral.outcome_note,
        client=client,
    )
