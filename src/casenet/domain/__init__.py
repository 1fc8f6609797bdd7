"""The casenet domain: pure rules and events, no I/O.

Importing this package registers every aggregate and event type.
"""

from casenet.domain import (
    agency,
    case,
    client,
    consent,
    disclosure,
    emergency,
    referral,
    webhook,
)

__all__ = [
    "agency",
    "case",
    "client",
    "consent",
    "disclosure",
    "emergency",
    "referral",
    "webhook",
]
