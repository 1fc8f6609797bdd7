"""Running the deadline step in several processes at the same instant."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from casenet.application import Casenet


def run_at_once(instances: Sequence[Casenet], at: datetime) -> int:
    """Each instance (a process on the same store) runs the deadline step for ``at``,
    released together by a barrier; how many notices they recorded in all."""
    noted: list[int] = []
    barrier = threading.Barrier(len(instances))

    def run(instance: Casenet) -> None:
        barrier.wait()
        noted.append(instance.projections.deadlines.run(now=at))

    threads = [threading.Thread(target=run, args=(c,)) for c in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(noted)
