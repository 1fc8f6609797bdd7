"""``casenet demo``: a small network seeded through the services, to try the API at once."""

from __future__ import annotations

import argparse

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails
from casenet.cli.commands import CommandError, services
from casenet.domain.agency import Agency, Contact, Service
from casenet.settings import Settings


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    """Seed a small network so a newcomer can try the API at once; never over real data."""
    if settings.is_production:
        raise CommandError("demo is refused when CASENET_ENV=production")
    with services(settings) as casenet:
        if casenet.directory.directory(service_type=None, area=None, limit=1, after=None).items:
            raise CommandError(
                f"demo is refused: the store at {settings.database.display} already has "
                "agencies (demo seeds an empty store only)"
            )
        for line in seed_demo(casenet):
            print(line)


def seed_demo(casenet: Casenet) -> list[str]:
    """A welfare NGO, a hospital social-work department and a school, with a case, a
    consent and a referral; returns the lines to print (a token per worker)."""
    hospital, lines, welfare = _demo_agencies(casenet)
    case = casenet.cases.open_case(
        welfare,
        client=ClientDetails(name="Maria Santos", date_of_birth="1984-03-02", phone="+1 555 0100"),
        summary="Domestic worker; her husband's hospital appointments clash with her shifts.",
        needs=["employment", "health"],
    )
    casenet.cases.add_note(
        welfare, case.id, category="health", text="Husband needs dialysis three times a week."
    )
    consent = casenet.consents.grant(
        welfare,
        case.id,
        grantee_agency_id=hospital.id,
        sections=["identity", "contact", "notes.health"],
        purpose="referral",
        method="written",
        evidence="Signed consent form, scanned to the NGO's file",
    )
    referral = casenet.referrals.request(
        welfare,
        case_id=case.id,
        to_agency_id=hospital.id,
        service_type="health",
        reason="Please help move the dialysis slots to evenings.",
        urgency="routine",
        consent_id=consent.id,
    )
    return [
        "casenet demo network (tokens are shown once):",
        *lines,
        f"case {case.id} (client {case.client_id}), consent {consent.id}, referral {referral.id}",
        "try: curl -H 'Authorization: Bearer <Hal Hospital token>' "
        f"http://127.0.0.1:8000/v1/cases/{case.id}",
    ]


def _demo_agencies(casenet: Casenet) -> tuple[Agency, list[str], Actor]:
    """Three agencies and their workers: the hospital, a line per worker (with their
    token), and the NGO's caseworker."""
    agencies = casenet.agencies
    ngo = agencies.register(
        OPERATOR_ACTOR,
        name="Eastside Welfare NGO",
        kind="ngo",
        services=[
            Service(
                name="Benefits and housing advice",
                description="Help claiming benefits; rent arrears negotiated with landlords.",
                needs=("income", "housing"),
                languages=("en", "sw"),
                areas=("Eastside",),
                capacity="accepting",
                contacts=(Contact(name="Ana Welfare", title="Caseworker"),),
            )
        ],
    )
    hospital = agencies.register(
        OPERATOR_ACTOR,
        name="City Hospital Social Work",
        kind="hospital",
        services=[
            Service(
                name="Hospital social work",
                description="Appointments moved to hours a carer can manage; discharge help.",
                needs=("health", "disability"),
                languages=("en", "sw", "hi"),
                areas=("Eastside", "Riverside"),
                eligibility="Patients of City Hospital and their carers.",
                capacity="waitlist",
                contacts=(Contact(name="Hal Hospital", title="Medical social worker"),),
            )
        ],
    )
    school = agencies.register(OPERATOR_ACTOR, name="Riverside Primary School", kind="school")
    lines = []
    actors: dict[str, Actor] = {}
    for agency, people in (
        (
            ngo,
            [
                ("Ana Welfare", "caseworker"),
                ("Sam Supervisor", "supervisor"),
                ("Ada Admin", "admin"),
                ("Aud Itor", "auditor"),
            ],
        ),
        (hospital, [("Hal Hospital", "caseworker"), ("Hana Admin", "admin")]),
        (school, [("Sid School", "caseworker")]),
    ):
        for name, role in people:
            worker, token = agencies.add_worker(OPERATOR_ACTOR, agency.id, name=name, role=role)
            actors[name] = Actor(agency.id, worker.id, role)
            lines.append(f"{agency.name:<28} {role:<10} {name:<15} {token}")
    return hospital, lines, actors["Ana Welfare"]
