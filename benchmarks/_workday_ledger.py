"""What the working day's users wrote, when each write answered, and what a read must show.

Kept apart from :mod:`benchmarks._workday_users` (which gevent patches on import) so that
the rules can be tested in any process (``tests/unit/test_workday_ledger.py``).

Times are ``time.monotonic()`` values: a write's is taken after its answer arrived, a
read's before its request was sent, so "answered before the read started" errs towards
expecting less, never more. A write still in flight when a read starts may or may not be
seen: the rules expect nothing of it. Each ``*_misses`` method returns what a read
missed (ids only), or None when it showed everything it had to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

SAMPLES = 20


@dataclass
class Case:
    id: str
    owner: int
    #: (answered at, note id) of each note; (answered at, version) of each write.
    notes: list[tuple[float, str]] = field(default_factory=list)
    versions: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class Consent:
    id: str
    case_id: str
    owner: int
    grantee: int
    granted_at: float
    withdraw_sent: float | None = None
    withdrawn_at: float | None = None


@dataclass
class Referral:
    id: str
    case_id: str
    sender: int
    receiver: int
    requested_at: float
    accept_sent: float | None = None


@dataclass
class Feed:
    """One agency's follower: where it is in the feed, and what it has seen."""

    cursor: str | None = None
    busy: bool = False
    seen: set[tuple[str, str]] = field(default_factory=set)  # (type, id)

    def add(self, item: Mapping[str, Any]) -> None:
        key = item.get("referral_id") or item.get("consent_id") or item["id"]
        self.seen.add((str(item["type"]), str(key)))


class Ledger:
    """Every write that answered, the statuses, and the checks a read makes."""

    def __init__(self, agencies: int) -> None:
        self.cases: dict[str, Case] = {}
        self.cases_of: list[list[str]] = [[] for _ in range(agencies)]
        self.consents: dict[str, Consent] = {}
        self.consents_of: list[list[str]] = [[] for _ in range(agencies)]  # by owner
        self.granted_to: list[list[str]] = [[] for _ in range(agencies)]  # by grantee
        self.grants_sent: Counter[tuple[str, int]] = Counter()  # (case, grantee)
        self.referrals: dict[str, Referral] = {}
        self.referred_to: list[list[str]] = [[] for _ in range(agencies)]
        self.feeds = [Feed() for _ in range(agencies)]
        #: (kind, aggregate id, version, owner agency) of every 2xx write.
        self.acknowledged: list[tuple[str, str, int, int]] = []
        self.statuses: Counter[int] = Counter()
        self.unexpected: Counter[str] = Counter()
        self.transport_errors = 0
        self.stale_reads: Counter[str] = Counter()
        self.stale_samples: list[str] = []

    # --- writes that answered ------------------------------------------------------------

    def case_opened(self, case_id: str, owner: int, at: float) -> Case:
        case = self.cases[case_id] = Case(case_id, owner, versions=[(at, 1)])
        self.cases_of[owner].append(case_id)
        self.acknowledged.append(("case", case_id, 1, owner))
        return case

    def note_added(self, case: Case, note_id: str, version: int, at: float) -> None:
        case.notes.append((at, note_id))
        case.versions.append((at, version))
        self.acknowledged.append(("case", case.id, version, case.owner))

    def consent_granted(self, consent: Consent) -> None:
        self.consents[consent.id] = consent
        self.consents_of[consent.owner].append(consent.id)
        self.granted_to[consent.grantee].append(consent.id)
        self.acknowledged.append(("consent", consent.id, 1, consent.owner))

    def consent_withdrawn(self, consent: Consent, version: int, at: float) -> None:
        consent.withdrawn_at = at
        self.acknowledged.append(("consent", consent.id, version, consent.owner))

    def referral_requested(self, referral: Referral) -> None:
        self.referrals[referral.id] = referral
        self.referred_to[referral.receiver].append(referral.id)
        self.acknowledged.append(("referral", referral.id, 1, referral.sender))

    def referral_accepted(self, referral: Referral, version: int) -> None:
        self.acknowledged.append(("referral", referral.id, version, referral.sender))

    # --- what a read must show --------------------------------------------------------

    def stale(self, operation: str, what: str) -> None:
        self.stale_reads[operation] += 1
        if len(self.stale_samples) < SAMPLES:
            self.stale_samples.append(f"{operation}: {what}")

    def consents_for(self, case_id: str, grantee: int) -> list[Consent]:
        consents = map(self.consents.get, self.granted_to[grantee])
        return [c for c in consents if c and c.case_id == case_id]

    def must_see(self, case_id: str, grantee: int, started: float) -> list[str]:
        """The consents that must let ``grantee`` see the case in a read started then:
        answered before it, and no withdrawal sent (one in flight may win the race)."""
        return [
            c.id
            for c in self.consents_for(case_id, grantee)
            if c.granted_at < started and c.withdraw_sent is None
        ]

    def must_not_see(self, case_id: str, grantee: int, started: float) -> bool:
        """Whether every grant ever sent for the pair was withdrawn before the read."""
        consents = self.consents_for(case_id, grantee)
        return (
            bool(consents)
            and self.grants_sent[(case_id, grantee)] == len(consents)
            and all(c.withdrawn_at is not None and c.withdrawn_at < started for c in consents)
        )

    def case_misses(self, case: Case, view: Mapping[str, Any], started: float) -> str | None:
        """The owner's read of a case: every note and version that had answered."""
        seen = {note["id"] for note in view["notes"]}
        missed = [i for at, i in case.notes if at < started and i not in seen]
        floor = max((v for at, v in case.versions if at < started), default=0)
        if missed or view["version"] < floor:
            return f"case {case.id}: notes {missed}, version {view['version']} < {floor}"
        return None

    def shared_case_misses(
        self, case_id: str, grantee: int, status: int, view: Any, started: float
    ) -> str | None:
        """A grantee's read of a case (200 or 404): a consent's effect, and the notes."""
        must_see = self.must_see(case_id, grantee, started)
        if status == 404:
            return f"case {case_id} 404 under {must_see}" if must_see else None
        if self.must_not_see(case_id, grantee, started):
            return f"case {case_id} shown after its consents were withdrawn"
        if not must_see:
            return None
        notes = {note["id"] for note in view["notes"] or []}
        missed = [i for at, i in self.cases[case_id].notes if at < started and i not in notes]
        unlisted = sorted(set(must_see) - set(view["shared_under"]))
        return (
            f"case {case_id}: notes {missed}, consents {unlisted}" if missed or unlisted else None
        )

    def shared_list_misses(
        self, grantee: int, listed: Collection[str], started: float
    ) -> str | None:
        """A grantee's list of shared cases: those it must see, none it must not."""
        cases = {self.consents[c].case_id for c in list(self.granted_to[grantee])}
        missed = [c for c in cases if c not in listed and self.must_see(c, grantee, started)]
        shown = [c for c in cases if c in listed and self.must_not_see(c, grantee, started)]
        return f"missing {missed[:3]}, withdrawn {shown[:3]}" if missed or shown else None

    def inbox_misses(self, receiver: int, listed: Collection[str], started: float) -> str | None:
        """The receiver's inbox of requested referrals: each that had answered, unless an
        acceptance has been sent for it since."""
        missed = [
            r.id
            for r in map(self.referrals.get, list(self.referred_to[receiver]))
            if r and r.requested_at < started and r.accept_sent is None and r.id not in listed
        ]
        return f"referrals {missed[:3]} not in the inbox" if missed else None

    def feed_misses(self, agency: int, started: float) -> str | None:
        """The agency's feed, followed up to its end: an item for each referral to it and
        each consent granted to it or withdrawn from it that had answered."""
        expected = [
            ("referral_requested", r.id)
            for r in map(self.referrals.get, list(self.referred_to[agency]))
            if r and r.requested_at < started
        ]
        for c in map(self.consents.get, list(self.granted_to[agency])):
            if c and c.granted_at < started:
                expected.append(("consent_granted", c.id))
            if c and c.withdrawn_at is not None and c.withdrawn_at < started:
                expected.append(("consent_withdrawn", c.id))
        missed = [item for item in expected if item not in self.feeds[agency].seen]
        return f"agency {agency}'s feed lacks {missed[:3]}" if missed else None
