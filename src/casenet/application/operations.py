"""Operator services: the read models and the keys, as ``casenet`` (the CLI) runs them.

The API and the CLI call application services and never reach past them; these are
the CLI's for what only an operator does: rebuild and inspect read models, keep them
current as a process of its own, rotate master keys and count data keys.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from casenet.application import deadlines
from casenet.application.store import CasenetApplication
from casenet.infrastructure.crypto import KeyManagementError, KeyRing
from casenet.infrastructure.projections import ProjectionStatus, ReadModelStopped

__all__ = [
    "EncryptionOff",
    "KeyManagementError",
    "KeyService",
    "ProjectionService",
    "ProjectionStatus",
    "ReadModelStopped",
    "UnknownReadModel",
]


class UnknownReadModel(Exception):
    """A read model name that is not one of this casenet's."""


class EncryptionOff(Exception):
    """The store runs without field encryption: there are no keys to manage."""


class ProjectionService:
    """The read models of the store: status, rebuild, checksum, and the live runner."""

    def __init__(self, app: CasenetApplication) -> None:
        self._projections = app.projections
        #: Notices that time makes due, recorded by the live runner as it goes.
        self.deadlines = deadlines.Deadlines(app)

    def names(self, requested: Iterable[str] = ()) -> list[str]:
        """The models named (every one if none); :class:`UnknownReadModel` for a name
        that is not one."""
        try:
            return self._projections.names(requested)
        except KeyError as error:
            raise UnknownReadModel(error.args[0]) from None

    def status(self) -> list[ProjectionStatus]:
        """Each model's position, lag, and whether it is rebuilding or stopped."""
        return self._projections.status()

    def stopped(self) -> dict[str, str]:
        """The models that stopped at an event they could not apply, with why."""
        return self._projections.stopped()

    def head(self) -> int:
        """The newest notification's position in the log."""
        return self._projections.head()

    def resumed_from(self, names: Iterable[str]) -> int:
        """Where a rebuild of ``names`` starts: the least advanced committed position of
        those a rebuild left half-way, else 0."""
        positions = self._projections.positions()
        halfway = [positions[n][0] for n in names if positions[n][1]]
        return min(halfway, default=0)

    def position(self, name: str) -> int:
        return self._projections.position(name)

    def rebuild(self, names: list[str], progress: Callable[[int], None] | None = None) -> int:
        """Replay the log into ``names`` in one pass (resuming an interrupted rebuild);
        :class:`ReadModelStopped` if one stopped (the others are rebuilt)."""
        return self._projections.rebuild(names, progress=progress)

    def checksum(self, name: str) -> str:
        """SHA-256 over the model's rows: equal for equal content."""
        return self._projections.checksum(name)

    def run(self, stop: threading.Event, *, interval: float) -> None:
        """Keep every read model current until ``stop`` is set, and record the
        notices time makes due (``deadlines``) every :data:`deadlines.INTERVAL`."""
        self._projections.run_forever(
            stop, interval=interval, every=(deadlines.INTERVAL, self.deadlines.run)
        )


class KeyService:
    """Master keys (from the settings) and the data keys they wrap (in the store)."""

    def __init__(self, app: CasenetApplication) -> None:
        self._keyring = app.keyring

    def _ring(self) -> KeyRing:
        if self._keyring is None:
            raise EncryptionOff("this store runs without field encryption")
        return self._keyring

    def newest_master_key(self) -> str:
        """The id of the master key new data keys are wrapped under."""
        return self._ring().master_keys.newest_id

    def rotate(self) -> int:
        """Re-wrap every data key under the newest master key; how many moved."""
        return self._ring().rotate()

    def counts(self) -> dict[str, int]:
        """Data keys per master key id that wraps them (``(erased)``: clients erased)."""
        return self._ring().table.counts()
