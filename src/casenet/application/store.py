"""The eventsourcing application: one store and one global order for every aggregate."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, Recording
from eventsourcing.utils import Environment, EnvType

import casenet.domain  # noqa: F401  (registers every aggregate and event type)
from casenet.domain.aggregate import Aggregate, project_aggregate
from casenet.domain.errors import NotFound, VersionConflict
from casenet.infrastructure.mapper import EventMapper

A = TypeVar("A", bound=Aggregate)


class CasenetApplication(Application[UUID]):
    """Stores the events of agencies, clients, cases, consents and referrals.

    Configured only by the ``env`` it is given (see ``infrastructure.store``), never
    by the process environment, so a test can run it on any store.
    """

    name = "casenet"

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[UUID]:
        return EventMapper()

    def get(self, aggregate_type: type[A], aggregate_id: UUID) -> A:
        """Load an aggregate of ``aggregate_type``, or raise :class:`NotFound`."""
        try:
            aggregate: Aggregate = self.repository.get(
                aggregate_id, projector_func=project_aggregate  # type: ignore[arg-type]
            )
        except AggregateNotFoundError:
            raise NotFound(f"{aggregate_type.__name__.lower()} not found") from None
        if not isinstance(aggregate, aggregate_type):
            raise NotFound(f"{aggregate_type.__name__.lower()} not found")
        return aggregate

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Append the aggregates' new events atomically; a lost race is a conflict."""
        try:
            return super().save(*objs, **kwargs)
        except IntegrityError:
            raise VersionConflict(
                "another write to the same record won; re-read and retry"
            ) from None
