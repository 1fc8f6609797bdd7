"""Read models fed from the notification log, and the runner that keeps them current."""

from casenet.infrastructure.projections.base import ReadModel
from casenet.infrastructure.projections.models import read_models
from casenet.infrastructure.projections.runner import (
    Projections,
    ProjectionStatus,
    ReadModelRebuilt,
    ReadModelStopped,
    ReadModelUnavailable,
)

__all__ = [
    "ProjectionStatus",
    "Projections",
    "ReadModel",
    "ReadModelRebuilt",
    "ReadModelStopped",
    "ReadModelUnavailable",
    "read_models",
]
