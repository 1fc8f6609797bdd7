"""casenet's read models: the directory, cases, consents and referrals.

Every column is portable text or integer, so the same history gives the same rows
(and the same checksum) on SQLite and PostgreSQL. Personal data appears only as the
ciphertext the log holds (a client's name, for case lists), and goes when the client
is erased.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import msgspec

from casenet.domain.agency import AgencyRegistered, ServicesReplaced, WorkerAdded, WorkerRevoked
from casenet.domain.aggregate import DomainEvent
from casenet.domain.case import CaseClosed, CaseNoteAdded, CaseOpened, CaseReopened
from casenet.domain.client import ClientErased, ClientRegistered
from casenet.domain.consent import ConsentGranted, ConsentWithdrawn
from casenet.domain.disclosure import DisclosureRecorded
from casenet.domain.referral import (
    STATUS_OF_EVENT,
    ReferralCompleted,
    ReferralMessagePosted,
    ReferralRequested,
)
from casenet.infrastructure.projections.base import ReadModel
from casenet.infrastructure.projections.facts import StoredFact, normalise_time
from casenet.infrastructure.sql import Database

_JSON = msgspec.json.Encoder(order="sorted")


def as_json(value: Any) -> str:
    return _JSON.encode(value).decode()


# How a model applies a batch: rows its batch creates are built in memory and the
# batch's later events change them there; events on rows from earlier batches are
# folded into one UPDATE per row, whose effect is that of the events one at a time
# (counts add up, the last version and time win, COALESCE keeps the last value set).
# Those UPDATEs go first, then the INSERTs: an UPDATE of a key the batch creates later
# meets the table as it was before the batch, as it would have one event at a time.


class DirectoryModel(ReadModel):
    """Agencies with their services (the directory), and workers by token hash."""

    name = "directory"
    tables = ("rm_agencies", "rm_workers")
    follows = (AgencyRegistered, ServicesReplaced, WorkerAdded, WorkerRevoked)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_agencies (agency_id TEXT PRIMARY KEY, name TEXT "
            "NOT NULL, kind TEXT NOT NULL, restricted INTEGER NOT NULL, services TEXT NOT NULL, "
            "version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS rm_workers (worker_id TEXT PRIMARY KEY, agency_id TEXT "
            "NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, "
            "active INTEGER NOT NULL, created_at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_workers_agency ON rm_workers (agency_id)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_agencies": "agency_id", "rm_workers": "worker_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        agencies: dict[str, list[Any]] = {}  # created by this batch
        changed: dict[str, list[Any]] = {}  # earlier agencies: [services or None, version, at]
        workers: dict[str, list[Any]] = {}
        revoked: dict[str, None] = {}  # earlier workers
        for fact in facts:
            s, kind = fact.state, fact.event_type
            if kind is AgencyRegistered:
                agencies[fact.aggregate_id] = [
                    fact.aggregate_id,
                    s["name"],
                    s["kind"],
                    int(s["restricted"]),
                    as_json(s["services"]),
                    fact.version,
                    fact.at,
                    fact.at,
                ]
                continue
            services = as_json(s["services"]) if kind is ServicesReplaced else None
            if kind is WorkerAdded:
                worker_id = s["worker_id"]
                workers[worker_id] = [
                    worker_id,
                    fact.aggregate_id,
                    s["name"],
                    s["role"],
                    s["token_hash"],
                    1,
                    fact.at,
                ]
            elif kind is WorkerRevoked:
                if (worker := workers.get(s["worker_id"])) is not None:
                    worker[5] = 0
                else:
                    revoked[s["worker_id"]] = None
            if (agency := agencies.get(fact.aggregate_id)) is not None:
                if services is not None:
                    agency[4] = services
                agency[5], agency[7] = fact.version, fact.at
            elif (change := changed.get(fact.aggregate_id)) is not None:
                if services is not None:
                    change[0] = services
                change[1], change[2] = fact.version, fact.at
            else:
                changed[fact.aggregate_id] = [services, fact.version, fact.at]
        db.write_many(
            cursor,
            "UPDATE rm_agencies SET services = COALESCE(%s, services), version = %s, "
            "updated_at = %s WHERE agency_id = %s",
            [(*change, agency_id) for agency_id, change in changed.items()],
        )
        db.write_many(
            cursor,
            "UPDATE rm_workers SET active = 0 WHERE worker_id = %s",
            [(worker_id,) for worker_id in revoked],
        )
        db.insert_rows(
            cursor,
            "rm_agencies",
            list(agencies.values()),
        )
        db.insert_rows(
            cursor,
            "rm_workers",
            list(workers.values()),
        )


class CasesModel(ReadModel):
    """Cases by owning agency, with status, needs and note counts; clients for names."""

    name = "cases"
    tables = ("rm_clients", "rm_cases")
    follows = (
        ClientRegistered,
        ClientErased,
        CaseOpened,
        CaseNoteAdded,
        CaseClosed,
        CaseReopened,
    )
    #: A case counts its notes and takes its status from the event's type alone.
    stateless = (CaseNoteAdded, CaseClosed, CaseReopened)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_clients (client_id TEXT PRIMARY KEY, "
            "registered_by_agency_id TEXT NOT NULL, name_ciphertext TEXT, "
            "erased INTEGER NOT NULL, created_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS rm_cases (case_id TEXT PRIMARY KEY, owner_agency_id TEXT "
            "NOT NULL, client_id TEXT NOT NULL, status TEXT NOT NULL, needs TEXT NOT NULL, "
            "note_count INTEGER NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL, "
            "updated_at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_cases_owner ON rm_cases "
            "(owner_agency_id, created_at, case_id)",
            "CREATE INDEX IF NOT EXISTS rm_cases_client ON rm_cases (client_id)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_clients": "client_id", "rm_cases": "case_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        clients: dict[str, list[Any]] = {}  # created by this batch
        erased: dict[str, None] = {}  # earlier clients
        cases: dict[str, list[Any]] = {}
        changed: dict[str, list[Any]] = {}  # earlier cases: [notes, version, at, status]
        for fact in facts:
            kind = fact.event_type
            status = _CASE_STATUS.get(kind)
            if status is not None:  # a note (most of a log), a closing or a reopening
                notes = 1 if kind is CaseNoteAdded else 0
                if (case := cases.get(fact.aggregate_id)) is not None:
                    case[5] += notes
                    case[6], case[8] = fact.version, fact.at
                    if status:
                        case[3] = status
                elif (change := changed.get(fact.aggregate_id)) is not None:
                    change[0] += notes
                    change[1], change[2] = fact.version, fact.at
                    if status:
                        change[3] = status
                else:
                    changed[fact.aggregate_id] = [notes, fact.version, fact.at, status or None]
                continue
            s = fact.state
            if kind is CaseOpened:
                cases[fact.aggregate_id] = [
                    fact.aggregate_id,
                    s["owner_agency_id"],
                    s["client_id"],
                    "open",
                    as_json(s["needs"]),
                    0,
                    fact.version,
                    fact.at,
                    fact.at,
                ]
            elif kind is ClientRegistered:
                clients[fact.aggregate_id] = [
                    fact.aggregate_id,
                    s["registered_by_agency_id"],
                    s["name"],
                    0,
                    fact.at,
                ]
            elif (client := clients.get(fact.aggregate_id)) is not None:  # ClientErased
                client[2], client[3] = None, 1
            else:
                erased[fact.aggregate_id] = None
        db.write_many(
            cursor,
            "UPDATE rm_clients SET erased = 1, name_ciphertext = NULL WHERE client_id = %s",
            [(client_id,) for client_id in erased],
        )
        db.write_many(
            cursor,
            "UPDATE rm_cases SET note_count = note_count + %s, version = %s, updated_at = %s, "
            "status = COALESCE(%s, status) WHERE case_id = %s",
            [(*change, case_id) for case_id, change in changed.items()],
        )
        db.insert_rows(
            cursor,
            "rm_clients",
            list(clients.values()),
        )
        db.insert_rows(
            cursor,
            "rm_cases",
            list(cases.values()),
        )


#: The status a case's event leaves it in ("" for a note: unchanged).
_CASE_STATUS: dict[type[DomainEvent], str] = {
    CaseNoteAdded: "",
    CaseClosed: "closed",
    CaseReopened: "open",
}


class ConsentsModel(ReadModel):
    """Consents per case and per grantee: shared cases and point-in-time access.

    Consents change only by withdrawal, so granted_at, withdrawn_at and valid_until
    answer "who could see what at instant T" exactly, from events alone.
    """

    name = "consents"
    tables = ("rm_consents",)
    follows = (ConsentGranted, ConsentWithdrawn)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_consents (consent_id TEXT PRIMARY KEY, case_id TEXT "
            "NOT NULL, client_id TEXT NOT NULL, owner_agency_id TEXT NOT NULL, grantee_agency_id "
            "TEXT NOT NULL, sections TEXT NOT NULL, purpose TEXT NOT NULL, method TEXT NOT NULL, "
            "valid_until TEXT, granted_at TEXT NOT NULL, withdrawn_at TEXT, "
            "recorded_by_worker_id TEXT NOT NULL, version INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_consents_case ON rm_consents (case_id, granted_at)",
            "CREATE INDEX IF NOT EXISTS rm_consents_grantee ON rm_consents "
            "(grantee_agency_id, case_id)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_consents": "consent_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        consents: dict[str, list[Any]] = {}  # granted in this batch
        withdrawn: dict[str, tuple[str, int]] = {}  # earlier consents: (at, version)
        for fact in facts:
            s = fact.state
            if fact.event_type is ConsentGranted:
                valid_until = s["valid_until"]
                consents[fact.aggregate_id] = [
                    fact.aggregate_id,
                    s["case_id"],
                    s["client_id"],
                    s["owner_agency_id"],
                    s["grantee_agency_id"],
                    as_json(s["sections"]),
                    s["purpose"],
                    s["method"],
                    None if valid_until is None else normalise_time(valid_until),
                    fact.at,
                    None,
                    s["recorded_by_worker_id"],
                    fact.version,
                ]
            elif (consent := consents.get(fact.aggregate_id)) is not None:
                consent[10], consent[12] = fact.at, fact.version
            else:
                withdrawn[fact.aggregate_id] = (fact.at, fact.version)
        db.write_many(
            cursor,
            "UPDATE rm_consents SET withdrawn_at = %s, version = %s WHERE consent_id = %s",
            [(*change, consent_id) for consent_id, change in withdrawn.items()],
        )
        db.insert_rows(
            cursor,
            "rm_consents",
            list(consents.values()),
        )


class ReferralsModel(ReadModel):
    """Each agency's referral inbox and outbox, with every referral's status history."""

    name = "referrals"
    tables = ("rm_referrals", "rm_referral_history")
    follows = (ReferralRequested, ReferralMessagePosted, *STATUS_OF_EVENT)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_referrals (referral_id TEXT PRIMARY KEY, case_id TEXT "
            "NOT NULL, client_id TEXT NOT NULL, from_agency_id TEXT NOT NULL, to_agency_id TEXT "
            "NOT NULL, service_type TEXT NOT NULL, urgency TEXT NOT NULL, status TEXT NOT NULL, "
            "consent_id TEXT, outcome TEXT, message_count INTEGER NOT NULL, version INTEGER "
            "NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_referrals_to ON rm_referrals "
            "(to_agency_id, created_at, referral_id)",
            "CREATE INDEX IF NOT EXISTS rm_referrals_from ON rm_referrals "
            "(from_agency_id, created_at, referral_id)",
            "CREATE TABLE IF NOT EXISTS rm_referral_history (referral_id TEXT NOT NULL, "
            "version INTEGER NOT NULL, status TEXT NOT NULL, at TEXT NOT NULL, agency_id TEXT "
            "NOT NULL, worker_id TEXT NOT NULL, outcome TEXT, PRIMARY KEY (referral_id, version))",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_referrals": "referral_id", "rm_referral_history": "referral_id, version"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        referrals: dict[str, list[Any]] = {}  # requested in this batch
        # Earlier referrals: [messages, status or None, outcome or None, version, at].
        changed: dict[str, list[Any]] = {}
        history: list[tuple[Any, ...]] = []
        for fact in facts:
            s, kind = fact.state, fact.event_type
            if kind is ReferralRequested:
                referrals[fact.aggregate_id] = [
                    fact.aggregate_id,
                    s["case_id"],
                    s["client_id"],
                    s["from_agency_id"],
                    s["to_agency_id"],
                    s["service_type"],
                    s["urgency"],
                    "requested",
                    s["consent_id"],
                    None,
                    0,
                    fact.version,
                    fact.at,
                    fact.at,
                ]
                history.append(
                    (
                        fact.aggregate_id,
                        fact.version,
                        "requested",
                        fact.at,
                        s["from_agency_id"],
                        s["worker_id"],
                        None,
                    )
                )
                continue
            messages = 1 if kind is ReferralMessagePosted else 0
            status = None if messages else STATUS_OF_EVENT[kind]  # type: ignore[index]
            outcome = s.get("outcome") if kind is ReferralCompleted else None
            if (referral := referrals.get(fact.aggregate_id)) is not None:
                referral[10] += messages
                if status is not None:
                    referral[7] = status
                if outcome is not None:
                    referral[9] = outcome
                referral[11], referral[13] = fact.version, fact.at
            elif (change := changed.get(fact.aggregate_id)) is not None:
                change[0] += messages
                if status is not None:
                    change[1] = status
                if outcome is not None:
                    change[2] = outcome
                change[3], change[4] = fact.version, fact.at
            else:
                changed[fact.aggregate_id] = [messages, status, outcome, fact.version, fact.at]
            if status is not None:
                history.append(
                    (
                        fact.aggregate_id,
                        fact.version,
                        status,
                        fact.at,
                        s["agency_id"],
                        s["worker_id"],
                        outcome,
                    )
                )
        db.write_many(
            cursor,
            "UPDATE rm_referrals SET message_count = message_count + %s, "
            "status = COALESCE(%s, status), outcome = COALESCE(%s, outcome), version = %s, "
            "updated_at = %s WHERE referral_id = %s",
            [(*change, referral_id) for referral_id, change in changed.items()],
        )
        db.insert_rows(
            cursor,
            "rm_referrals",
            list(referrals.values()),
        )
        db.insert_rows(
            cursor,
            "rm_referral_history",
            history,
        )


class DisclosuresModel(ReadModel):
    """The accounting of disclosures: every read of a case's sections by another agency."""

    name = "disclosures"
    tables = ("rm_disclosures",)
    follows = (DisclosureRecorded,)

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_disclosures (disclosure_id TEXT PRIMARY KEY, "
            "case_id TEXT NOT NULL, owner_agency_id TEXT NOT NULL, recipient_agency_id TEXT "
            "NOT NULL, worker_id TEXT NOT NULL, sections TEXT NOT NULL, consent_ids TEXT NOT "
            "NULL, purposes TEXT NOT NULL, at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS rm_disclosures_owner ON rm_disclosures "
            "(owner_agency_id, at, disclosure_id)",
            "CREATE INDEX IF NOT EXISTS rm_disclosures_case ON rm_disclosures (case_id, at)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_disclosures": "disclosure_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        db.insert_rows(
            cursor,
            "rm_disclosures",
            [
                (
                    fact.aggregate_id,
                    fact.state["case_id"],
                    fact.state["owner_agency_id"],
                    fact.state["recipient_agency_id"],
                    fact.state["worker_id"],
                    as_json(fact.state["sections"]),
                    as_json(fact.state["consent_ids"]),
                    as_json(fact.state["purposes"]),
                    fact.at,
                )
                for fact in facts
            ],
        )


class FeedModel(ReadModel):
    """Per agency, the events that concern it, redacted for it: referrals to or from
    it (never message texts or reasons), consents granted to or withdrawn from it."""

    name = "feed"
    tables = ("rm_feed", "rm_feed_parties")
    follows = (
        ReferralRequested,
        ReferralMessagePosted,
        *STATUS_OF_EVENT,
        ConsentGranted,
        ConsentWithdrawn,
    )

    def create_statements(self, db: Database) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS rm_feed (agency_id TEXT NOT NULL, position BIGINT NOT "
            "NULL, type TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL, "
            "PRIMARY KEY (agency_id, position))",
            "CREATE TABLE IF NOT EXISTS rm_feed_parties (aggregate_id TEXT PRIMARY KEY, "
            "first_agency_id TEXT NOT NULL, second_agency_id TEXT NOT NULL)",
        ]

    def primary_keys(self) -> dict[str, str]:
        return {"rm_feed": "agency_id, position", "rm_feed_parties": "aggregate_id"}

    def apply_batch(self, db: Database, cursor: Any, facts: Sequence[StoredFact]) -> None:
        parties: dict[str, tuple[str, str]] = {}  # referrals and consents of this batch
        earlier: set[str] = set()  # those of earlier batches that this batch's events touch
        entries: list[tuple[str, int, str, str, str]] = []  # (aggregate, position, type, at, body)
        for fact in facts:
            s, kind = fact.state, fact.event_type
            if kind is ReferralRequested:
                parties[fact.aggregate_id] = (s["from_agency_id"], s["to_agency_id"])
                body = {
                    "referral_id": fact.aggregate_id,
                    "case_id": s["case_id"],
                    "from_agency_id": s["from_agency_id"],
                    "to_agency_id": s["to_agency_id"],
                    "service_type": s["service_type"],
                    "urgency": s["urgency"],
                    "status": "requested",
                }
            elif kind is ConsentGranted:
                parties[fact.aggregate_id] = (s["owner_agency_id"], s["grantee_agency_id"])
                body = {
                    "consent_id": fact.aggregate_id,
                    "case_id": s["case_id"],
                    "owner_agency_id": s["owner_agency_id"],
                    "grantee_agency_id": s["grantee_agency_id"],
                    "sections": s["sections"],
                    "purpose": s["purpose"],
                    "valid_until": s["valid_until"],
                }
            else:
                if fact.aggregate_id not in parties:
                    earlier.add(fact.aggregate_id)
                key = "consent_id" if kind is ConsentWithdrawn else "referral_id"
                body = {key: fact.aggregate_id}
                if kind in STATUS_OF_EVENT:
                    body["status"] = STATUS_OF_EVENT[kind]
                    if s.get("outcome") is not None:
                        body["outcome"] = s["outcome"]
                if kind is ReferralMessagePosted:
                    body["message_id"], body["from_agency_id"] = s["message_id"], s["agency_id"]
            body_json = as_json(body)
            entries.append((fact.aggregate_id, fact.position, kind.__name__, fact.at, body_json))
        remembered = [(aggregate_id, *pair) for aggregate_id, pair in parties.items()]
        if earlier:
            parties.update(self._parties(db, cursor, earlier))
        rows = []
        for aggregate_id, *entry in entries:
            first, second = parties[aggregate_id]
            rows.append((first, *entry))
            if second != first:
                rows.append((second, *entry))
        db.insert_rows(cursor, "rm_feed_parties", remembered)
        db.insert_rows(cursor, "rm_feed", rows)

    def _parties(
        self, db: Database, cursor: Any, aggregate_ids: Collection[str]
    ) -> dict[str, tuple[str, str]]:
        """The parties recorded by earlier batches, of each of ``aggregate_ids``."""
        # A cursor of its own, in the same transaction: in PostgreSQL's pipeline mode
        # the batch's shared cursor may still hold an earlier statement's result.
        reader = cursor.connection.cursor()
        found: dict[str, tuple[str, str]] = {}
        wanted = sorted(aggregate_ids)
        try:
            for at in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[at : at + _LOOKUP_CHUNK]
                reader.execute(
                    db.sql(
                        "SELECT aggregate_id, first_agency_id, second_agency_id FROM "
                        f"rm_feed_parties WHERE aggregate_id IN ({', '.join(['%s'] * len(chunk))})"
                    ),
                    chunk,
                )
                for row in reader.fetchall():
                    found[str(row["aggregate_id"])] = (
                        str(row["first_agency_id"]),
                        str(row["second_agency_id"]),
                    )
        finally:
            reader.close()
        missing = set(aggregate_ids) - found.keys()
        if missing:
            raise LookupError(f"no parties recorded for {min(missing)} (a log out of order?)")
        return found


#: Ids per SELECT of earlier parties: well under any store's limit on parameters.
_LOOKUP_CHUNK = 500


def read_models() -> list[ReadModel]:
    """A fresh instance of every read model, in the order they are built."""
    # Imported here: the audit model renders records with ``audit_records``, which
    # itself imports from this package (the runner's time format).
    from casenet.infrastructure.projections.audit import AuditRecordsModel

    return [
        DirectoryModel(),
        CasesModel(),
        ConsentsModel(),
        ReferralsModel(),
        DisclosuresModel(),
        FeedModel(),
        AuditRecordsModel(),
    ]
