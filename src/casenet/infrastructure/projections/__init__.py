"""Read models fed from the notification log, and the runner that keeps them current.

One module per read model (``directory``, ``cases``, ``consents``, ``referrals``,
``disclosures``, ``feed``, ``audit``,
``webhooks``): its tables, its rows, how it applies a batch.
``base`` says what a read model is and the rule its batches keep; ``facts`` turns the
log's rows into what models see; ``runner`` feeds them, exactly once, as the log grows
(``positions`` holds where each model is, ``live`` is the loop of the live runner),
and ``rebuild`` empties and refills them (and checksums them). ``audit_export`` reads
the audit model for an export.
"""

from casenet.infrastructure.projections.base import (
    ReadModel,
    ReadModelRebuilt,
    ReadModelStopped,
    ReadModelUnavailable,
)
from casenet.infrastructure.projections.positions import ProjectionStatus
from casenet.infrastructure.projections.runner import Projections


def read_models() -> list[ReadModel]:
    """A fresh instance of every read model, in the order they are built."""
    # Imported here: the audit model renders records with ``audit_records``, which
    # itself imports from this package (the time format, ``facts.normalise_time``).
    from casenet.infrastructure.projections.appeals import AppealsModel
    from casenet.infrastructure.projections.audit import AuditRecordsModel
    from casenet.infrastructure.projections.cases import CasesModel
    from casenet.infrastructure.projections.consents import ConsentsModel
    from casenet.infrastructure.projections.directory import DirectoryModel
    from casenet.infrastructure.projections.disclosures import DisclosuresModel
    from casenet.infrastructure.projections.feed import FeedModel
    from casenet.infrastructure.projections.network_metrics import NetworkMetricsModel
    from casenet.infrastructure.projections.partnerships import PartnershipsModel
    from casenet.infrastructure.projections.referrals import ReferralsModel
    from casenet.infrastructure.projections.webhooks import WebhooksModel

    return [
        DirectoryModel(),
        CasesModel(),
        ConsentsModel(),
        ReferralsModel(),
        DisclosuresModel(),
        FeedModel(),
        AuditRecordsModel(),
        WebhooksModel(),
        NetworkMetricsModel(),
        PartnershipsModel(),
        AppealsModel(),
    ]


__all__ = [
    "ProjectionStatus",
    "Projections",
    "ReadModel",
    "ReadModelRebuilt",
    "ReadModelStopped",
    "ReadModelUnavailable",
    "read_models",
]
