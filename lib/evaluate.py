"""Evaluation and inference for trained models, and loading finished runs for notebooks.

- `evaluate` runs the test split once to the largest iteration count and scores every iteration:
  the recurrence is deterministic, so iteration t of a K-iteration run is iteration t of any longer run.
  A puzzle is solved when every blank cell's argmax is its answer (the givens are copied from the puzzle,
  as the log's scripts score).
- `solve` is inference, optionally halting each puzzle as soon as its prediction is a valid
  solution that keeps the givens (compute shrinks as puzzles finish).
- `load_run` / `load_model` read what `lib.train.train` wrote.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lib.files import RunFiles
from lib.sudoku.puzzles import parse, units
from lib.config import SIZES, RunConfig, bucket_order
from lib.model import autocast, blank_accuracy, filled

META_COLUMNS = ("rating", "deduction_depth", "guesses_full")


# --- test data -------------------------------------------------------------------------------------

def _column(ds, name: str) -> np.ndarray:
    return np.asarray(ds[name])


def eval_arrays(test) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(puzzles (B, C) uint8, answers (B, C) uint8, meta with bucket + META_COLUMNS) from a
    datasets.Dataset / DataFrame in the sudoku-extreme schema, or a tuple (puzzles, answers[, buckets])."""
    if isinstance(test, tuple):
        if len(test) not in (2, 3):
            raise ValueError(f"evaluate: a test tuple is (puzzles, answers) or (puzzles, answers, buckets), got {len(test)} items")
        puzzles, answers = (_flat(np.asarray(a), name) for a, name in zip(test[:2], ("puzzles", "answers")))
        if puzzles.shape != answers.shape:
            raise ValueError(f"evaluate: puzzles {puzzles.shape} and answers {answers.shape} differ in shape")
        meta = pd.DataFrame({"bucket": np.asarray(test[2]).astype(str) if len(test) == 3 else "all"}, index=range(len(puzzles)))
        meta["question"] = [_question_string(p) for p in puzzles]
        for name in META_COLUMNS:
            meta[name] = -1
        return puzzles, answers, meta
    from lib import data as data_lib  # the dataset helpers only matter for dataset input
    if isinstance(test, pd.DataFrame):  # datasets.Dataset, or its stand-in where it is not installed
        test = data_lib.dataset_class().from_pandas(test, preserve_index=False)
    missing = {"question", "answer"} - set(test.column_names)
    if missing:
        raise ValueError(f"evaluate: test set lacks column(s) {sorted(missing)}; has {test.column_names}")
    puzzles, answers = data_lib.to_arrays(test)
    meta = pd.DataFrame(index=range(len(puzzles)))
    meta["bucket"] = _column(test, "bucket").astype(str) if "bucket" in test.column_names else "all"
    meta["question"] = _column(test, "question").astype(str)  # pairs puzzles across runs and variants
    for name in META_COLUMNS:
        meta[name] = _column(test, name).astype(np.int64) if name in test.column_names else -1
    return puzzles, answers, meta


def _question_string(cells: np.ndarray) -> str:
    return "".join("." if v == 0 else str(v) for v in cells)


def _flat(a: np.ndarray, name: str) -> np.ndarray:
    if a.ndim == 3:
        a = a.reshape(len(a), -1)
    if a.ndim != 2 or round(a.shape[1] ** 0.5) ** 2 != a.shape[1]:
        raise ValueError(f"evaluate: {name} must be (B, N, N) or (B, N*N), got shape {a.shape}")
    return a.astype(np.uint8)


def _device_of(model, device) -> torch.device:
    return torch.device(device) if device is not None else next(model.parameters()).device


# --- evaluation ------------------------------------------------------------------------------------

def scored_counts(max_iterations: int, trained: int | None = None, extra=()) -> list[int]:
    """The iteration counts an evaluation scores: every count up to 2x the trained one, every power of two
    beyond, the largest, and any asked for. So one rollout to 2048 keeps about 45 counts, not 2048."""
    dense = 2 * trained if trained else max_iterations
    counts = set(range(1, min(dense, max_iterations) + 1)) | {max_iterations} | set(extra)
    counts |= {2 ** k for k in range(max_iterations.bit_length()) if dense < 2 ** k <= max_iterations}
    return sorted(c for c in counts if 1 <= c <= max_iterations)


@torch.inference_mode()
def evaluate(model, test, iterations, batch_size: int = 1024, device=None, progress: bool = False,
             amp_dtype: torch.dtype | None = None, trained: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score `model` on `test` in one rollout to max(iterations), at the counts `scored_counts` names (every
    count when `trained` is not given).

    Returns (curves, per_puzzle):
      curves: one row per (bucket, scored count) plus bucket "all": solved and cell_acc (fractions;
        cell_acc is the mean over puzzles of the accuracy on that puzzle's blank cells), changed (the share
        of puzzles whose argmax moved since the iteration before: 0 where every puzzle sits on a fixed
        point), n_puzzles.
      per_puzzle: one row per (puzzle, scored count): puzzle, question, bucket, rating, deduction_depth,
        guesses_full, iteration (1-based), cell_acc, solved, changed.
    amp_dtype: the run's autocast dtype (lib.model.amp_dtype_for), so a model is scored in the
    precision it was trained in; None is plain fp32. No gradients, the whole test set in few batches.
    """
    extra = iterations if isinstance(iterations, (list, tuple)) else [iterations]
    max_it = int(max(extra))
    if max_it <= 0:
        raise ValueError(f"evaluate: iterations must be positive, got {iterations}")
    counts = scored_counts(max_it, trained, extra)
    at = {c: k for k, c in enumerate(counts)}
    puzzles, answers, meta = eval_arrays(test)
    device = _device_of(model, device)
    was_training = model.training
    model.eval()
    solved = np.zeros((len(puzzles), len(counts)), bool)
    cell_acc = np.zeros((len(puzzles), len(counts)), np.float32)
    changed = np.zeros((len(puzzles), len(counts)), bool)
    try:
        for start in tqdm(range(0, len(puzzles), batch_size), desc="evaluate", disable=not progress, leave=False):
            x = torch.from_numpy(puzzles[start:start + batch_size]).to(device).long()
            y = torch.from_numpy(answers[start:start + batch_size]).to(device).long()
            rows = slice(start, start + len(x))
            out_solved, out_acc, out_changed, previous = [], [], [], None
            with autocast(device, amp_dtype):
                state = model.init_state(x)
                for i in range(max_it):
                    state, logits = model.step(state, i)
                    pred = filled(logits, x)  # the blanks, givens copied
                    if i + 1 in at:  # kept on the device; one transfer per batch
                        out_solved.append((pred == y).all(1))
                        out_acc.append(blank_accuracy(logits, y, x))
                        out_changed.append((pred != previous).any(1) if previous is not None else torch.ones_like(out_solved[-1]))
                    previous = pred
            solved[rows] = torch.stack(out_solved, 1).cpu().numpy()
            cell_acc[rows] = torch.stack(out_acc, 1).float().cpu().numpy()
            changed[rows] = torch.stack(out_changed, 1).cpu().numpy()
    finally:
        model.train(was_training)
    per_puzzle = _per_puzzle_frame(meta, counts, solved, cell_acc, changed)
    return _curves(meta["bucket"].to_numpy(), counts, solved, cell_acc, changed), per_puzzle


def _per_puzzle_frame(meta: pd.DataFrame, counts: list[int], solved: np.ndarray, cell_acc: np.ndarray,
                      changed: np.ndarray) -> pd.DataFrame:
    n, k = solved.shape
    frame = pd.DataFrame({"puzzle": np.repeat(np.arange(n), k)})
    for name in ("question", "bucket") + META_COLUMNS:
        frame[name] = np.repeat(meta[name].to_numpy(), k)
    frame["iteration"] = np.tile(np.asarray(counts), n)
    frame["cell_acc"] = cell_acc.reshape(-1)
    frame["solved"] = solved.reshape(-1)
    frame["changed"] = changed.reshape(-1)
    return frame


def _curves(buckets: np.ndarray, counts: list[int], solved: np.ndarray, cell_acc: np.ndarray,
            changed: np.ndarray) -> pd.DataFrame:
    labels = [b for b in bucket_order(buckets.tolist()) if b != "all"] + ["all"]
    rows = []
    for label in labels:
        mask = np.ones(len(buckets), bool) if label == "all" else buckets == label
        s, a, c = solved[mask].mean(0), cell_acc[mask].astype(np.float64).mean(0), changed[mask].mean(0)
        for i, count in enumerate(counts):
            rows.append({"bucket": label, "iteration": count, "solved": float(s[i]), "cell_acc": float(a[i]),
                         "changed": float(c[i]), "n_puzzles": int(mask.sum())})
    return pd.DataFrame(rows)


def at_iteration(curves: pd.DataFrame, iteration: int, metric: str = "solved") -> dict[str, float]:
    """{bucket: value} of one metric at one iteration count, in the curves' bucket order."""
    rows = curves[curves["iteration"] == iteration]
    if rows.empty:
        raise ValueError(f"no evaluation at iteration {iteration}; curves go up to {curves['iteration'].max()}")
    return dict(zip(rows["bucket"], rows[metric].astype(float)))


# --- inference -------------------------------------------------------------------------------------

@dataclass
class SolveResult:
    grids: np.ndarray  # (B, N, N) uint8: the prediction at halting (or at the last iteration)
    iterations_used: np.ndarray  # (B,) int64
    valid: np.ndarray  # (B,) bool: a complete valid grid that keeps the givens

    @property
    def solved_fraction(self) -> float:
        return float(self.valid.mean()) if len(self.valid) else 0.0


def valid_solutions(pred: torch.Tensor, givens: torch.Tensor) -> torch.Tensor:
    """(B,) bool: flat grids `pred` (digits 1..N) hold every digit once per unit and keep `givens`."""
    n = round(pred.shape[1] ** 0.5)
    unit_cells = torch.from_numpy(units(n)).to(pred.device)
    keeps = ((givens == 0) | (pred == givens)).all(1)
    in_range = ((pred >= 1) & (pred <= n)).all(1)
    counts = F.one_hot((pred - 1).clamp(0, n - 1), n)[:, unit_cells].sum(2)  # (B, 3N, N) digit counts per unit
    return keeps & in_range & (counts == 1).all(2).all(1)


def _select(state, keep: torch.Tensor, n: int):
    """Rows `keep` of every batch-major tensor in a model state (tensor, tuple, list, dict or
    dataclass); tensors whose first dimension is not the batch size are shared and left alone."""
    if isinstance(state, torch.Tensor):
        return state[keep] if state.dim() and state.shape[0] == n else state
    if isinstance(state, dict):
        return {k: _select(v, keep, n) for k, v in state.items()}
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(_select(v, keep, n) for v in state))
    if isinstance(state, (list, tuple)):
        return type(state)(_select(v, keep, n) for v in state)
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return dataclasses.replace(state, **{f.name: _select(getattr(state, f.name), keep, n)
                                             for f in dataclasses.fields(state) if f.init})
    return state


def _as_batch(puzzles) -> np.ndarray:
    if isinstance(puzzles, str) or (isinstance(puzzles, (list, tuple)) and puzzles and isinstance(puzzles[0], str)):
        puzzles = [parse(p, row=i) for i, p in enumerate([puzzles] if isinstance(puzzles, str) else puzzles)]
    a = np.asarray(puzzles)
    if a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] in SIZES:
        a = a[None]  # one (N, N) grid
    return _flat(a, "puzzles")


def trained_iterations(model) -> int:
    cfg = getattr(model, "cfg", None) or getattr(model, "config", None)
    its = getattr(model, "iterations", None) or getattr(cfg, "iterations", None)
    if not its:
        raise ValueError("solve: pass iterations=...; the model does not say how many it was trained with")
    return int(its)


@torch.no_grad()
def solve(puzzles, model, iterations: int | None = None, halt: str = "none",
          batch_size: int = 1024, device=None, progress: bool = False,
          amp_dtype: torch.dtype | None = None) -> SolveResult:
    """Run the model on puzzles ((B, N, N), (N, N), (B, N*N) or strings).

    halt="none" runs every puzzle `iterations` times (default: the trained count);
    halt="verified" stops a puzzle at the first iteration whose argmax grid is a complete valid
    solution keeping the givens, and drops it from the batch, so easy puzzles cost little.
    """
    if halt not in ("none", "verified"):
        raise ValueError(f"solve: halt must be 'none' or 'verified', got {halt!r}")
    iterations = trained_iterations(model) if iterations is None else int(iterations)
    if iterations <= 0:
        raise ValueError(f"solve: iterations must be positive, got {iterations}")
    flat = _as_batch(puzzles)
    n = round(flat.shape[1] ** 0.5)
    device = _device_of(model, device)
    was_training = model.training
    model.eval()
    grids = np.zeros_like(flat)
    used = np.full(len(flat), iterations, np.int64)
    valid = np.zeros(len(flat), bool)
    try:
        for start in tqdm(range(0, len(flat), batch_size), desc="solve", disable=not progress, leave=False):
            x = torch.from_numpy(flat[start:start + batch_size]).to(device).long()
            rows = torch.arange(start, start + len(x))
            with autocast(device, amp_dtype):
                state = model.init_state(x)
                for i in range(iterations):
                    state, logits = model.step(state, i)
                    last = i == iterations - 1
                    if halt == "none" and not last:
                        continue
                    pred = filled(logits, x)
                    ok = valid_solutions(pred, x)
                    done = ok | last
                    idx = rows[done.cpu()].numpy()
                    grids[idx] = pred[done].cpu().numpy()
                    used[idx] = i + 1
                    valid[idx] = ok[done].cpu().numpy()
                    if last or bool(done.all()):
                        break
                    if bool(done.any()):
                        keep = ~done
                        state = _select(state, keep, len(x))
                        x, rows = x[keep], rows[keep.cpu()]
    finally:
        model.train(was_training)
    return SolveResult(grids.reshape(-1, n, n), used, valid)


# --- finished runs ---------------------------------------------------------------------------------

@dataclass
class Run:
    dir: Path
    config: dict  # config.json as a dict (run_config for the RunConfig)
    summary: dict  # {} while running
    metrics: pd.DataFrame  # tidy rows of metrics.jsonl
    evals: pd.DataFrame | None  # eval.parquet, None before the final evaluation

    @property
    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(self.config)


def read_metrics(path: str | Path) -> pd.DataFrame:
    """metrics.jsonl as a DataFrame; a torn last line (a killed run) is skipped."""
    rows = []
    path = Path(path)
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    columns = ["step", "split", "bucket", "metric", "value", "seed", "iterations"]
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


def load_run(run_dir: str | Path) -> Run:
    run = RunFiles(run_dir)
    if not run.config.exists():
        raise FileNotFoundError(f"{run.root} is not a run directory (no {run.config.name})")
    return Run(
        dir=run.root,
        config=json.loads(run.config.read_text()),
        summary=json.loads(run.summary.read_text()) if run.summary.exists() else {},
        metrics=read_metrics(run.metrics),
        evals=pd.read_parquet(run.evals) if run.evals.exists() else None,
    )


def load_model(run_dir: str | Path, checkpoint: str = "best", device="cpu", ema: bool = True):
    """The model of a run's checkpoint ("best" or "last") in eval mode; EMA weights when the run kept them.
    A model folder (lib/workbook/share.py) has one model, model.safetensors, whichever checkpoint is asked for."""
    from lib.model import build_model
    run = RunFiles(run_dir)
    path = run.model_file(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {path}")
    if path == run.weights:
        from safetensors.torch import load_file  # only model folders need it
        cfg = RunConfig.from_dict(json.loads(run.config.read_text()))
        state = load_file(path)
    else:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        cfg = RunConfig.from_dict(ckpt["config"])
        state = ckpt["ema"] if ema and ckpt.get("ema") is not None else ckpt["model"]
    model = build_model(cfg.model, cfg.data.grid_size)
    model.load_state_dict(state)
    return model.to(device).eval()
