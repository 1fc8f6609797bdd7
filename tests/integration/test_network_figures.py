"""Referral deadlines and the network's figures, on SQLite and PostgreSQL.

* The deadline step notes each referral left unanswered past its due time once, even
  with two processes at the same instant: an urgent one after 24 hours, a routine one
  after 7 days, never one answered or cancelled; both agencies get one
  ``referral_overdue`` item.
* ``casenet.network.figures`` equals a recomputation written here from the decoded
  log (not from any read model), with small cells withheld for every agency but the
  caller's; and again after the read model is rebuilt from the log.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from tests.support.referral_network import story

from casenet.application import Actor, Casenet
from casenet.domain.aggregate import utcnow
from casenet.domain.referral import (
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralRejected,
    ReferralRequested,
)

ALL = 1_000_000
COUNTS = ("received", "accepted", "rejected", "completed", "got_help", "overdue")


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


def served(casenet: Casenet, actor: Actor | None, now: datetime) -> list[dict[str, Any]]:
    answer = casenet.network.figures(actor, now=now)
    items: list[dict[str, Any]] = msgspec.to_builtins(answer)["items"]
    return items


def test_figures_equal_a_recomputation_from_the_log_also_after_a_rebuild(
    casenet: Casenet,
) -> None:
    net = story(casenet)
    later = utcnow() + timedelta(days=2)  # the clinic's urgent ones are overdue by then
    for viewer in (net.ngo, net.hospital, net.school, None):
        own = viewer.require_agency() if viewer else None
        assert served(casenet, viewer, later) == recomputed(casenet, own, later)
    by_cell = {(f["agency_id"], f["service_type"]): f for f in served(casenet, net.ngo, later)}
    hospital = by_cell[(str(net.hospital.agency_id), "health")]
    assert (hospital["received"], hospital["accepted"], hospital["completed"]) == (7, 6, 5)
    assert hospital["rejected"] is None
    assert hospital["got_help"] is None
    assert hospital["suppressed"] is True
    assert hospital["median_hours_to_complete"] is not None
    clinic = by_cell[(str(net.clinic.agency_id), "health")]
    assert (clinic["received"], clinic["overdue"]) == (5, 5)
    school = by_cell[(str(net.school.agency_id), "education")]
    assert set(school.values()) >= {None}
    assert school["median_hours_to_accept"] is None
    # The school sees its own small cell whole.
    own = {(f["agency_id"], f["service_type"]): f for f in served(casenet, net.school, later)}
    assert own[(str(net.school.agency_id), "education")]["received"] == 3

    before = casenet.projections.checksum("network_metrics")
    casenet.projections.rebuild(["network_metrics"])
    assert casenet.projections.checksum("network_metrics") == before
    assert served(casenet, net.ngo, later) == recomputed(casenet, net.ngo.agency_id, later)


def test_a_period_and_a_service_type_narrow_the_figures(casenet: Casenet) -> None:
    net = story(casenet)
    now = utcnow()
    everything = casenet.network.figures(net.hospital, now=now)
    assert {f.service_type for f in everything.items} == {"health", "housing", "education"}
    health = casenet.network.figures(net.hospital, service_type="health", now=now)
    assert {f.service_type for f in health.items} == {"health"}
    assert casenet.network.figures(net.hospital, since=now, now=now).items == []
    assert casenet.network.figures(net.hospital, until=now - timedelta(days=1)).items == []


def test_two_processes_note_each_unanswered_referral_once_and_an_answered_never(
    casenet: Casenet, open_casenet: Callable[[], Casenet]
) -> None:
    net = story(casenet)
    other = open_casenet()
    start = utcnow()

    def run_both(at: datetime) -> int:
        noted: list[int] = []
        barrier = threading.Barrier(2)

        def run(instance: Casenet) -> None:
            barrier.wait()
            noted.append(instance.projections.deadlines.run(now=at))

        threads = [threading.Thread(target=run, args=(c,)) for c in (casenet, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(noted)

    assert run_both(start + timedelta(hours=23)) == 0  # not due yet
    assert run_both(start + timedelta(hours=25)) == 5  # the clinic's five urgent ones
    assert run_both(start + timedelta(days=6)) == 0
    assert run_both(start + timedelta(days=8)) == 2  # the school's two routine ones
    assert run_both(start + timedelta(days=30)) == 0

    def overdue_items(actor: Actor) -> list[Any]:
        items = casenet.feed.feed(actor, limit=500, after=None).items
        return [i for i in items if i.type == "referral_overdue"]

    clinic = overdue_items(net.clinic)
    assert sorted(i.referral_id for i in clinic) == sorted(net.clinic_waiting)
    assert all(i.status == "requested" and i.to_agency_id == net.clinic.agency_id for i in clinic)
    ngo = overdue_items(net.ngo)
    assert len(ngo) == 7
    assert {i.id for i in clinic} <= {i.id for i in ngo}
    assert overdue_items(net.hospital) == []  # every one it got was answered
    waiting = casenet.referral_queries.read(net.school, net.school_waiting[0])
    assert waiting.status == "requested"
    assert waiting.response_due_at == waiting.created_at + timedelta(days=7)
