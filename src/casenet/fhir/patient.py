"""Patient (FHIR R5): the client as the caller's agency may see them, from the case
view's ``client`` (:class:`~casenet.application.views.ClientView`): a field the caller
is not granted is absent, as in ``GET /v1/cases/{id}``."""

from __future__ import annotations

from uuid import UUID

from msgspec import UNSET, UnsetType

from casenet.application.views import ClientView
from casenet.fhir import Resource


def patient_resource(client_id: UUID, client: ClientView | UnsetType) -> Resource:
    """The client: only its id, plus identity (name, date of birth) and contact (phone,
    address) as far as ``client`` shows them."""
    resource: Resource = {"resourceType": "Patient", "id": str(client_id)}
    if client is UNSET:
        return resource
    assert isinstance(client, ClientView)
    if isinstance(client.name, str):
        resource["name"] = [{"text": client.name}]
    if isinstance(client.date_of_birth, str):
        resource["birthDate"] = client.date_of_birth
    if isinstance(client.phone, str):
        resource["telecom"] = [{"system": "phone", "value": client.phone}]
    if isinstance(client.address, str):
        resource["address"] = [{"text": client.address}]
    return resource
