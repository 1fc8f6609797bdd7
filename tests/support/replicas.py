"""What the tests share about the hot standby (tests/conftest.py's replica fixtures):
the stores a module runs on when it runs with a read replica too, and which standby
database belongs to which primary one. Here, not in a conftest: pytest imports a
conftest under its own name, and an import of ``tests.conftest`` would be a second copy
of its state."""

from __future__ import annotations

from typing import Any

import pytest

#: The stores of ``module_database_url`` (tests/conftest.py).
MODULE_STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
#: The same, and PostgreSQL with its reads routed to the hot standby: a module runs on
#: them by overriding ``module_database_url`` (see tests/api/test_api_referral_story.py).
MODULE_STORES_WITH_REPLICA = [
    *MODULE_STORES,
    pytest.param("postgres+replica", id="postgres+replica", marks=pytest.mark.postgres),
]
#: The standby URL of each primary database a ``postgres+replica`` module runs on: its
#: app is built with ``CASENET_REPLICA_URLS`` set to it (tests/api/conftest.py).
REPLICA_OF: dict[str, str] = {}


def assert_the_standby_served(app_server: Any) -> None:
    """On a ``postgres+replica`` module (``app_server`` of tests/api/conftest.py): its GET
    requests were served by the standby (each still seeing the writes before it), none
    fell back for want of it. Elsewhere: there are no replicas at all."""
    stats = app_server.casenet.replica_stats()
    if not app_server.settings.replicas:
        assert stats is None
        return
    assert stats.served > 0
    assert stats.fallbacks["down"] == 0
