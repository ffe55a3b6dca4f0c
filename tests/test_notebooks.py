"""Every notebook runs top to bottom under papermill with the cpu-smoke preset, and renders its report."""
from pathlib import Path

import nbformat
import pytest

from lib import workbook

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def out_root(tmp_path_factory):
    return tmp_path_factory.mktemp("outputs")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_cpu_smoke(path, out_root):
    run = workbook.run_notebook(path, {"preset": "cpu-smoke", "seeds": [0], "reuse": False}, name="smoke",
                                out_root=out_root)
    summary = workbook.read_json(run / "summary.json")
    assert summary["status"] == "complete"
    assert summary["solved_final"], "no headline metrics"
    for report in ("report.html", "report-noinput.html"):
        text = (run / report).read_text()
        assert "data:image/png;base64" in text, f"{report} has no figure"
        assert "solved % (final)" in text, f"{report} has no per-rating table"
    nb = nbformat.read(str(run / path.name), as_version=4)
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert figures >= 2
    assert (run / "run.log").stat().st_size > 0
    assert run.name in (out_root / "index.html").read_text()


def test_failed_run_keeps_its_notebook_and_is_marked(out_root):
    nb = REPO / "notebooks" / "01_baseline.ipynb"
    with pytest.raises(RuntimeError, match="unknown variant 'no-such-variant'"):
        workbook.run_notebook(nb, {"preset": "cpu-smoke", "variant": "no-such-variant"}, name="broken", out_root=out_root)
    run = out_root / "baseline" / "broken"
    executed = nbformat.read(str(run / nb.name), as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert workbook.read_json(run / "summary.json")["status"] == "failed"
    assert "broken" in (out_root / "index.html").read_text() and "failed" in (out_root / "index.html").read_text()
    assert (run / "report.html").exists()
