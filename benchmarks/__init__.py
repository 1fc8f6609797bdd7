"""casenet's benchmarks: each workload measures a figure against a ceiling in the same run.

Run from the repository root::

    python -m benchmarks [--quick] [WORKLOAD ...]

A workload is a function registered with :func:`workload`; it takes the run's
:class:`Options` and returns :class:`Row` s (one per store, say). A row compares a
figure with a ceiling measured in the same run on the same machine (never with a
number from elsewhere), so the ratio means something wherever it runs. The runner
prints every row as a table and writes each workload's rows, with the details the
workload chose to keep, to ``var/bench/<workload>.json``.

To add a workload, add a module to this package that decorates a function with
``@workload("name")``; the runner imports every module of the package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WORKLOADS", "Options", "Row", "target_text", "workload"]


@dataclass(frozen=True)
class Options:
    """What the runner was asked for."""

    #: A size that finishes in well under a minute (for CI and a quick look).
    quick: bool = False


@dataclass(frozen=True)
class Row:
    """One measured figure, its ceiling from the same run, and the target ratio."""

    workload: str
    store: str
    #: What ``value`` and ``ceiling`` measure, with their unit (``events/s``).
    figure: str
    value: float
    ceiling: float
    #: The ratio value/ceiling the workload aims for (None: report only).
    target: float | None = None
    #: A condition the target also requires, as text ("p99 < 20 ms"), and whether this
    #: run met it; with no ``target``, the condition alone is the target.
    condition: str | None = None
    condition_met: bool | None = None
    #: Anything worth keeping in the JSON (samples, sizes); not printed.
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.value / self.ceiling if self.ceiling else float("nan")

    @property
    def meets_target(self) -> bool | None:
        if self.target is None and self.condition is None:
            return None
        ratio_ok = self.target is None or self.ratio >= self.target
        return ratio_ok and (self.condition is None or bool(self.condition_met))

    @property
    def target_text(self) -> str | None:
        """The target as the tables print it (">= 0.30, p99 < 20 ms"); None if none."""
        return target_text(self.target, self.condition)


def target_text(target: float | None, condition: str | None) -> str | None:
    parts = ([] if target is None else [f">= {target:.2f}"]) + ([condition] if condition else [])
    return ", ".join(parts) or None


Workload = Callable[[Options], list[Row]]

#: Every registered workload, by name, in registration order.
WORKLOADS: dict[str, Workload] = {}


def workload(name: str) -> Callable[[Workload], Workload]:
    """Register a workload under ``name`` (its JSON file is ``var/bench/<name>.json``)."""

    def register(function: Workload) -> Workload:
        if name in WORKLOADS:
            raise ValueError(f"two workloads are named {name!r}")
        WORKLOADS[name] = function
        return function

    return register
