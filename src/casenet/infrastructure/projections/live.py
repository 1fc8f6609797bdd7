"""The live runner: a loop that keeps every read model current as the log grows.

Run as a thread of each server process (``api.app``) or as its own process
(``casenet projections run``); any number of them may run against one store, since
each batch is applied once (``runner``'s compare-and-swap on the positions).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from casenet.infrastructure.projections.base import TRANSIENT, ReadModelStopped

if TYPE_CHECKING:
    from casenet.infrastructure.projections.runner import Projections

logger = logging.getLogger("casenet.projections")


def keep_current(
    projections: Projections,
    stop: threading.Event,
    *,
    interval: float,
    every: tuple[float, Callable[[], object]] | None = None,
) -> None:
    """Keep every read model current until ``stop`` is set (a polling loop).

    ``every``: (seconds, step): also run ``step`` that often, after a catch-up (the
    deadline step, which records notices that time makes due).

    A failure (the database restarting, say) is logged by type only, never with
    data, and retried after a pause: the loop outlives the outage.
    """
    last_step = float("-inf")
    try:
        projections.resume()  # this version may apply what stopped an older one
    except TRANSIENT as error:
        logger.warning("projection runner: %s; resuming later", type(error).__name__)
    while not stop.is_set():
        try:
            head = projections.head()
            behind = _behind(projections, head)
            if behind:
                projections.catch_up(behind, until=head)
            if every is not None and time.monotonic() - last_step >= every[0]:
                last_step = time.monotonic()
                every[1]()
        except ReadModelStopped:
            continue  # logged when it stopped; the other models go on
        except Exception as error:  # noqa: BLE001  (the loop's top-level handler)
            if stop.is_set():
                return  # shutting down: the store may already be closed
            logger.warning("projection runner: %s; retrying", type(error).__name__)
            stop.wait(max(interval, 1.0))
            continue
        if not behind:
            stop.wait(interval)


def _behind(projections: Projections, head: int) -> list[str]:
    """The running models behind ``head``."""
    states = projections.table.states()
    return [
        name
        for name in projections.models
        if name in states and states[name].stopped is None and states[name].position < head
    ]
