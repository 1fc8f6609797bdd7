"""One timeline per case of an audit bundle, in plain words (for ``audit_report``).

Each record of a case (its opening, consents granted and withdrawn, emergency grants
opened, revoked and reviewed, each read by another agency, each referral step, each
copy of their data made for the client, the client's erasure) becomes one entry, and a
consent's or an emergency grant's end date becomes one too once it has passed (expiry
is not an event: it is where the clock passed ``valid_until`` or ``expires_at``), as
does an emergency grant's review date passed with no review. Entries are in time
order, ties in log order. Consents, emergency grants and referrals are numbered within
their case, so that a reader can follow "consent 2" or "emergency grant 1" from its
grant to the reads made under it without reading ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casenet.domain.sections import REFERRAL
from casenet.domain.wording import (
    FINDING_WORDS,
    LEGAL_BASIS_WORDS,
    METHOD_WORDS,
    OUTCOME_WORDS,
    PURPOSE_WORDS,
    STATUS_WORDS,
    in_words,
    reader_time,
    sections_in_words,
)
from casenet.infrastructure.audit_bundle import read_records

#: An agency id -> its name; a worker id -> their name (both as the report shows them).
Names = Callable[[str | None], str]


@dataclass(frozen=True)
class Entry:
    """One line of a case's timeline: when, what kind, what happened, who, the details."""

    at: str  # the record's instant, ISO (sorts as time)
    position: int  # the log position: ties in time keep the log's order
    #: consent, withdrawn, expired, emergency, review, disclosure, referral, copy,
    #: erasure, case
    kind: str
    what: str
    who: str
    details: str = ""


@dataclass
class CaseHistory:
    """A case's records, read from a bundle, and its timeline."""

    case: dict[str, Any]
    consents: list[dict[str, Any]] = field(default_factory=list)
    emergency_grants: list[dict[str, Any]] = field(default_factory=list)
    disclosures: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    erasure: dict[str, Any] | None = None
    #: The copies of their data made for the client (GDPR Art. 15).
    copies: list[dict[str, Any]] = field(default_factory=list)

    def timeline(self, agency: Names, worker: Names, now: str) -> list[Entry]:
        """Every entry of the case, in time order (``now``: when the bundle was made)."""
        entries = [
            Entry(
                self.case["at"],
                self.case["position"],
                "case",
                "Case opened",
                agency(self.case["owner_agency_id"]),
            ),
            *self._consent_entries(agency, worker, now),
            *self._emergency_entries(agency, worker, now),
            *self._disclosure_entries(agency, worker),
            *self._referral_entries(agency, worker),
            *(
                Entry(
                    r["at"],
                    r["position"],
                    "copy",
                    "A copy of everything held about the client was made for them (their "
                    "right of access)",
                    _by(agency(r["agency_id"]), worker(r["worker_id"])),
                )
                for r in self.copies
            ),
        ]
        if self.erasure is not None:
            entries.append(
                Entry(
                    self.erasure["at"],
                    self.erasure["position"],
                    "erasure",
                    "The client's personal data was erased (destroyed for good)",
                    worker(self.erasure.get("worker_id")) or "the network's operator",
                )
            )
        return sorted(entries, key=lambda e: (e.at, e.position))

    def consent_standing(self, agency: Names, now: str) -> list[tuple[int, str, str, str]]:
        """Each consent as it stood when the bundle was made (``now``): its number, to
        whom, what it covers, and whether it was in force, in words."""
        withdrawn = {
            r["consent_id"]: r["at"] for r in self.consents if r["type"] == "ConsentWithdrawn"
        }
        standing = []
        for number, r in enumerate((r for r in self.consents if r["type"] == "ConsentGranted"), 1):
            until, ended = r.get("valid_until"), withdrawn.get(r["consent_id"])
            if ended is not None and (not until or ended <= until):
                status = f"withdrawn on {reader_time(ended)}"
            elif until and until <= now:
                status = f"ran out on {reader_time(until)}"
            elif until:
                status = f"in force until {reader_time(until)}"
            else:
                status = "in force, no end date"
            shares = ", ".join(sections_in_words(r["sections"]))
            standing.append((number, agency(r["grantee_agency_id"]), shares, status))
        return standing

    def consent_numbers(self) -> dict[str, int]:
        granted = [r for r in self.consents if r["type"] == "ConsentGranted"]
        return {r["consent_id"]: number for number, r in enumerate(granted, start=1)}

    def _consent_entries(self, agency: Names, worker: Names, now: str) -> Iterator[Entry]:
        numbers = self.consent_numbers()
        granted = {r["consent_id"]: r for r in self.consents if r["type"] == "ConsentGranted"}
        withdrawn = {r["consent_id"]: r for r in self.consents if r["type"] == "ConsentWithdrawn"}
        for consent_id, r in granted.items():
            grantee = agency(r["grantee_agency_id"])
            shares = ", ".join(sections_in_words(r["sections"]))
            until = r.get("valid_until")
            yield Entry(
                r["at"],
                r["position"],
                "consent",
                f"Consent {numbers[consent_id]} given: {grantee} may see {shares}",
                _by(agency(r["owner_agency_id"]), worker(r.get("worker_id"))),
                f"Why: {in_words(PURPOSE_WORDS, r['purpose'])}. "
                f"How: {in_words(METHOD_WORDS, r['method'])}. "
                + (f"Until {reader_time(until)}." if until else "No end date.")
                + f" Reference {consent_id}.",
            )
            ended = withdrawn.get(consent_id)
            if ended is not None:
                yield Entry(
                    ended["at"],
                    ended["position"],
                    "withdrawn",
                    f"Consent {numbers[consent_id]} withdrawn: {grantee} may no longer see "
                    f"{shares}",
                    _by(agency(r["owner_agency_id"]), worker(ended.get("worker_id"))),
                )
            if until and until <= now and (ended is None or until < ended["at"]):
                yield Entry(
                    until,
                    r["position"],
                    "expired",
                    f"Consent {numbers[consent_id]} ran out: {grantee} may no longer see {shares}",
                    "(its end date passed)",
                )

    def emergency_numbers(self) -> dict[str, int]:
        created = [r for r in self.emergency_grants if r["type"] == "EmergencyGrantCreated"]
        return {r["emergency_grant_id"]: number for number, r in enumerate(created, start=1)}

    def _emergency_entries(self, agency: Names, worker: Names, now: str) -> Iterator[Entry]:
        """Each emergency grant: opened (on its basis, in words), revoked or run out,
        and reviewed, or its review date passed without a review."""
        numbers = self.emergency_numbers()
        later = {
            (r["type"], r["emergency_grant_id"]): r
            for r in self.emergency_grants
            if r["type"] != "EmergencyGrantCreated"
        }
        for r in self.emergency_grants:
            if r["type"] != "EmergencyGrantCreated":
                continue
            grant_id = r["emergency_grant_id"]
            name = f"Emergency grant {numbers[grant_id]}"
            grantee, owner = agency(r["grantee_agency_id"]), agency(r["owner_agency_id"])
            shares = ", ".join(sections_in_words(r["sections"]))
            yield Entry(
                r["at"],
                r["position"],
                "emergency",
                f"{name} opened without the client's consent: {grantee} may see {shares}",
                _by(owner, worker(r.get("worker_id"))),
                f"Legal basis: {in_words(LEGAL_BASIS_WORDS, r['basis'])}. "
                f"Until {reader_time(r['expires_at'])}. Review due by "
                f"{reader_time(r['review_due_at'])}. Reference {grant_id}.",
            )
            revoked = later.get(("EmergencyGrantRevoked", grant_id))
            if revoked is not None and revoked["at"] < r["expires_at"]:
                yield Entry(
                    revoked["at"],
                    revoked["position"],
                    "emergency",
                    f"{name} revoked: {grantee} may no longer see {shares}",
                    _by(owner, worker(revoked.get("worker_id"))),
                )
            elif r["expires_at"] <= now:
                yield Entry(
                    r["expires_at"],
                    r["position"],
                    "emergency",
                    f"{name} ran out: {grantee} may no longer see {shares}",
                    "(its end time passed)",
                )
            reviewed = later.get(("EmergencyGrantReviewed", grant_id))
            yield from _review_entries(
                name,
                r,
                reviewed,
                _by(owner, worker(None if reviewed is None else reviewed.get("worker_id"))),
                now,
            )

    def _disclosure_entries(self, agency: Names, worker: Names) -> Iterator[Entry]:
        numbers = self.consent_numbers()
        emergency = self.emergency_numbers()
        for r in self.disclosures:
            recipient = agency(r["recipient_agency_id"])
            sections = r["sections"]
            if sections == [REFERRAL]:
                what = f"{recipient} was sent the referral's reason or a message"
            else:
                what = f"{recipient} read {', '.join(sections_in_words(sections))}"
            under = [f"consent {numbers[c]}" for c in r["consent_ids"] if c in numbers]
            under += [
                f"emergency grant {emergency[g]}"
                for g in r.get("emergency_grant_ids", ())
                if g in emergency
            ]
            why = "; ".join(
                [in_words(PURPOSE_WORDS, p) for p in r["purposes"]]
                + [in_words(LEGAL_BASIS_WORDS, b) for b in r.get("legal_bases", ())]
            )
            details = (
                f"Under {' and '.join(under)}." if under else "As a party to the referral."
            ) + (f" Why: {why}." if why else "")
            yield Entry(
                r["at"],
                r["position"],
                "disclosure",
                what,
                worker(r.get("worker_id")),
                details,
            )

    def _referral_entries(self, agency: Names, worker: Names) -> Iterator[Entry]:
        numbers: dict[str, int] = {}
        to_agency: dict[str, str] = {}
        for r in self.referrals:
            referral_id = r["referral_id"]
            if r["type"] == "ReferralRequested":
                numbers[referral_id] = len(numbers) + 1
                to_agency[referral_id] = agency(r["to_agency_id"])
                yield Entry(
                    r["at"],
                    r["position"],
                    "referral",
                    f"Referral {numbers[referral_id]} to {to_agency[referral_id]} requested",
                    _by(agency(r["agency_id"]), worker(r.get("worker_id"))),
                    f"Service: {in_words({}, r['service_type'])}. Urgency: {r['urgency']}.",
                )
                continue
            outcome = r.get("outcome")
            yield Entry(
                r["at"],
                r["position"],
                "referral",
                f"Referral {numbers.get(referral_id, '')} to "
                f"{to_agency.get(referral_id, 'another agency')} "
                f"{in_words(STATUS_WORDS, r['status'])}",
                _by(agency(r["agency_id"]), worker(r.get("worker_id"))),
                f"Outcome: {in_words(OUTCOME_WORDS, outcome)}." if outcome else "",
            )


def _review_entries(
    name: str, created: dict[str, Any], reviewed: dict[str, Any] | None, who: str, now: str
) -> Iterator[Entry]:
    """An emergency grant's review, or its due date passed without one (rule 2b)."""
    due = created["review_due_at"]
    if reviewed is not None:
        yield Entry(
            reviewed["at"],
            reviewed["position"],
            "review",
            f"{name} reviewed: {in_words(FINDING_WORDS, reviewed['finding'])}",
            who,
            "Reviewed after its due date." if reviewed["at"] > due else "Reviewed in time.",
        )
    elif due <= now:
        yield Entry(
            due,
            created["position"],
            "review",
            f"{name} was not reviewed by its due date",
            "(no review recorded)",
        )


def _by(agency: str, worker: str) -> str:
    return f"{worker}, {agency}" if worker else agency


def case_histories(bundle: Path) -> list[CaseHistory]:
    """Each case of the bundle with its records (a withdrawal or a status change belongs
    to the case its grant or request named; an erasure to every case of its client)."""
    cases = {r["case_id"]: CaseHistory(r) for r in read_records(bundle, "cases.jsonl")}
    consent_case: dict[str, str] = {}  # of consents and emergency grants alike
    for record in read_records(bundle, "consents.jsonl"):
        emergency = "emergency_grant_id" in record
        basis_id = record["emergency_grant_id"] if emergency else record["consent_id"]
        if "case_id" in record:  # a consent granted, an emergency grant opened
            consent_case[basis_id] = record["case_id"]
        history = cases.get(consent_case.get(basis_id, ""))
        if history is not None:
            (history.emergency_grants if emergency else history.consents).append(record)
    for record in read_records(bundle, "disclosures.jsonl"):
        if (history := cases.get(record["case_id"])) is not None:
            history.disclosures.append(record)
    referral_case: dict[str, str] = {}
    for record in read_records(bundle, "referrals.jsonl"):
        if record["type"] == "ReferralRequested":
            referral_case[record["referral_id"]] = record["case_id"]
        history = cases.get(referral_case.get(record["referral_id"], ""))
        if history is not None:
            history.referrals.append(record)
    erasures: dict[str, dict[str, Any]] = {}
    copies: dict[str, list[dict[str, Any]]] = {}
    for record in read_records(bundle, "erasures.jsonl"):
        if record["type"] == "SubjectAccessProvided":
            copies.setdefault(record["client_id"], []).append(record)
        else:
            erasures[record["client_id"]] = record
    for history in cases.values():
        history.erasure = erasures.get(history.case["client_id"])
        history.copies = copies.get(history.case["client_id"], [])
    return list(cases.values())


def worker_ids(bundle: Path) -> set[str]:
    """Every worker a record of the bundle names (whose names a report may show)."""
    found: set[str] = set()
    for name in ("consents.jsonl", "disclosures.jsonl", "referrals.jsonl", "erasures.jsonl"):
        found.update(str(r["worker_id"]) for r in read_records(bundle, name) if r.get("worker_id"))
    return found


def agency_names(bundle: Path) -> Mapping[str, str]:
    return {r["agency_id"]: r["name"] for r in read_records(bundle, "agencies.jsonl")}
