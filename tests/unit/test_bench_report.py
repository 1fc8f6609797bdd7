"""The benchmark report: a target's extra condition counts, and size tables render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks import WORKLOADS, Row
from benchmarks._report import rebuilds, size_tables


def _row(p99_met: bool | None, ratio_target: float | None = 0.30) -> Row:
    return Row(
        workload="http",
        store="sqlite",
        figure="owner_read req/s",
        value=3_100.0,
        ceiling=10_000.0,
        target=ratio_target,
        condition=None if p99_met is None else "p99 < 20 ms",
        condition_met=p99_met,
    )


def test_a_target_needs_its_condition_as_well_as_its_ratio() -> None:
    assert _row(p99_met=True).meets_target is True
    assert _row(p99_met=False).meets_target is False  # the ratio alone is met
    assert _row(p99_met=None).meets_target is True
    assert _row(p99_met=True, ratio_target=0.50).meets_target is False
    assert _row(p99_met=None, ratio_target=None).meets_target is None
    assert _row(p99_met=False, ratio_target=None).meets_target is False
    assert _row(p99_met=True).target_text == ">= 0.30, p99 < 20 ms"


SCALING = {
    "rows": [
        {
            "store": "sqlite",
            "details": {
                "10000": {"read_p50": 0.09, "read_p99": 0.2, "write_p50": 1.1, "write_p99": 3.0},
                "1000000": {"read_p50": 0.11, "read_p99": 0.3, "write_p50": 1.2, "write_p99": 4.0},
            },
        }
    ]
}
REBUILD = {
    "rows": [
        {
            "store": "sqlite",
            "target": 0.5,
            "value": 48_000.0,
            "ceiling": 288_000.0,
            "ratio": 48_000 / 288_000,
            "details": {"events": 999_954, "peak_rss_mib": 59.0},
        },
        {  # the comparison row without a target is not a size's point
            "store": "sqlite",
            "target": None,
            "value": 48_000.0,
            "ceiling": 100_000.0,
            "ratio": 0.48,
            "details": {"events": 999_954},
        },
        {
            "store": "sqlite",
            "target": 0.5,
            "value": 55_000.0,
            "ceiling": 265_000.0,
            "ratio": 55_000 / 265_000,
            "details": {"events": 99_954, "peak_rss_mib": 57.3},
        },
    ]
}


def test_size_tables_list_every_size_in_order() -> None:
    lines = size_tables({"scaling": SCALING, "rebuild": REBUILD})
    assert "| store | operation | 10,000 events | 1,000,000 events |" in lines
    assert "| sqlite | owner read | 0.09 / 0.20 | 0.11 / 0.30 |" in lines
    assert "| sqlite | add note | 1.10 / 3.00 | 1.20 / 4.00 |" in lines
    assert [p["events"] for p in rebuilds({"rebuild": REBUILD})["sqlite"]] == [99_954, 999_954]
    assert "| sqlite | 99,954 | 55,000 | 265,000 | 0.208 | 57.3 |" in lines


def test_no_measurements_no_tables() -> None:
    assert size_tables({}) == []


def test_a_quick_run_changes_no_checked_in_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI's smoke run (``--quick``) keeps its JSON apart and leaves BENCHMARKS.md alone;
    a full run of the same workload refreshes it."""
    import benchmarks.__main__ as runner

    monkeypatch.chdir(tmp_path)
    block = f"intro\n{runner.BEGIN}\nthe full run's table\n{runner.END}\n"
    Path("BENCHMARKS.md").write_text(block)
    monkeypatch.setattr(runner, "discover", lambda: None)
    monkeypatch.setitem(WORKLOADS, "smoke", lambda options: [_row(p99_met=True)])

    assert runner.main(["--quick", "smoke"]) == 0
    assert Path("BENCHMARKS.md").read_text() == block
    assert json.loads(Path("var/bench/quick/smoke.json").read_text())["quick"] is True
    assert not Path("var/bench/smoke.json").exists()

    assert runner.main(["smoke"]) == 0
    assert "the full run's table" not in Path("BENCHMARKS.md").read_text()
    assert Path("var/bench/smoke.json").exists()
