"""Debian's headless chromium, for the tests that look at a page as a person would."""

from __future__ import annotations

import os
import shutil

import pytest

#: Chromium's own traffic that is not the page's, switched off where a flag can.
QUIET = [
    "--headless",
    "--no-sandbox",  # runs as root in CI
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-pings",
]


def chromium() -> str:
    """Debian's chromium (``.ci/run`` installs it); in CI a missing one fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip("chromium is not installed: apt-get install chromium")
    return found
