"""Client services: erasure (crypto-shredding) of a client's personal data."""

from __future__ import annotations

from uuid import UUID

from casenet.application.actor import ADMIN, Actor
from casenet.application.case_queries import client_registered_by
from casenet.application.store import CasenetApplication
from casenet.domain.client import Client
from casenet.domain.errors import NotFound


class ClientService:
    """Erasure is asked by an admin of the registering agency, or run by the operator."""

    def __init__(self, app: CasenetApplication) -> None:
        self.app = app

    def erase(self, actor: Actor, client_id: UUID) -> Client:
        if not actor.is_operator:
            # Scoped to the caller's agency before the client is loaded (no oracle).
            agency_id = actor.agency_id
            if agency_id is None or not client_registered_by(self.app, client_id, agency_id):
                raise NotFound("client not found")
            actor.require_role({ADMIN}, "erase a client")
        # Sealed: nothing of the client is decrypted to erase it.
        client = self.app.get(Client, client_id, personal=False)
        client.erase(agency_id=actor.agency_id, worker_id=actor.worker_id)
        # Destroy the key first: that is the erasure, committed before this returns,
        # and no process keeps keys (see KeyRing), so every read in any process that
        # starts after it finds no key. If recording the event then fails, a retry
        # finds the key gone (idempotent) and records it.
        if self.app.keyring is not None:
            self.app.keyring.erase(client.id)
        self.app.save(client)
        return client
