"""The network's figures: per receiving agency and service type, how many referrals it
received in a period, and what became of them (API.md "Referral deadlines and network
figures").

Computed at query time from the ``network_metrics`` read model (one row per referral,
from events alone), so they equal a recomputation from the log, also after a rebuild.
A referral counts in the period it was *requested* in; what became of it is as it
stands at the moment of the query (``at``).

Small cells are withheld: a count below :data:`SMALL_CELL` of another agency could
point at a client (three referrals to a small clinic for substance use), so it is
``null``, as is every figure derived from it (the median time to accept of fewer than
five accepted referrals), and the row says ``suppressed: true``. The caller's own
agency sees its own rows whole; the operator's report (``casenet network report``) is
shown in meetings, so it withholds them for every agency.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from uuid import UUID

import msgspec

from casenet.application.actor import Actor
from casenet.application.agencies import DirectoryQueries
from casenet.application.store import CasenetApplication
from casenet.domain.aggregate import utcnow
from casenet.domain.errors import InvalidInput
from casenet.domain.values import check_instant
from casenet.domain.vocabulary import check_need
from casenet.infrastructure import network_report
from casenet.infrastructure.projections import network_metrics as model
from casenet.infrastructure.projections.facts import parse_time

#: A count below this (of another agency) is withheld, with what is derived from it.
SMALL_CELL = 5


class AgencyFigures(msgspec.Struct, kw_only=True):
    """One receiving agency's figures for one service type; ``null`` where withheld."""

    agency_id: UUID
    service_type: str
    received: int | None
    accepted: int | None
    rejected: int | None
    completed: int | None
    got_help: int | None
    overdue: int | None
    median_hours_to_accept: float | None
    median_hours_to_complete: float | None
    #: Whether any figure of the row was withheld (a count below 5, not the caller's).
    suppressed: bool


class NetworkFigures(msgspec.Struct, kw_only=True):
    """The figures of the referrals requested from ``from`` (inclusive) to ``to``
    (exclusive), either open, as they stand ``at``; by agency id, then service type."""

    since: datetime | None = msgspec.field(name="from")
    until: datetime | None = msgspec.field(name="to")
    service_type: str | None
    at: datetime
    items: list[AgencyFigures]


class _Tally:
    """The referrals of one agency and service type, counted."""

    def __init__(self) -> None:
        self.received = self.accepted = self.rejected = 0
        self.completed = self.got_help = self.overdue = 0
        self.hours_to_accept: list[float] = []
        self.hours_to_complete: list[float] = []

    def add(self, row: model.ReferralTimesRow, now: datetime) -> None:
        requested, due = _at(row.requested_at), _at(row.response_due_at)
        self.received += 1
        answered = _at(row.answered_at) if row.answered_at else None
        self.overdue += (answered or now) > due
        self.rejected += row.rejected_at is not None
        if row.accepted_at is not None:
            self.accepted += 1
            self.hours_to_accept.append(_hours(requested, _at(row.accepted_at)))
        if row.completed_at is not None:
            self.completed += 1
            self.got_help += row.outcome == "got_help"
            self.hours_to_complete.append(_hours(requested, _at(row.completed_at)))

    def figures(self, agency_id: str, service_type: str, *, whole: bool) -> AgencyFigures:
        def count(value: int) -> int | None:
            return value if whole or value >= SMALL_CELL else None

        def median(hours: list[float]) -> float | None:
            if not hours or count(len(hours)) is None:
                return None
            return round(statistics.median(hours), 2)

        counts = (
            self.received,
            self.accepted,
            self.rejected,
            self.completed,
            self.got_help,
            self.overdue,
        )
        return AgencyFigures(
            agency_id=UUID(agency_id),
            service_type=service_type,
            received=count(self.received),
            accepted=count(self.accepted),
            rejected=count(self.rejected),
            completed=count(self.completed),
            got_help=count(self.got_help),
            overdue=count(self.overdue),
            median_hours_to_accept=median(self.hours_to_accept),
            median_hours_to_complete=median(self.hours_to_complete),
            suppressed=any(count(c) is None for c in counts),
        )


def _at(text: str) -> datetime:
    instant = parse_time(text)
    assert instant is not None
    return instant


def _hours(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


def figures_of(
    rows: Iterable[model.ReferralTimesRow], *, own_agency: UUID | None, now: datetime
) -> list[AgencyFigures]:
    """The figures of ``rows``, per receiving agency and service type, as ``now``
    stands; small cells withheld except in ``own_agency``'s rows (None: in every row)."""
    tallies: dict[tuple[str, str], _Tally] = {}
    for row in rows:
        tallies.setdefault((row.to_agency_id, row.service_type), _Tally()).add(row, now)
    own = str(own_agency) if own_agency is not None else None
    return [
        tallies[key].figures(*key, whole=key[0] == own)
        for key in sorted(tallies)  # (agency id, service type)
    ]


class NetworkMetrics:
    """``GET /v1/network/metrics`` and ``casenet network report``."""

    def __init__(self, app: CasenetApplication, directory: DirectoryQueries) -> None:
        self.app = app
        self.directory = directory

    def figures(
        self,
        actor: Actor | None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        service_type: str | None = None,
        now: datetime | None = None,
    ) -> NetworkFigures:
        """The figures any worker may read (their own agency's whole); ``actor`` None
        for the operator's report, with every small cell withheld."""
        own_agency = actor.require_agency() if actor is not None else None
        if since is not None:
            since = check_instant(since, "from")
        if until is not None:
            until = check_instant(until, "to")
        if since is not None and until is not None and until <= since:
            raise InvalidInput("to", "must be after from")
        if service_type is not None:
            check_need(service_type, "service_type")
        rows = self.app.projections.current(
            ["network_metrics"],
            lambda: model.referral_times(self.app.database, since, until, service_type),
        )
        at = now or utcnow()
        return NetworkFigures(
            since=since,
            until=until,
            service_type=service_type,
            at=at,
            items=figures_of(rows, own_agency=own_agency, now=at),
        )

    def report_table(self, *, since: datetime | None, until: datetime | None) -> str:
        """``casenet network report``: every agency's figures as a plain-text table, by
        name, small cells withheld (the report is shared with the whole network)."""
        figures = self.figures(None, since=since, until=until)
        return network_report.table(msgspec.to_builtins(figures), self._names())

    def write_report(self, target: Path, *, since: datetime | None, until: datetime | None) -> Path:
        """``--html``: the same figures as a page with a chart per service type."""
        figures = self.figures(None, since=since, until=until)
        return network_report.write_page(target, msgspec.to_builtins(figures), self._names())

    def _names(self) -> dict[str, str]:
        return {str(agency.id): agency.name for agency in self.directory.every_agency()}
