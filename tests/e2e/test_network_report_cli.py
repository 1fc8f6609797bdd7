"""``casenet network report`` as an operator runs it (a real process, on SQLite and
PostgreSQL): the table names agencies, not ids, and withholds every count below 5;
``--html`` writes one self-contained page (no script, nothing fetched) with a chart per
service type, which prints on A4 landscape and, on a narrow screen, scrolls its wide
tables in their own box rather than the whole page (chromium, headless); a period that
cannot be is one line and exit 1."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.browser import QUIET, chromium
from tests.support.cli import ok, run
from tests.support.referral_network import story

from casenet.application import Casenet


def test_the_report_prints_a_table_by_name_and_writes_a_page_with_charts(
    casenet: Casenet, casenet_environ: dict[str, str], tmp_path: Path
) -> None:
    net = story(casenet)
    page = tmp_path / "network.html"
    data_dir = Path(casenet_environ["CASENET_DATA_DIR"])
    out = ok(run(["network", "report", "--html", str(page)], data_dir, casenet_environ))

    lines = out.splitlines()
    (hospital,) = [line for line in lines if line.startswith("The hospital") and "Health" in line]
    # received 7, accepted 6, rejected <5, completed 5, got help <5 (4), answered late <5 (0)
    assert hospital.split()[3:9] == ["7", "6", "<5", "5", "<5", "<5"]
    (school,) = [line for line in lines if line.startswith("The school")]
    assert school.split()[3:9] == ["<5"] * 6
    assert str(net.hospital.agency_id) not in out
    assert "this report is shared with the network" in out
    assert lines[-1] == f"report: {page}"

    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 3  # education, health, housing
    assert "The clinic" in html
    assert "fewer than 5 referrals" in html
    assert re.search(r"<script|src=|href=|url\(", html) is None
    assert str(net.school.agency_id) not in html


def test_a_period_that_cannot_be_is_one_line_and_exit_1(
    casenet: Casenet, casenet_environ: dict[str, str]
) -> None:
    data_dir = Path(casenet_environ["CASENET_DATA_DIR"])
    args = ["network", "report", "--from", "2026-02-01T00:00:00Z", "--to", "2026-01-01T00:00Z"]
    result = run(args, data_dir, casenet_environ)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == "casenet: error: to: must be after from"


def test_the_page_prints_landscape_and_a_narrow_screen_scrolls_only_its_tables(
    casenet: Casenet, tmp_path: Path
) -> None:
    story(casenet)
    page = casenet.network.write_report(tmp_path / "network.html", since=None, until=None)
    pdf = tmp_path / "network.pdf"
    browser = [chromium(), *QUIET, "--no-pdf-header-footer"]
    subprocess.run([*browser, f"--print-to-pdf={pdf}", page.as_uri()], check=True, timeout=120)
    sizes = re.findall(rb"/MediaBox\s*\[0 0 ([\d.]+) ([\d.]+)\]", pdf.read_bytes())
    assert sizes, "no page in the PDF"
    assert all(float(width) > float(height) for width, height in sizes), sizes

    # How wide the page is on a phone or a half screen: measured by a copy with a script
    # (the page itself runs none), which writes the page's width into the DOM.
    measured = tmp_path / "measured.html"
    script = "<script>document.body.dataset.width = document.documentElement.scrollWidth</script>"
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"))
    dom = subprocess.run(
        [*browser, "--window-size=640,900", "--dump-dom", measured.as_uri()],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    (width,) = re.findall(r'data-width="(\d+)"', dom)
    assert int(width) <= 640
