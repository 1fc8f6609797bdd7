"""``CASENET_PROJECTIONS_IN_SERVER``: on by default, ``true``/``false``, a one-line refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from casenet.settings import SettingsError, load_settings


def in_server(tmp_path: Path, **environ: str) -> bool:
    return load_settings({"CASENET_DATA_DIR": str(tmp_path), **environ}).projections_in_server


def test_the_server_keeps_read_models_current_by_default(tmp_path: Path) -> None:
    assert in_server(tmp_path) is True
    assert in_server(tmp_path, CASENET_PROJECTIONS_IN_SERVER="") is True


def test_false_switches_it_off_in_any_case(tmp_path: Path) -> None:
    assert in_server(tmp_path, CASENET_PROJECTIONS_IN_SERVER=" FALSE") is False
    assert in_server(tmp_path, CASENET_PROJECTIONS_IN_SERVER="True") is True


@pytest.mark.parametrize("value", ["off", "0", "no", "yes please"])
def test_anything_else_is_refused_in_one_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        in_server(tmp_path, CASENET_PROJECTIONS_IN_SERVER=value)
    message = str(refused.value)
    assert message == "CASENET_PROJECTIONS_IN_SERVER must be one of true, false"
