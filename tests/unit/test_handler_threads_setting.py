"""``CASENET_HANDLER_THREADS``: 3 on SQLite, 16 on PostgreSQL unless set, 1-64, a one-line
refusal otherwise. (What the served app does with it: tests/integration/test_served_app.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from casenet.settings import SettingsError, load_settings

POSTGRES = "postgresql://casenet@db.example:5432/casenet"


def threads(tmp_path: Path, **environ: str) -> int:
    return load_settings({"CASENET_DATA_DIR": str(tmp_path), **environ}).handler_threads


def test_the_default_is_the_stores(tmp_path: Path) -> None:
    assert threads(tmp_path) == 3  # SQLite: the process's CPU, under the GIL
    assert threads(tmp_path, CASENET_DATABASE_URL=POSTGRES) == 16  # round trips overlap
    assert threads(tmp_path, CASENET_HANDLER_THREADS=" ") == 3


@pytest.mark.parametrize("value", ["1", "2", " 64 "])
def test_a_number_from_1_to_64_is_taken_on_either_store(tmp_path: Path, value: str) -> None:
    assert threads(tmp_path, CASENET_HANDLER_THREADS=value) == int(value)
    assert threads(tmp_path, CASENET_HANDLER_THREADS=value, CASENET_DATABASE_URL=POSTGRES) == int(
        value
    )


@pytest.mark.parametrize("value", ["0", "65", "-1", "2.5", "many", "1e3"])
def test_anything_else_is_refused_in_one_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        threads(tmp_path, CASENET_HANDLER_THREADS=value)
    assert str(refused.value) == "CASENET_HANDLER_THREADS must be a whole number from 1 to 64"
