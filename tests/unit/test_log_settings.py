"""``CASENET_LOG_LEVEL`` and ``CASENET_LOG_FORMAT``: defaults, values, one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from casenet.settings import SettingsError, load_settings


def settings_with(tmp_path: Path, **environ: str) -> tuple[str, str]:
    settings = load_settings({"CASENET_DATA_DIR": str(tmp_path), **environ})
    return settings.log_level, settings.log_format


def test_logs_default_to_info_in_text(tmp_path: Path) -> None:
    assert settings_with(tmp_path) == ("info", "text")


def test_log_settings_are_read_in_any_case(tmp_path: Path) -> None:
    chosen = settings_with(tmp_path, CASENET_LOG_LEVEL=" Warning", CASENET_LOG_FORMAT="JSON")
    assert chosen == ("warning", "json")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CASENET_LOG_LEVEL", "verbose"),
        ("CASENET_LOG_LEVEL", "critical"),
        ("CASENET_LOG_FORMAT", "xml"),
    ],
)
def test_a_bad_log_setting_is_refused_in_one_line_naming_the_choices(
    tmp_path: Path, setting: str, value: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        settings_with(tmp_path, **{setting: value})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{setting} must be one of ")
    assert value not in message
