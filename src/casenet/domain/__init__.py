"""The casenet domain: pure rules and events, no I/O.

Importing this package registers every aggregate and event type.
"""

from casenet.domain import (
    agency,
    appeal,
    case,
    client,
    consent,
    disclosure,
    emergency,
    partnership,
    referral,
    webhook,
)

__all__ = [
    "agency",
    "appeal",
    "case",
    "client",
    "consent",
    "disclosure",
    "emergency",
    "partnership",
    "referral",
    "webhook",
]
