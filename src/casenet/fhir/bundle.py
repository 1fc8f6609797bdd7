"""Bundle (FHIR R5): a ``collection`` of the resources of a case the caller may see
(``GET /fhir/Bundle/{case_id}``), and the ``searchset`` a search answers with.

Each entry's ``fullUrl`` is the resource's address on this server (``base`` is the
``/fhir/`` URL the caller used), so the relative references inside the resources
(``ServiceRequest/<id>``) resolve within the bundle.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from casenet.fhir import Resource


def _entries(resources: Iterable[Resource], base: str, search: bool) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    seen: set[str] = set()
    for resource in resources:
        url = f"{base}{resource['resourceType']}/{resource['id']}"
        if url in seen:  # one resource reached twice (an agency of two referrals)
            continue
        seen.add(url)
        entry: dict[str, object] = {"fullUrl": url, "resource": resource}
        if search:
            entry["search"] = {"mode": "match"}
        entries.append(entry)
    return entries


def collection_bundle(
    bundle_id: str, at: datetime, resources: Iterable[Resource], base: str
) -> Resource:
    """The resources as one collection (its id the case's, ``timestamp`` when made)."""
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "timestamp": at,
        "entry": _entries(resources, base, search=False),
    }


def searchset_bundle(
    resources: list[Resource], at: datetime, base: str, self_url: str, next_url: str | None
) -> Resource:
    """A page of search results; ``next_url`` the next page's (None on the last)."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": at,
        "link": links,
        "entry": _entries(resources, base, search=True),
    }
