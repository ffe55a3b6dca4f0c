"""The explorer's widgets, built and driven headlessly on a cpu-smoke run; and its notebook under papermill."""
import re
from pathlib import Path

import numpy as np
import pytest

from lib.workbook import explorer, runner
from lib import files

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(smoke_run):
    return smoke_run  # conftest.py: one trained cpu-smoke run per test session


@pytest.fixture(scope="module")
def ex(run_dir):
    return explorer.Explorer(run_dir)


def digits(grid_html: str) -> list[str]:
    return re.findall(r"<td data-cell='\d+'[^>]*>(?:<span[^>]*>)?(\d)", grid_html)


def test_slider_redraws_the_grid_without_running_the_model_again(ex):
    assert ex.model_calls == 1, "building the explorer traces the first puzzle once"
    assert ex.slider.max == 2 * ex.trained and ex.play.max == ex.slider.max
    ex.slider.value = 1
    first = ex.grid.value
    assert len(digits(first)) == ex.grid_size ** 2
    assert "<polyline" in ex.curve.value and "iteration 1 " in ex.status.value
    ex.slider.value = ex.slider.max
    assert ex.grid.value != first
    ex.slider.value = 2
    assert ex.model_calls == 1


def test_filters_pick_puzzles_and_each_puzzle_is_traced_once(ex):
    ex.outcome.value = "failed"
    failed = [index for _, index in ex.puzzle.options]
    assert failed and set(ex.meta.loc[failed, "outcome"]) == {"failed"}
    ex.puzzle.value = failed[0]
    calls = ex.model_calls
    ex.puzzle.value = failed[-1]
    ex.puzzle.value = failed[0]
    assert ex.model_calls == calls + (len(failed) > 1)
    bucket = ex.meta["bucket"].iloc[-1]
    ex.bucket.value = bucket
    assert {ex.meta.loc[i, "bucket"] for _, i in ex.puzzle.options} <= {bucket}
    ex.outcome.value = ex.bucket.value = explorer.ANY
    assert len(ex.puzzle.options) == len(ex.meta)


def test_index_box_jumps_to_a_puzzle_hidden_by_the_filters(ex):
    ex.outcome.value = "solved"
    hidden = int(ex.meta.loc[ex.meta["outcome"] != "solved", "puzzle"].iloc[0])
    ex.index.value = hidden
    assert ex.puzzle.value == hidden and ex.outcome.value == explorer.ANY
    assert f"puzzle #{hidden}," in ex.status.value


def test_grid_marks_givens_correct_wrong_changed_and_conflicts():
    answer = np.array([1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1])
    puzzle = answer * (np.arange(16) < 4)
    pred = answer.copy()
    pred[5] = 3  # wrong, and a repeat in its row, column and box
    previous = answer.copy()
    html = explorer.grid_html(puzzle, pred, np.full(16, 0.5), answer, previous)
    kinds = re.findall(r"data-kind='(\w+)'", html)
    assert kinds[:4] == ["given"] * 4 and kinds[5] == "wrong" and kinds.count("correct") == 11
    assert re.findall(r"data-changed='1'", html) == ["data-changed='1'"]
    conflicts = [int(c) for c in re.findall(r"data-cell='(\d+)'[^>]*data-conflict='1'", html)]
    assert conflicts == [4, 5, 13]
    assert html.count("0.50") == 12, "each blank cell shows its confidence"
    unscored = explorer.grid_html(puzzle, pred, np.full(16, 0.5), None)
    assert "data-kind='wrong'" not in unscored and "data-kind='predicted'" in unscored


def test_pasted_puzzle_is_traced_and_bad_input_is_named(ex):
    ex.show_text("1...............")
    assert "not scored" in ex.status.value, "a puzzle with many solutions is shown unscored"
    ex.show_text("12")
    assert "wrong length 2" in ex.status.value
    with pytest.raises(ValueError, match="plays 4x4 grids"):
        ex.parse("." * 81)
    with pytest.raises(IndexError, match="puzzle index must be in"):
        ex.show_puzzle(10_000)


def test_static_strip_shows_example_puzzles_offline(ex):
    strip = explorer.static_strip(ex, columns=3)
    assert strip.count("class='sudoku-grid'") == 3 * len(explorer.examples(ex))
    assert "<script" not in strip and "http" not in strip.replace("http://www.w3.org/2000/svg", "")


@pytest.fixture(scope="module")
def notebook_run(run_dir, tmp_path_factory):
    nb = REPO / "notebooks" / "07_explorer.ipynb"
    return runner.run_notebook(nb, {"preset": "cpu-smoke", "run_dir": str(run_dir)}, name="smoke",
                                 out_root=tmp_path_factory.mktemp("outputs"))


def test_explorer_notebook_runs_and_its_report_shows_the_strip(notebook_run):
    report = (notebook_run / "report-noinput.html").read_text()
    assert len(re.findall(r"class=[\"']sudoku-grid", report)) >= 8, "the static strip is in the report"
    assert files.read_json(notebook_run / "summary.json")["status"] == "complete"


def test_explorer_report_loads_no_widget_javascript_from_a_cdn(notebook_run):
    report = (notebook_run / "report-noinput.html").read_text()
    assert "@jupyter-widgets/html-manager" not in report
    assert "Explorer of" in report, "the widget falls back to its one-line text"


def test_default_run_is_the_newest_finished_baseline_run(tmp_path):
    import os

    def fake_run(name: str, mtime: float, finished: bool = True) -> Path:
        run = tmp_path / "baseline" / name / "runs" / "baseline-s0"
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "last.pt").write_bytes(b"")
        if finished:
            (run / "eval.parquet").write_bytes(b"")
            os.utime(run / "eval.parquet", (mtime, mtime))
        return run

    fake_run("old", 1_000)
    new = fake_run("new", 2_000)
    fake_run("unfinished", 3_000, finished=False)
    out = tmp_path / "explorer" / "lab"
    assert explorer.newest_run(tmp_path) == new
    assert explorer.default_run("", out) == new
    with pytest.raises(FileNotFoundError, match="not a training run folder"):
        explorer.default_run(str(tmp_path / "nowhere"), out)
