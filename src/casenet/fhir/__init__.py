"""casenet as FHIR R5 resources: one small module per resource, each building plain
dicts (msgspec encodes them) from the application's views, never from the store.

What a caller gets is decided before a mapping runs, by the same application queries
and visibility policy as the REST API; a mapping only renames and codes what it is
given. The value sets are data in :mod:`casenet.fhir.codes`.
"""

from __future__ import annotations

#: The media type of every body under ``/fhir``.
FHIR_JSON = "application/fhir+json"
#: The FHIR version casenet speaks.
FHIR_VERSION = "5.0.0"

#: A FHIR resource as casenet emits it: a JSON object.
Resource = dict[str, object]
