"""The eventsourcing application: one store and one global order for every aggregate."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
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
from casenet.infrastructure.keytable import SELECT_AS_EVENT_ROWS as KEYS_AS_EVENT_ROWS
from casenet.infrastructure.keytable import KeyTable, row_of_event_row
from casenet.infrastructure.mapper import EventMapper, SubjectKeys
from casenet.infrastructure.projections import Projections, read_models
from casenet.infrastructure.sql import SQLITE, Database
from casenet.infrastructure.store import dialect_of

A = TypeVar("A", bound=Aggregate)


#: Most ids :meth:`CasenetApplication.get_all` reads by a UNION ALL on SQLite.
_UNION_MAX = 8

#: Bump when a table of casenet's own changes in a way the DDL below cannot tell.
#: 2: the projection positions' ``epoch`` and ``stopped`` columns (issue 15).
SCHEMA_REVISION = 2


def schema_fingerprint(projections: Projections) -> str:
    """A digest of every table casenet creates: equal schemas, equal fingerprints."""
    parts = [str(SCHEMA_REVISION), type(projections.recorder).__qualname__]
    for model in projections.models.values():
        parts.extend(model.create_statements(projections.db))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


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
        self._events_table: str = self.recorder.events_table_name  # type: ignore[attr-defined]
        self._events_queries: dict[tuple[int, int], str] = {}
        self.projections = Projections(self.recorder, self.database, read_models())
        #: Retried creates (Idempotency-Key) answer with their first response.
        self.idempotency = IdempotencyRecords(self.database, keyring, server_key or os.urandom(32))
        try:
            with self.database.schema_lock():
                self._create_tables(keyring)
                if keyring is not None:
                    keyring.attach(KeyTable(self.database))
                    # New clients' keys go in with their events: one commit, not two.
                    self.recorder.staged_keys = keyring.take_staged  # type: ignore[attr-defined]
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
        if self.database.schema_fingerprint() == fingerprint:
            # The tables exist; the library only needs its composite types registered.
            register = getattr(self.recorder.datastore, "register_type_adapters", None)  # type: ignore[attr-defined]
            if register is not None:
                register()
            # A rebuild stopped half-way may have left a read model without the
            # secondary indexes it drops while it loads (SQLite): build them again.
            self.projections.restore_indexes()
            return
        self.recorder.create_table()  # type: ignore[attr-defined]
        self.projections.setup()
        KeyTable(self.database).create_table()
        self.idempotency.create_table()
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
        """
        # Keyed by the ids as the events table holds them (SQLite: hex text, hashed in C;
        # a UUID's hash is Python code).
        # One plain loop, where comprehensions, a generator and UUID.hex (a Python frame
        # around the same format) cost 19k instructions for two ids; a %-format costs
        # 0.8k less than the f-string.
        sqlite = self.database.dialect == SQLITE
        columns: list[Any] = []
        by_column: dict[Any, UUID] = {}
        events: dict[Any, list[DomainEvent]] = {}
        key_subjects: dict[int, UUID] = {}
        for aggregate_type, aggregate_id in wanted:
            column = "%032x" % aggregate_id.int if sqlite else aggregate_id  # noqa: UP031
            columns.append(column)
            by_column[column] = aggregate_id
            events[column] = []
            if aggregate_type is Client:
                key_subjects[aggregate_id.int] = aggregate_id
        keys: SubjectKeys = {}
        if self.keyring is None:
            key_subjects.clear()
        else:
            for subject_id in subjects:
                key_subjects[subject_id.int] = subject_id
        # The subjects by their ids as the key table holds them (SQLite: text).
        asked = {self.database.id_param(s): s for s in key_subjects.values()}
        query = self._events_of(len(by_column), len(asked))
        rows = self.database.read(query, (*by_column, *asked), tuples=True)
        if asked:
            rows = self._take_keys(rows, asked, keys if personal else None)
        decode = cast(EventMapper, self.mapper).decode_row
        for row in rows:
            events[row[0]].append(
                decode(by_column[row[0]], row[1], row[2], row[3], personal=personal, keys=keys)
            )
        found: list[Aggregate] = []
        for (aggregate_type, _), column in zip(wanted, columns, strict=True):
            aggregate = project_aggregate(None, events[column])
            if not isinstance(aggregate, aggregate_type):
                raise NotFound(f"{aggregate_type.__name__.lower()} not found")
            aggregate.sealed = not personal
            found.append(aggregate)
        return found

    def _take_keys(
        self, rows: list[Any], asked: dict[Any, UUID], keys: SubjectKeys | None
    ) -> list[Any]:
        """The event rows of :meth:`_events_of`'s result. Its key rows (version -1) of
        the ``asked`` subjects go to the key ring for this request's save, still
        wrapped, and, for a load that decrypts, unwrapped into ``keys`` by subject id's
        int (None: erased)."""
        assert self.keyring is not None
        event_rows = []
        loaded = {}
        for row in rows:
            if row[1] >= 0:
                event_rows.append(row)
                continue
            subject_id = asked[row[0]]
            stored = loaded[subject_id.int] = row_of_event_row(subject_id, row)
            if keys is not None:
                keys[subject_id.int] = self.keyring.key_of(stored)
        self.keyring.offer_for_writing(loaded)
        return event_rows

    def _events_of(self, count: int, subjects: int = 0) -> str:
        """The statement that reads the events of ``count`` aggregates, in the dialect,
        and the data key rows of ``subjects`` clients (as rows of version -1: subject,
        -1, master key id, wrapped key, data key id; events have a fifth column then)."""
        if (query := self._events_queries.get((count, subjects))) is not None:
            return query
        fifth = f", CAST(NULL AS {self.database.blob})" if subjects else ""
        select = (
            f"SELECT originator_id, originator_version, topic, state{fifth} "  # noqa: S608
            f"FROM {self._events_table} WHERE originator_id"
        )
        if self.database.dialect == SQLITE and count + subjects <= _UNION_MAX:
            # One index search per id, merged in index order: SQLite runs ``IN (...)``
            # through a temporary b-tree of the ids and sorts (owner read: 90k -> 66k
            # instructions a statement for two ids).
            parts = [f"{select} = ?"] * count + [f"{KEYS_AS_EVENT_ROWS} = ?"] * subjects
            query = " UNION ALL ".join(parts) + " ORDER BY 1, 2"
        else:
            marks = ", ".join(["%s"] * count)
            query = f"{select} IN ({marks})"
            if subjects:
                query += f" UNION ALL {KEYS_AS_EVENT_ROWS} IN ({', '.join(['%s'] * subjects)})"
            query = self.database.sql(query + " ORDER BY 1, 2")
        self._events_queries[(count, subjects)] = query
        return query

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
