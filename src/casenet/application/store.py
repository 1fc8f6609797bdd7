"""The eventsourcing application: one store and one global order for every aggregate."""

from __future__ import annotations

import os
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, Recording
from eventsourcing.utils import Environment, EnvType

import casenet.domain  # noqa: F401  (registers every aggregate and event type)
from casenet.domain.aggregate import Aggregate, project_aggregate
from casenet.domain.errors import NotFound, VersionConflict
from casenet.infrastructure.crypto import KeyRing
from casenet.infrastructure.idempotency import IdempotencyRecords
from casenet.infrastructure.keytable import KeyTable
from casenet.infrastructure.mapper import EventMapper
from casenet.infrastructure.projections import Projections, read_models
from casenet.infrastructure.sql import Database
from casenet.infrastructure.store import dialect_of

A = TypeVar("A", bound=Aggregate)


class CasenetApplication(Application[UUID]):
    """Stores the events of agencies, clients, cases, consents and referrals.

    Configured only by the ``env`` it is given (see ``infrastructure.store``), never
    by the process environment, so a test can run it on any store.
    """

    name = "casenet"

    def __init__(
        self, env: EnvType, keyring: KeyRing | None, *, server_key: bytes | None = None
    ) -> None:
        # The mapper is built inside the library's __init__, the key table after it,
        # because the table lives in the store the library opens.
        self.keyring = keyring
        # Tables are created below, under a lock, not by the library on its own.
        super().__init__({**env, "CREATE_TABLE": "n"})
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        #: casenet's own tables (data keys, read models) live in the store's database.
        self.database = Database(datastore, dialect_of(env))
        self.projections = Projections(self.recorder, self.database, read_models())
        try:
            with self.database.schema_lock():
                self.recorder.create_table()  # type: ignore[attr-defined]
                self.projections.setup()
                if keyring is not None:
                    keyring.attach(KeyTable(self.database))
                    # New clients' keys go in with their events: one commit, not two.
                    self.recorder.staged_keys = keyring.take_staged  # type: ignore[attr-defined]
                    keyring.stages_new_keys = True
                #: Retried creates (Idempotency-Key) answer with their first response.
                self.idempotency = IdempotencyRecords(
                    self.database, keyring, server_key or os.urandom(32)
                )
                self.idempotency.create_table()
        except BaseException:
            self.close()  # a failed start (a wrong master key, say) leaves nothing open
            raise

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[UUID]:
        return EventMapper(self.keyring)

    def get(self, aggregate_type: type[A], aggregate_id: UUID) -> A:
        """Load an aggregate of ``aggregate_type``, or raise :class:`NotFound`."""
        try:
            aggregate: Aggregate = self.repository.get(
                aggregate_id,
                projector_func=project_aggregate,  # type: ignore[arg-type]
            )
        except AggregateNotFoundError:
            raise NotFound(f"{aggregate_type.__name__.lower()} not found") from None
        if not isinstance(aggregate, aggregate_type):
            raise NotFound(f"{aggregate_type.__name__.lower()} not found")
        return aggregate

    def find(self, aggregate_type: type[A], aggregate_id: UUID | None) -> A | None:
        """The aggregate if it exists (a retried create looks for its first result)."""
        if aggregate_id is None:
            return None
        try:
            return self.get(aggregate_type, aggregate_id)
        except NotFound:
            return None

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Append the aggregates' new events atomically; a lost race is a conflict."""
        try:
            return super().save(*objs, **kwargs)
        except IntegrityError:
            raise VersionConflict(
                "another write to the same record won; re-read and retry"
            ) from None
