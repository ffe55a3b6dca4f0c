"""Failure analysis: what the model predicts at every iteration, and how failed puzzles fail.

`trace` runs the step API once per batch and keeps every iteration's prediction and confidence;
everything else is a function of a Trace (or of a run's eval.parquet) that returns a tidy frame:

    per_iteration(tr)      one row per (puzzle, iteration): cell_acc, solved, violations, changed
    puzzle_dynamics(tr)    one row per puzzle: outcome, peak iteration, still changing, oscillations
    failure_stats(dyn)     per bucket: share of failures still changing at the last iteration, peak iteration
    iterations_needed(ev)  one row per puzzle: the first solved iteration next to deduction_depth and rating
    halting(tr)            one row per puzzle: the iteration verified halting stops at

"The last iteration" is the trained count unless `upto` says otherwise: the log's statistics
(99.4% of failures still changing, peak around iteration 4) are taken at the trained count.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt
import pandas as pd
import torch
from tqdm.auto import tqdm

from lib import data as data_lib
from lib.workbook import plots  # noqa: F401  (a headless backend outside notebooks, and the seaborn theme)
from lib.sudoku import puzzles as puzzles_lib
from lib.config import bucket_order
from lib.evaluate import load_model, load_run
from lib.model import amp_dtype_for, autocast
from lib.workbook.workbook import progress_default

OUTCOMES = ("solved", "failed", "solved-then-lost")  # solved-then-lost: solved earlier, unsolved at the end
META = ("bucket", "rating", "deduction_depth")


@dataclass
class Trace:
    """Every iteration's argmax digit and softmax confidence for a batch of puzzles."""
    puzzles: np.ndarray  # (B, C) uint8, 0 = blank
    answers: np.ndarray  # (B, C) uint8; all zero for a puzzle without a known answer
    predictions: np.ndarray  # (B, T, C) int8, digits 1..N
    confidences: np.ndarray  # (B, T, C) float16, softmax max
    meta: pd.DataFrame  # one row per puzzle: puzzle (index into the test split), bucket, rating, ... run, seed
    trained_iterations: int

    @property
    def grid_size(self) -> int:
        return round(self.puzzles.shape[1] ** 0.5)

    @property
    def iterations(self) -> int:
        return self.predictions.shape[1]


@torch.no_grad()
def trace(model, puzzles: np.ndarray, answers: np.ndarray | None, iterations: int, batch_size: int = 256,
          meta: pd.DataFrame | None = None, trained_iterations: int | None = None, progress: bool = False,
          amp_dtype: torch.dtype | None = None) -> Trace:
    """Run `iterations` steps of `model` on (B, C) puzzles once, keeping each iteration's predictions, in the
    autocast dtype the run was evaluated in (lib.model.amp_dtype_for), so they equal its reported evaluation."""
    puzzles = np.asarray(puzzles, np.uint8).reshape(len(puzzles), -1)
    answers = np.zeros_like(puzzles) if answers is None else np.asarray(answers, np.uint8).reshape(puzzles.shape)
    if iterations <= 0:
        raise ValueError(f"trace: iterations must be positive, got {iterations}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds = np.zeros((len(puzzles), iterations, puzzles.shape[1]), np.int8)
    confs = np.zeros(preds.shape, np.float16)
    try:
        for start in tqdm(range(0, len(puzzles), batch_size), desc="trace", disable=not progress, leave=False):
            with autocast(device, amp_dtype):
                state = model.init_state(torch.from_numpy(puzzles[start:start + batch_size]).to(device).long())
                for i in range(iterations):
                    state, logits = model.step(state, i)
                    conf, digit = logits.float().softmax(-1).max(-1)
                    preds[start:start + len(conf), i] = (digit + 1).cpu().numpy()
                    confs[start:start + len(conf), i] = conf.cpu().numpy()
    finally:
        model.train(was_training)
    if meta is None:
        meta = pd.DataFrame({"puzzle": np.arange(len(puzzles)), "bucket": "all", "rating": -1, "deduction_depth": -1})
    trained = trained_iterations or getattr(getattr(model, "cfg", None), "iterations", None) or iterations
    return Trace(puzzles, answers, preds, confs, meta.reset_index(drop=True), int(trained))


def run_puzzles(run) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(puzzles, answers, meta) of a run's test puzzles (a lib.evaluate.Run), row i being eval.parquet's
    puzzle i: the run's split, cut to eval.max_puzzles the way training did."""
    cfg = run.run_config
    test = data_lib.eval_subset(data_lib.load_splits(cfg.data, progress=False).test, cfg.eval.max_puzzles)
    puzzles, answers = data_lib.to_arrays(test)
    if run.evals is not None and "question" in run.evals.columns:  # the split cache may have been rebuilt since
        asked = run.evals.drop_duplicates("puzzle").sort_values("puzzle")["question"].str.replace("0", ".")
        if asked.tolist() != puzzles_lib.format_many(puzzles):
            raise ValueError(f"{run.dir}: the test split on disk is not the one eval.parquet was scored on "
                             "(its data cache was rebuilt differently); retrain or restore the cache")
    meta = pd.DataFrame({"puzzle": np.arange(len(test)), **{c: np.asarray(test[c]) for c in META}})
    return puzzles, answers, meta.assign(run=Path(run.dir).name, variant=cfg.variant, seed=cfg.train.seed)


def trace_run(run_dir: str | Path, iterations: int | None = None, checkpoint: str = "last",
              batch_size: int = 256, progress: bool = False) -> Trace:
    """Trace a finished run on the puzzles of its eval.parquet (default: to 4x the trained count).
    The `last` checkpoint is the model eval.parquet was scored with."""
    run = load_run(run_dir)
    puzzles, answers, meta = run_puzzles(run)
    cfg = run.run_config
    device = "cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu"
    model = load_model(run_dir, checkpoint, device=device)
    amp = amp_dtype_for(cfg.train.dtype, torch.device(device))
    return trace(model, puzzles, answers, iterations or 4 * cfg.model.iterations, batch_size, meta,
                 cfg.model.iterations, progress, amp)


# --- per cell and per iteration ---------------------------------------------------------------------

def _cell_units(n: int) -> np.ndarray:
    """(C, 3): the row, column and box unit of each cell (indices into puzzles.units(n))."""
    units = puzzles_lib.units(n)
    table = np.zeros((n * n, 3), np.int64)
    for kind in range(3):  # units are rows, then columns, then boxes
        for u in range(kind * n, (kind + 1) * n):
            table[units[u], kind] = u
    return table


def conflicts(grids: np.ndarray) -> np.ndarray:
    """(..., C) digits 1..N (0 = empty) -> (..., C) bool: the cell's digit appears again in its row, column or box."""
    grids = np.asarray(grids)
    n = round(grids.shape[-1] ** 0.5)
    units = puzzles_lib.units(n)
    onehot = np.eye(n + 1, dtype=np.int16)[grids.astype(np.int64)][..., 1:]  # (..., C, N), empty cells all zero
    counts = onehot[..., units, :].sum(-2)  # (..., 3N, N)
    per_cell = counts[..., _cell_units(n), :]  # (..., C, 3, N)
    digit = np.clip(grids.astype(np.int64) - 1, 0, n - 1)[..., None, None]
    mine = np.take_along_axis(per_cell, np.broadcast_to(digit, per_cell.shape[:-1] + (1,)), -1)[..., 0]
    return (mine > 1).any(-1) & (grids > 0)


def _conflict_counts(predictions: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(B, T, C) -> (B, T) conflicting cells, a chunk of puzzles at a time (the one-hot is 18x the input)."""
    return np.concatenate([conflicts(predictions[i:i + chunk]).sum(-1) for i in range(0, len(predictions), chunk)])


def _solved(tr: Trace) -> np.ndarray:
    """(B, T): every blank right, the givens copied (as lib.evaluate scores)."""
    return (_shown(tr) == tr.answers[:, None, :].astype(np.int8)).all(-1)


def _cell_acc(tr: Trace) -> np.ndarray:
    blank = (tr.puzzles == 0)[:, None, :]
    right = (tr.predictions == tr.answers[:, None, :].astype(np.int8)) & blank
    return right.sum(-1) / np.maximum(blank.sum(-1), 1)  # (B, T)


def _shown(tr: Trace) -> np.ndarray:
    """(B, T, C) the grids as a reader sees them: givens kept, predictions in the blank cells. The model's
    output on a given cell is ignored, so changes, oscillations and conflicts are about the blanks it fills."""
    return np.where(tr.puzzles[:, None] > 0, tr.puzzles[:, None].astype(np.int8), tr.predictions)


def _changed(tr: Trace) -> np.ndarray:
    """(B, T) blank cells whose prediction differs from the previous iteration (0 at iteration 1)."""
    shown = _shown(tr)
    diff = (shown[:, 1:] != shown[:, :-1]).sum(-1)
    return np.concatenate([np.zeros((len(diff), 1), diff.dtype), diff], 1)


def _valid(tr: Trace) -> np.ndarray:
    """(B, T): the prediction is a complete valid grid that keeps the givens (what verified halting checks)."""
    keeps = ((tr.puzzles == 0)[:, None] | (tr.predictions == tr.puzzles[:, None].astype(np.int8))).all(-1)
    return keeps & (_conflict_counts(tr.predictions) == 0)


def _long(tr: Trace, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    b, t = tr.predictions.shape[:2]
    frame = tr.meta.loc[np.repeat(np.arange(b), t)].reset_index(drop=True)
    frame["iteration"] = np.tile(np.arange(1, t + 1), b)
    frame["trained_iterations"] = tr.trained_iterations
    for name, values in columns.items():
        frame[name] = values.reshape(-1)
    return frame


def per_iteration(tr: Trace) -> pd.DataFrame:
    """One row per (puzzle, iteration): cell_acc (blank cells), solved, violations (cells, givens included,
    whose digit repeats in a row, column or box) and changed (blank cells that differ from the previous
    iteration)."""
    return _long(tr, {"cell_acc": _cell_acc(tr), "solved": _solved(tr),
                      "violations": _conflict_counts(_shown(tr)), "changed": _changed(tr)})


def bucket_curves(frame: pd.DataFrame, metrics=("solved", "cell_acc", "violations")) -> pd.DataFrame:
    """Per (run, bucket, iteration) means of per_iteration's metrics, long: one row per metric.
    Solved and cell accuracy are in %; violations in conflicting cells per puzzle."""
    keys = [k for k in ("run", "seed") if k in frame.columns] + ["bucket", "iteration"]
    means = frame.groupby(keys, observed=True)[list(metrics)].mean().reset_index()
    for pct in {"solved", "cell_acc"} & set(metrics):
        means[pct] *= 100
    names = {"solved": "solved %", "cell_acc": "cell accuracy %", "violations": "conflicting cells"}
    return means.melt(id_vars=keys, var_name="metric", value_name="value").replace({"metric": names})


# --- per puzzle ---------------------------------------------------------------------------------------

def outcome_of(solved: np.ndarray) -> np.ndarray:
    """(B, T) solved per iteration -> (B,) 'solved' (at the last iteration), 'solved-then-lost'
    (at an earlier one only) or 'failed' (never)."""
    solved = np.asarray(solved, bool)
    return np.where(solved[:, -1], "solved", np.where(solved.any(1), "solved-then-lost", "failed"))


def outcomes(evals: pd.DataFrame, upto: int | None = None) -> pd.Series:
    """Each puzzle's outcome from eval.parquet, up to iteration `upto` (default: the trained count)."""
    upto = upto or int(evals["trained_iterations"].iloc[0])
    wide = evals[evals["iteration"] <= upto].pivot(index="puzzle", columns="iteration", values="solved")
    return pd.Series(outcome_of(wide.to_numpy()), index=wide.index, name="outcome")


def oscillations(predictions: np.ndarray) -> np.ndarray:
    """(B, T, C) -> (B,): how often a cell flips back to a value it held before its previous one
    (1 2 1 counts once; 1 2 3 never; 1 1 2 2 1 once)."""
    b, t, c = predictions.shape
    held = np.zeros((b, c, 16), bool)  # digits 1..9 (and 0 for an empty prediction) held up to t-2
    count = np.zeros(b, np.int64)
    rows, cols = np.arange(b)[:, None], np.arange(c)[None, :]
    for i in range(1, t):
        if i >= 2:
            held[rows, cols, predictions[:, i - 2]] = True
        flipped = predictions[:, i] != predictions[:, i - 1]
        back = held[rows, cols, predictions[:, i]]
        count += (flipped & back).sum(1)
    return count


def puzzle_dynamics(tr: Trace, upto: int | None = None) -> pd.DataFrame:
    """One row per puzzle over iterations 1..upto (default: the trained count): outcome, peak_iteration
    (first iteration of the best cell accuracy), peak and final cell accuracy, first_solved (NaN if never),
    still_changing (a blank cell's prediction differs between the last two iterations) and oscillations."""
    upto = int(upto or tr.trained_iterations)
    if not 2 <= upto <= tr.iterations:
        raise ValueError(f"puzzle_dynamics: upto must be in 2..{tr.iterations} (the traced iterations), got {upto}")
    preds = _shown(tr)[:, :upto]
    solved, acc = _solved(tr)[:, :upto], _cell_acc(tr)[:, :upto]
    first = np.where(solved.any(1), solved.argmax(1) + 1, np.nan)
    frame = tr.meta.copy()
    frame["outcome"] = outcome_of(solved)
    frame["peak_iteration"] = acc.argmax(1) + 1
    frame["peak_cell_acc"] = acc.max(1)
    frame["final_cell_acc"] = acc[:, -1]
    frame["first_solved"] = first
    frame["still_changing"] = (preds[:, -1] != preds[:, -2]).any(1)
    frame["oscillations"] = oscillations(preds)
    frame["last_iteration"] = upto
    return frame


def failure_stats(dynamics: pd.DataFrame) -> pd.DataFrame:
    """Per bucket and over all, for the puzzles unsolved at the last iteration: how many, the share still
    changing at the last iteration, and their mean and median peak-accuracy iteration (issue 8; the log:
    99.4% still changing, peak around iteration 4)."""
    failed = dynamics[dynamics["outcome"] != "solved"]
    groups = [(b, failed[failed["bucket"] == b]) for b in dict.fromkeys(dynamics["bucket"])] + [("all", failed)]
    rows = [{"bucket": b, "puzzles": int((dynamics["bucket"] == b).sum()) if b != "all" else len(dynamics),
             "failed": len(g), "still changing %": 100 * g["still_changing"].mean() if len(g) else np.nan,
             "mean peak iteration": g["peak_iteration"].mean() if len(g) else np.nan,
             "median peak iteration": g["peak_iteration"].median() if len(g) else np.nan}
            for b, g in groups]
    return pd.DataFrame(rows).set_index("bucket").round(2)


def changing_by_outcome(dynamics: pd.DataFrame) -> pd.DataFrame:
    """Per run and outcome (solved vs not): % still changing at the last iteration, mean oscillations."""
    d = dynamics.assign(result=np.where(dynamics["outcome"] == "solved", "solved", "failed"))
    keys = [k for k in ("run", "seed") if k in d.columns] + ["result"]
    out = d.groupby(keys, observed=True).agg(puzzles=("outcome", "size"), still_changing=("still_changing", "mean"),
                                            oscillations=("oscillations", "mean")).reset_index()
    return out.assign(still_changing=100 * out["still_changing"]).rename(
        columns={"still_changing": "still changing %", "oscillations": "mean oscillations"})


def iterations_needed(evals: pd.DataFrame, upto: int | None = None) -> pd.DataFrame:
    """From eval.parquet: one row per (run, puzzle) with bucket, rating, deduction_depth and the first
    iteration at which it is solved within `upto` (default: every evaluated iteration); NaN if never."""
    ev = evals if upto is None else evals[evals["iteration"] <= upto]
    keys = [k for k in ("run", "seed") if k in ev.columns] + ["puzzle"]
    first = ev[ev["solved"]].groupby(keys, observed=True)["iteration"].min().rename("iterations needed")
    meta = ev.groupby(keys, observed=True)[list(META)].first()
    return meta.join(first).reset_index()


def extrapolation(frame: pd.DataFrame) -> pd.DataFrame:
    """per_iteration frame -> per (run, iteration) solved % and cell accuracy % over all puzzles, with
    the iteration as a multiple of the trained count: how accuracy holds up beyond training."""
    keys = [k for k in ("run", "seed") if k in frame.columns] + ["iteration"]
    out = frame.groupby(keys, observed=True).agg(solved=("solved", "mean"), cell_acc=("cell_acc", "mean"),
                                                 trained=("trained_iterations", "first")).reset_index()
    out["x trained"] = out["iteration"] / out["trained"]
    out = out.assign(solved=100 * out["solved"], cell_acc=100 * out["cell_acc"]).drop(columns="trained")
    return out.melt(id_vars=keys + ["x trained"], value_vars=["solved", "cell_acc"], var_name="metric",
                    value_name="%").replace({"metric": {"solved": "solved %", "cell_acc": "cell accuracy %"}})


def halting(tr: Trace, max_iterations: int | None = None) -> pd.DataFrame:
    """Verified halting (lib.evaluate.solve(halt="verified")) read off the trace: per puzzle, the first
    iteration whose prediction is a valid grid keeping the givens (`halted_at`, the cap if never) and
    whether the halted grid is the answer."""
    cap = int(max_iterations or tr.iterations)
    valid = _valid(tr)[:, :cap]
    halted = valid.any(1)
    at = np.where(halted, valid.argmax(1) + 1, cap)
    right = _solved(tr)[np.arange(len(at)), at - 1]
    return tr.meta.assign(halted_at=at, halted=halted, correct=right, cap=cap)


# --- several runs at once -------------------------------------------------------------------------------

@dataclass
class Analysis:
    """The tidy frames of one or more traced runs, concatenated (each row tagged with run and seed)."""
    per_iteration: pd.DataFrame
    dynamics: pd.DataFrame
    halting: pd.DataFrame
    evals: pd.DataFrame  # the runs' eval.parquet
    trained_iterations: int


def analyse(run_dirs: list[str | Path], iterations_factor: int = 4, progress: bool | None = None) -> Analysis:
    """Trace every run to `iterations_factor` x its trained count and build the frames the figures read."""
    frames: dict[str, list] = {"per_iteration": [], "dynamics": [], "halting": [], "evals": []}
    trained = set()
    progress = progress_default() if progress is None else progress
    for d in tqdm(run_dirs, desc="trace runs", disable=not progress):
        run = load_run(d)
        if run.evals is None:
            raise FileNotFoundError(f"{d} has no eval.parquet: the run has not finished")
        tr = trace_run(d, iterations=iterations_factor * run.run_config.model.iterations)
        trained.add(tr.trained_iterations)
        frames["per_iteration"].append(per_iteration(tr))
        frames["dynamics"].append(puzzle_dynamics(tr))
        frames["halting"].append(halting(tr))
        frames["evals"].append(run.evals.assign(run=Path(d).name, seed=run.run_config.train.seed))
    if len(trained) != 1:
        raise ValueError(f"analyse: the runs were trained with different iteration counts {sorted(trained)}; "
                         "analyse them separately")
    return Analysis(**{k: pd.concat(v, ignore_index=True) for k, v in frames.items()},
                    trained_iterations=trained.pop())


# --- figures --------------------------------------------------------------------------------------------
# Seaborn over the frames above; across several runs (seeds) the error bars are the spread between runs.

def _subplots(*args, **kwargs):
    return plt.subplots(*args, **kwargs)


def _mark_trained(ax, trained: int) -> None:
    ax.axvline(trained, color="grey", ls="--", lw=1)


def plot_bucket_curves(a: Analysis, title: str = ""):
    """Per bucket against the iteration: solved %, cell accuracy % and conflicting cells."""
    import seaborn as sns

    curves = bucket_curves(a.per_iteration)
    order = bucket_order(curves["bucket"])
    fig, axes = _subplots(1, 3, figsize=(16, 4.5))
    for ax, metric in zip(axes, ["solved %", "cell accuracy %", "conflicting cells"]):
        sns.lineplot(data=curves[curves["metric"] == metric], x="iteration", y="value", hue="bucket", hue_order=order,
                     palette="viridis_r", errorbar="sd", ax=ax, legend=metric == "solved %")
        _mark_trained(ax, a.trained_iterations)
        ax.set(title=f"{metric} by iteration", ylabel=metric)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _shares(d: pd.DataFrame, column: str) -> pd.DataFrame:
    """% of each run's solved / failed puzzles at each value of `column` (for bar plots with a seed spread)."""
    counts = d.groupby(["run", "result", column], observed=True).size().rename("n").reset_index()
    totals = counts.groupby(["run", "result"])["n"].transform("sum")
    return counts.assign(**{"% of puzzles": 100 * counts["n"] / totals})


def plot_dynamics(a: Analysis, title: str = "", max_oscillations: int = 10):
    """For solved and failed puzzles (at the trained count): the peak-accuracy iteration, the share still
    changing at the last iteration, and the number of oscillations."""
    import seaborn as sns

    d = a.dynamics.assign(result=np.where(a.dynamics["outcome"] == "solved", "solved", "failed"))
    d["oscillations (capped)"] = d["oscillations"].clip(upper=max_oscillations)
    hue = {"hue": "result", "hue_order": ["solved", "failed"], "palette": {"solved": "#2a9d55", "failed": "#c8423b"}}
    fig, axes = _subplots(1, 3, figsize=(16, 4.5))
    sns.barplot(data=_shares(d, "peak_iteration"), x="peak_iteration", y="% of puzzles", errorbar="sd", ax=axes[0], **hue)
    axes[0].set(title="iteration of peak cell accuracy", xlabel="peak iteration")
    sns.barplot(data=changing_by_outcome(a.dynamics), x="result", y="still changing %", errorbar="sd", ax=axes[1],
                order=["solved", "failed"], **hue)
    axes[1].set(title=f"still changing at iteration {a.trained_iterations}", ylim=(0, 105), xlabel="")
    sns.barplot(data=_shares(d, "oscillations (capped)"), x="oscillations (capped)", y="% of puzzles", errorbar="sd",
                ax=axes[2], **hue)
    axes[2].set(title="cells flipping back to an earlier value", xlabel=f"oscillations ({max_oscillations} = that or more)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_iterations_needed(a: Analysis, title: str = ""):
    """The first iteration at which a puzzle is solved (within the evaluated iterations), against its
    deduction depth and its rating; mean and the spread (sd) over puzzles."""
    import seaborn as sns

    need = iterations_needed(a.evals)
    need["rating"] = _binned(need["rating"])
    unsolved = need["iterations needed"].isna().mean()
    fig, axes = _subplots(1, 2, figsize=(13, 4.5))
    for ax, x in zip(axes, ["deduction_depth", "rating"]):
        sns.pointplot(data=need, x=x, y="iterations needed", errorbar="sd", ax=ax)
        ax.axhline(a.trained_iterations, color="grey", ls="--", lw=1)
        ax.set(title=f"iterations needed by {x}")
    fig.suptitle(f"{title}\n{100 * unsolved:.0f}% of puzzles never solved within the evaluated iterations (not shown)")
    fig.tight_layout()
    return fig


def _binned(values: pd.Series, max_bins: int = 8) -> pd.Series:
    """Values as ordered categories: themselves when few, else quantile bins (ratings span 0..hundreds)."""
    if values.nunique() <= max_bins:
        return values
    return pd.qcut(values, max_bins, duplicates="drop")


def plot_extrapolation(a: Analysis, title: str = ""):
    """Solved % and cell accuracy % over all test puzzles as the iteration count grows past the trained count."""
    import seaborn as sns

    fig, ax = _subplots(figsize=(8, 4.5))
    sns.lineplot(data=extrapolation(a.per_iteration), x="x trained", y="%", hue="metric", errorbar="sd", ax=ax)
    ax.axvline(1, color="grey", ls="--", lw=1)
    ax.set(title=f"accuracy up to {a.per_iteration['iteration'].max()} iterations "
                 f"({a.trained_iterations} trained)", xlabel="iterations / trained iterations", ylim=(-2, 102))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_halting(a: Analysis, title: str = ""):
    """Where verified halting stops: the first iteration whose grid is valid, split by whether that grid is
    the answer; puzzles never valid run to the cap."""
    import seaborn as sns

    h = a.halting.assign(result=np.select([~a.halting["halted"], a.halting["correct"]],
                                          ["never valid (ran to the cap)", "halted, correct"], "halted, wrong grid"))
    fig, ax = _subplots(figsize=(9, 4.5))
    sns.histplot(data=h, x="halted_at", hue="result", multiple="stack", discrete=True, stat="percent", ax=ax,
                 hue_order=["halted, correct", "halted, wrong grid", "never valid (ran to the cap)"],
                 palette=["#2a9d55", "#e0a030", "#c8423b"])
    _mark_trained(ax, a.trained_iterations)
    ax.set(title=f"verified halting: the iteration each puzzle stops at (cap {h['cap'].iloc[0]})",
           xlabel="halting iteration", ylabel="% of puzzles")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
