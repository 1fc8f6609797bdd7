"""The eventsourcing application: one store and one global order for every aggregate."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Mapper, Recording
from eventsourcing.utils import Environment, EnvType

import casenet.domain  # noqa: F401  (registers every aggregate and event type)
from casenet.domain.aggregate import Aggregate, DomainEvent, project_aggregate
from casenet.domain.client import Client
from casenet.domain.errors import NotFound, VersionConflict
from casenet.infrastructure.crypto import KeyRing
from casenet.infrastructure.idempotency import IdempotencyRecords
from casenet.infrastructure.keytable import KeyTable
from casenet.infrastructure.mapper import EventMapper, SubjectKeys
from casenet.infrastructure.persistence.base import CasenetRecorder
from casenet.infrastructure.projections import Projections, read_models
from casenet.infrastructure.webhook_outbox import WebhookOutbox

A = TypeVar("A", bound=Aggregate)

#: Bump when a table of casenet's own changes in a way the DDL below cannot tell.
#: 2: the projection positions' ``epoch`` and ``stopped`` columns (issue 15).
#: 3: their ``model_version`` column (issue 17).
#: 4: the webhook delivery tables (``infrastructure.webhook_outbox``, issue 17).
SCHEMA_REVISION = 4


def schema_fingerprint(projections: Projections) -> str:
    """A digest of every table casenet creates: equal schemas, equal fingerprints."""
    parts = [str(SCHEMA_REVISION), type(projections.recorder).__qualname__]
    for model in projections.models.values():
        # A model's version too: a new one must reach ``Projections.setup`` to replay.
        parts.append(f"read model {model.name} version {model.version}")
        parts.extend(model.create_statements(projections.db))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class SchemaStatus:
    """What opening the store did to casenet's tables (``casenet migrate`` reports it).

    ``previous``: the fingerprint recorded before (None: no tables yet); ``changed``:
    whether this start created or upgraded the tables.
    """

    fingerprint: str
    previous: str | None
    changed: bool


class CasenetApplication(Application[UUID]):
    """Stores the events of agencies, clients, cases, consents and referrals.

    Configured only by the ``env`` it is given (see ``infrastructure.store``), never
    by the process environment, so a test can run it on any store.
    """

    name = "casenet"
    #: Set when the store is opened (``_create_tables``).
    schema: SchemaStatus

    def __init__(
        self, env: EnvType, keyring: KeyRing | None, *, server_key: bytes | None = None
    ) -> None:
        # The mapper is built inside the library's __init__, the key table after it,
        # because the table lives in the store the library opens.
        self.keyring = keyring
        # Tables are created below, under a lock, not by the library on its own.
        super().__init__({**env, "CREATE_TABLE": "n"})
        if not isinstance(self.recorder, CasenetRecorder):
            super().close()
            raise TypeError("the store's recorder must be casenet's (see infrastructure.store)")
        self.store: CasenetRecorder = self.recorder
        #: casenet's own tables (data keys, read models) live in the store's database.
        self.database = self.store.database
        self.projections = Projections(self.recorder, self.database, read_models())
        #: Retried creates (Idempotency-Key) answer with their first response.
        self.idempotency = IdempotencyRecords(self.database, keyring, server_key or os.urandom(32))
        try:
            with self.database.schema_lock():
                self._create_tables(keyring)
                if keyring is not None:
                    keyring.attach(KeyTable(self.database))
                    # New clients' keys go in with their events: one commit, not two.
                    self.store.staged_keys = keyring.take_staged
                    keyring.stages_new_keys = True
        except BaseException:
            self.close()  # a failed start (a wrong master key, say) leaves nothing open
            raise

    def _create_tables(self, keyring: KeyRing | None) -> None:
        """Create every table, once per schema fingerprint.

        When the database already has this schema (its fingerprint is recorded), no DDL
        runs, so a role that owns nothing (ops/: casenet_app) can start; the owner role
        creates or changes the tables by starting once after an upgrade.
        """
        fingerprint = schema_fingerprint(self.projections)
        previous = self.database.schema_fingerprint()
        self.schema = SchemaStatus(fingerprint, previous, changed=previous != fingerprint)
        if previous == fingerprint:
            self.store.tables_exist()
            # A rebuild stopped half-way may have left a read model without the
            # secondary indexes it drops while it loads (SQLite): build them again.
            self.projections.restore_indexes()
            return
        self.store.create_table()
        self.projections.setup()
        KeyTable(self.database).create_table()
        self.idempotency.create_table()
        WebhookOutbox(self.database).create_tables()
        self.database.record_schema_fingerprint(fingerprint)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[UUID]:
        return EventMapper(self.keyring)

    def get(
        self,
        aggregate_type: type[A],
        aggregate_id: UUID,
        *,
        personal: bool = True,
        subjects: Sequence[UUID] = (),
    ) -> A:
        """Load an aggregate of ``aggregate_type``, or raise :class:`NotFound`.

        ``personal=False``: sealed, for a command that needs no personal field (see
        ``Aggregate.sealed``): nothing is decrypted. ``subjects``: see :meth:`get_all`.
        """
        found = self.get_all((aggregate_type, aggregate_id), personal=personal, subjects=subjects)
        return found[0]  # type: ignore[return-value]

    def get_all(
        self,
        *wanted: tuple[type[Aggregate], UUID],
        personal: bool = True,
        subjects: Sequence[UUID] = (),
        history: dict[UUID, list[DomainEvent]] | None = None,
    ) -> list[Aggregate]:
        """Load several aggregates from one statement: one snapshot of the log, one round
        trip (the library's repository takes a transaction per aggregate, three round
        trips each on PostgreSQL). :class:`NotFound` names the first one missing.

        No process keeps data keys (see ``KeyRing``): the statement also reads the data
        keys of the clients it loads and of ``subjects`` (the client the caller expects
        the aggregates to be about, if it knows), in the same snapshot as the events,
        for decrypting them and for this request's save (a command loads sealed, then
        writes personal fields). A key it did not read (no hint, or a wrong one) is read
        when an event needs it.

        ``history``: filled with each aggregate's events, by id, for a caller that shows
        what an aggregate's state keeps no more (a reason given for a past step).
        """
        key_subjects: dict[int, UUID] = {}  # by the id's int (hashed in C, a UUID's in Python)
        if self.keyring is not None:
            key_subjects = {i.int: i for kind, i in wanted if kind is Client}
            key_subjects.update((subject.int, subject) for subject in subjects)
        histories, key_rows = self.store.read_aggregates(
            [aggregate_id for _, aggregate_id in wanted], key_subjects.values()
        )
        keys: SubjectKeys = {}
        if self.keyring is not None and key_subjects:
            # The key rows go to the key ring for this request's save, still wrapped,
            # and, for a load that decrypts, are unwrapped into ``keys`` (None: erased).
            loaded = {row.subject_id.int: row for row in key_rows}
            self.keyring.offer_for_writing(loaded)
            if personal:
                for number, row in loaded.items():
                    keys[number] = self.keyring.key_of(row)
        decode = cast(EventMapper, self.mapper).decode_row
        found: list[Aggregate] = []
        for (aggregate_type, aggregate_id), rows in zip(wanted, histories, strict=True):
            events = [
                decode(aggregate_id, row[1], row[2], row[3], personal=personal, keys=keys)
                for row in rows
            ]
            if history is not None:
                history[aggregate_id] = events
            aggregate = project_aggregate(None, events)
            if not isinstance(aggregate, aggregate_type):
                raise NotFound(f"{aggregate_type.__name__.lower()} not found")
            aggregate.sealed = not personal
            found.append(aggregate)
        return found

    def close(self) -> None:
        self.database.close()
        super().close()

    def find(self, aggregate_type: type[A], aggregate_id: UUID | None) -> A | None:
        """The aggregate if it exists (a retried create looks for its first result)."""
        if aggregate_id is None:
            return None
        try:
            return self.get(aggregate_type, aggregate_id)
        except NotFound:
            return None

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Append the aggregates' new events atomically (the library's ``save``); a lost
        race is a conflict. The data keys staged for new clients are written with the
        events or forgotten, whatever happens."""
        try:
            recordings = super().save(*objs, **kwargs)
        except IntegrityError:
            self._settle_keys(written=False)
            raise VersionConflict(
                "another write to the same record won; re-read and retry"
            ) from None
        except BaseException:
            self._settle_keys(written=False)
            raise
        self._settle_keys(written=True)
        return recordings

    def _settle_keys(self, *, written: bool) -> None:
        if self.keyring is not None:
            self.keyring.settle(written=written)
