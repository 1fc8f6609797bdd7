"""Referral deadlines and the network's figures, on SQLite and PostgreSQL.

* The deadline step notes each referral left unanswered past its due time once, even
  with two processes at the same instant: an urgent one after 24 hours, a routine one
  after 7 days, never one answered or cancelled; both agencies get one
  ``referral_overdue`` item.
* ``casenet.network.figures`` equals a recomputation from the decoded log, not from
  any read model (tests/support/network_figures.py), with small cells withheld for
  every agency but the caller's; and again after the read model is rebuilt from the log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from tests.support.deadlines import run_at_once
from tests.support.network_figures import recomputed
from tests.support.referral_network import story

from casenet.application import Actor, Casenet
from casenet.domain.aggregate import utcnow


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
        return run_at_once([casenet, other], at)

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
