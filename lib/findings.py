"""Findings: which of the log's claims hold at CPU scale, with seeds, paired bootstrap CIs and computed verdicts.

    python -m lib.findings sweep --grid findings/cpu-quick-grid.yaml --workers 2 --threads 1
    python -m lib.findings collect outputs/baseline/findings-cpu-quick-t1--* -o findings/cpu-quick.parquet

`sweep` trains every (variant, seed) of the grid through the sweep runner (finished runs are skipped, so a
killed sweep resumes) and then collects. `collect` turns run folders into one tidy per-puzzle table
(`tidy_results`), which notebooks/10_findings.ipynb renders into the claim table and FINDINGS.md.

Every variant of a preset is evaluated on the same test puzzles, so a claim compares A with B puzzle by
puzzle (`paired_bootstrap`) and the verdict comes from the CI (`verdict`), never from a typed string.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from tqdm.auto import tqdm

from lib.config import VARIANTS, bucket_order, make_config
from lib import plots  # noqa: F401  (a headless backend outside notebooks, and the workbook's theme)
from lib import sweep, workbook
from lib.provenance import code_identity
from lib.train import train
from lib.files import atomic_write, read_json, relative, write_json, write_text
from lib.workbook import NOTEBOOK_RUN, OUTPUTS
from lib.stats import mean_ci, t_quantile  # noqa: F401  (re-exported: the claim checker's statistics)

REPO = Path(__file__).resolve().parent.parent
DIRECTIONS = (">", "<", "≈", "≥", "≤")
VERDICTS = ("holds", "reversed", "inconclusive", "not run")
FINDINGS_SEEDS = 3  # the findings run trains seeds 0, 1, 2; a claim on fewer is provisional


# --- the claims ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Side:
    """One side of a comparison: a variant's runs, evaluated at its trained iteration count or a multiple
    of it, with its EMA or live weights (empty: EMA when the run has both, as the variant evaluates)."""
    variant: str
    iterations_x: int = 1  # evaluated iteration count = iterations_x * the run's trained count
    weights: str = ""

    def label(self) -> str:
        extra = [f"{self.iterations_x}x iterations"] if self.iterations_x != 1 else []
        extra += [f"{self.weights} weights"] if self.weights else []
        return self.variant + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class Claim:
    name: str
    text: str  # what the log says, as the claim to test: "A > B"
    section: str  # the log's section heading
    log_figure: str  # the log's numbers, as the log states them
    a: Side
    b: Side
    direction: str  # A vs B: ">", "<", "≈" (within ±margin), "≥" / "≤" (at least as good / no better, ±margin)
    margin: float = 1.0  # percentage points; used by ≈, ≥ and ≤
    cpu_note: str = ""  # why CPU scale cannot test the claim as the log meant, when it cannot
    beyond_log: bool = False

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.name}: direction {self.direction!r} is not one of {DIRECTIONS}")
        if self.margin < 0:
            raise ValueError(f"claim {self.name}: margin must not be negative, got {self.margin}")


B = Side("baseline")
ORIGINAL = Side("original")  # the log's first model, the base of its early ablations
CLAIMS: list[Claim] = [
    Claim("iteration", "iteration is needed: 1 iteration fails", "Ablation: No Iteration",
          "1 iteration: 0/1000 solved (64.3% cells) vs 16 iterations: 643/1000", ORIGINAL, Side("no-iteration"), ">"),
    Claim("intermediate-supervision", "intermediate supervision beats a final-only loss",
          "Ablation: No Intermediate Supervision", "final-only 428/1000 vs all iterations 643/1000",
          ORIGINAL, Side("final-only-loss"), ">"),
    Claim("weight-sharing", "weight sharing beats unrolled at 16x the parameters",
          "Experiment: Unrolled (16 Separate Transformers)", "unrolled 581/1000 vs shared 643/1000",
          ORIGINAL, Side("unrolled"), ">",
          cpu_note="cpu-quick trains 8 iterations, so unrolled has 8x the parameters, not 16x"),
    Claim("phases-2x2", "4 shared layers beat 2 phase blocks of 2 layers",
          "Experiment: 2 Transformers × 2 Layers (Middle1)",
          "middle1 162/1000 vs shared 643/1000", ORIGINAL, Side("middle1"), ">"),
    Claim("phases-4x1", "4 shared layers beat 4 phase blocks of 1 layer",
          "Experiment: 4 Transformers × 1 Layer (Middle2)",
          "middle2 0/1000 vs shared 643/1000", ORIGINAL, Side("middle2"), ">"),
    Claim("recurrence", "adding h_prev (recurrence) beats no recurrence", "Experiment: Hidden State Recurrence",
          "recur_add 2265/2500 vs none 1994/2500 (+13.6%)", Side("recur-add"), ORIGINAL, ">"),
    Claim("encode-once", "encoding the puzzle once is at least as good as feeding it every iteration",
          "Experiment: No X After Init (TRM-style Input)", "once 2248/2500 vs every iteration 2265/2500 (-0.7%)",
          Side("no-x-after-init"), Side("recur-add"), "≥", margin=1.0),
    Claim("reverse-vs-mixed", "a reverse (hard to easy) curriculum is at least as good as mixed",
          "Experiment: Cosine LR + Mixed Sampling", "reverse 84.0% vs mixed 83.8% (cosine)",
          Side("curriculum-reverse"), Side("curriculum-mixed"), "≥", margin=1.0,
          cpu_note="cpu-quick buckets by deduction depth on 6x6 grids, not by the log's 9x9 rating"),
    Claim("mixed-vs-regular", "mixed sampling beats a regular (easy to hard) curriculum",
          "Experiment: Cosine LR + Regular Curriculum", "mixed 83.8% vs regular 80.6% (cosine)",
          Side("curriculum-mixed"), Side("curriculum-regular"), ">",
          cpu_note="cpu-quick buckets by deduction depth on 6x6 grids, not by the log's 9x9 rating"),
    Claim("cosine", "warmup + cosine decay beats warmup only", "Experiment: Cosine LR Decay (NEW SOTA)",
          "cosine 84.0% vs warmup only 78.5% (+5.5pp), both with SAM", Side("sam"), Side("warmup-only"), ">"),
    Claim("sam", "SAM is redundant under cosine", "Experiment: Cosine LR Without SAM (NEW RECOMMENDED BASELINE)",
          "SAM 84.0% vs AdamW 83.6% (+0.4pp)", Side("sam"), B, "≈", margin=1.0),
    Claim("weight-decay", "weight decay 1.0 is harmful", "Experiment: High Weight Decay (nano-trm style)",
          "wd 0.01 83.6% vs wd 1.0 70.1% (+13.5pp)", B, Side("wd-1.0"), ">",
          cpu_note="AdamW shrinks a weight by exp(-wd x the lr summed over steps): e^-0.76 over cpu-quick's "
                   "1,500 steps against e^-53 over the log's 70K, so at CPU scale wd 1.0 is a far weaker dose"),
    Claim("ema", "EMA weights are neutral (EMA vs live weights of one run)", "Experiment: EMA on Cosine LR (Retest)",
          "EMA 83.6% vs live 83.6% (0pp)", Side("ema", weights="ema"), Side("ema", weights="live"), "≈", margin=1.0,
          cpu_note="the EMA starts from the initial weights, which still weigh 0.999^1500 = 22% in it after "
                   "cpu-quick's 1,500 steps (0.999^70000 = 4e-31 over the log's 70K): the preset does not scale "
                   "the decay, so at CPU scale this tests an EMA that has not forgotten its start; keeping the "
                   "log's horizon-to-run ratio would take decay 0.953 (not run)"),
    Claim("mlp-mixer", "the MLP-Mixer is within a few points of attention", "Experiment: MLP-Mixer (Architecture Swap)",
          "mixer 71.9% vs attention 71.4% (+0.5pp)", Side("mlp-mixer"), Side("extreme-bs512"), "≈", margin=3.0,
          cpu_note="the log's SAM / batch-512 base keeps its ratio to the recipe: batch 8 at cpu-quick"),
    Claim("gelu", "GELU ≈ ReLU", "Experiment: GELU Activation", "GELU 83.2% vs ReLU 83.6% (-0.4pp)",
          Side("gelu"), B, "≈", margin=1.0),
    Claim("relu2", "ReLU beats ReLU²", "Experiment: ReLU Squared Activation", "ReLU 83.6% vs ReLU² 81.9% (+1.7pp)",
          B, Side("relu2"), ">"),
    Claim("sinusoidal", "1D sinusoidal positions fail", "Experiment: Sinusoidal Positional Encoding",
          "sinusoidal 0/1000 (summary table) vs 643/1000", ORIGINAL, Side("pos-sinusoidal"), ">"),
    Claim("rope-vs-rcb", "2D RoPE ≈ row/column/box embeddings", "Key Insights (6): positional encoding",
          "2D RoPE -0.3pp vs row/col/box", B, Side("pos-rcb"), "≈", margin=1.0),
    Claim("scale-down", "the 100K model is far worse", "Experiment: Scale DOWN",
          "100K params 8.3% vs 800K 71.4%", Side("extreme-bs512"), Side("scale-down"), ">",
          cpu_note="scale-down halves width, depth and heads as the log did (about 8x fewer parameters), from "
                   "cpu-quick's ~113K rather than 800K; batch 8 at cpu-quick (the log's 512, kept in ratio)"),
    Claim("test-time-iterations", "more iterations at test time do not help",
          "Experiment: Hidden State Recurrence (failure analysis)",
          "failed puzzles peak at iteration 4, then get worse", Side("baseline", iterations_x=2), B, "≤", margin=1.0),
    Claim("plateau", "a plateau-gated curriculum with LR restarts beats fixed phases",
          "plateau-aligned-lr-curriculum.md (another task; not in the log)", "not measured on Sudoku",
          Side("curriculum-plateau"), Side("curriculum-reverse"), ">", beyond_log=True),
    Claim("augment", "symmetry augmentation beats none", "Experiment: MLP-Mixer (TRM's edge: augmentation?)",
          "not measured: the log never augmented", Side("augment"), B, ">", beyond_log=True),
]


def claim_variants(claims: list[Claim] = CLAIMS) -> list[str]:
    """Every variant the claims need, in claim order."""
    return list(dict.fromkeys(s.variant for c in claims for s in (c.a, c.b)))


def variants_to_train(preset: str, claims: list[Claim] = CLAIMS) -> list[str]:
    """The claims' variants that need runs of their own on `preset`: one that runs the same config as an
    earlier one there (curriculum-mixed as the baseline on cpu-quick) reads that one's runs (stand_in)."""
    need = list(dict.fromkeys(["baseline", *claim_variants(claims)]))
    return [v for i, v in enumerate(need) if twin(preset, v, need[:i]) == v]


@functools.lru_cache(maxsize=None)
def _bare_config(preset: str, variant: str) -> str:
    """The config a variant runs on a preset, its name aside; "" when it does not build there."""
    try:
        cfg = make_config(preset, variant).to_dict()
    except (KeyError, ValueError):
        return ""
    cfg.pop("variant", None)
    return config_hash(cfg)


def twin(preset: str, variant: str, candidates) -> str:
    """The first of `candidates` that runs the same config as `variant` on `preset` (the variant itself
    when none does, or when it comes first). Two paths through the log can meet: the recipe with row/col/box
    positions (pos-rcb) is the original model encoding the puzzle once (no-x-after-init)."""
    mine = _bare_config(preset, variant)
    return next((c for c in candidates if mine and _bare_config(preset, c) == mine), variant)


# --- tidy per-puzzle results ---------------------------------------------------------------------

def config_hash(config: dict) -> str:
    """What a run computed, minus its seed and code identity: runs of one variant share it."""
    cfg = json.loads(json.dumps(config))
    cfg.pop("code", None)
    cfg.get("train", {}).pop("seed", None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]


def tidy_results(run_dirs) -> pd.DataFrame:
    """One row per run x test puzzle x evaluated iteration count (the trained count and each eval.iterations
    count) x weights, with the run's identity. Runs without eval.parquet (unfinished) are skipped."""
    run_dirs = list(run_dirs)
    frames = [_tidy_run(Path(d)) for d in tqdm(run_dirs, desc="collect runs", disable=len(run_dirs) < 20)]
    frames = [f for f in frames if f is not None]
    if not frames:
        return _compact(pd.DataFrame({c: [] for c in TIDY_COLUMNS}))
    return _compact(pd.concat(frames, ignore_index=True))


TIDY_COLUMNS = ["variant", "seed", "puzzle", "bucket", "iterations", "trained_iterations", "weights", "solved",
                "cell_acc", "threads", "params", "wall_seconds", "grid_size", "preset", "config_hash", "code_hash", "commit", "run"]


def _tidy_run(run: Path) -> pd.DataFrame | None:
    config = read_json(run / "config.json")
    if config is None or not (run / "eval.parquet").exists():
        return None
    ev = pd.read_parquet(run / "eval.parquet")
    trained = int(config["model"]["iterations"])
    counts = sorted({trained, *map(int, config["eval"]["iterations"])})
    ev = ev[ev["iteration"].isin(counts)]
    summary = read_json(run / "summary.json", {})
    code = config.get("code") or summary.get("code") or {}
    key = ev["question"] if "question" in ev.columns else ev["puzzle"]  # pair on the puzzle itself when known
    return pd.DataFrame({
        "variant": config["variant"], "seed": int(config["train"]["seed"]), "puzzle": key.astype(str).to_numpy(),
        "bucket": ev["bucket"].astype(str).to_numpy(), "iterations": ev["iteration"].to_numpy(),
        "trained_iterations": trained,
        "weights": ev["weights"].astype(str).to_numpy() if "weights" in ev.columns else "live",
        "solved": ev["solved"].to_numpy(bool), "cell_acc": ev["cell_acc"].to_numpy(np.float32),
        "threads": int(config["train"]["threads"]),
        "params": int(summary.get("params", -1)), "wall_seconds": float(summary.get("wall_seconds", math.nan)),
        "grid_size": int(config["data"]["grid_size"]), "preset": config["preset"],
        "config_hash": config_hash(config), "code_hash": code.get("code_hash", "unknown"),
        "commit": code.get("commit", "unknown"), "run": relative(run),
    })


CATEGORICAL = ("variant", "puzzle", "bucket", "weights", "preset", "config_hash", "code_hash", "commit", "run")


def _compact(df: pd.DataFrame) -> pd.DataFrame:
    """Categoricals for repeated strings, small ints, bool and float32: 75 runs x 800 puzzles x 2 counts
    stay a few MB in parquet."""
    ints = {"seed": "int16", "iterations": "int16", "trained_iterations": "int16", "threads": "int16",
            "params": "int64", "grid_size": "int8"}
    out = df[TIDY_COLUMNS].astype({**ints, "solved": bool, "cell_acc": "float32", "wall_seconds": "float32"})
    for col in CATEGORICAL:
        out[col] = out[col].astype(str).astype("category")
    return out


def read_results(path: str | Path, seeds: list[int] | None = None) -> pd.DataFrame:
    """The tidy results at `path` (only `seeds`, when given); an empty table, so that every claim says
    "not run", when there is no file yet."""
    path = Path(path)
    tidy = pd.read_parquet(path) if path.exists() else tidy_results([])
    if "wall_seconds" not in tidy.columns:  # collected before run times were kept
        tidy["wall_seconds"] = np.float32(math.nan)
    return tidy[tidy["seed"].isin(seeds)].reset_index(drop=True) if seeds else tidy


# --- statistics ----------------------------------------------------------------------------------

def paired_bootstrap(a, b, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> tuple[float, float, float]:
    """(difference, low, high) of mean solved A - B in percentage points, with a bootstrap CI.

    a and b are (seeds, puzzles) 0/1 arrays aligned on both axes (one seed may be given as a 1-D array).
    Each bootstrap draw resamples seeds and puzzles with replacement, independently of each other (a crossed
    two-way bootstrap), and applies the same draw to both sides, so the comparison stays paired: seeds carry
    the training variance, puzzles the test-set variance. Crossing is slightly conservative for per-puzzle
    noise; with 3 seeds it underestimates the seed spread by a third, which the coverage test bounds."""
    a, b = (np.atleast_2d(np.asarray(x, dtype=float)) for x in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap: A {a.shape} and B {b.shape} must be aligned (seeds, puzzles)")
    if a.size == 0:
        raise ValueError("paired_bootstrap: no paired results")
    d = a - b
    n_seeds, n_puzzles = d.shape
    rng = np.random.default_rng(seed)
    seed_counts, puzzle_counts = (_resample_counts(rng, n, n_boot) for n in (n_seeds, n_puzzles))
    means = np.einsum("bp,bp->b", seed_counts @ d, puzzle_counts) / (n_seeds * n_puzzles)
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return 100 * float(d.mean()), 100 * float(lo), 100 * float(hi)


def _resample_counts(rng, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n): how often each item is drawn in each resample of n with replacement."""
    draws = rng.integers(0, n, (n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def verdict(diff: float, lo: float, hi: float, direction: str, margin: float = 1.0) -> str:
    """holds / reversed / inconclusive from a CI of A - B, or "not run" when there is none (NaN).
    > and <: the CI excludes 0 one way or the other. ≈: holds inside ±margin, reversed wholly outside it.
    ≥ (A at least as good, within margin): holds when lo > -margin, reversed when hi < -margin; ≤ mirrors it."""
    if direction not in DIRECTIONS:
        raise ValueError(f"verdict: direction {direction!r} is not one of {DIRECTIONS}")
    if any(math.isnan(x) for x in (diff, lo, hi)):
        return "not run"
    if direction in ("<", "≤"):
        return verdict(-diff, -hi, -lo, {"<": ">", "≤": "≥"}[direction], margin)
    if direction == ">":
        return "holds" if lo > 0 else "reversed" if hi < 0 else "inconclusive"
    if direction == "≥":
        return "holds" if lo > -margin else "reversed" if hi < -margin else "inconclusive"
    return "holds" if -margin <= lo and hi <= margin else "reversed" if lo > margin or hi < -margin else "inconclusive"


# --- claims against results ----------------------------------------------------------------------

def stand_in(tidy: pd.DataFrame, variant: str) -> str:
    """The variant whose runs a side reads: its own, or, when it has none, those of its twin in `tidy`,
    which it would only repeat (curriculum-mixed on cpu-quick reads the baseline's)."""
    return variant if (tidy["variant"] == variant).any() else _twin_in(tidy, variant)


def _twin_in(tidy: pd.DataFrame, variant: str) -> str:
    """The first other variant in `tidy` (the baseline first) that runs `variant`'s config on tidy's single
    preset; the variant itself when none does, or when tidy mixes presets."""
    presets = set(tidy["preset"].astype(str))
    if len(presets) != 1:
        return variant
    others = sorted(set(tidy["variant"].astype(str)) - {variant}, key=lambda v: (v != "baseline", v))
    return twin(presets.pop(), variant, others)


def side_rows(tidy: pd.DataFrame, side: Side) -> pd.DataFrame:
    """One side's rows: its variant (or its stand-in) at iterations_x times each run's trained count,
    with the chosen weights."""
    rows = tidy[(tidy["variant"] == stand_in(tidy, side.variant))
                & (tidy["iterations"] == side.iterations_x * tidy["trained_iterations"])]
    if rows.empty:
        return rows
    weights = side.weights or ("ema" if (rows["weights"] == "ema").any() else "live")
    return rows[rows["weights"] == weights]


def _matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """(seeds, puzzles) solved; a puzzle that some seed lacks is left out, so both axes stay paired."""
    table = rows.pivot_table(index="seed", columns="puzzle", values="solved", aggfunc="mean", observed=True)
    return table.dropna(axis=1)


def compare(tidy: pd.DataFrame, claim: Claim, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per bucket and overall ("all"): A %, B %, A - B with its CI, seeds and puzzles paired, and the verdict."""
    a_rows, b_rows = side_rows(tidy, claim.a), side_rows(tidy, claim.b)
    a_mat, b_mat = _matrix(a_rows), _matrix(b_rows)
    seeds = a_mat.index.intersection(b_mat.index)
    puzzles = a_mat.columns.intersection(b_mat.columns)
    if len(seeds) == 0 or len(puzzles) == 0:
        return pd.DataFrame([_row(claim, "all", math.nan, math.nan, (math.nan,) * 3, 0, 0)])
    a_mat, b_mat = a_mat.loc[seeds, puzzles], b_mat.loc[seeds, puzzles]
    bucket_of = a_rows.drop_duplicates("puzzle").set_index("puzzle")["bucket"].astype(str).reindex(puzzles)
    rows = []
    for bucket in bucket_order([*bucket_of.unique(), "all"]):
        cols = puzzles if bucket == "all" else puzzles[(bucket_of == bucket).to_numpy()]
        a, b = a_mat[cols].to_numpy(), b_mat[cols].to_numpy()
        est = paired_bootstrap(a, b, n_boot=n_boot, seed=seed)
        rows.append(_row(claim, bucket, 100 * a.mean(), 100 * b.mean(), est, len(seeds), len(cols)))
    return pd.DataFrame(rows)


def _row(claim: Claim, bucket: str, a_pct: float, b_pct: float, est: tuple, n_seeds: int, n_puzzles: int) -> dict:
    diff, lo, hi = est
    return {"claim": claim.name, "bucket": bucket, "A": claim.a.label(), "B": claim.b.label(),
            "A solved %": a_pct, "B solved %": b_pct, "A - B (pp)": diff, "CI low": lo, "CI high": hi,
            "n seeds": n_seeds, "n puzzles": n_puzzles,
            "verdict": verdict(diff, lo, hi, claim.direction, claim.margin)}


def comparisons(tidy: pd.DataFrame, claims: list[Claim] = CLAIMS, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Every claim per bucket and overall, in claim order: the long table the claim table summarises."""
    return pd.concat([compare(tidy, c, n_boot, seed) for c in claims], ignore_index=True)


def claim_table(tidy: pd.DataFrame, claims: list[Claim] = CLAIMS, n_boot: int = 2000, seed: int = 0,
                compared: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim: the log's section and figure, our figure (A, B, A - B and its 95% CI), seeds,
    scale, verdict, and notes (CPU caveats, and runs that mix configs, code or thread counts)."""
    compared = comparisons(tidy, claims, n_boot, seed) if compared is None else compared
    overall = compared[compared["bucket"] == "all"].set_index("claim")
    rows = []
    for c in claims:
        r = overall.loc[c.name]
        rows.append({
            "claim": c.text, "log section": c.section, "log figure": c.log_figure,
            "expected": f"A {c.direction} B" + (f" (±{c.margin:g}pp)" if c.direction in "≈≥≤" else ""),
            "our figure": _our_figure(r), "n seeds": int(r["n seeds"]), "scale": _scale(tidy, c),
            "verdict": r["verdict"],
            "note": "; ".join(filter(None, [_seed_note(r), c.cpu_note, *_provenance_notes(tidy, c)])),
        })
    return pd.DataFrame(rows)


def _seed_note(r) -> str:
    n = int(r["n seeds"])
    return f"provisional: {n} of the {FINDINGS_SEEDS} seeds run so far" if 0 < n < FINDINGS_SEEDS else ""


def _our_figure(r) -> str:
    if r["verdict"] == "not run":
        return "—"
    return (f"{r['A']} {r['A solved %']:.1f}% vs {r['B']} {r['B solved %']:.1f}%: "
            f"{r['A - B (pp)']:+.1f}pp [{r['CI low']:+.1f}, {r['CI high']:+.1f}]")


def _scale(tidy: pd.DataFrame, claim: Claim) -> str:
    parts = []
    for side in (claim.a, claim.b):
        rows = side_rows(tidy, side)
        if rows.empty:
            return ""
        parts.append((int(rows["grid_size"].iloc[0]), int(rows["iterations"].iloc[0]), int(rows["params"].iloc[0])))
    (grid, it_a, p_a), (_, it_b, p_b) = parts
    its = f"{it_a}" if it_a == it_b else f"{it_a} vs {it_b}"
    params = f"{p_a / 1e3:.0f}K" if p_a == p_b else f"{p_a / 1e3:.0f}K vs {p_b / 1e3:.0f}K"
    return f"{grid}x{grid}, {its} iterations, {params} params"


def _provenance_notes(tidy: pd.DataFrame, claim: Claim) -> list[str]:
    rows = pd.concat([side_rows(tidy, claim.a), side_rows(tidy, claim.b)])
    preset, notes = ", ".join(sorted(set(tidy["preset"].astype(str)))), []
    for v in dict.fromkeys([claim.a.variant, claim.b.variant]):
        same = _twin_in(tidy, v)
        if same == v:
            continue
        notes.append(f"{v} runs the same config as {same} on {preset}" if (tidy["variant"] == v).any()
                     else f"{v} runs {same}'s config on {preset}: read from {same}'s runs")
    for side in dict.fromkeys([claim.a.variant, claim.b.variant]):
        mine = rows[rows["variant"] == stand_in(tidy, side)]
        if mine["config_hash"].nunique() > 1:
            notes.append(f"{side} runs differ in config")
        if (mine.groupby("seed", observed=True)["run"].nunique() > 1).any():
            notes.append(f"{side} has several runs of one seed (averaged)")
    for col, what in (("code_hash", "code"), ("threads", "thread counts")):
        if rows[col].nunique() > 1:
            notes.append(f"runs from different {what}")
    return notes


def variant_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per variant and bucket: solved % at the trained count (default weights), mean and 95% CI over seeds."""
    out = []
    for (variant, bucket), g in _per_seed(tidy).groupby(["variant", "bucket"]):
        m, lo, hi = mean_ci(g["solved %"])
        out.append({"variant": variant, "bucket": bucket, "solved % (final)": m, "CI low": max(lo, 0.0),
                    "CI high": min(hi, 100.0), "n seeds": len(g)})
    table = pd.DataFrame(out, columns=["variant", "bucket", "solved % (final)", "CI low", "CI high", "n seeds"])
    table["bucket"] = pd.Categorical(table["bucket"], bucket_order(table["bucket"]))
    return table.sort_values(["variant", "bucket"]).set_index(["variant", "bucket"]).round(1)


def seed_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Variants x seeds: overall solved % at the trained count, so a seed that collapsed is seen at once."""
    per_seed = _per_seed(tidy)
    return per_seed[per_seed["bucket"] == "all"].pivot(index="variant", columns="seed", values="solved %").round(1)


def cost_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per variant: runs, parameters, torch threads and training minutes per run on the machine that ran
    them: what each claim costs, and what the whole sweep took."""
    runs = tidy.drop_duplicates("run").astype({"variant": str})
    table = runs.groupby("variant").agg(runs=("run", "size"), params=("params", "first"),
                                        threads=("threads", "first"), minutes_per_run=("wall_seconds", "mean"))
    table["minutes_per_run"] = (table["minutes_per_run"] / 60).round(1)
    table["total_minutes"] = (runs.groupby("variant")["wall_seconds"].sum(min_count=1) / 60).round(0)
    return table.sort_values("total_minutes", ascending=False)


def bucket_table(compared: pd.DataFrame) -> pd.DataFrame:
    """Claims x buckets: A - B (pp) with its 95% CI and the verdict in each bucket."""
    done = compared[compared["verdict"] != "not run"]
    cell = done.apply(lambda r: f"{r['A - B (pp)']:+.1f} [{r['CI low']:+.1f}, {r['CI high']:+.1f}] {r['verdict']}",
                      axis=1)
    wide = done.assign(cell=cell).pivot(index="claim", columns="bucket", values="cell")
    claims = [c for c in dict.fromkeys(compared["claim"]) if c in wide.index]
    return wide.reindex(index=claims, columns=bucket_order(wide.columns)).fillna("")


# --- figures -------------------------------------------------------------------------------------

VERDICT_COLORS = {"holds": "tab:green", "reversed": "tab:red", "inconclusive": "tab:gray"}


def forest_plot(compared: pd.DataFrame, claims: list[Claim] = CLAIMS, title: str = ""):
    """A - B overall per claim with its 95% CI, coloured by verdict; the shaded band is the margin of
    ≈ claims and the tolerated side of ≥ / ≤ claims."""
    overall = compared[compared["bucket"] == "all"].set_index("claim")
    shown = [c for c in claims if c.name in overall.index]
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(shown) + 1.5))
    for y, c in enumerate(shown):
        lo, hi = {"≈": (-c.margin, c.margin), "≥": (-c.margin, 0), "≤": (0, c.margin)}.get(c.direction, (0, 0))
        ax.fill_betweenx([y - 0.4, y + 0.4], lo, hi, color="tab:blue", alpha=0.12, lw=0)
        if overall.loc[c.name, "verdict"] == "not run":
            ax.text(0, y, " not run", va="center", color="0.5", fontsize="small")
    done = overall.loc[[c.name for c in shown]].reset_index().assign(y=range(len(shown)))
    done = done[done["verdict"] != "not run"]
    ax.hlines(done["y"], done["CI low"], done["CI high"], color="0.3", lw=1.5)
    if len(done):
        sns.scatterplot(data=done, x="A - B (pp)", y="y", hue="verdict", palette=VERDICT_COLORS, s=60, ax=ax, zorder=3)
        ax.legend(title="verdict", bbox_to_anchor=(1.02, 1), loc="upper left")
    ax.set_yticks(range(len(shown)), [f"{c.name}: A {c.direction} B" for c in shown])
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="A - B: solved % at the trained iteration count (pp), 95% paired bootstrap CI", ylabel="",
           title=title or "the log's claims: A - B per claim")
    fig.tight_layout()
    return fig


def variant_plot(tidy: pd.DataFrame, title: str = ""):
    """Solved % at the trained count per variant and bucket; bars show the spread over seeds (sd)."""
    per_seed = _per_seed(tidy)
    variants = list(dict.fromkeys(per_seed["variant"]))
    fig, ax = plt.subplots(figsize=(9, 0.3 * max(len(variants), 1) * 2 + 1.5))
    if len(per_seed):
        sns.pointplot(data=per_seed, x="solved %", y="variant", hue="bucket", order=variants,
                      hue_order=bucket_order(per_seed["bucket"]), errorbar="sd", dodge=0.5, linestyle="none",
                      palette="viridis_r", ax=ax)
        ax.legend(title="bucket", bbox_to_anchor=(1.02, 1), loc="upper left")
    else:
        ax.text(0.5, 0.5, "no runs yet", transform=ax.transAxes, ha="center")
    ax.set(xlabel="solved % at the trained iteration count (error bars: sd over seeds)", ylabel="",
           xlim=(-2, 102), title=title or "every variant, per bucket")
    fig.tight_layout()
    return fig


def _per_seed(tidy: pd.DataFrame) -> pd.DataFrame:
    """Solved % per variant x bucket (and "all") x seed at the trained count, default weights."""
    rows = pd.concat([side_rows(tidy, Side(v)) for v in tidy["variant"].astype(str).unique()] or [tidy])
    both = pd.concat([rows.assign(bucket="all"), rows.assign(bucket=rows["bucket"].astype(str))])
    return both.groupby(["variant", "bucket", "seed"], observed=True)["solved"].mean().mul(100) \
        .rename("solved %").reset_index().astype({"variant": str})


# --- the notebook's inputs and outputs -----------------------------------------------------------

# cpu-smoke runs are too small to be findings: the smoke preset renders the committed test fixture
FIXTURES = {"cpu-smoke": REPO / "tests" / "fixtures" / "findings-cpu-smoke.parquet"}
HEADLINE_PRESET = "cpu-quick"  # whose findings the repository's FINDINGS.md reports


def results_path_for(preset: str, results_path: str = "") -> Path:
    """The tidy results a findings notebook renders: `results_path`, else findings/<preset>.parquet."""
    if results_path:
        return Path(results_path)
    return FIXTURES.get(preset, REPO / "findings" / f"{preset}.parquet")


def findings_md_path(findings_md: str, preset: str, results_path: str, output_dir: Path) -> Path | None:
    """Where FINDINGS.md goes. "auto": the repository's FINDINGS.md for the headline preset's committed
    results, the run folder otherwise (so smoke runs never overwrite it); "": nowhere; else the path."""
    if findings_md == "auto":
        headline = preset == HEADLINE_PRESET and not results_path
        return REPO / "FINDINGS.md" if headline else Path(output_dir) / "FINDINGS.md"
    return Path(findings_md) if findings_md else None


def regenerate_command(preset: str) -> str:
    """The commands FINDINGS.md gives for regenerating itself."""
    return (f"make findings PRESET={preset}  # trains the missing runs, then renders the notebook\n"
            f"python -m lib.cli run notebooks/10_findings.ipynb -p preset {preset}  # renders only")


def output_folder(output_dir: str) -> Path:
    """The folder the runner gave this notebook, or outputs/findings/lab when run in JupyterLab."""
    out = Path(output_dir) if output_dir else OUTPUTS / "findings" / "lab"
    out.mkdir(parents=True, exist_ok=True)
    return out


def finish(output_dir: Path, tidy: pd.DataFrame, table: pd.DataFrame, params: dict) -> dict:
    """The findings run's summary.json for the index: verdict counts and each variant's solved % per bucket."""
    solved = variant_table(tidy)["solved % (final)"]
    summary = {
        "kind": NOTEBOOK_RUN, "status": "complete", "family": Path(output_dir).parent.name,
        "run": Path(output_dir).name, "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "params": params, "variants": sorted(tidy["variant"].astype(str).unique()),
        "seeds": sorted(int(s) for s in tidy["seed"].unique()),
        "grid_size": int(tidy["grid_size"].iloc[0]) if len(tidy) else "",
        "verdicts": {v: int((table["verdict"] == v).sum()) for v in VERDICTS},
        "solved_final": {f"{v}:{b}": float(x) for (v, b), x in solved.items()},
    }
    write_json(Path(output_dir) / "summary.json", summary)
    return summary


# --- report --------------------------------------------------------------------------------------

def markdown_table(df: pd.DataFrame) -> str:
    cells = [[str(v).replace("|", "\\|") for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def write_findings_md(table: pd.DataFrame, path: str | Path, command: str, source: str = "", code: str = "") -> Path:
    """FINDINGS.md: the claim table and the command that regenerates it. Written by the notebook only."""
    counts = table["verdict"].value_counts()
    tally = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
    text = "\n\n".join([
        "# Findings: which of the log's claims hold at CPU scale",
        "Generated by `notebooks/10_findings.ipynb`; do not edit by hand. Regenerate with:",
        f"```\n{command}\n```",
        (f"Results: `{source}`. " if source else "") + code,
        f"**{tally}.** A is the left side of each comparison; our figure is solved % at the trained iteration "
        "count, A - B in percentage points with a 95% paired bootstrap CI over seeds and test puzzles. "
        "Verdicts are computed from the CI: > holds when the CI excludes 0 in the log's direction, ≈ when it lies "
        "within ±margin, ≥ when it lies above -margin; reversed is the opposite; a disagreement with the log is "
        "a finding.",
        markdown_table(table), ""])
    return write_text(path, text.replace("\n\n\n\n", "\n\n"))


# --- are the committed results the current code's? ----------------------------------------------

def code_status(tidy: pd.DataFrame) -> str:
    """One line for FINDINGS.md: which code made the results, and whether it is the code checked out now."""
    if tidy.empty:
        return ""
    current = code_identity()["code_hash"]
    runs = tidy.drop_duplicates("run")
    stale = runs[runs["code_hash"].astype(str) != current]
    commits = ", ".join(sorted({c.split("+")[0][:7] for c in runs["commit"].astype(str)}))
    if stale.empty:
        return (f"All {len(runs)} runs were made by the current code (hash `{current}` of lib's result modules; "
                f"commits {commits}), so retraining any of them reproduces its per-puzzle results.")
    return (f"**Stale: {len(stale)} of {len(runs)} runs were made by other code** (hash "
            f"{', '.join(sorted(set(stale['code_hash'].astype(str))))}, not the current `{current}`). "
            "`make findings` retrains them.")


def current_runs(tidy: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs the current code would make again: its code hash, and the config it builds for
    the run's preset, variant, seed and thread count. Only these count as finished for a sweep."""
    if tidy.empty:
        return tidy
    current = code_identity()["code_hash"]
    runs = tidy.drop_duplicates("run")
    keep = [r["run"] for _, r in runs.iterrows()
            if str(r["code_hash"]) == current and str(r["config_hash"]) == config_hash(_rebuilt(r).to_dict())]
    return tidy[tidy["run"].isin(keep)]


def _rebuilt(row, overrides: dict | None = None):
    """The config the current code builds for a committed run's preset, variant, seed and thread count."""
    return make_config(str(row["preset"]), str(row["variant"]),
                       {"train.seed": int(row["seed"]), "train.threads": int(row["threads"]), **(overrides or {})})


def reproduce(results: str | Path, variant: str, seed: int, out_dir: str | Path,
              overrides: dict | None = None) -> pd.DataFrame:
    """Retrain one committed (variant, seed) with its recorded preset and thread count into `out_dir`, and
    compare its per-puzzle results with the committed ones: the rows that differ (empty: reproduced exactly).
    Refuses before training when the current code or config could not reproduce them."""
    tidy = read_results(results)
    mine = tidy[(tidy["variant"] == variant) & (tidy["seed"] == seed)]
    if mine.empty:
        raise ValueError(f"{results} has no run of {variant} seed {seed}")
    first = mine.iloc[0]
    cfg = _rebuilt(first, overrides)
    if config_hash(cfg.to_dict()) != str(first["config_hash"]):
        raise ValueError(f"{variant} seed {seed} in {results} was made by another config than the current code "
                         "builds for it: retrain it with `make findings`")
    if str(first["code_hash"]) != code_identity()["code_hash"]:
        raise ValueError(f"{variant} seed {seed} in {results} was made by code {first['code_hash']}, not the "
                         f"current {code_identity()['code_hash']}: retrain it with `make findings`")
    train(cfg, out_dir)
    return per_puzzle_differences(mine, _tidy_run(Path(out_dir)))


def per_puzzle_differences(committed: pd.DataFrame, retrained: pd.DataFrame) -> pd.DataFrame:
    """The (puzzle, iteration count, weights) rows whose solved or cell accuracy differ, or that one side lacks."""
    key = ["puzzle", "iterations", "weights"]
    as_str = lambda df: df.astype({k: str for k in key})[key + ["solved", "cell_acc"]]
    both = as_str(committed).merge(as_str(retrained), on=key, how="outer", suffixes=("", " retrained"),
                                   indicator=True)
    differ = ((both["_merge"] != "both") | (both["solved"] != both["solved retrained"])
              | (both["cell_acc"] != both["cell_acc retrained"]))
    return both.loc[differ].drop(columns="_merge").reset_index(drop=True)


# --- the findings sweep --------------------------------------------------------------------------

def effective_grid(grid: dict, threads: int) -> dict:
    """The grid with the thread count fixed for every run (a run's result depends on it)."""
    grid = json.loads(json.dumps(grid))
    fixed = grid.setdefault("fixed", {}) or {}
    grid["fixed"] = fixed
    overrides = fixed.setdefault("overrides", {}) or {}
    fixed["overrides"] = {**overrides, "train.threads": int(threads)}
    return grid


def sweep_name(grid: dict, threads: int) -> str:
    return f"findings-{grid.get('fixed', {}).get('preset', 'custom')}-t{threads}"


def run_dirs_of(name: str, out_root: Path) -> list[Path]:
    """Every training run folder a sweep's notebook runs produced."""
    return sorted(p.parent for p in Path(out_root).glob(f"*/{name}--*/runs/*/config.json"))


def _cmd_sweep(args) -> None:
    import yaml

    grid = effective_grid(yaml.safe_load(Path(args.grid).read_text()) or {}, args.threads)
    name = sweep_name(grid, args.threads)
    missing = [v for v in variants_to_train(grid["fixed"].get("preset", "")) if v not in grid.get("variant", [])]
    if missing:
        print(f"warning: {args.grid} lacks {', '.join(missing)}: the claims on them will say 'not run'")
    preset = grid["fixed"].get("preset", "custom")
    out = args.out or f"findings/{preset}.parquet"
    previous = read_results(out)
    committed = current_runs(previous)
    committed = committed[committed["threads"] == args.threads]
    if previous["run"].nunique() > committed["run"].nunique():
        print(f"{previous['run'].nunique() - committed['run'].nunique()} runs in {out} are from other code, "
              f"config or thread count: the grid's are retrained, the others leave {out}")
    held = set(zip(committed["variant"].astype(str), committed["seed"].astype(int)))
    grid_path = workbook.OUTPUTS / "sweeps" / f"{name}.yaml"
    write_text(grid_path, yaml.safe_dump(grid, sort_keys=False))
    table = sweep.run_sweep(args.notebook, grid_path, workers=args.workers, name=name,
                            have=lambda params: _job_key(params) in held)
    print(table[["name", "status", "error"]].to_string(index=False))
    _collect(run_dirs_of(name, workbook.OUTPUTS), out, committed)


def _job_key(params: dict) -> tuple[str, int]:
    """A sweep job's (variant, seed); the notebooks take both as one-element lists."""
    variant = params["variant"] if "variant" in params else params["variants"][0]
    seed = params["seed"] if "seed" in params else params["seeds"][0]
    return str(variant), int(seed)


def _collect(run_dirs: list[Path], out: str, committed: pd.DataFrame | None = None) -> None:
    """Tidy the run folders into `out`, keeping the committed runs (of the current code) that no folder
    retrained: a new machine has no outputs/, and its sweep only adds to what the repository holds."""
    tidy = tidy_results(run_dirs)
    if committed is not None and len(committed):
        fresh = set(zip(tidy["variant"].astype(str), tidy["seed"].astype(int), tidy["threads"].astype(int)))
        keys = zip(committed["variant"].astype(str), committed["seed"].astype(int), committed["threads"].astype(int))
        kept = committed[[k not in fresh for k in keys]]
        tidy = _compact(pd.concat([tidy.astype({c: str for c in CATEGORICAL}),
                                   kept.astype({c: str for c in CATEGORICAL})], ignore_index=True))
    atomic_write(out, lambda tmp: tidy.to_parquet(tmp, index=False))
    print(f"{out}: {len(tidy):,} rows from {tidy['run'].nunique()} runs "
          f"({Path(out).stat().st_size / 1e6:.1f} MB)")


def _cmd_reproduce(args) -> None:
    out = Path(args.out or OUTPUTS / "findings" / "reproduce" / f"{args.variant}-s{args.seed}")
    if out.exists():
        raise SystemExit(f"{out} exists: a retrained run must start from nothing (remove it or pass -o)")
    differ = reproduce(args.results, args.variant, args.seed, out)
    if len(differ):
        print(differ.head(20).to_string(index=False))
        raise SystemExit(f"{args.variant} seed {args.seed}: {len(differ)} per-puzzle results differ from {args.results}")
    print(f"{args.variant} seed {args.seed}: every per-puzzle result in {args.results} reproduced exactly ({relative(out)})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lib.findings", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sweep", help="train every (variant, seed) of a findings grid, then collect")
    p.add_argument("--grid", default="findings/cpu-quick-grid.yaml")
    p.add_argument("--notebook", default="notebooks/01_baseline.ipynb")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (recorded with the result)")
    p.add_argument("-o", "--out", default="", help="default: findings/<preset>.parquet")
    p.set_defaults(func=_cmd_sweep)
    p = sub.add_parser("collect", help="tidy run folders into one per-puzzle parquet")
    p.add_argument("runs", nargs="+", help="training run folders (holding config.json and eval.parquet)")
    p.add_argument("-o", "--out", required=True)
    p.set_defaults(func=lambda a: _collect([Path(r) for r in a.runs], a.out))
    p = sub.add_parser("reproduce", help="retrain one committed (variant, seed) and compare it puzzle by puzzle")
    p.add_argument("variant")
    p.add_argument("seed", type=int)
    p.add_argument("--results", default="findings/cpu-quick.parquet")
    p.add_argument("-o", "--out", default="", help="default: outputs/findings/reproduce/<variant>-s<seed>")
    p.set_defaults(func=_cmd_reproduce)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
