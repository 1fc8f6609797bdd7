"""The network's figures recomputed from the decoded log alone (not from any read
model), by API.md's definitions: what ``casenet.network.figures`` and
``GET /v1/network/metrics`` must equal, also after a rebuild."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from casenet.application import Casenet
from casenet.domain.referral import (
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralRejected,
    ReferralRequested,
)

ALL = 1_000_000


@dataclass
class Times:
    """One referral as the log tells it."""

    to: str
    service: str
    requested: datetime
    urgency: str
    answered: datetime | None = None
    accepted: datetime | None = None
    rejected: datetime | None = None
    completed: datetime | None = None
    outcome: str | None = None


def recomputed(casenet: Casenet, own: UUID | None, now: datetime) -> list[dict[str, Any]]:
    """The figures, from the decoded events alone, by API.md's definitions."""
    referrals: dict[UUID, Times] = {}
    for notification in casenet.app.recorder.select_notifications(start=1, limit=ALL):
        event = casenet.app.mapper.to_domain_event(notification)
        if isinstance(event, ReferralRequested):
            referrals[event.originator_id] = Times(
                str(event.to_agency_id), event.service_type, event.timestamp, event.urgency
            )
            continue
        times = referrals.get(event.originator_id)
        if times is None:
            continue
        if isinstance(event, ReferralAccepted | ReferralRejected | ReferralCancelled):
            times.answered = event.timestamp
        if isinstance(event, ReferralAccepted):
            times.accepted = event.timestamp
        elif isinstance(event, ReferralRejected):
            times.rejected = event.timestamp
        elif isinstance(event, ReferralCompleted):
            times.completed, times.outcome = event.timestamp, event.outcome
    cells: dict[tuple[str, str], list[Times]] = {}
    for times in referrals.values():
        cells.setdefault((times.to, times.service), []).append(times)
    figures = []
    for (to, service), group in sorted(cells.items()):
        mine = to == str(own)
        counts = {
            "received": len(group),
            "accepted": sum(t.accepted is not None for t in group),
            "rejected": sum(t.rejected is not None for t in group),
            "completed": sum(t.completed is not None for t in group),
            "got_help": sum(t.outcome == "got_help" for t in group),
            "overdue": sum((t.answered or now) > _due(t) for t in group),
        }
        accepted = [(t.requested, t.accepted) for t in group if t.accepted]
        completed = [(t.requested, t.completed) for t in group if t.completed]
        figures.append(
            {"agency_id": to, "service_type": service}
            | {name: _allowed(n, mine) for name, n in counts.items()}
            | {
                "median_hours_to_accept": _median(accepted, mine),
                "median_hours_to_complete": _median(completed, mine),
                "suppressed": any(_allowed(n, mine) is None for n in counts.values()),
            }
        )
    return figures


def _allowed(count: int, mine: bool) -> int | None:
    return count if mine or count >= 5 else None


def _due(t: Times) -> datetime:
    return t.requested + timedelta(hours=24 if t.urgency == "urgent" else 168)


def _median(ends: list[tuple[datetime, datetime]], mine: bool) -> float | None:
    if not ends or _allowed(len(ends), mine) is None:
        return None
    return round(statistics.median((b - a).total_seconds() / 3600 for a, b in ends), 2)
