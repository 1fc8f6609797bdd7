"""The domain holds no module-level mutable state: no cache, no registry filled at request
time, nothing one request could leave for another (issue 16: ``_OWNER_GRANTS`` kept
grants in the policy module). Constants are tuples, frozensets and frozen dataclasses;
the few tables built once at import are named below, each with why it is there.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import MutableMapping, MutableSequence, MutableSet
from types import ModuleType
from typing import Any
from uuid import uuid4

import casenet.domain
from casenet.domain.sections import SECTIONS
from casenet.domain.visibility import OWNER, Grant, owner_grant

#: Module globals that are mutable containers by type, filled once at import, never after.
BUILT_AT_IMPORT = {
    # The aggregate class of each event class, registered as the classes are defined.
    "casenet.domain.aggregate._AGGREGATE_OF_EVENT",
    # The referral's state machine: constant tables, written out in the module.
    "casenet.domain.referral.LIFECYCLE",
    "casenet.domain.referral._EVENT_OF_ACTION",
    "casenet.domain.referral.STATUS_OF_EVENT",
}

MUTABLE = (MutableMapping, MutableSequence, MutableSet, bytearray)


def domain_modules() -> list[ModuleType]:
    package = casenet.domain
    names = [info.name for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]
    return [package, *(importlib.import_module(name) for name in names)]


def is_mutable_state(value: Any) -> bool:
    """A mutable container, or a function that keeps a cache (functools.lru_cache/cache)."""
    if isinstance(value, MUTABLE):
        return True
    return callable(value) and hasattr(value, "cache_info")


def built_at_import() -> set[int]:
    """The ids of the objects :data:`BUILT_AT_IMPORT` names (wherever they are imported)."""
    ids = set()
    for qualified in BUILT_AT_IMPORT:
        module, _, name = qualified.rpartition(".")
        ids.add(id(getattr(importlib.import_module(module), name)))
    return ids


def test_no_domain_module_holds_mutable_state() -> None:
    allowed = built_at_import()
    found = []
    for module in domain_modules():
        for name, value in vars(module).items():
            if name.startswith("__") or inspect.ismodule(value) or inspect.isclass(value):
                continue
            if is_mutable_state(value) and id(value) not in allowed:
                found.append(f"{module.__name__}.{name}")
    assert found == []


def test_the_check_sees_a_cache_and_a_dict() -> None:
    @functools.lru_cache
    def cached(n: int) -> int:
        return n

    assert is_mutable_state({})
    assert is_mutable_state([])
    assert is_mutable_state(cached)
    assert not is_mutable_state((1, 2))
    assert not is_mutable_state(frozenset({1}))
    assert not is_mutable_state(len)


def test_the_owner_sees_every_section() -> None:
    agency_id = uuid4()
    assert owner_grant(agency_id) == Grant(agency_id, SECTIONS, OWNER)
