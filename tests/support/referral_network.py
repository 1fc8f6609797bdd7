"""A small referral network with its referrals in every state: for the tests of the
deadlines and the network's figures (in process and through the ``casenet`` command)."""

from __future__ import annotations

from types import SimpleNamespace
from uuid import UUID

from casenet.application import OPERATOR_ACTOR, Actor, Casenet, ClientDetails

#: The agencies' names (``The <key>``), by the keys of :func:`network`.
AGENCIES = ("ngo", "hospital", "school", "clinic")


def network(casenet: Casenet) -> SimpleNamespace:
    """A welfare NGO that refers to a hospital, a school and a clinic."""
    agencies = casenet.agencies
    net = SimpleNamespace()
    for name in AGENCIES:
        agency = agencies.register(OPERATOR_ACTOR, name=f"The {name}", kind=name)
        worker, _ = agencies.add_worker(OPERATOR_ACTOR, agency.id, name="W", role="caseworker")
        setattr(net, name, Actor(agency.id, worker.id, "caseworker"))
    net.case = casenet.cases.open_case(
        net.ngo, client=ClientDetails(name="Lakshmi"), summary="s", needs=[]
    ).id
    return net


def refer(
    casenet: Casenet, net: SimpleNamespace, to: Actor, service: str, urgency: str, *path: str
) -> UUID:
    """A referral from the NGO to ``to``'s agency, moved along ``path`` (``cancel`` by
    the NGO; ``complete:<outcome>``)."""
    referral = casenet.referrals.request(
        net.ngo,
        case_id=net.case,
        to_agency_id=to.require_agency(),
        service_type=service,
        reason="r",
        urgency=urgency,
    )
    for step in path:
        action, _, outcome = step.partition(":")
        actor = net.ngo if action == "cancel" else to
        casenet.referrals.move(actor, referral.id, action, outcome=outcome or None, reason="x")
    return referral.id


def story(casenet: Casenet) -> SimpleNamespace:
    """Enough referrals that some cells are 5 or more and others are not."""
    net = network(casenet)
    done = ("accept", "start")
    for outcome in ("got_help",) * 4 + ("not_eligible",):
        refer(casenet, net, net.hospital, "health", "urgent", *done, f"complete:{outcome}")
    refer(casenet, net, net.hospital, "health", "routine", "accept")
    refer(casenet, net, net.hospital, "health", "urgent", "reject")
    refer(casenet, net, net.hospital, "housing", "routine", "accept")
    refer(casenet, net, net.hospital, "housing", "routine", "cancel")
    refer(casenet, net, net.school, "education", "routine", "accept")
    net.school_waiting = [refer(casenet, net, net.school, "education", "routine") for _ in "ab"]
    net.clinic_waiting = [refer(casenet, net, net.clinic, "health", "urgent") for _ in range(5)]
    return net
