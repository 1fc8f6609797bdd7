"""Running the real ``casenet`` command in a test: one place for its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CASENET = [sys.executable, "-m", "casenet.cli"]


def run(
    args: list[str], data_dir: Path, store: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``casenet ARGS`` with only ``store``'s CASENET_ variables and ``data_dir``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASENET_")}
    environ.update({"CASENET_DATA_DIR": str(data_dir), **store})
    return subprocess.run(
        [*CASENET, *args], capture_output=True, text=True, env=environ, timeout=120, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The command's output, after checking it succeeded and said nothing on stderr."""
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    assert result.stderr == ""
    return result.stdout
