"""Model folders (lib/workbook/share.py) and TensorBoard logging (lib/machine/watch.py).

A run exported and loaded back predicts bit for bit what the run reported. A checkpoint in the log's
layout, built here from PyTorch's own nn.TransformerEncoder and the scripts' names, imports, predicts
what that layout computes, and opens in test-time and the explorer; one that does not fit names the
first parameter that does not. A cpu-smoke run writes its metrics as TensorBoard events."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.workbook import analysis, cli, explorer, share
from lib import files
from lib.sudoku import puzzles
from lib.machine import watch
from lib import data as data_lib
from lib.experiments.resolve import make_config
from lib.evaluate import evaluate, load_model, load_run
from lib.model import build_model, filled
from lib.train import eval_counts, train

SMALL = {"model.d_model": 32, "model.n_heads": 2, "model.d_ff": 64, "model.n_layers": 2}
SMALL_SETS = [arg for k, v in SMALL.items() for arg in ("--set", f"{k}={v}")]


class LogModel(nn.Module):
    """The log's model in its scripts' layout: input_proj(concat(onehot(puzzle), preds)) plus
    row/col/box embeddings (plus h_prev with recurrence), PyTorch's own pre-norm
    nn.TransformerEncoder, then output_head."""

    def __init__(self, d=32, heads=2, ff=64, layers=2, recur=True):
        super().__init__()
        self.recur = recur
        self.input_proj = nn.Linear(10 + 9, d)
        self.row_embed, self.col_embed, self.box_embed = (nn.Embedding(9, d) for _ in range(3))
        layer = nn.TransformerEncoderLayer(d, heads, ff, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.output_head = nn.Linear(d, 9)

    def forward(self, puzzle: torch.Tensor, iterations: int) -> torch.Tensor:
        cell = torch.arange(81)
        row, col = cell // 9, cell % 9
        box = (row // 3) * 3 + col // 3
        pos = self.row_embed(row) + self.col_embed(col) + self.box_embed(box)
        x = F.one_hot(puzzle.long(), 10).float()
        preds, h, out = torch.zeros(len(puzzle), 81, 9), 0, []
        for _ in range(iterations):
            h = self.input_proj(torch.cat([x, preds], -1)) + pos + (h if self.recur else 0)
            h = self.transformer(h)
            logits = self.output_head(h)
            preds = F.softmax(logits, -1)
            out.append(logits)
        return torch.stack(out)


def puzzle_csv(path, seed: int, count: int = 40):
    p, a = puzzles.generate(9, count, seed=seed, progress=False)
    rows = [f"{q},{s}" for q, s in zip(puzzles.format_many(p), puzzles.format_many(a))]
    path.write_text("question,answer\n" + "\n".join(rows).replace(".", "0") + "\n")
    return path


@pytest.fixture(scope="module")
def log_model():
    torch.manual_seed(0)
    return LogModel().eval()


@pytest.fixture(scope="module")
def checkpoint(log_model, tmp_path_factory):
    """As a compiled script saves it, inside a training checkpoint's model_state_dict."""
    path = tmp_path_factory.mktemp("log") / "model_recur_add.pt"
    state = {f"_orig_mod.{k}": v for k, v in log_model.state_dict().items()}
    torch.save({"model_state_dict": state, "step": 100}, path)
    return path


@pytest.fixture(scope="module")
def imported(checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("imported")
    test = puzzle_csv(root / "nine.csv", seed=3)
    out = root / "recur-add"
    assert cli.main(["import-checkpoint", str(checkpoint), "--variant", "recur-add", "--out",
                     str(out), "--test", str(test), "--per-bucket", "8", *SMALL_SETS,
                     "--device", "cpu", "--no-progress"]) == 0
    return out


def test_an_imported_log_checkpoint_predicts_what_its_layout_computes(imported, log_model,
                                                                       checkpoint):
    run = load_run(imported)
    cfg, ev = run.run_config, run.evals
    assert (cfg.variant, cfg.preset, cfg.model.d_model) == ("recur-add", "gpu-paper", 32)
    x, truth, _ = analysis.run_puzzles(run)
    x = torch.from_numpy(x).long()
    with torch.no_grad():
        theirs = log_model(x, 16)
        ours = load_model(imported)(x, 16).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))
    # eval.parquet, scored by the training loop's own evaluation, is what the log's layout solves
    solved = (filled(theirs[-1], x).numpy() == truth).all(1)
    assert ev[ev["iteration"] == 16].sort_values("puzzle")["solved"].tolist() == solved.tolist()
    origin = run.summary["origin"]
    assert origin["sha256"] == share.sha256(checkpoint) and run.summary["steps"] == cfg.train.steps


def test_test_time_and_the_explorer_run_on_an_imported_model(imported, tmp_path):
    out = tmp_path / "curves.parquet"
    assert cli.main(["test-time", str(imported), "--iterations", "64", "-o", str(out)]) == 0
    assert pd.read_parquet(out)["iteration"].max() == 64
    ex = explorer.Explorer(imported)
    assert ex.model_calls == 1 and ex.max_iterations == 32
    ev = load_run(imported).evals
    reported = ev[ev["iteration"] == 16].set_index("puzzle")["solved"]
    for index in range(3):
        tr = ex.trace_of(ex.puzzles[index], ex.answers[index])
        traced = analysis.per_iteration(tr).set_index("iteration").loc[16, "solved"]
        assert bool(traced) == bool(reported[index])


def test_a_checkpoint_that_does_not_fit_names_the_first_parameter(checkpoint, tmp_path, capsys):
    state = share.log_state_dict(checkpoint)
    full = build_model(make_config("gpu-paper", "recur-add").model, 9)
    with pytest.raises(share.CheckpointMismatch,
                       match=r"'input_proj.weight' has shape \(32, 19\); variant 'recur-add' "
                             r"expects 'input_proj.weight' of shape \(128, 19\)"):
        share.fitted(state, full, "recur-add")
    once = build_model(make_config("gpu-paper", "no-x-after-init", SMALL).model, 9)
    with pytest.raises(share.CheckpointMismatch,
                       match=r"'input_proj.weight' \(32, 19\) does not fit variant "
                             r"'no-x-after-init'.*begin encoder.weight \(32, 10\)"):
        share.fitted(state, once, "no-x-after-init")
    small = build_model(make_config("gpu-paper", "recur-add", SMALL).model, 9)
    without_bias = {k: v for k, v in state.items() if k != "output_head.bias"}
    with pytest.raises(share.CheckpointMismatch, match=r"no parameter for 'head.0.bias' \(9,\)"):
        share.fitted(without_bias, small, "recur-add")
    out = tmp_path / "never"  # the command: one line naming it, status 2, no folder
    assert cli.main(["import-checkpoint", str(checkpoint), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "expects 'input_proj.weight' of shape (128, 19)" in err and not out.exists()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A cpu-smoke run with EMA weights: what it reported was scored with those."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    train(make_config("cpu-smoke", overrides={
        "train.steps": 30, "train.eval_every": 30, "train.checkpoint_every": 30,
        "schedule.warmup_steps": 3, "optim.ema_decay": 0.9}), out, progress=False)
    return out


def test_an_exported_run_loads_back_and_predicts_bit_for_bit_as_reported(smoke, tmp_path):
    to = tmp_path / "shared"
    assert cli.main(["export", str(smoke), "--to", str(to)]) == 0
    assert sorted(p.name for p in to.iterdir()) == [
        "README.md", "config.json", "eval.parquet", "metrics.jsonl", "model.safetensors",
        "summary.json"]
    theirs, ours = load_model(smoke, "last"), load_model(to)
    pairs = zip(theirs.state_dict().values(), ours.state_dict().values())
    assert all(torch.equal(a, b) for a, b in pairs)
    run = load_run(to)
    cfg = run.run_config
    test = data_lib.eval_subset(data_lib.load_splits(cfg.data, progress=False).test, cfg.eval.max_puzzles)
    _, per = evaluate(ours, test, eval_counts(cfg), trained=cfg.model.iterations)
    reported = run.evals[run.evals["weights"] == "ema"].reset_index(drop=True)
    for column in ("question", "iteration", "solved", "cell_acc", "changed"):
        assert per[column].tolist() == reported[column].tolist()
    at_trained = reported[reported["iteration"] == cfg.model.iterations]
    row = f"| all | {at_trained['puzzle'].nunique()} | {100 * at_trained['solved'].mean():.1f} |"
    assert row in files.RunFiles(to).readme.read_text()  # the card's table is the reported one
    assert cli.main(["export", str(smoke), "--to", str(to)]) == 2  # never over an existing folder


def test_a_model_folder_opens_on_a_test_source_you_name(imported, tmp_path):
    other = puzzle_csv(tmp_path / "other.csv", seed=11)
    assert share.on_source([imported], "", tmp_path) == [imported]
    (rescored,) = share.on_source([imported], str(other), tmp_path, per_bucket=4)
    run = load_run(rescored)
    assert run.run_config.data.source == str(other) and run.run_config.model.d_model == 32
    asked = set(run.evals["question"].str.replace(".", "0"))
    assert asked <= set(pd.read_csv(other, dtype=str)["question"])
    assert torch.equal(load_model(rescored).head[0].weight, load_model(imported).head[0].weight)
    stamp = files.RunFiles(rescored).evals.stat().st_mtime_ns
    assert share.on_source([imported], str(other), tmp_path, per_bucket=4) == [rescored]
    assert files.RunFiles(rescored).evals.stat().st_mtime_ns == stamp  # the same: kept


# --- TensorBoard ---------------------------------------------------------------------------

WATCHED = {"train.steps": 20, "train.log_every": 5, "train.eval_every": 20,
           "train.checkpoint_every": 20, "schedule.warmup_steps": 2, "train.tensorboard": True,
           "train.threads": 1}


def scalars(folder) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_a_cpu_smoke_run_writes_tensorboard_events_as_it_logs(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard package is not installed, so "
                                              "train.tensorboard writes nothing to check")
    run = tmp_path / "run"
    train(make_config("cpu-smoke", overrides=WATCHED), run, progress=False)
    live = scalars(files.RunFiles(run).tensorboard)
    rows = [json.loads(line) for line in files.RunFiles(run).metrics.read_text().splitlines()]
    loss = [(r["step"], r["value"]) for r in rows if r["metric"] == "loss"]
    assert [s for s, _ in live["train/loss"]] == [s for s, _ in loss] == [5, 10, 15, 20]
    np.testing.assert_allclose([v for _, v in live["train/loss"]], [v for _, v in loss], rtol=1e-6)
    buckets = {r["bucket"] for r in rows if r["split"] == "test"}
    expected = {f"test {m} % @4/{b}" for b in buckets for m in ("solved", "cell_acc")}
    assert expected | {"train/lr", "train/step_seconds"} <= set(live)
    solved = [100 * r["value"] for r in rows
              if r["metric"] == "solved" and r["bucket"] == "all" and r["iterations"] == 4]
    np.testing.assert_allclose([v for _, v in live["test solved % @4/all"]], solved, rtol=1e-6)
    watch.convert(run)  # a finished run's metrics.jsonl gives the same scalars
    assert scalars(files.RunFiles(run).tensorboard) == live


def test_without_tensorboard_a_run_says_so_once_and_trains_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(watch, "available", lambda: False)
    monkeypatch.setattr(watch, "_said_missing", False)
    cfg = make_config("cpu-smoke", overrides={**WATCHED, "train.steps": 5, "train.eval_every": 5})
    for name in ("a", "b"):
        assert train(cfg, tmp_path / name, progress=False)["status"] == "complete"
        assert not files.RunFiles(tmp_path / name).tensorboard.exists()
    assert capsys.readouterr().err.count("tensorboard package is not installed") == 1
