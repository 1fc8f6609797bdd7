"""Open Referral HSDS 3.0's compiled JSON Schemas, to validate what casenet writes.

They live beside the repository, in ``../shared/hsds`` (``/work/ci/shared`` in CI, beside
the clone): not copied into the repository, so the tests check against the spec as
shared, not against a copy that could drift.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
HSDS = REPOSITORY.parent / "shared" / "hsds"


@cache
def _validator(schema: str) -> jsonschema.Draft7Validator:
    path = HSDS / schema
    if not path.is_file():
        pytest.fail(f"HSDS schema {path} not found (../shared/hsds beside the repository)")
    document = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(document, format_checker=jsonschema.FormatChecker())


def hsds_errors(schema: str, instance: Any) -> list[str]:
    """Every way ``instance`` breaks the compiled schema ``schema`` (``service.json``, ...),
    as ``path: message`` lines; empty when it validates."""
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in _validator(schema).iter_errors(instance)
    ]
