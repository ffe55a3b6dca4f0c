"""The training loop end to end on the cpu-smoke preset: outputs, determinism, exact resume after
SIGKILL, divergence, optimiser pieces, augmentation, and DDP parity."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import lib.train as train_mod
from lib import files
from lib.sudoku import puzzles
from lib.config import parse_set
from lib.experiments.resolve import make_config
from lib.schedule import lr_at
from lib.evaluate import load_run, valid_solutions
from lib.model import build_model, sequence_loss
from lib.provenance import code_identity
from lib.machine.faults import KILL_AT_STEP, NAN_AT_STEP
from lib.optim import EMA, SAM, make_optimizer
from lib.train import Batcher, train

REPO = Path(__file__).resolve().parent.parent
SUMMARY_KEYS = ["preset", "variant", "grid_size", "steps", "wall_seconds", "params", "seed", "status", "final",
                "peak", "final_cell_acc", "eval_iterations", "device", "code"]
TIMING = {"puzzles_per_second"}


# The cpu-smoke values these tests rely on, pinned so that tuning the preset does not move them.
PINNED = {"model.n_layers": 1, "model.iterations": 4, "optim.lr": 2e-3, "schedule.warmup_steps": 5,
          "train.steps": 40, "train.batch_size": 32, "train.log_every": 10, "train.eval_every": 20,
          "train.checkpoint_every": 20, "curriculum.kind": "reverse", "curriculum.thresholds": [3, 2],
          "curriculum.phase_fractions": [0.3, 0.3], "eval.iterations": [4, 8], "train.threads": 1}


def smoke(**overrides):
    return make_config("cpu-smoke", "baseline", {**PINNED, **{k.replace("__", "."): v for k, v in overrides.items()}})


def as_sets(overrides: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in overrides.items()]


def rows(run_dir) -> list[dict]:
    """metrics.jsonl without the timing rows, which no two runs share."""
    lines = Path(run_dir, "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["metric"] not in TIMING]


def summary_of(run_dir) -> dict:
    s = json.loads(Path(run_dir, "summary.json").read_text())
    s.pop("wall_seconds")
    return s


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    summary = train(smoke(), out, progress=False)
    return out, summary


# --- outputs ---------------------------------------------------------------------------------------

def test_outputs_follow_the_contract(smoke_run):
    out, summary = smoke_run
    cfg = smoke()
    for name in ["config.json", "metrics.jsonl", "eval.parquet", "summary.json", "train.log",
                 "checkpoints/last.pt", "checkpoints/best.pt"]:
        assert (out / name).exists(), name
    written = json.loads((out / "config.json").read_text())
    assert written.pop("code") == summary["code"] == code_identity()  # the code that made the run
    assert written == cfg.to_dict()
    assert list(summary) == SUMMARY_KEYS
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["steps"] == cfg.train.steps and summary["device"] == "cpu"
    buckets = ["1", "2", "3+", "all"]
    assert list(summary["final"]) == buckets and list(summary["peak"]) == buckets
    assert list(summary["eval_iterations"]) == ["4", "8"]
    assert all(0 <= v <= 100 for v in summary["final_cell_acc"].values())
    assert any(v > 1 for v in summary["final_cell_acc"].values())  # percents, not fractions
    assert all(summary["peak"][b] >= summary["final"][b] for b in buckets)

    metrics = pd.DataFrame(rows(out) + [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                                        if r["metric"] in TIMING])
    assert list(metrics.columns) == ["step", "split", "bucket", "metric", "value", "seed", "iterations"]
    train_rows = metrics[metrics.split == "train"]
    assert set(train_rows.metric) == {"loss", "lr", "cell_acc", "puzzles_per_second", "stage"}
    assert sorted(set(train_rows.step)) == [10, 20, 30, 40] and train_rows.iterations.isna().all()
    test_rows = metrics[metrics.split == "test"]
    assert set(test_rows.metric) == {"solved", "cell_acc"} and sorted(set(test_rows.step)) == [20, 40]
    assert set(test_rows.iterations) == {4, 8} and set(test_rows.bucket) == set(buckets)
    assert test_rows.value.between(0, 1).all()
    # the logged lr is the schedule's, and the stages follow the reverse phases (12 and 24 of 40)
    lr = train_rows[train_rows.metric == "lr"].set_index("step").value
    assert lr.to_dict() == {s: pytest.approx(lr_at(s - 1, cfg, 0, 0)) for s in (10, 20, 30, 40)}
    assert train_rows[train_rows.metric == "stage"].value.tolist() == [0, 1, 2, 2]
    # the final eval agrees with the summary
    evals = pd.read_parquet(out / "eval.parquet")
    assert list(evals.columns) == ["puzzle", "question", "bucket", "rating", "deduction_depth", "guesses_full", "iteration",
                                   "cell_acc", "solved", "changed", "trained_iterations"]
    assert evals.iteration.max() == 8 and (evals.trained_iterations == 4).all()
    at_trained = evals[evals.iteration == 4]
    assert 100 * at_trained.solved.mean() == pytest.approx(summary["final"]["all"], abs=1e-3)
    assert 100 * at_trained.cell_acc.mean() == pytest.approx(summary["final_cell_acc"]["all"], abs=1e-3)
    log = (out / "train.log").read_text()
    assert "parameters: " in log and "eval step 40" in log


def test_load_run_reads_a_training_run(smoke_run):
    out, summary = smoke_run
    run = load_run(out)
    assert run.summary == summary and run.run_config == smoke()
    assert set(run.metrics.split) == {"train", "test"} and len(run.evals) == run.evals.puzzle.nunique() * 8


def test_seeded_cpu_runs_are_deterministic_and_quiet(smoke_run, tmp_path, capsys):
    out, _ = smoke_run
    train(smoke(), tmp_path, progress=False)
    assert capsys.readouterr().out == ""
    assert rows(tmp_path) == rows(out)
    assert summary_of(tmp_path) == summary_of(out)


def test_resuming_a_finished_run_changes_nothing(smoke_run, tmp_path):
    out, _ = smoke_run
    shutil.copytree(out, tmp_path / "run")
    summary = train(smoke(), tmp_path / "run", resume=True, progress=False)
    assert summary["steps"] == 40 and rows(tmp_path / "run") == rows(out)


# --- exact resume after SIGKILL -------------------------------------------------------------------

# Every piece of resumable state in play: plateau stages with lr restarts, EMA, accumulation, dropout.
KILL_SETS = as_sets(PINNED) + ["train.steps=60", "train.checkpoint_every=10", "train.eval_every=20", "train.log_every=5",
             "curriculum.kind=plateau", "schedule.kind=stage_restarts", "curriculum.plateau_window=0.05",
             "curriculum.plateau_min_window=3", "curriculum.plateau_threshold=0.05",
             "curriculum.min_steps_per_stage=0.13", "optim.ema_decay=0.9",
             "train.grad_accum=2", "model.dropout=0.1"]


LAUNCH = ("import sys; from lib.config import parse_set; from lib.experiments.resolve import make_config; "
          "from lib.train import train; "
          "train(make_config('cpu-smoke', 'baseline', parse_set(sys.argv[2:])), sys.argv[1], resume=True, progress=False)")


def launch(out: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
    """A training process on `out` (resuming what is there), SIGKILLed by the loop's test hook once
    step `kill_at` has finished."""
    env = {**os.environ, KILL_AT_STEP: str(kill_at or "")}
    return subprocess.run([sys.executable, "-c", LAUNCH, str(out), *KILL_SETS], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_run_killed_at_random_steps_resumes_to_the_same_result(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # five random kill points, at least one between checkpoints and one right on a checkpoint step
    rng = np.random.default_rng(7)
    points = sorted({*rng.choice(np.arange(1, 60), size=3, replace=False).tolist(), 20, 33})
    for step in points:
        died = launch(killed, kill_at=step)
        assert died.returncode == -signal.SIGKILL, died.stderr
        assert not (killed / "summary.json").exists()
    finished = launch(killed)
    assert finished.returncode == 0, finished.stderr
    train(make_config("cpu-smoke", "baseline", parse_set(KILL_SETS)), whole, progress=False)  # the reference
    got, want = rows(killed), rows(whole)
    assert [(r["step"], r["metric"], r["bucket"], r["iterations"]) for r in got] == \
           [(r["step"], r["metric"], r["bucket"], r["iterations"]) for r in want]  # none lost, none duplicated
    assert [r["value"] for r in got] == [r["value"] for r in want]  # bit-identical
    assert summary_of(killed) == summary_of(whole)
    assert pd.read_parquet(killed / "eval.parquet").equals(pd.read_parquet(whole / "eval.parquet"))
    stages = [r["value"] for r in want if r["metric"] == "stage"]
    assert max(stages) > 0, "the plateau rule never raised the gate; the test would not cover stage state"
    assert (killed / "train.log").read_text().count("resumed from") >= len(points) - 1


# --- divergence ----------------------------------------------------------------------------------

def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv(NAN_AT_STEP, "25")
    summary = train(smoke(), tmp_path, progress=False)
    assert summary["status"] == "diverged" and summary["steps"] == 25
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "diverged"
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["state"]["step"] == 20
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    log = (tmp_path / "train.log").read_text()
    assert "non-finite loss" in log and "at step 25" in log and "last.pt (step 20)" in log
    assert summary["final"]  # the step-20 evaluation is still reported
    assert max(r["step"] for r in rows(tmp_path)) == 20


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def save_until_the_disk_fills(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) > 2:  # last.pt and best.pt at step 20 fit; the next checkpoint does not
            with open(f, "wb") as out:
                out.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    with pytest.raises(OSError, match="No space left"):
        train(smoke(), tmp_path, progress=False)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["state"]["step"] == 20
    assert not list((tmp_path / "checkpoints").glob("*.tmp")), "the torn temporary file was removed"
    monkeypatch.setattr(torch, "save", real_save)  # room again: the run resumes from the kept checkpoint
    resumed = train(smoke(), tmp_path, resume=True, progress=False)
    assert resumed["status"] == "complete" and resumed["steps"] == 40


def test_a_fresh_start_clears_an_older_runs_outputs(tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    for stale in ["checkpoints/last.pt", "checkpoints/best.pt", "summary.json", "eval.parquet", "metrics.jsonl"]:
        (tmp_path / stale).write_text("from an older run")
    real_loss = train_mod.sequence_loss
    monkeypatch.setattr(train_mod, "sequence_loss", lambda *args: real_loss(*args) * float("inf"))
    summary = train(smoke(), tmp_path, progress=False)
    assert summary["status"] == "diverged" and summary["steps"] == 0 and summary["final"] == {}
    assert not (tmp_path / "checkpoints" / "last.pt").exists() and not (tmp_path / "eval.parquet").exists()
    assert (tmp_path / "metrics.jsonl").read_text() == ""
    assert "no checkpoint written yet" in (tmp_path / "train.log").read_text()


# --- optimisation pieces ---------------------------------------------------------------------------

def test_weight_decay_on_every_parameter_by_default_as_torch_adamw():
    cfg = smoke()
    model = build_model(cfg.model, 4)
    (group,) = make_optimizer(model, cfg, torch.device("cpu")).param_groups
    assert group["weight_decay"] == cfg.optim.weight_decay and len(group["params"]) == len(list(model.parameters()))


def test_no_weight_decay_on_biases_norms_embeddings_when_asked():
    cfg = smoke(model__pos="rcb", optim__decay="matrices")
    model = build_model(cfg.model, 4)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    decay, no_decay = opt.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == cfg.optim.weight_decay and no_decay["weight_decay"] == 0
    assert all(p.dim() == 2 and "embed" not in names[id(p)] for p in decay["params"])
    assert any("row_embed" in names[id(p)] for p in no_decay["params"])
    assert any(names[id(p)].endswith("bias") for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(names)


def test_sam_steps_with_the_gradient_at_the_perturbed_point():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    base = torch.optim.SGD([w], lr=0.1)
    sam = SAM(base, rho=0.5)
    seen = []

    def closure():  # loss = sum(w^3): gradient 3 w^2
        sam.zero_grad()
        loss = (w ** 3).sum()
        loss.backward()
        seen.append(w.detach().clone())
        return loss.detach()

    loss = sam.step(closure)
    g = 3 * torch.tensor([1.0, 2.0]) ** 2
    perturbed = torch.tensor([1.0, 2.0]) + 0.5 * g / g.norm()
    assert loss.item() == pytest.approx(9.0)
    assert torch.allclose(seen[1], perturbed)
    assert torch.allclose(w.detach(), torch.tensor([1.0, 2.0]) - 0.1 * 3 * perturbed ** 2)


def test_nested_steps_backpropagated_one_at_a_time_give_the_whole_loss_gradient():
    cfg = make_config("cpu-smoke", "trm-nested", {"model.iterations": 3, "model.h_cycles": 2, "model.l_cycles": 2,
                                                  "model.loss": "all"})
    torch.manual_seed(0)
    model = build_model(cfg.model, 4)
    x = torch.tensor([[1, 0, 0, 4, 0, 4, 1, 0, 0, 1, 0, 0, 4, 0, 0, 1]] * 2)
    y = torch.tensor([[1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1]] * 2)
    sequence_loss(model(x), y, x, cfg.model).backward()
    whole = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    ctx = train_mod.Context(cfg, torch.device("cpu"), None, train_mod.Dist(), files.RunFiles("unused"), False)
    loss, logits = train_mod.backward_per_supervision_step(model, x, y, ctx, 1)
    assert logits.shape == (3, 2, 16, 4) and loss == pytest.approx(sequence_loss(model(x), y, x, cfg.model).item(), rel=1e-5)
    assert set(whole) == {n for n, p in model.named_parameters() if p.grad is not None}
    for name, p in model.named_parameters():
        if name in whole:
            assert torch.allclose(p.grad, whole[name], rtol=1e-4, atol=1e-7), name


def test_ema_update():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.9)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.model.weight, 0.9 * before + 0.1 * model.weight)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_accumulation_matches_one_big_batch(tmp_path):
    sets = dict(train__steps=8, train__log_every=1, train__eval_every=8, train__checkpoint_every=8,
                model__dropout=0.0)  # dropout draws its masks per micro-batch
    train(smoke(**sets), tmp_path / "one", progress=False)
    train(smoke(train__grad_accum=4, **sets), tmp_path / "four", progress=False)
    loss = {name: [r["value"] for r in rows(tmp_path / name) if r["metric"] == "loss"] for name in ("one", "four")}
    # the blank-cell mean of the whole batch against the mean of the micro-batches' means (exp_scale_up.py's):
    # equal but for how many blanks each micro-batch holds
    assert loss["one"] == pytest.approx(loss["four"], rel=1e-3)


def test_sam_and_ema_variants_train(tmp_path):
    a = train(smoke(optim__name="sam", optim__ema_decay=0.5, train__steps=20), tmp_path / "a", progress=False)
    b = train(smoke(train__steps=20), tmp_path / "b", progress=False)
    assert a["status"] == b["status"] == "complete"
    loss = {n: [r["value"] for r in rows(tmp_path / n) if r["metric"] == "loss"] for n in ("a", "b")}
    assert loss["a"][0] != loss["b"][0] or loss["a"][1] != loss["b"][1]
    ckpt = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["ema"] is not None and any(not torch.equal(ckpt["ema"][k], ckpt["model"][k]) for k in ckpt["model"])


# --- data ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [4, 6, 9])
def test_augmented_batches_are_valid_and_varied(n):
    p, a = puzzles.generate(n, 8, seed=0, progress=False)
    p, a = p.reshape(8, -1), a.reshape(8, -1)
    batcher = Batcher(p, a, n, augment=True, seed=0, bank_size=64)
    bp, ba = batcher(np.arange(8), np.random.default_rng(0), 256)
    assert bp.dtype == ba.dtype == torch.long and bp.shape == (256, n * n)
    assert valid_solutions(ba, bp).all()  # answers stay solutions of their puzzles
    distinct = len({row.numpy().tobytes() for row in bp})  # 4x4 has only 288 solution grids in all
    assert distinct > (120 if n == 4 else 240), "samples should get independent symmetries"
    plain = Batcher(p, a, n, augment=False, seed=0)
    q, qa = plain(np.arange(8), np.random.default_rng(5), 16)
    r, _ = batcher(np.arange(8), np.random.default_rng(5), 16)
    assert np.array_equal((q > 0).sum(1), (r > 0).sum(1))  # the same puzzles, a symmetry keeps the clue count
    assert {row.numpy().tobytes() for row in q} <= {row.tobytes() for row in p.astype(np.int64)}
    again, _ = batcher(np.arange(8), np.random.default_rng(5), 16)
    assert torch.equal(r, again)  # reproducible from the generator


# --- DDP -------------------------------------------------------------------------------------------

DDP_SETS = as_sets(PINNED) + ["train.steps=12", "train.log_every=1", "train.eval_every=12", "train.checkpoint_every=12",
                              "model.dropout=0.0"]  # each rank draws its own dropout masks


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="no torchrun")
def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    """Same global batch of 32 (2 ranks x 16 vs 1 x 32): the loss curves agree to float summation order and
    each rank's blank count, within rel 1e-3 over 12 steps."""
    base = ["train", "--preset", "cpu-smoke", "--no-progress"] + [a for s in DDP_SETS for a in ("--set", s)]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    two = subprocess.Popen([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "lib.cli", *base,
                            "--out", str(tmp_path / "two")], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    train(make_config("cpu-smoke", "baseline", parse_set(DDP_SETS)), tmp_path / "one", progress=False)
    assert two.wait(timeout=180) == 0, two.stderr.read()
    loss = {n: [r["value"] for r in rows(tmp_path / n) if r["metric"] == "loss"] for n in ("one", "two")}
    assert len(loss["two"]) == 12
    assert loss["two"] == pytest.approx(loss["one"], rel=1e-3)  # each rank's blank-cell mean, averaged
    assert summary_of(tmp_path / "two")["steps"] == 12


# --- the CUDA-first paths, on the CPU -------------------------------------------------------------

def test_bf16_autocast_path_trains_on_cpu(tmp_path):
    """train.dtype=bfloat16 is the CUDA default; the same autocast path runs (and learns) on the CPU."""
    summary = train(smoke(train__dtype="bfloat16", train__steps=20, train__eval_every=20), tmp_path, progress=False)
    assert summary["status"] == "complete"
    loss = [r["value"] for r in rows(tmp_path) if r["metric"] == "loss"]
    assert loss[-1] < loss[0]


def test_compiled_training_matches_eager(tmp_path):
    """train.compile=true goes through torch.compile (inductor) and gives the eager run's losses."""
    sets = dict(train__steps=4, schedule__warmup_steps=1, train__log_every=1, train__eval_every=4, train__checkpoint_every=4,
                model__dropout=0.0)  # inductor draws dropout masks with its own generator
    train(smoke(**sets), tmp_path / "eager", progress=False)
    train(smoke(train__compile="default", **sets), tmp_path / "compiled", progress=False)
    eager = [r["value"] for r in rows(tmp_path / "eager") if r["metric"] == "loss"]
    compiled = [r["value"] for r in rows(tmp_path / "compiled") if r["metric"] == "loss"]
    assert compiled == pytest.approx(eager, rel=1e-3)
