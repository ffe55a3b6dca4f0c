"""The explorer in a real browser: scripts/browser_check.py drives JupyterLab with headless Debian chromium.

About 20 s on 2 cores (JupyterLab start, kernel start, torch import, one cpu-smoke model) on top of
the shared cpu-smoke training run (about 20 s when no other test module trained it first)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib.workbook import workbook

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian chromium at /usr/bin/chromium (.ci/run installs it)")


@pytest.fixture(scope="module")
def run_dir(smoke_run):
    return smoke_run  # conftest.py: one trained cpu-smoke run per test session


def test_explorer_slider_changes_the_grid_in_chromium(run_dir, tmp_path):
    pytest.importorskip("playwright", reason="pip install playwright (a pyproject dependency)")
    shot = workbook.OUTPUTS / "screenshots" / "explorer.png"
    shot.unlink(missing_ok=True)
    notebook_before = (REPO / "notebooks" / "07_explorer.ipynb").read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO), "SUDOKU_WORKBOOK_OUTPUTS": str(tmp_path / "outputs")}
    started = time.time()
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "browser_check.py"), "--run-dir", str(run_dir),
                           "--screenshot", str(shot), "--timeout", "240"],
                          check=False, capture_output=True, text=True, env=env, timeout=420)
    seconds = time.time() - started
    assert proc.returncode == 0, f"browser check failed after {seconds:.0f} s:\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout)
    print(f"browser check: {seconds:.1f} s, {result}")
    assert result["cells_changed"] > 0 and result["iterations"][1] < result["iterations"][0]
    assert shot.exists() and shot.stat().st_size > 10_000
    with pytest.raises(ProcessLookupError):  # the JupyterLab server it started is gone
        os.kill(result["server_pid"], 0)
    assert (REPO / "notebooks" / "07_explorer.ipynb").read_bytes() == notebook_before, "outputs saved into the repo"
