"""Evaluation curves, verified-halting inference and run loading, against a model whose answers we know."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib import files
from lib.sudoku import puzzles
from lib.experiments.resolve import make_config
from lib.evaluate import evaluate, load_run, solve, valid_solutions
from lib.model import build_model

N, T = 4, 6


class OracleModel(nn.Module):
    """Knows each puzzle's answer and emits it from iteration solve_at on (1-based); before that
    it keeps the givens and fills every blank wrongly. Records the batch size of each step."""

    def __init__(self, puzzles_flat, answers_flat, solve_at):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # gives the model a device
        self.table = {p.tobytes(): i for i, p in enumerate(puzzles_flat)}
        self.answers = torch.from_numpy(answers_flat).long()
        self.solve_at = torch.as_tensor(solve_at)
        self.iterations, self.batch_sizes = T, []

    def init_state(self, puzzle):
        idx = torch.tensor([self.table[p.astype(np.uint8).tobytes()] for p in puzzle.cpu().numpy()])
        return {"puzzle": puzzle, "answer": self.answers[idx], "solve_at": self.solve_at[idx]}

    def step(self, state, i):
        self.batch_sizes.append(len(state["puzzle"]))
        wrong = torch.where(state["puzzle"] > 0, state["puzzle"], state["answer"] % N + 1)
        pred = torch.where((i + 1 >= state["solve_at"])[:, None], state["answer"], wrong)
        return state, F.one_hot(pred - 1, N).float()


@pytest.fixture(scope="module")
def grids():
    p, a = puzzles.generate(N, 24, seed=3, progress=False)
    p, a = p.reshape(24, -1), a.reshape(24, -1)
    solve_at = np.array([1, 2, 3, 4, 5, 6, 99, 2] * 3)  # 99: never within T
    buckets = np.array(["0", "1-2", "3+"] * 8)
    return p, a, solve_at, buckets


def test_curves_and_per_puzzle_rows(grids):
    p, a, solve_at, buckets = grids
    model = OracleModel(p, a, solve_at)
    curves, per = evaluate(model, (p, a, buckets), iterations=[3, T], batch_size=10)
    assert list(per.columns) == ["puzzle", "question", "bucket", "rating", "deduction_depth", "guesses_full", "iteration",
                                 "cell_acc", "solved", "changed"]
    assert len(per) == len(p) * T and per["iteration"].min() == 1 and per["iteration"].max() == T
    # the oracle's argmax moves once, when it switches to the answer; the first iteration counts as a move
    moved = (per["iteration"] == 1) | (per["iteration"] == solve_at[per["puzzle"]])
    assert per["changed"].tolist() == moved.tolist()
    assert list(dict.fromkeys(curves["bucket"])) == ["0", "1-2", "3+", "all"]
    for t in range(1, T + 1):
        row = curves[(curves.bucket == "all") & (curves.iteration == t)].iloc[0]
        assert row.solved == pytest.approx(np.mean(solve_at <= t))
        assert row.cell_acc == pytest.approx(np.mean(solve_at <= t))  # wrong blanks until solved
        for b in ["0", "1-2", "3+"]:
            got = curves[(curves.bucket == b) & (curves.iteration == t)].solved.item()
            assert got == pytest.approx(np.mean(solve_at[buckets == b] <= t))
    one = per[per.puzzle == 1].sort_values("iteration")
    assert one.solved.tolist() == [False] + [True] * (T - 1)


def test_evaluate_reads_datasets_with_metadata(grids):
    import datasets
    p, a, solve_at, buckets = grids
    ds = datasets.Dataset.from_dict({
        "question": puzzles.format_many(p.reshape(-1, N, N)), "answer": puzzles.format_many(a.reshape(-1, N, N)),
        "rating": list(range(len(p))), "deduction_depth": [1] * len(p), "guesses_full": [0] * len(p),
        "bucket": buckets.tolist()})
    curves, per = evaluate(OracleModel(p, a, solve_at), ds, iterations=T)
    assert per[per.iteration == 1].rating.tolist() == list(range(len(p)))
    assert curves[(curves.bucket == "all") & (curves.iteration == T)].solved.item() == pytest.approx(np.mean(solve_at <= T))


def test_valid_solutions():
    p, a = puzzles.generate(N, 4, seed=1, progress=False)
    p, a = torch.from_numpy(p.reshape(4, -1)).long(), torch.from_numpy(a.reshape(4, -1)).long()
    assert valid_solutions(a, p).all()
    swapped = a.clone()
    swapped[:, [0, 1]] = swapped[:, [1, 0]]
    assert not valid_solutions(swapped, p).any()
    relabelled = 5 - a  # still a valid grid, but it breaks the givens
    assert valid_solutions(relabelled, torch.zeros_like(p)).all() and not valid_solutions(relabelled, p).any()


def test_verified_halting_stops_each_puzzle_at_its_solution_and_shrinks_the_batch(grids):
    p, a, solve_at, _ = grids
    model = OracleModel(p, a, solve_at)
    fixed = solve(p.reshape(-1, N, N), model, halt="none")
    assert (fixed.iterations_used == T).all()
    assert np.array_equal(fixed.valid, solve_at <= T)
    model.batch_sizes.clear()
    halted = solve(p.reshape(-1, N, N), model, halt="verified")
    assert np.array_equal(halted.iterations_used, np.minimum(solve_at, T))
    assert np.array_equal(halted.valid, solve_at <= T)
    assert np.array_equal(halted.grids[halted.valid], a.reshape(-1, N, N)[halted.valid])
    assert model.batch_sizes == [len(p) - int((solve_at < t).sum()) for t in range(1, T + 1)]
    assert sum(model.batch_sizes) < T * len(p)


def test_solve_accepts_one_grid_and_strings(grids):
    p, a, solve_at, _ = grids
    model = OracleModel(p, a, solve_at)
    one = solve(p[0].reshape(N, N), model, halt="verified")
    assert one.grids.shape == (1, N, N) and one.iterations_used.tolist() == [1] and one.valid.tolist() == [True]
    text = solve([puzzles.format(p[1].reshape(N, N))], model, halt="verified")
    assert text.iterations_used.tolist() == [2]
    with pytest.raises(ValueError, match="halt"):
        solve(p, model, halt="sometimes")


def test_real_model_step_api_matches_forward():
    cfg = make_config("cpu-smoke")
    torch.manual_seed(0)
    model = build_model(cfg.model, N).eval()
    p, a = puzzles.generate(N, 16, seed=2, progress=False)
    p, a = p.reshape(16, -1), a.reshape(16, -1)
    curves, per = evaluate(model, (p, a), iterations=[4, 8], batch_size=5)
    with torch.no_grad():
        logits = model(torch.from_numpy(p).long(), iterations=8).logits
    for t in (1, 4, 8):
        pred = np.where(p > 0, p, (logits[t - 1].argmax(-1) + 1).numpy())  # the givens copied, as the scripts
        assert np.array_equal(per[per.iteration == t].solved.to_numpy(), (pred == a).all(1))
    result = solve(p, model, iterations=8)
    assert np.array_equal(result.grids.reshape(16, -1), np.where(p > 0, p, (logits[-1].argmax(-1) + 1).numpy()))
    assert solve(p, model).iterations_used.tolist() == [cfg.model.iterations] * 16  # default: the trained count
    assert model.training is False


def test_load_run_reads_a_run_folder_and_skips_a_torn_line(tmp_path):
    cfg = make_config("cpu-smoke")
    files.write_json(tmp_path / "config.json", cfg.to_dict())
    rows = [{"step": 10, "split": "train", "bucket": "all", "metric": "loss", "value": 1.0, "seed": 0, "iterations": None}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 2')
    run = load_run(tmp_path)
    assert run.config["model"]["iterations"] == cfg.model.iterations and run.run_config == cfg
    assert run.summary == {} and run.evals is None
    assert len(run.metrics) == 1 and run.metrics.value.item() == 1.0
    pd.DataFrame({"puzzle": [0], "iteration": [1]}).to_parquet(tmp_path / "eval.parquet")
    (tmp_path / "summary.json").write_text(json.dumps({"status": "complete"}))
    run = load_run(tmp_path)
    assert run.summary["status"] == "complete" and len(run.evals) == 1
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_run(tmp_path / "nowhere")
