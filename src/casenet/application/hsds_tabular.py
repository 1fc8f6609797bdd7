"""The directory as HSDS 3.0's tabular format: a Frictionless data package
(``datapackage.json``) of CSV tables, one per HSDS object, linked by ids.

The tables and columns are HSDS's own (``schema/tabular.json`` of the specification),
restricted to what casenet holds: organizations, services, contacts, phones,
service_areas, languages, attributes and taxonomy_terms.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from casenet.application.hsds_shapes import HsdsOrganization

#: Table -> its columns, ``(name, format)``; every column is a string, ``id`` the key.
TABLES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "organizations": (("id", "uuid"), ("name", None), ("description", None)),
    "services": (
        ("id", "uuid"),
        ("organization_id", "uuid"),
        ("name", None),
        ("description", None),
        ("status", None),
        ("wait_time", None),
        ("eligibility_description", None),
    ),
    "contacts": (
        ("id", "uuid"),
        ("service_id", "uuid"),
        ("name", None),
        ("title", None),
        ("email", "email"),
    ),
    "phones": (("id", "uuid"), ("contact_id", "uuid"), ("number", None)),
    "service_areas": (("id", "uuid"), ("service_id", "uuid"), ("name", None)),
    "languages": (("id", "uuid"), ("service_id", "uuid"), ("code", None)),
    "attributes": (
        ("id", "uuid"),
        ("link_id", "uuid"),
        ("taxonomy_term_id", "uuid"),
        ("link_type", None),
        ("link_entity", None),
        ("value", None),
    ),
    "taxonomy_terms": (
        ("id", "uuid"),
        ("code", None),
        ("name", None),
        ("description", None),
        ("taxonomy", None),
    ),
}
#: Columns HSDS requires a value in.
REQUIRED = {
    "organizations": {"id", "name", "description"},
    "services": {"id", "name", "status"},
    "phones": {"id", "number"},
    "taxonomy_terms": {"id", "name", "description"},
}
#: Columns that refer to another table's ``id``.
FOREIGN_KEYS = {
    "services": ("organization_id", "organizations"),
    "contacts": ("service_id", "services"),
    "phones": ("contact_id", "contacts"),
    "service_areas": ("service_id", "services"),
    "languages": ("service_id", "services"),
    "attributes": ("taxonomy_term_id", "taxonomy_terms"),
}


def datapackage() -> dict[str, Any]:
    """The package's descriptor: each table's path and Table Schema."""
    return {
        "name": "casenet-directory",
        "title": "A casenet network's directory, as HSDS 3.0 tabular data",
        "profile": "tabular-data-package",
        "licenses": [{"name": "CC-BY-SA-4.0", "title": "HSDS: an Open Referral resource"}],
        "resources": [_resource(table, columns) for table, columns in TABLES.items()],
    }


def _resource(table: str, columns: tuple[tuple[str, str | None], ...]) -> dict[str, Any]:
    fields = []
    for name, form in columns:
        field: dict[str, Any] = {"name": name, "type": "string"}
        if form is not None:
            field["format"] = form
        if name in REQUIRED.get(table, {"id"}):
            field["constraints"] = {"required": True}
        fields.append(field)
    schema: dict[str, Any] = {"fields": fields, "primaryKey": ["id"]}
    if table in FOREIGN_KEYS:
        column, other = FOREIGN_KEYS[table]
        reference = {"resource": other.replace("_", "-"), "fields": ["id"]}
        schema["foreignKeys"] = [{"fields": [column], "reference": reference}]
    return {
        "name": table.replace("_", "-"),
        "path": f"{table}.csv",
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "schema": schema,
    }


def tables(organizations: list[HsdsOrganization]) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows (a row per object, each id once)."""
    rows: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in TABLES}
    for table, row in _rows(organizations):
        wanted = {name for name, _ in TABLES[table]}
        cells = {k: str(v) for k, v in msgspec.to_builtins(row).items() if k in wanted}
        rows[table].setdefault(cells["id"], cells)
    return {table: list(found.values()) for table, found in rows.items()}


def _rows(organizations: list[HsdsOrganization]) -> Iterator[tuple[str, Any]]:
    for organization in organizations:
        yield "organizations", organization
        for attribute in organization.attributes:
            yield "attributes", attribute
        for service in organization.services:
            yield "services", service
            for contact in service.contacts:
                yield "contacts", contact
                for phone in contact.phones:
                    yield "phones", phone
            for area in service.service_areas:
                yield "service_areas", area
            for language in service.languages:
                yield "languages", language
            for attribute in service.attributes:
                yield "attributes", attribute
                if attribute.taxonomy_term is not None:
                    yield "taxonomy_terms", attribute.taxonomy_term
