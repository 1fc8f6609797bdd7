"""Fixtures shared by the unit tests: an audit bundle's signing seed and public key."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casenet.infrastructure.audit_bundle import load_public_key, public_key_text


@pytest.fixture
def seed() -> bytes:
    """A fresh Ed25519 signing seed."""
    return Ed25519PrivateKey.generate().private_bytes_raw()


@pytest.fixture
def public(seed: bytes) -> Any:
    """The public key of ``seed``, as a verifier loads it from its text."""
    return load_public_key(public_key_text(seed))
