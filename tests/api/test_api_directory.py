"""The network's directory over HTTP, on both stores: services in the HSDS shape (the
first shape still accepted), the search, and the HSDS 3.0 endpoints, every response of
which validates against the spec's compiled schemas."""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

import pytest
from tests.support.hsds import hsds_errors
from tests.support.http import Api


def rent_support(area: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Emergency rent support",
        "description": "Arrears paid to stop an eviction.",
        "needs": ["housing", "income"],
        "languages": ["en", "pt-BR"],
        "areas": [area],
        "eligibility": "Households facing eviction.",
        "capacity": "waitlist",
        "contacts": [
            {"name": "Ana Otieno", "title": "Caseworker", "phone": "+254 20 272 6300"},
            {"name": "Desk", "email": "desk@example.org"},
        ],
        **extra,
    }


def agency_with_admin(operator: Api, name: str, **extra: Any) -> tuple[dict[str, Any], Api]:
    agency = operator.agency(name, **extra)
    return agency, operator.worker(agency, "admin")


def put_services(admin: Api, services: list[dict[str, Any]], status: int = 200) -> Any:
    path = f"/v1/agencies/{admin.agency_id}/services"
    return admin.expect(status, "PUT", path, json_body={"services": services}).json()


def test_an_admin_publishes_hsds_services_and_sending_them_again_keeps_their_ids(
    operator: Api,
) -> None:
    area = f"Eastside-{uuid4().hex[:8]}"
    _, admin = agency_with_admin(operator, "Eastside Welfare")
    advice = {"name": "Advice", "description": "Benefits advice.", "needs": ["income"]}

    first = put_services(admin, [rent_support(area), advice])["services"]
    again = put_services(admin, [advice, rent_support(area, capacity="accepting")])["services"]

    assert first[0] | {"id": None} == {
        **rent_support(area),
        "id": None,
        "agency_id": admin.agency_id,
        "contacts": [
            {"name": "Ana Otieno", "title": "Caseworker", "phone": "+254 20 272 6300"},
            {"name": "Desk", "email": "desk@example.org"},
        ],
        "type": "housing",  # the first shape's reading: the first need and area
        "area": area,
    }
    assert first[1]["capacity"] == "accepting"  # the default
    assert {s["name"]: s["id"] for s in again} == {s["name"]: s["id"] for s in first}
    assert len({s["id"] for s in first}) == 2
    assert admin.get(f"/v1/agencies/{admin.agency_id}")["services"] == again


def test_the_first_shape_is_still_accepted_and_means_one_need_and_one_area(
    operator: Api,
) -> None:
    old = {"type": "health", "description": "Moves appointments", "area": "Nairobi"}
    agency, admin = agency_with_admin(operator, "St Mary's", services=[old])
    [registered] = agency["services"]
    [replaced] = put_services(admin, [old | {"description": "Moves appointments, weekly"}])[
        "services"
    ]

    assert (registered["type"], registered["description"], registered["area"]) == (
        "health",
        "Moves appointments",
        "Nairobi",
    )
    assert (registered["name"], registered["needs"], registered["areas"]) == (
        "Health",
        ["health"],
        ["Nairobi"],
    )
    assert (registered["capacity"], registered["languages"], registered["contacts"]) == (
        "accepting",
        [],
        [],
    )
    assert replaced["id"] == registered["id"]  # same name: same service


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"languages": ["english!"]}, "services.languages"),
        ({"languages": ["en_GB"]}, "services.languages"),
        ({"capacity": "full"}, "services.capacity"),
        ({"needs": ["banana"]}, "services.needs"),
        ({"needs": []}, "services.needs"),
        ({"contacts": [{"name": "Desk", "email": "not an address"}]}, "services.contacts.email"),
        ({"contacts": [{"name": "Desk", "phone": "call me"}]}, "services.contacts.phone"),
        ({"contacts": [{"name": "Desk\u0000"}]}, "services.contacts.name"),
        ({"type": "housing"}, "services.type"),
        ({"type": "housing", "name": None, "needs": None}, "services.type"),
        ({"area": "north"}, "services.area"),
        ({"name": None}, "services.name"),
        ({"eligibility": "a\u0007b"}, "services.eligibility"),
    ],
)
def test_a_bad_service_is_422_naming_the_field_and_changes_nothing(
    operator: Api, change: dict[str, Any], field: str
) -> None:
    _, admin = agency_with_admin(operator, "Checked")
    before = put_services(admin, [rent_support("North")])
    service = {k: v for k, v in (rent_support("North") | change).items() if v is not None}

    refused = admin.request(
        "PUT", f"/v1/agencies/{admin.agency_id}/services", json_body={"services": [service]}
    )

    # 422 from the rules; 400 where the document's own constraints refuse it first
    assert refused.status_code in (400, 422), refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert field in [re.sub(r"\[\d+\]", "", e["field"]) for e in refused.json()["errors"]]
    assert admin.get(f"/v1/agencies/{admin.agency_id}") == before


def test_two_services_of_one_name_are_422(operator: Api) -> None:
    _, admin = agency_with_admin(operator, "Twice")
    twice = [rent_support("North"), rent_support("South", name="EMERGENCY RENT SUPPORT")]
    refused = put_services(admin, twice, status=422)
    assert [e["field"] for e in refused["errors"]] == ["services.name"]


def test_the_search_finds_by_need_area_language_capacity_and_text(operator: Api) -> None:
    area = f"Riverside-{uuid4().hex[:8]}"
    _, ngo = agency_with_admin(operator, "Riverside NGO")
    _, shelter = agency_with_admin(operator, "Riverside Refuge", kind="shelter", restricted=True)
    put_services(ngo, [rent_support(area)])
    put_services(
        shelter,
        [
            {
                "name": "Refuge beds",
                "description": "Safe beds for women and children (50% funded).",
                "needs": ["safety", "housing"],
                "languages": ["sw"],
                "areas": [area.upper()],
                "capacity": "accepting",
            }
        ],
    )
    worker = operator.worker(ngo.agency_id, "caseworker")

    def names(query: str) -> list[str]:
        found = worker.walk(f"/v1/services?area={area}&{query}", limit=1)
        return sorted(s["name"] for s in found)

    assert names("") == ["Emergency rent support", "Refuge beds"]  # area: case aside
    assert names("need=housing") == ["Emergency rent support", "Refuge beds"]
    assert names("need=safety") == ["Refuge beds"]
    assert names("need=food") == []
    assert names("language=pt") == ["Emergency rent support"]  # pt finds pt-BR
    assert names("language=pt-br") == ["Emergency rent support"]
    assert names("language=ptb") == []  # a tag, not a prefix of one
    assert names("capacity=waitlist") == ["Emergency rent support"]
    assert names("q=EVICTION") == ["Emergency rent support"]
    assert names("q=50%25") == ["Refuge beds"]  # % is a character, not a wildcard
    assert names("q=5_%25") == []
    assert names("need=housing&language=sw&capacity=accepting&q=beds") == ["Refuge beds"]
    [refuge] = worker.get(f"/v1/services?area={area}&need=safety")["items"]
    assert (refuge["agency_name"], refuge["agency_restricted"]) == ("Riverside Refuge", True)
    assert refuge["agency_id"] == shelter.agency_id


@pytest.mark.parametrize(
    "query",
    ["need=banana", "capacity=full", "language=e!", "need=housing%0A", "after=not-a-cursor"],
)
def test_a_bad_search_is_422_or_400_never_5xx(operator: Api, query: str) -> None:
    worker = operator.worker(operator.agency("Asker")["id"], "auditor")
    answer = worker.request("GET", f"/v1/services?{query}")
    assert answer.status_code in (400, 422), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_the_hsds_endpoints_validate_against_the_compiled_schemas(operator: Api) -> None:
    _, admin = agency_with_admin(operator, "Harbour House", kind="shelter", restricted=True)
    put_services(
        admin,
        [rent_support("Harbour"), {"name": "Beds", "description": "Beds", "needs": ["safety"]}],
    )
    worker = operator.worker(operator.agency("Reader")["id"], "caseworker")

    organization = worker.get(f"/v1/hsds/organizations/{admin.agency_id}")
    assert hsds_errors("organization.json", organization) == []
    kinds = {a["link_type"]: a["value"] for a in organization["attributes"]}
    assert kinds == {"kind": "shelter", "restricted": "true"}
    for listed in organization["services"]:
        service = worker.get(f"/v1/hsds/services/{listed['id']}")
        assert hsds_errors("service.json", service) == []
        assert service["organization"]["id"] == admin.agency_id
    rent = next(s for s in organization["services"] if s["name"] == "Emergency rent support")
    assert [x["code"] for x in rent["languages"]] == ["en", "pt-BR"]
    assert [x["name"] for x in rent["service_areas"]] == ["Harbour"]
    assert [c["phones"][0]["number"] for c in rent["contacts"] if "phones" in c] == [
        "+254 20 272 6300"
    ]
    needs = [a["taxonomy_term"]["code"] for a in rent["attributes"] if a["link_type"] == "need"]
    assert needs == ["housing", "income"]

    first = worker.get("/v1/hsds/services?per_page=2")
    pages = [first] + [
        worker.get(f"/v1/hsds/services?per_page=2&page={n}")
        for n in range(2, first["total_pages"] + 1)
    ]
    listed = [item for page in pages for item in page["contents"]]
    assert len(listed) == first["total_items"] >= 2
    assert len({item["id"] for item in listed}) == len(listed)
    assert (first["first_page"], pages[-1]["last_page"], first["size"]) == (True, True, 2)
    for item in listed:
        assert hsds_errors("service_list.json", item) == []
    beyond = worker.get(f"/v1/hsds/services?per_page=2&page={first['total_pages'] + 1}")
    assert (beyond["empty"], beyond["contents"]) == (True, [])


def test_an_unknown_service_or_organization_is_404_as_any_random_id(operator: Api) -> None:
    worker = operator.worker(operator.agency("Prober")["id"], "caseworker")
    for path in ("/v1/hsds/services/", "/v1/hsds/organizations/"):
        one = worker.expect(404, "GET", f"{path}{uuid4()}")
        other = worker.expect(404, "GET", f"{path}{uuid4()}")
        assert one.content == other.content


def test_a_service_id_sent_is_kept_unless_another_agency_has_it(operator: Api) -> None:
    _, first = agency_with_admin(operator, "First")
    _, second = agency_with_admin(operator, "Second")
    [theirs] = put_services(first, [rent_support("North")])["services"]
    chosen = str(uuid4())

    [mine] = put_services(second, [rent_support("North", id=chosen)])["services"]
    taken = put_services(second, [rent_support("North", id=theirs["id"])], status=422)

    assert mine["id"] == chosen
    assert [e["field"] for e in taken["errors"]] == ["services.id"]
    assert operator.get(f"/v1/hsds/services/{theirs['id']}")["organization_id"] == theirs[
        "agency_id"
    ]
