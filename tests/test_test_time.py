"""Test-time iteration scaling (lib/workbook/test_time.py) on a small trained cpu-smoke run: scoring any run far past
its trained count, the collapse point, the sequel's stopping rules, interventions and spectral radius."""
import numpy as np
import pandas as pd
import pytest
import torch

from lib import files
from lib.workbook import test_time
from lib.experiments.resolve import make_config
from lib.evaluate import load_model
from lib.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tt") / "run"
    cfg = make_config("cpu-smoke", overrides={"train.steps": 30, "train.eval_every": 30,
                                              "train.checkpoint_every": 30, "schedule.warmup_steps": 3})
    train(cfg, out, progress=False)
    return out


def test_the_command_scores_a_run_to_2048_and_writes_its_tidy_curves(run, tmp_path, capsys):
    from lib.workbook import cli
    out = tmp_path / "curves.parquet"
    assert cli.main(["test-time", str(run), "--iterations", "2048", "-o", str(out)]) == 0
    curves = pd.read_parquet(out)
    assert curves["iteration"].max() == 2048 and set(curves["bucket"]) >= {"all"}
    assert {"variant", "seed", "preset", "run", "source", "solved %", "fixed point %", "code_version"} <= set(curves.columns)
    assert "2048" in capsys.readouterr().out


def test_a_finished_run_is_scored_to_any_count_and_the_scores_are_kept_for_this_code(run, monkeypatch):
    per = test_time.scale_run(run, 64, sources=False)
    trained = make_config("cpu-smoke").model.iterations  # 4
    assert sorted(per["iteration"].unique()) == [*range(1, 2 * trained + 1), 16, 32, 64]
    assert set(per["source"]) == {"test"} and per.groupby("iteration").size().nunique() == 1
    cache = files.RunFiles(run).test_time(64, sources=False)
    assert cache.exists()
    pd.testing.assert_frame_equal(test_time.scale_run(run, 64, sources=False), per)  # read back
    calls = []
    monkeypatch.setattr(test_time, "code_identity", lambda: {"code_version": "r999"})
    monkeypatch.setattr(test_time, "evaluate", lambda *a, **k: calls.append(1) or (None, per[per["run"] == ""]))
    test_time.scale_run(run, 64, sources=False)
    assert calls, "scores made by other computing code must not be reused"


def test_the_collapse_point_is_the_first_count_5pp_below_the_best_before_it():
    assert test_time.collapse_at([8, 16, 32, 64], [50, 80, 76, 74.9]) == 64
    assert test_time.collapse_at([8, 16, 32], [50, 60, 70]) is None
    curve = pd.DataFrame({"variant": "v", "seed": 0, "bucket": "all", "source": "test",
                          "iteration": [1, 2, 4, 8], "solved %": [10.0, 40.0, 30.0, 20.0]})
    row = test_time.collapse_points(curve).iloc[0]
    assert row["collapses at"] == 4 and row["peak at"] == 2 and row["peak solved %"] == 40.0


def test_the_interventions_at_their_neutral_values_are_the_models_own_rollout(run):
    model = load_model(run, "last", device=torch.device("cpu"))
    puzzle = torch.zeros(3, 16, dtype=torch.long)
    puzzle[:, ::3] = torch.tensor([1, 2, 3, 4, 1, 2])[: len(range(0, 16, 3))]
    own = model(puzzle, iterations=6).logits  # [T, B, C, N]
    rolled = torch.stack(list(test_time.intervened_rollout(model, puzzle, 6)))
    torch.testing.assert_close(rolled, own)
    damped = torch.stack(list(test_time.intervened_rollout(model, puzzle, 6, alpha=0.5)))
    assert not torch.allclose(damped[1:], own[1:])
    with pytest.raises(ValueError, match="trained with one"):  # the CPU presets pin a head LayerNorm
        next(test_time.intervened_rollout(model, puzzle, 2, pre_norm=True))


def test_the_sequels_stopping_rules_pick_what_they_say():
    trained = 2
    preds = np.array([[[1], [2], [3], [4], [3], [4], [3]]])  # a period-2 oscillation from index 2
    assert test_time._oscillation_stop(preds, trained).tolist() == [2]  # t = 4 equals t - 2: stop at 2
    steady = np.array([[[1], [2], [5], [6], [7], [8], [9]]])
    assert test_time._oscillation_stop(steady, trained).tolist() == [6]  # never: the last
    conf = np.array([[0.1, 0.2, 0.5, 0.6, 0.7, 0.2, 0.1, 0.1]], np.float32)
    at = test_time._confidence_stop(conf, trained, window=1)
    assert at.tolist() == [4]  # index 5 drops below index 4: stop at 4


def test_stopping_rules_and_interventions_run_on_a_run(run):
    rules = test_time.stopping_rules(run, max_iterations=12)
    assert set(rules["rule"]) >= {"fixed at 4 (trained)", "oscillation stop", "confidence stop", "verified halting"}
    assert rules["solved %"].between(0, 100).all() and rules["mean iterations"].between(1, 12).all()
    table = test_time.interventions(run, counts=(4, 8), batch_size=64)
    assert "pre-norm" not in set(table["intervention"]) and "damping 0.5" in set(table["intervention"])


def test_the_spectral_radius_is_a_power_iteration_estimate(run):
    sr = test_time.spectral_radius(run, at=(4, 8), puzzles=4, power_steps=20)
    assert len(sr) == 8 and np.isfinite(sr["spectral radius"]).all() and (sr["spectral radius"] > 0).all()
    # on a linear map, power iteration finds the largest |eigenvalue|
    model = load_model(run, "last", device=torch.device("cpu"))
    A = torch.diag(torch.tensor([0.5, -2.0, 1.0]))
    v = torch.ones(3)
    for _ in range(60):
        _, jv = torch.func.jvp(lambda h: A @ h, (torch.zeros(3),), (v,))
        sigma = jv.norm()
        v = jv / sigma
    assert sigma.item() == pytest.approx(2.0, rel=1e-6) and model is not None
