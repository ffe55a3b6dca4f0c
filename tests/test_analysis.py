"""Failure analysis on synthetic per-iteration predictions whose answers are known by construction."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lib.workbook import analysis

ANSWER = np.array([1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1], np.uint8)  # a valid 4x4 grid


def synthetic(rows: list[list[np.ndarray]], trained: int, buckets=None) -> analysis.Trace:
    """A Trace of puzzles with cells 0..3 given (the rest blank) and the given prediction grids."""
    puzzles = np.tile(ANSWER, (len(rows), 1))
    puzzles[:, 4:] = 0
    preds = np.array([[g for g in grids] for grids in rows], np.int8)
    meta = pd.DataFrame({"puzzle": range(len(rows)), "bucket": buckets or ["1"] * len(rows),
                         "rating": 0, "deduction_depth": 1})
    return analysis.Trace(puzzles, np.tile(ANSWER, (len(rows), 1)), preds, np.ones(preds.shape, np.float16),
                          meta, trained)


def wrong(cells: dict[int, int]) -> np.ndarray:
    g = ANSWER.astype(np.int8).copy()
    for c, v in cells.items():
        g[c] = v
    return g


RIGHT = ANSWER.astype(np.int8)


def test_peak_still_changing_and_oscillations_on_known_sequences():
    solved_at_2 = [wrong({5: 1}), RIGHT, RIGHT, RIGHT]
    peak_then_drift = [wrong({5: 1, 6: 2}), wrong({5: 1}), wrong({5: 1, 6: 3}), wrong({5: 2, 6: 3})]
    # cell 5 goes 1 -> 4 (right) -> 1 -> 4: two flips back to an earlier value
    oscillating = [wrong({5: 1}), RIGHT, wrong({5: 1}), RIGHT]
    lost = [wrong({7: 1}), RIGHT, RIGHT, wrong({7: 1})]
    tr = synthetic([solved_at_2, peak_then_drift, oscillating, lost], trained=4)
    dyn = analysis.puzzle_dynamics(tr)
    assert dyn["outcome"].tolist() == ["solved", "failed", "solved", "solved-then-lost"]
    assert dyn["peak_iteration"].tolist() == [2, 2, 2, 2]
    assert dyn["still_changing"].tolist() == [False, True, True, True]
    assert dyn["oscillations"].tolist() == [0, 0, 2, 1]
    assert dyn["first_solved"].tolist()[0] == 2 and np.isnan(dyn["first_solved"].iloc[1])
    np.testing.assert_allclose(dyn["final_cell_acc"], [1, 10 / 12, 1, 11 / 12])


def test_the_models_output_on_given_cells_is_ignored():
    # cell 0 is given; the model's argmax there flips 1 -> 2 -> 1, which a reader never sees
    tr = synthetic([[RIGHT, wrong({0: 2}), RIGHT]], trained=3)
    dyn = analysis.puzzle_dynamics(tr)
    assert dyn["oscillations"].tolist() == [0] and dyn["still_changing"].tolist() == [False]
    assert analysis.per_iteration(tr)["changed"].tolist() == [0, 0, 0]
    assert analysis.per_iteration(tr)["violations"].tolist() == [0, 0, 0]
    assert analysis.halting(tr)["halted_at"].tolist() == [1]


def test_oscillations_counts_returns_only():
    seq = lambda *vals: np.array([[[v] for v in vals]], np.int8)  # one puzzle, one cell
    assert analysis.oscillations(seq(1, 2, 1))[0] == 1
    assert analysis.oscillations(seq(1, 2, 3, 4))[0] == 0
    assert analysis.oscillations(seq(1, 1, 2, 2, 1))[0] == 1
    assert analysis.oscillations(seq(1, 2, 1, 2, 1))[0] == 3


def test_failure_stats_share_still_changing_and_peak():
    still = [wrong({5: 1}), RIGHT, wrong({5: 2}), wrong({5: 3})]  # fails, peak 2, still changing
    frozen = [wrong({5: 1}), wrong({5: 1}), wrong({5: 1, 6: 2}), wrong({5: 1, 6: 2})]  # fails, peak 1, settled
    solved = [RIGHT] * 4
    tr = synthetic([still, still, frozen, solved], trained=4, buckets=["1", "1", "2", "2"])
    stats = analysis.failure_stats(analysis.puzzle_dynamics(tr))
    assert stats.loc["1", "failed"] == 2 and stats.loc["1", "still changing %"] == 100
    assert stats.loc["2", "failed"] == 1 and stats.loc["2", "still changing %"] == 0
    assert stats.loc["all", "still changing %"] == pytest.approx(200 / 3, abs=0.01)
    assert stats.loc["all", "median peak iteration"] == 2 and stats.loc["2", "mean peak iteration"] == 1
    by = analysis.changing_by_outcome(analysis.puzzle_dynamics(tr)).set_index("result")
    assert by.loc["failed", "still changing %"] == pytest.approx(200 / 3) and by.loc["solved", "still changing %"] == 0


def test_conflicts_violations_and_verified_halting():
    assert not analysis.conflicts(RIGHT).any()
    bad = wrong({5: 3})  # row 1 becomes 3 3 1 2, column 1 holds 2 3 1 3, box 0 holds 1 2 3 3
    assert set(np.flatnonzero(analysis.conflicts(bad))) == {4, 5, 13}
    tr = synthetic([[bad, RIGHT, RIGHT], [bad, bad, bad]], trained=2)
    frame = analysis.per_iteration(tr)
    assert frame["violations"].tolist() == [3, 0, 0, 3, 3, 3]
    assert frame["changed"].tolist() == [0, 1, 0, 0, 0, 0]
    halt = analysis.halting(tr)
    assert halt["halted_at"].tolist() == [2, 3] and halt["halted"].tolist() == [True, False]
    curves = analysis.bucket_curves(frame)
    assert set(curves["metric"]) == {"solved %", "cell accuracy %", "conflicting cells"}


def test_trace_matches_the_model_step_api_and_evaluate():
    from lib.experiments.resolve import make_config
    from lib.evaluate import evaluate
    from lib.model import build_model

    torch.manual_seed(0)
    cfg = make_config("cpu-smoke")
    model = build_model(cfg.model, 4).eval()
    puzzles = np.tile(ANSWER, (5, 1))
    puzzles[:, ::3] = 0
    tr = analysis.trace(model, puzzles, np.tile(ANSWER, (5, 1)), iterations=6, batch_size=2)
    assert tr.predictions.shape == (5, 6, 16) and tr.predictions.dtype == np.int8
    assert tr.confidences.dtype == np.float16 and (tr.confidences > 0).all()
    _, per_puzzle = evaluate(model, (puzzles, np.tile(ANSWER, (5, 1))), 6)
    ours = analysis.per_iteration(tr)
    np.testing.assert_allclose(ours["cell_acc"], per_puzzle["cell_acc"], atol=1e-6)
    assert (ours["solved"].to_numpy() == per_puzzle["solved"].to_numpy()).all()
    with pytest.raises(ValueError, match="iterations must be positive"):
        analysis.trace(model, puzzles, None, iterations=0)


def test_eval_parquet_functions():
    ev = pd.DataFrame({"puzzle": np.repeat([0, 1, 2], 3), "bucket": "1", "rating": 0, "deduction_depth": [1] * 6 + [2] * 3,
                       "iteration": np.tile([1, 2, 3], 3), "trained_iterations": 2,
                       "solved": [False, True, True, True, False, False, False, False, True],
                       "cell_acc": 0.5})
    assert analysis.outcomes(ev).tolist() == ["solved", "solved-then-lost", "failed"]
    needed = analysis.iterations_needed(ev)
    assert needed["iterations needed"].tolist() == [2, 1, 3]
    assert analysis.iterations_needed(ev, upto=2)["iterations needed"].isna().tolist() == [False, False, True]


def test_puzzle_dynamics_rejects_a_bad_upto():
    tr = synthetic([[RIGHT, RIGHT]], trained=2)
    with pytest.raises(ValueError, match="upto must be in 2..2"):
        analysis.puzzle_dynamics(tr, upto=5)


@pytest.fixture(scope="module")
def run_dir(smoke_run):
    return smoke_run  # conftest.py: one trained cpu-smoke run per test session


def test_failure_analysis_notebook_shows_every_figure(run_dir, tmp_path):
    import nbformat

    from lib import files
    from lib.workbook import runner

    nb = Path(__file__).resolve().parent.parent / "notebooks" / "09_failure_analysis.ipynb"
    run = runner.run_notebook(nb, {"preset": "cpu-smoke", "run_dirs": [str(run_dir)]}, name="smoke", out_root=tmp_path)
    executed = nbformat.read(str(run / nb.name), as_version=4)
    figures = sum("image/png" in o.get("data", {}) for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert figures == 5  # bucket curves, solved vs failed, iterations needed, extrapolation, halting
    report = (run / "report-noinput.html").read_text()
    assert "still changing %" in report and "median peak iteration" in report
    assert files.read_json(run / "summary.json")["status"] == "complete"


def test_run_puzzles_are_eval_parquets_and_a_changed_split_is_named(run_dir):
    from lib.sudoku import puzzles
    from lib.evaluate import load_run

    run = load_run(run_dir)
    p, _, meta = analysis.run_puzzles(run)
    assert len(p) == run.evals["puzzle"].nunique() and (meta["puzzle"] == np.arange(len(p))).all()
    assert (meta["bucket"].to_numpy() == run.evals.drop_duplicates("puzzle")["bucket"].to_numpy()).all()
    questions = dict(enumerate(puzzles.format_many(p)))
    run.evals["question"] = run.evals["puzzle"].map(questions)
    analysis.run_puzzles(run)  # the same split: no complaint
    run.evals.loc[run.evals["puzzle"] == 0, "question"] = questions[1]
    with pytest.raises(ValueError, match="not the one eval.parquet was scored on"):
        analysis.run_puzzles(run)


def test_halting_read_off_the_trace_matches_verified_solve(run_dir):
    from lib.evaluate import load_model, solve

    tr = analysis.trace_run(run_dir, iterations=8)
    halt = analysis.halting(tr)
    solved = solve(tr.puzzles, load_model(run_dir, "last"), iterations=8, halt="verified")
    assert (halt["halted_at"].to_numpy() == solved.iterations_used).all()
    assert (halt["halted"].to_numpy() == solved.valid).all()
