"""casenet's read models: the directory, cases, consents and referrals.

Every column is portable text or integer, so the same history gives the same rows
(and the same checksum) on SQLite and PostgreSQL. Personal data appears only as the
ciphertext the log holds (a client's name, for case lists), and goes when the client
is erased.
"""

from __future__ import annotations

from typing import Any

import msgspec

from casenet.domain.agency import AgencyRegistered, ServicesReplaced, WorkerAdded, WorkerRevoked
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
from casenet.infrastructure.projections.runner import ReadModel, StoredFact, normalise_time
from casenet.infrastructure.sql import Database

_JSON = msgspec.json.Encoder(order="sorted")


def as_json(value: Any) -> str:
    return _JSON.encode(value).decode()


def _execute(db: Database, cursor: Any, query: str, params: tuple[Any, ...]) -> None:
    cursor.execute(db.sql(query), params)


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

    def apply(self, db: Database, cursor: Any, fact: StoredFact) -> None:
        s = fact.state
        if fact.event_type is AgencyRegistered:
            _execute(
                db,
                cursor,
                "INSERT INTO rm_agencies VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    fact.aggregate_id,
                    s["name"],
                    s["kind"],
                    int(s["restricted"]),
                    as_json(s["services"]),
                    fact.version,
                    fact.at,
                    fact.at,
                ),
            )
            return
        if fact.event_type is ServicesReplaced:
            _execute(
                db,
                cursor,
                "UPDATE rm_agencies SET services = %s WHERE agency_id = %s",
                (as_json(s["services"]), fact.aggregate_id),
            )
        elif fact.event_type is WorkerAdded:
            _execute(
                db,
                cursor,
                "INSERT INTO rm_workers VALUES (%s, %s, %s, %s, %s, 1, %s)",
                (s["worker_id"], fact.aggregate_id, s["name"], s["role"], s["token_hash"], fact.at),
            )
        elif fact.event_type is WorkerRevoked:
            _execute(
                db,
                cursor,
                "UPDATE rm_workers SET active = 0 WHERE worker_id = %s",
                (s["worker_id"],),
            )
        _execute(
            db,
            cursor,
            "UPDATE rm_agencies SET version = %s, updated_at = %s WHERE agency_id = %s",
            (fact.version, fact.at, fact.aggregate_id),
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

    def apply(self, db: Database, cursor: Any, fact: StoredFact) -> None:
        s = fact.state
        kind = fact.event_type
        if kind is ClientRegistered:
            _execute(
                db,
                cursor,
                "INSERT INTO rm_clients VALUES (%s, %s, %s, 0, %s)",
                (fact.aggregate_id, s["registered_by_agency_id"], s["name"], fact.at),
            )
            return
        if kind is ClientErased:
            _execute(
                db,
                cursor,
                "UPDATE rm_clients SET erased = 1, name_ciphertext = NULL WHERE client_id = %s",
                (fact.aggregate_id,),
            )
            return
        if kind is CaseOpened:
            _execute(
                db,
                cursor,
                "INSERT INTO rm_cases VALUES (%s, %s, %s, 'open', %s, 0, %s, %s, %s)",
                (
                    fact.aggregate_id,
                    s["owner_agency_id"],
                    s["client_id"],
                    as_json(s["needs"]),
                    fact.version,
                    fact.at,
                    fact.at,
                ),
            )
            return
        change = {
            CaseNoteAdded: "",
            CaseClosed: ", status = 'closed'",
            CaseReopened: ", status = 'open'",
        }[kind]
        notes = 1 if kind is CaseNoteAdded else 0
        _execute(
            db,
            cursor,
            f"UPDATE rm_cases SET note_count = note_count + %s, version = %s, updated_at = %s"
            f"{change} WHERE case_id = %s",
            (notes, fact.version, fact.at, fact.aggregate_id),
        )


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

    def apply(self, db: Database, cursor: Any, fact: StoredFact) -> None:
        s = fact.state
        if fact.event_type is ConsentGranted:
            valid_until = s["valid_until"]
            _execute(
                db,
                cursor,
                "INSERT INTO rm_consents VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, %s, %s)",
                (
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
                    s["recorded_by_worker_id"],
                    fact.version,
                ),
            )
        else:
            _execute(
                db,
                cursor,
                "UPDATE rm_consents SET withdrawn_at = %s, version = %s WHERE consent_id = %s",
                (fact.at, fact.version, fact.aggregate_id),
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

    def apply(self, db: Database, cursor: Any, fact: StoredFact) -> None:
        s = fact.state
        if fact.event_type is ReferralRequested:
            _execute(
                db,
                cursor,
                "INSERT INTO rm_referrals VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, 'requested', %s, NULL, 0, %s, %s, %s)",
                (
                    fact.aggregate_id,
                    s["case_id"],
                    s["client_id"],
                    s["from_agency_id"],
                    s["to_agency_id"],
                    s["service_type"],
                    s["urgency"],
                    s["consent_id"],
                    fact.version,
                    fact.at,
                    fact.at,
                ),
            )
            self._history(db, cursor, fact, "requested", s["from_agency_id"], None)
            return
        if fact.event_type is ReferralMessagePosted:
            _execute(
                db,
                cursor,
                "UPDATE rm_referrals SET message_count = message_count + 1, version = %s, "
                "updated_at = %s WHERE referral_id = %s",
                (fact.version, fact.at, fact.aggregate_id),
            )
            return
        status = STATUS_OF_EVENT[fact.event_type]  # type: ignore[index]
        outcome = s.get("outcome") if fact.event_type is ReferralCompleted else None
        _execute(
            db,
            cursor,
            "UPDATE rm_referrals SET status = %s, outcome = COALESCE(%s, outcome), version = %s, "
            "updated_at = %s WHERE referral_id = %s",
            (status, outcome, fact.version, fact.at, fact.aggregate_id),
        )
        self._history(db, cursor, fact, status, s["agency_id"], outcome)

    def _history(
        self,
        db: Database,
        cursor: Any,
        fact: StoredFact,
        status: str,
        agency: str,
        outcome: str | None,
    ) -> None:
        _execute(
            db,
            cursor,
            "INSERT INTO rm_referral_history VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                fact.aggregate_id,
                fact.version,
                status,
                fact.at,
                agency,
                fact.state["worker_id"],
                outcome,
            ),
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

    def apply(self, db: Database, cursor: Any, fact: StoredFact) -> None:
        s = fact.state
        _execute(
            db,
            cursor,
            "INSERT INTO rm_disclosures VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                fact.aggregate_id,
                s["case_id"],
                s["owner_agency_id"],
                s["recipient_agency_id"],
                s["worker_id"],
                as_json(s["sections"]),
                as_json(s["consent_ids"]),
                as_json(s["purposes"]),
                fact.at,
            ),
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

    def apply(self, db: Database, cursor: Any, fact: StoredFact) -> None:
        s = fact.state
        kind = fact.event_type
        if kind is ReferralRequested:
            parties = (s["from_agency_id"], s["to_agency_id"])
            self._remember(db, cursor, fact.aggregate_id, parties)
            body = {
                "referral_id": fact.aggregate_id,
                "case_id": s["case_id"],
                "from_agency_id": parties[0],
                "to_agency_id": parties[1],
                "service_type": s["service_type"],
                "urgency": s["urgency"],
                "status": "requested",
            }
        elif kind is ConsentGranted:
            parties = (s["owner_agency_id"], s["grantee_agency_id"])
            self._remember(db, cursor, fact.aggregate_id, parties)
            body = {
                "consent_id": fact.aggregate_id,
                "case_id": s["case_id"],
                "owner_agency_id": parties[0],
                "grantee_agency_id": parties[1],
                "sections": s["sections"],
                "purpose": s["purpose"],
                "valid_until": s["valid_until"],
            }
        else:
            parties = self._parties(db, cursor, fact.aggregate_id)
            key = "consent_id" if kind is ConsentWithdrawn else "referral_id"
            body = {key: fact.aggregate_id}
            if kind in STATUS_OF_EVENT:
                body["status"] = STATUS_OF_EVENT[kind]
                if s.get("outcome") is not None:
                    body["outcome"] = s["outcome"]
            if kind is ReferralMessagePosted:
                body["message_id"], body["from_agency_id"] = s["message_id"], s["agency_id"]
        for agency_id in dict.fromkeys(parties):
            _execute(
                db,
                cursor,
                "INSERT INTO rm_feed VALUES (%s, %s, %s, %s, %s)",
                (agency_id, fact.position, kind.__name__, fact.at, as_json(body)),
            )

    def _remember(
        self, db: Database, cursor: Any, aggregate_id: str, parties: tuple[str, str]
    ) -> None:
        _execute(
            db, cursor, "INSERT INTO rm_feed_parties VALUES (%s, %s, %s)", (aggregate_id, *parties)
        )

    def _parties(self, db: Database, cursor: Any, aggregate_id: str) -> tuple[str, str]:
        # A cursor of its own, in the same transaction: in PostgreSQL's pipeline mode
        # the batch's shared cursor may still hold an earlier statement's result.
        reader = cursor.connection.cursor()
        try:
            _execute(
                db,
                reader,
                "SELECT first_agency_id, second_agency_id FROM rm_feed_parties "
                "WHERE aggregate_id = %s",
                (aggregate_id,),
            )
            row = reader.fetchone()
        finally:
            reader.close()
        return (str(row["first_agency_id"]), str(row["second_agency_id"]))


def read_models() -> list[ReadModel]:
    """A fresh instance of every read model, in the order they are built."""
    return [
        DirectoryModel(),
        CasesModel(),
        ConsentsModel(),
        ReferralsModel(),
        DisclosuresModel(),
        FeedModel(),
    ]
