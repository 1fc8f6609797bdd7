"""Write the published contracts from the code: a JSON Schema per event type and
the OpenAPI document. ``make schemas`` runs this; a test fails when the copies are stale.

Usage: ``python -m casenet.schemas [OUT_DIR]`` (default ``schemas``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from eventsourcing.utils import get_topic

from casenet.domain.aggregate import DomainEvent, aggregate_type_of, event_types


def event_schema(event_type: type[DomainEvent]) -> dict[str, Any]:
    """The JSON Schema of one event type as stored, with its topic and version."""
    schema: dict[str, Any] = msgspec.json.schema(event_type)
    schema["x-topic"] = get_topic(event_type)
    schema["x-class-version"] = event_type.class_version
    schema["x-aggregate"] = aggregate_type_of(event_type).__name__
    return schema


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every event type of the domain."""
    return {f"{t.__name__}.json": event_schema(t) for t in event_types()}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the server serves at /schema/openapi.json."""
    from casenet.api.app import create_app
    from casenet.settings import load_settings

    with tempfile.TemporaryDirectory() as scratch:
        app = create_app(load_settings({"CASENET_DATA_DIR": scratch}))
        document: dict[str, Any] = msgspec.to_builtins(app.openapi_schema.to_schema())
        app.state.casenet.close()
    return document


def render(document: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[str, str]:
    """Relative path -> content of every generated file."""
    files = {f"events/{name}": render(schema) for name, schema in event_schemas().items()}
    files["openapi.json"] = render(openapi_document())
    return files


def write(out_dir: Path) -> list[Path]:
    """Write every schema under ``out_dir``, removing event schemas that no longer exist."""
    files = expected_files()
    events_dir = out_dir / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    for stale in events_dir.glob("*.json"):
        if f"events/{stale.name}" not in files:
            stale.unlink()
    written = []
    for relative, content in files.items():
        path = out_dir / relative
        path.write_text(content)
        written.append(path)
    return written


if __name__ == "__main__":
    paths = write(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas"))
    print(f"wrote {len(paths)} schema files")
