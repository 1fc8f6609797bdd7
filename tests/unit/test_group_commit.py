"""The group commit (persistence/base.py) tells its observers the size of each batch:
saves queued while a batch is written go together in the next one, and a save that
got its own error is not counted as written. No store: ``flush`` is a function here;
tests/api/test_observability.py counts real batches on both stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from casenet.infrastructure.persistence.base import GroupCommit, Write

QUEUED = 5


def test_saves_queued_during_a_batch_are_the_next_batch_and_observed_so() -> None:
    writing = threading.Event()
    release = threading.Event()
    sizes: list[int] = []

    def flush(saves: list[Write]) -> list[Sequence[int] | BaseException]:
        writing.set()
        release.wait(timeout=10)  # the first batch is slow: the others queue meanwhile
        return [[n] for n, _ in enumerate(saves)]

    group = GroupCommit(flush)
    group.observers.append(sizes.append)
    first = threading.Thread(target=group.submit, args=(((), ()),))
    first.start()
    assert writing.wait(timeout=10)
    others = [threading.Thread(target=group.submit, args=(((), ()),)) for _ in range(QUEUED)]
    for thread in others:
        thread.start()
    while len(group._queue) < QUEUED:  # every save has queued behind the slow batch
        time.sleep(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(timeout=10)
    assert sizes == [1, QUEUED]


def test_a_save_that_failed_is_not_counted() -> None:
    sizes: list[int] = []
    conflict = ValueError("its version was taken")

    def flush(saves: list[Write]) -> list[Sequence[int] | BaseException]:
        return [conflict]

    group = GroupCommit(flush)
    group.observers.append(sizes.append)
    with pytest.raises(ValueError, match="taken"):
        group.submit(((), ()))
    assert sizes == []  # nothing written: no batch to count
