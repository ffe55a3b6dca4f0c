"""Test-time iteration scaling (the log's sequel, iters/EXPERIMENTS_ITERS.md): a trained model run far past
the iterations it was trained with, on any finished run, without retraining.

    scaling(run_dirs, max_iterations)   solved % per run, bucket and scored count, one rollout per run
    collapse_points(curves)             per run: the peak and the first count >= 5pp below the peak so far
    stopping_rules(run_dir)             fixed counts against the sequel's oscillation and confidence stops
                                        (iters/eval_confidence_stop.py) and verified halting
    interventions(run_dir)              damping, prediction scale and a LayerNorm before the head, at test time
                                        only (iters/eval_interventions.py)
    spectral_radius(run_dir)            of the iteration map's Jacobian at iterations 16..256, by power
                                        iteration with exact Jacobian-vector products (the sequel used finite
                                        differences, iters/eval_spectral_radius.py)

    python -m lib.cli test-time RUN_DIR [--iterations 2048]   # writes RUN_DIR/test-time-2048.parquet
"""
from __future__ import annotations

import math
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from lib import data as data_lib
from lib import files
from lib.evaluate import evaluate, load_model, load_run, valid_solutions
from lib.model import amp_dtype_for, autocast, filled
from lib.provenance import code_identity
from lib.findings.stats import COLLAPSE_PP, collapse_at  # noqa: F401  (the tests read them here)



def run_device(cfg) -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu")


def test_split(run):
    cfg = run.run_config
    return data_lib.eval_subset(data_lib.load_splits(cfg.data, progress=False).test, cfg.eval.max_puzzles)


def test_sets(run) -> dict:
    """The run's test split and its eval.sources, by name."""
    cfg = run.run_config
    sets = {"test": test_split(run)}
    for spec in cfg.eval.sources:
        sets[spec] = data_lib.load_eval_source(spec, cfg.data, progress=False)
    return sets


# --- scaling curves ----------------------------------------------------------------------------------

def scale_run(run_dir, max_iterations: int = 1024, checkpoint: str = "last", sources: bool = True,
              batch_size: int = 1024) -> pd.DataFrame:
    """One run scored to `max_iterations` on its test split (and eval.sources): per puzzle and scored count,
    with the run's identity; kept in the run folder (test-time-<count>.parquet), which the checkpoint made."""
    run = load_run(run_dir)
    cache = files.RunFiles(run_dir).test_time(max_iterations, checkpoint, sources)
    version = code_identity()["code_version"]
    weights = files.RunFiles(run_dir).model_file(checkpoint)  # a checkpoint, or a model folder's
    if cache.exists() and cache.stat().st_mtime >= weights.stat().st_mtime:
        cached = pd.read_parquet(cache)
        if "code_version" in cached.columns and (cached["code_version"] == version).all():
            return cached  # the same checkpoint scored by the same computing code
    cfg = run.run_config
    device = run_device(cfg)
    model = load_model(run_dir, checkpoint, device=device)
    amp = amp_dtype_for(cfg.train.dtype, device)
    frames = []
    for name, test in (test_sets(run) if sources else {"test": test_split(run)}).items():
        _, per = evaluate(model, test, max_iterations, batch_size, device, amp_dtype=amp, trained=cfg.model.iterations)
        frames.append(per.assign(source=name))
    per = pd.concat(frames, ignore_index=True).assign(
        variant=cfg.variant, seed=cfg.train.seed, preset=cfg.preset, trained_iterations=cfg.model.iterations,
        run=files.relative(run_dir), code_version=version)
    files.atomic_write(cache, lambda tmp: per.to_parquet(tmp, index=False))
    return per


def scaling(run_dirs, max_iterations: int = 1024, **kw) -> pd.DataFrame:
    """Every run's per-puzzle results to `max_iterations` (scale_run), one frame."""
    return pd.concat([scale_run(d, max_iterations, **kw) for d in run_dirs], ignore_index=True)


def curves(per_puzzle: pd.DataFrame) -> pd.DataFrame:
    """Solved % and the share of puzzles sitting on a fixed point (argmax unchanged since the iteration
    before), per variant, seed, source, bucket (and "all") and scored count."""
    both = pd.concat([per_puzzle, per_puzzle.assign(bucket="all")], ignore_index=True)
    keys = ["variant", "seed", "source", "bucket", "iteration"]
    out = both.groupby(keys, observed=True).agg(solved=("solved", "mean"), changed=("changed", "mean"),
                                                n=("solved", "size")).reset_index()
    out["solved %"] = 100 * out["solved"]
    out["fixed point %"] = 100 * (1 - out["changed"])
    return out


def collapse_points(curve: pd.DataFrame, bucket: str = "all", source: str = "test") -> pd.DataFrame:
    """Per variant and seed: the peak solved % and its count, the count where the run collapses (the first
    count at least COLLAPSE_PP below the peak so far; none when it never does), and the last count's."""
    rows = []
    chosen = curve[(curve["bucket"] == bucket) & (curve["source"] == source)]
    for (variant, seed), g in chosen.groupby(["variant", "seed"], observed=True):
        g = g.sort_values("iteration")
        collapse = collapse_at(g["iteration"], g["solved %"])
        peak = g.loc[g["solved %"].idxmax()]
        rows.append({"variant": variant, "seed": seed, "peak solved %": peak["solved %"],
                     "peak at": int(peak["iteration"]), "collapses at": collapse,
                     "last count": int(g["iteration"].iloc[-1]), "solved % there": g["solved %"].iloc[-1]})
    return pd.DataFrame(rows)


# --- the iteration, step by step -------------------------------------------------------------------

def _supports_interventions(model) -> None:
    cfg = model.cfg
    if cfg.input != "encode_once" or cfg.recurrence != "add" or cfg.sharing != "shared" or cfg.pred_update != "softmax":
        raise ValueError("test-time interventions and the spectral radius follow the sequel's map h -> core(h + "
                         "pred_proj(softmax(head(h))) + pos): they need model.input=encode_once, recurrence=add, "
                         f"sharing=shared (this run: {cfg.input}, {cfg.recurrence}, {cfg.sharing})")


def intervened_rollout(model, puzzle: torch.Tensor, iterations: int, alpha: float = 1.0, beta: float = 1.0,
                       pre_norm: bool = False):
    """Logits at every iteration under the sequel's test-time interventions (iters/eval_interventions.py):
    damping h_prev <- alpha h + (1 - alpha) h_prev (the logits from the undamped h), prediction scale
    h = h_prev + beta pred_proj(preds), and a parameter-free LayerNorm on h before the head."""
    _supports_interventions(model)
    if pre_norm and model.cfg.head_norm:
        raise ValueError("pre_norm adds a LayerNorm before the head, and this model was trained with one "
                         "(model.head_norm): the intervention would do nothing")
    state = model.init_state(puzzle)
    h_prev, preds = state["h"], state["preds"]
    pos = model.positions.additive(model)
    rope = (model.rope_cos, model.rope_sin) if model.pos_kind == "rope2d" else None
    for i in range(iterations):
        h = h_prev + beta * model.pred_proj(preds)
        if pos is not None and (model.cfg.pos_every_iter or i == 0):
            h = h + pos
        h = model.cores[0](h, rope if (model.cfg.pos_every_iter or i == 0) else None)
        logits = model.head(F.layer_norm(h, h.shape[-1:]) if pre_norm else h).float()
        preds = F.softmax(logits, -1)
        h_prev = alpha * h + (1 - alpha) * h_prev
        yield logits


INTERVENTIONS = {"none": {}, "damping 0.9": {"alpha": 0.9}, "damping 0.7": {"alpha": 0.7},
                 "damping 0.5": {"alpha": 0.5}, "pred scale 0.5": {"beta": 0.5}, "pred scale 0.1": {"beta": 0.1},
                 "pre-norm": {"pre_norm": True}}


@torch.inference_mode()
def interventions(run_dir, counts=(8, 16, 64, 256, 1024), checkpoint: str = "last", batch_size: int = 1024,
                  which: dict = INTERVENTIONS) -> pd.DataFrame:
    """Solved % at each count under each intervention, on the run's test split; pre-norm is left out for a
    model trained with a LayerNorm before its head (the CPU presets pin one), where it would do nothing."""
    run, model, device, amp = _load(run_dir, checkpoint)
    which = {k: kw for k, kw in which.items() if not (kw.get("pre_norm") and model.cfg.head_norm)}
    puzzles, answers = data_lib.to_arrays(test_split(run))
    rows = []
    for name, kw in which.items():
        solved = np.zeros((len(puzzles), len(counts)), bool)
        for start in range(0, len(puzzles), batch_size):
            x = torch.from_numpy(puzzles[start:start + batch_size]).to(device).long()
            y = torch.from_numpy(answers[start:start + batch_size]).to(device).long()
            with autocast(device, amp):
                for i, logits in enumerate(intervened_rollout(model, x, max(counts), **kw)):
                    if i + 1 in counts:
                        solved[start:start + len(x), counts.index(i + 1)] = (filled(logits, x) == y).all(1).cpu().numpy()
        rows += [{"intervention": name, "iteration": c, "solved %": 100 * solved[:, k].mean()} for k, c in enumerate(counts)]
    return pd.DataFrame(rows).assign(variant=run.run_config.variant, seed=run.run_config.train.seed)


def _load(run_dir, checkpoint: str):
    run = load_run(run_dir)
    cfg = run.run_config
    device = run_device(cfg)
    return run, load_model(run_dir, checkpoint, device=device), device, amp_dtype_for(cfg.train.dtype, device)


# --- adaptive stopping -----------------------------------------------------------------------------

@torch.inference_mode()
def stopping_rules(run_dir, max_iterations: int | None = None, checkpoint: str = "last",
                   batch_size: int = 1024) -> pd.DataFrame:
    """Solved % and mean iterations of each stopping rule over one rollout of max_iterations (default 4x the
    trained count; the sequel's 64 for 16): fixed at the trained count and at the last, peak confidence (an
    oracle: it picks each puzzle's most confident iteration after the fact), the sequel's confidence stop
    (the first iteration past the trained count whose smoothed confidence drops: the one before it), its
    oscillation stop (the first iteration at least 2 past the trained count whose argmax equals the one two
    before, everywhere: that one), and the workbook's verified halting (the first valid solution)."""
    run, model, device, amp = _load(run_dir, checkpoint)
    trained = run.run_config.model.iterations
    T = max_iterations or 4 * trained
    puzzles, answers = data_lib.to_arrays(test_split(run))
    preds = np.zeros((len(puzzles), T, puzzles.shape[1]), np.int8)
    conf = np.zeros((len(puzzles), T), np.float32)
    valid = np.zeros((len(puzzles), T), bool)
    for start in range(0, len(puzzles), batch_size):
        x = torch.from_numpy(puzzles[start:start + batch_size]).to(device).long()
        rows = slice(start, start + len(x))
        with autocast(device, amp):
            state = model.init_state(x)
            for i in range(T):
                state, logits = model.step(state, i)
                pred = filled(logits, x)
                top = logits.float().softmax(-1).max(-1).values
                blank = x == 0
                preds[rows, i] = pred.cpu().numpy()
                conf[rows, i] = ((top * blank).sum(1) / blank.sum(1).clamp(min=1)).cpu().numpy()
                valid[rows, i] = valid_solutions(pred, x).cpu().numpy()
    right = (preds == answers[:, None, :].astype(np.int8)).all(-1)  # (B, T)
    picks = {
        f"fixed at {trained} (trained)": np.full(len(puzzles), trained - 1),
        f"fixed at {T}": np.full(len(puzzles), T - 1),
        "peak confidence (oracle)": conf.argmax(1),
        "confidence stop": _confidence_stop(conf, trained),
        "oscillation stop": _oscillation_stop(preds, trained),
        "verified halting": np.where(valid.any(1), valid.argmax(1), T - 1),
    }
    idx = np.arange(len(puzzles))
    return pd.DataFrame([{"rule": rule, "solved %": 100 * right[idx, at].mean(), "mean iterations": float((at + 1).mean())}
                         for rule, at in picks.items()]).assign(variant=run.run_config.variant,
                                                                seed=run.run_config.train.seed, max_iterations=T)


def _confidence_stop(conf: np.ndarray, trained: int, window: int = 3) -> np.ndarray:
    """iters/eval_confidence_stop.py: the mean blank confidence smoothed over a trailing window; the first
    index past the trained count where it falls stops the puzzle at the index before."""
    kernel = np.ones(window) / window
    smooth = np.stack([np.convolve(np.pad(c, (window - 1, 0), mode="edge"), kernel, "valid") for c in conf])
    out = np.full(len(conf), conf.shape[1] - 1)
    for b, row in enumerate(smooth):
        drops = np.flatnonzero(row[trained + 1:] < row[trained:-1])
        if len(drops):
            out[b] = trained + drops[0]
    return out


def _oscillation_stop(preds: np.ndarray, trained: int) -> np.ndarray:
    """iters/eval_confidence_stop.py: the first index t >= trained + 2 whose argmax equals t - 2's on every
    cell (a period-2 oscillation, or a fixed point) stops the puzzle at t - 2."""
    same = (preds[:, trained + 2:] == preds[:, trained:-2]).all(-1)
    return np.where(same.any(1), trained + same.argmax(1), preds.shape[1] - 1)


# --- the Jacobian's spectral radius ------------------------------------------------------------------

def iteration_map(model):
    """f(h) = core(h + pred_proj(softmax(head(h))) + pos): one iteration of the recurrence as a map of the
    hidden state alone (the encoded puzzle lives in h)."""
    _supports_interventions(model)
    every = model.cfg.pos_every_iter  # pos-once: past the first iteration the map has no positions
    pos = model.positions.additive(model) if every else None
    rope = (model.rope_cos, model.rope_sin) if model.pos_kind == "rope2d" and every else None

    def f(h):
        x = h + model.pred_proj(F.softmax(model.head(h).float(), -1).to(h.dtype))
        return model.cores[0](x if pos is None else x + pos, rope)
    return f


def spectral_radius(run_dir, at=(16, 32, 64, 128, 256), puzzles: int = 50, power_steps: int = 100,
                    checkpoint: str = "last", seed: int = 0) -> pd.DataFrame:
    """Per puzzle and operating point: the largest |eigenvalue| of the iteration map's Jacobian at the state
    after that many iterations, estimated by power iteration (|J v| / |v| after power_steps products, each an
    exact forward-mode JVP, in fp32), on `puzzles` test puzzles drawn with `seed`."""
    run, model, device, _ = _load(run_dir, checkpoint)
    test = test_split(run)
    pick = np.sort(np.random.default_rng(seed).choice(len(test), size=min(puzzles, len(test)), replace=False))
    x = torch.from_numpy(data_lib.to_arrays(test.select(pick))[0]).to(device).long()
    f = iteration_map(model)
    rows = []
    with torch.no_grad():
        state = model.init_state(x)
        h, done = state["h"], 0
    for point in sorted(at):
        with torch.no_grad():
            for i in range(done, point):
                state, _ = model.step(state, i)
            done = point
        h = state["h"].detach().float()
        v = torch.randn(h.shape, generator=torch.Generator().manual_seed(seed)).to(device)
        v = v / v.flatten(1).norm(dim=1).view(-1, 1, 1)
        for _ in range(power_steps):
            with sdpa_kernel(SDPBackend.MATH):  # the fused attention kernels have no forward-mode derivative
                _, jv = torch.func.jvp(f, (h,), (v,))
            sigma = jv.flatten(1).norm(dim=1)
            v = (jv / sigma.clamp(min=1e-30).view(-1, 1, 1)).detach()
        rows += [{"iteration": point, "puzzle": int(p), "spectral radius": float(s)} for p, s in zip(pick, sigma.detach())]
    return pd.DataFrame(rows).assign(variant=run.run_config.variant, seed=run.run_config.train.seed)


# --- the notebook's tables ---------------------------------------------------------------------------

def stopping_table(run_dirs) -> pd.DataFrame:
    """Each stopping rule's solved % and mean iterations, mean over the runs of each variant."""
    rules = pd.concat([stopping_rules(d) for d in run_dirs], ignore_index=True)
    return rules.groupby(["variant", "rule"], sort=False)[["solved %", "mean iterations"]].mean().round(1)


def intervention_table(run_dirs, trained: int) -> pd.DataFrame:
    """Solved % per intervention (rows) and count (columns) at 1, 2, 8, 32 and 128 times the trained count;
    runs whose model is not the sequel's recurrence are left out."""
    counts = tuple(sorted({trained, 2 * trained, 8 * trained, 32 * trained, 128 * trained}))
    frames = []
    for d in run_dirs:
        try:
            frames.append(interventions(d, counts))
        except ValueError as e:
            print(f"{files.relative(d)}: {e}")
    if not frames:
        return pd.DataFrame()
    both = pd.concat(frames, ignore_index=True)
    return both.pivot_table(index=["variant", "intervention"], columns="iteration", values="solved %",
                            sort=False).round(1)


def spectral_table(run_dirs, puzzles: int = 50) -> pd.DataFrame:
    """Mean, spread and share above 1 of the spectral radius per variant and operating point."""
    if not puzzles:
        return pd.DataFrame()
    frames = []
    for d in run_dirs:
        trained = load_run(d).run_config.model.iterations
        try:
            frames.append(spectral_radius(d, at=tuple(trained * k for k in (1, 2, 4, 8, 16)), puzzles=puzzles))
        except ValueError as e:
            print(f"{files.relative(d)}: {e}")
    if not frames:
        return pd.DataFrame()
    sr = pd.concat(frames, ignore_index=True)
    table = sr.groupby(["variant", "iteration"])["spectral radius"].agg(["mean", "std", "min", "max"])
    table["share > 1"] = sr.groupby(["variant", "iteration"])["spectral radius"].apply(lambda s: (s > 1).mean())
    return table.round(2)
