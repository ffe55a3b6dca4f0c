"""Every notebook runs top to bottom under papermill with the cpu-smoke preset, and renders its report."""
import ast
from pathlib import Path

import nbformat
import pytest

from lib import files
from lib.workbook import runner

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))  # the experiment families; findings reads their runs

pytestmark = pytest.mark.slow
SHORT = {"train.steps": 50, "train.eval_every": 25, "train.checkpoint_every": 25}


@pytest.fixture(scope="module")
def out_root(tmp_path_factory):
    return tmp_path_factory.mktemp("outputs")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_cpu_smoke(path, out_root, capsys):
    # a third of cpu-smoke's steps: these check that a notebook runs top to bottom and renders its report; the
    # tests that read a trained model share one full run (conftest.smoke_run)
    params = {"preset": "cpu-smoke", "seeds": [0], "reuse": False, "overrides": SHORT}
    declared = runner.notebook_parameters(path)
    if "max_iterations" in declared:  # the test-time curve to 64 (its own tests take the command to 2048)
        params.update(max_iterations=64, spectral_puzzles=5)
    if "variants" in declared:  # two of the family's variants keep the suite short; all of them build in test_variants
        params["variants"] = ast.literal_eval(declared["variants"]["default"])[:2]
    run = runner.run_notebook(path, params, name="smoke", out_root=out_root)
    summary = files.read_json(run / "summary.json")
    assert summary["status"] == "complete"
    assert summary["solved_final"], "no headline metrics"
    assert set(summary["params"]) == set(runner.notebook_parameters(path)), "finish() got every parameter"
    for report in ("report.html", "report-noinput.html"):
        text = (run / report).read_text()
        assert "data:image/png;base64" in text, f"{report} has no figure"
        assert "solved % (final)" in text, f"{report} has no per-rating table"
        assert "without encryption" not in text
        assert not runner._PROGRESS_BAR.search(text), f"{report} shows progress-bar residue"
    nb = nbformat.read(str(run / path.name), as_version=4)
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert figures >= 2
    assert (run / "run.log").stat().st_size > 0
    assert run.name in (out_root / "index.html").read_text()
    progress = capsys.readouterr().err
    assert f"[{run.parent.name}/smoke] cell " in progress, "the terminal shows which cell runs"
    assert "without encryption" not in progress


def test_failed_run_keeps_its_notebook_and_is_marked(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell('message: str = "boom"  # what to raise', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("raise ValueError(message)")]
    notebook = tmp_path / "07_broken.ipynb"
    nbformat.write(nb, str(notebook))
    with pytest.raises(runner.NotebookFailed, match="ValueError: kaboom"):
        runner.run_notebook(notebook, {"message": "kaboom"}, name="broken", out_root=tmp_path / "out",
                            progress=False)
    run = tmp_path / "out" / "broken" / "broken"
    executed = nbformat.read(str(run / notebook.name), as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert files.read_json(run / "summary.json")["status"] == "failed"
    index = (tmp_path / "out" / "index.html").read_text()
    assert "broken" in index and "failed" in index and "kaboom" in index
    assert (run / "report.html").exists()


def test_a_progress_bar_leaves_no_residue_in_the_report(tmp_path):
    """A cell that draws a tqdm bar (even one the notebook forced on) shows only its other output in the report."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell('steps: int = 3', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import os, sys\nfrom tqdm import tqdm\nprint('progress env', os.environ.get('SUDOKU_WORKBOOK_PROGRESS'))\n"
                                          "for _ in tqdm(range(steps), file=sys.stderr, mininterval=0): pass\n"
                                          "print('the result line')")]
    notebook = tmp_path / "07_bars.ipynb"
    nbformat.write(nb, str(notebook))
    run = runner.run_notebook(notebook, {}, name="bars", out_root=tmp_path / "out", progress=False)
    text = (run / "report-noinput.html").read_text()
    assert "the result line" in text and "progress env 0" in text, "the kernel was told not to draw bars"
    assert not runner._PROGRESS_BAR.search(text) and "it/s]" not in text
