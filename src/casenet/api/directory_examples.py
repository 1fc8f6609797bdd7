"""Example bodies of the directory's operations (services, HSDS), for
:mod:`casenet.api.examples`: Eastside Welfare's rent support, found by a search and
shown as HSDS 3.0. Ids are fixed, so the checked-in document is reproducible."""

from __future__ import annotations

from typing import Any

SERVICE = "7e8f3041-eeee-4b2c-b768-d3e4f5061720"  # Eastside's rent support
CONTACT = "a1b26374-2b3c-5e5f-8a9b-061728394a53"
TERM = "d4e596a7-5e6f-5182-9dce-394a5b6c7d86"

SERVICE_IN: dict[str, Any] = {
    "name": "Emergency rent support",
    "description": "Arrears paid to stop an eviction; a caseworker visits within a week.",
    "needs": ["housing", "income"],
    "languages": ["en", "sw"],
    "areas": ["Eastside"],
    "eligibility": "Households of Eastside facing eviction.",
    "capacity": "waitlist",
    "contacts": [{"name": "Ana Otieno", "title": "Caseworker", "phone": "+254 20 272 6300"}],
}


def _attribute(id_: str, link: str, entity: str, link_type: str, value: str) -> dict[str, Any]:
    return {
        "id": id_,
        "link_id": link,
        "link_type": link_type,
        "link_entity": entity,
        "value": value,
    }


def _hsds_service() -> dict[str, Any]:
    return {
        "service_areas": [
            {
                "id": "8f904152-0f1a-5c3d-a879-e4f506172831",
                "service_id": SERVICE,
                "name": "Eastside",
            }
        ],
        "languages": [
            {"id": "90a15263-1a2b-5d4e-b98a-f50617283942", "service_id": SERVICE, "code": "sw"}
        ],
        "contacts": [
            {
                "id": CONTACT,
                "service_id": SERVICE,
                "name": "Ana Otieno",
                "title": "Caseworker",
                "phones": [
                    {
                        "id": "b2c37485-3c4d-5f60-9bac-1728394a5b64",
                        "contact_id": CONTACT,
                        "number": "+254 20 272 6300",
                    }
                ],
            }
        ],
        "attributes": [
            _attribute(
                "c3d48596-4d5e-5071-8cbd-28394a5b6c75", SERVICE, "service", "need", "housing"
            )
            | {
                "taxonomy_term_id": TERM,
                "taxonomy_term": {
                    "id": TERM,
                    "code": "housing",
                    "name": "Housing",
                    "description": "A safe place to live: shelter, rent help, eviction "
                    "prevention, finding a home.",
                    "taxonomy": "casenet-needs",
                },
            },
            _attribute(
                "e5f6a7b8-6f70-5293-aedf-4a5b6c7d8e97", SERVICE, "service", "capacity", "waitlist"
            ),
        ],
    }


def directory_examples(
    agency_id: str, agency_name: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The service as sent, the service as shown, and the directory's response bodies by
    schema name, for the agency ``agency_id``."""
    view = {"id": SERVICE, "agency_id": agency_id, **SERVICE_IN, "type": "housing"}
    view["area"] = "Eastside"
    brief = {
        "id": SERVICE,
        "organization_id": agency_id,
        "name": SERVICE_IN["name"],
        "description": SERVICE_IN["description"],
        "status": "active",
        "eligibility_description": SERVICE_IN["eligibility"],
        "wait_time": "Waiting list",
    }
    organization = {
        "id": agency_id,
        "name": agency_name,
        "description": f"{agency_name}, of the casenet network",
    }
    service = brief | _hsds_service()
    ids = ("3a0e1d7c-1f7d-5b43-9b8e-2f0b8c1d4e01", "3a0e1d7c-1f7d-5b43-9b8e-2f0b8c1d4e02")
    responses = {
        "ServicePage": {
            "items": [view | {"agency_name": agency_name, "agency_restricted": False}],
            "next": None,
        },
        "HsdsServicePage": {
            "total_items": 1,
            "total_pages": 1,
            "page_number": 1,
            "size": 50,
            "first_page": True,
            "last_page": True,
            "empty": False,
            "contents": [brief],
        },
        "HsdsService": service | {"organization": organization},
        "HsdsOrganization": organization
        | {
            "attributes": [
                _attribute(ids[0], agency_id, "organization", "kind", "ngo"),
                _attribute(ids[1], agency_id, "organization", "restricted", "false"),
            ],
            "services": [service],
        },
    }
    return SERVICE_IN, view, responses
