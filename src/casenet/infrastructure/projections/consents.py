"""The consents read model: consents per case and per grantee."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from casenet.domain.consent import ConsentGranted, ConsentWithdrawn
from casenet.infrastructure.projections.base import ReadModel, Row, as_json, values
from casenet.infrastructure.projections.facts import StoredFact, normalise_time
from casenet.infrastructure.sql import Database


class ConsentRow(Row):
    """A row of ``rm_consents``."""

    consent_id: str
    case_id: str
    client_id: str
    owner_agency_id: str
    grantee_agency_id: str
    sections: str  # JSON
    purpose: str
    method: str
    valid_until: str | None
    granted_at: str
    withdrawn_at: str | None
    recorded_by_worker_id: str
    version: int


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
        consents: dict[str, ConsentRow] = {}  # granted in this batch
        withdrawn: dict[str, tuple[str, int]] = {}  # of earlier batches: (at, version)
        for fact in facts:
            s = fact.state
            if fact.event_type is ConsentGranted:
                valid_until = s["valid_until"]
                consents[fact.aggregate_id] = ConsentRow(
                    consent_id=fact.aggregate_id,
                    case_id=s["case_id"],
                    client_id=s["client_id"],
                    owner_agency_id=s["owner_agency_id"],
                    grantee_agency_id=s["grantee_agency_id"],
                    sections=as_json(s["sections"]),
                    purpose=s["purpose"],
                    method=s["method"],
                    valid_until=None if valid_until is None else normalise_time(valid_until),
                    granted_at=fact.at,
                    withdrawn_at=None,
                    recorded_by_worker_id=s["recorded_by_worker_id"],
                    version=fact.version,
                )
            elif (consent := consents.get(fact.aggregate_id)) is not None:
                consent.withdrawn_at, consent.version = fact.at, fact.version
            else:
                withdrawn[fact.aggregate_id] = (fact.at, fact.version)
        db.write_many(
            cursor,
            "UPDATE rm_consents SET withdrawn_at = %s, version = %s WHERE consent_id = %s",
            [(at, version, id_) for id_, (at, version) in withdrawn.items()],
        )
        db.insert_rows(cursor, "rm_consents", values(consents.values()))
