"""Findings: which of the log's claims hold at CPU scale, from tidy per-puzzle results of seeded
runs.

    python -m lib.cli findings plan --preset cpu-quick       # what each claim still needs, and why
    python -m lib.cli findings sweep --preset cpu-quick --workers 2 --threads 1  # train them
    python -m lib.cli findings collect outputs/baseline/findings-cpu-quick-t1--* \
        -o findings/cpu-quick.parquet
    python -m lib.cli findings reproduce baseline 1

Run folders become one tidy per-puzzle table (`tidy_results`), which notebooks/10_findings.ipynb
renders into the claim table and FINDINGS.md. Every variant of a preset is evaluated on the same
test puzzles, so a claim (lib/experiments/claims.py) compares A with B puzzle by puzzle (lib/findings/stats.py), and
what it reads is computed from runs, never typed:

    a verdict                  holds / reversed: the LEVEL interval of A - B decides the direction
    not testable here          the preset cannot carry a knob the claim needs (why_untestable),
                               or a side the log trained does not train here (untrained_side)
    undecidable at this scale  both sides at the floor, neither one the log trained; or the seeds
                               the claim may get (its cap) would not decide it, projected from its
                               runs (before any: a prior)
    awaiting N runs            it starts at 3 seeds, or its interval straddles a boundary and more
                               seeds would decide it: the runs it still needs ("awaiting runs"
                               with none to train: a side's runs were not scored where it reads)

The seed plan (`seed_plan`) spends runs on the last kind only; `findings sweep` trains them.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from lib.experiments.claims import Claim, Side, claim_variants, claims_for
from lib.config import ConfigError, RunConfig, bucket_order
from lib.experiments.resolve import config_twin, make_config
from lib import files
from lib.files import NOTEBOOK_RUN, OUTPUTS, REPO, read_json, relative, write_json, write_text
from lib.provenance import code_identity, machine_id
from lib.findings.stats import (FLOOR_PCT, LEVEL, at_floor, decided, detectable_effect, effect_answer,
                       half_width, holm, interval, mean_ci, paired_parts, prior_parts, room,
                       seeds_to_add, t_quantile, under_floor, verdict)
from lib.train import train
from lib.findings.stats import collapse_at

START_SEEDS = 3  # every claim starts here; a large effect is decided on 3 (issue 29)
SEED_STEP = 2  # the seeds an undecided claim gets per round, while more would decide it
MAX_SEEDS = 10  # the most a claim gets
SAM_SEEDS = 5  # SAM's second pass doubles a run's cost: a claim with a SAM side stops here...
SAM_SEEDS_BY_CLAIM = {"cosine": 7}  # ...except cosine, whose +5.5pp 7 seeds can decide
# Before a claim has 2 seeds, its projection needs a seed spread from elsewhere: the baseline's in
# the same results, else this, the cpu-quick baseline's seed sd on its claims' test set (3 seeds,
# results version 2). See prior_spread.
PRIOR_SEED_SD_PP = 1.6
COLLAPSED_CELL_PP = 15.0  # a seed this far below its best sibling's cell accuracy collapsed
CHANCE_PP = 3.0  # a side whose every seed's cell accuracy is this close to a guess never learned
LOG_LEARNED_PCT = 10.0  # a side the log reports solving at least this trained there (see untrained_side)
STATUSES = ("holds", "reversed", "undecidable at this scale", "not testable here", "awaiting runs")


# --- which variants need runs -------------------------------------------------------------------

def variants_to_train(preset: str, claims: list[Claim] | None = None) -> list[str]:
    """The claims' variants (the preset's claims by default) that need runs of their own on
    `preset`: one that runs the same config as an earlier one there reads that one's runs
    (stand_in)."""
    claims = claims_for(preset) if claims is None else claims
    need = list(dict.fromkeys(["baseline", *claim_variants(claims)]))
    return [v for i, v in enumerate(need) if _twin(preset, v, tuple(need[:i])) == v]


@functools.lru_cache(maxsize=None)
def _twin(preset: str, variant: str, candidates: tuple) -> str:
    return config_twin(preset, variant, list(candidates))


# --- tidy per-puzzle results --------------------------------------------------------------------

def config_hash(config: dict) -> str:
    """What a run computed, minus its seed and code identity: runs of one variant share it. A field
    added since the run was made counts at its default, as workbook.same_resolved_config reads it.
    """
    cfg = json.loads(json.dumps(config))
    cfg.pop("code", None)
    try:
        cfg = RunConfig.from_dict(cfg).to_dict()
    except ConfigError:
        pass  # a field the code no longer has: hash the record as it is (matching no config)
    cfg.get("train", {}).pop("seed", None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]


def tidy_results(run_dirs) -> pd.DataFrame:
    """One row per run x test puzzle x evaluated iteration count (the trained count and each
    eval.iterations count) x weights, with the run's identity. Runs without eval.parquet
    (unfinished) are skipped."""
    run_dirs = list(run_dirs)
    bar = tqdm(run_dirs, desc="collect runs", disable=len(run_dirs) < 20)
    frames = [f for f in (_tidy_run(Path(d)) for d in bar) if f is not None]
    if not frames:
        return _compact(pd.DataFrame({c: [] for c in TIDY_COLUMNS}))
    return _compact(pd.concat(frames, ignore_index=True))


TIDY_COLUMNS = ["variant", "seed", "source", "puzzle", "bucket", "iterations",
                "trained_iterations", "weights", "solved", "cell_acc", "threads", "params",
                "wall_seconds", "grid_size", "preset", "config_hash", "code_version", "commit",
                "machine", "run"]
CATEGORICAL = ("variant", "source", "puzzle", "bucket", "weights", "preset", "config_hash",
               "code_version", "commit", "machine", "run")


def kept_counts(trained: int, asked) -> list[int]:
    """The scored counts the tidy table keeps: the trained one, twice it, the powers of two beyond
    (the sequel's claims compare at a multiple of the trained count) and any the config asked for.
    """
    top = max([trained, *asked])
    powers = {2 ** k for k in range(top.bit_length()) if 2 * trained < 2 ** k <= top}
    return sorted({trained, 2 * trained, *asked} | powers)


def _tidy_run(run: Path) -> pd.DataFrame | None:
    folder = files.RunFiles(run)
    config = read_json(folder.config)
    if config is None or not folder.evals.exists():
        return None
    ev = pd.read_parquet(folder.evals).assign(source="test")
    if "weights" not in ev.columns:
        ev["weights"] = "live"
    # eval-sources.parquet scores the eval model alone (train.write_eval): an EMA run's EMA weights
    scored = "ema" if (ev["weights"] == "ema").any() else "live"
    if folder.eval_sources.exists():
        extra = pd.read_parquet(folder.eval_sources).assign(weights=scored)
        ev = pd.concat([ev, extra], ignore_index=True)
    trained = int(config["model"]["iterations"])
    ev = ev[ev["iteration"].isin(kept_counts(trained, map(int, config["eval"]["iterations"])))]
    summary = read_json(folder.summary, {})
    code = config.get("code") or summary.get("code") or {}
    key = ev["question"] if "question" in ev.columns else ev["puzzle"]  # pair on the puzzle itself
    weights = ev["weights"].astype(str).to_numpy()
    return pd.DataFrame({
        "variant": config["variant"], "seed": int(config["train"]["seed"]),
        "source": ev["source"].astype(str).to_numpy(), "puzzle": key.astype(str).to_numpy(),
        "bucket": ev["bucket"].astype(str).to_numpy(), "iterations": ev["iteration"].to_numpy(),
        "trained_iterations": trained, "weights": weights,
        "solved": ev["solved"].to_numpy(bool), "cell_acc": ev["cell_acc"].to_numpy(np.float32),
        "threads": int(config["train"]["threads"]), "params": int(summary.get("params", -1)),
        "wall_seconds": float(summary.get("wall_seconds", math.nan)),
        "grid_size": int(config["data"]["grid_size"]), "preset": config["preset"],
        "config_hash": config_hash(config), "code_version": code.get("code_version", "unknown"),
        "commit": code.get("commit", "unknown"),
        # runs made before machines were recorded say "unknown": never compared exactly
        "machine": machine_id(code["machine"]) if code.get("machine") else "unknown",
        "run": relative(run),
    })


def _compact(df: pd.DataFrame) -> pd.DataFrame:
    """Categoricals for repeated strings, small ints, bool and float32: 75 runs x 800 puzzles x 2
    counts stay a few MB in parquet."""
    ints = {"seed": "int16", "iterations": "int16", "trained_iterations": "int16",
            "threads": "int16", "params": "int64", "grid_size": "int8"}
    floats = {"solved": bool, "cell_acc": "float32", "wall_seconds": "float32"}
    out = df[TIDY_COLUMNS].astype({**ints, **floats})
    for col in CATEGORICAL:
        out[col] = out[col].astype(str).astype("category")
    return out


def read_results(path: str | Path, seeds: list[int] | None = None) -> pd.DataFrame:
    """The tidy results at `path` (only `seeds`, when given); an empty table, so that every claim
    awaits its runs, when there is no file yet."""
    path = Path(path)
    tidy = pd.read_parquet(path) if path.exists() else tidy_results([])
    for column, before in (("wall_seconds", np.float32(math.nan)), ("source", "test"),
                           ("machine", "unknown")):
        if column not in tidy.columns:  # collected before the column was kept
            tidy[column] = before
    if "code_hash" in tidy.columns:  # runs that recorded a hash of the source: none is current
        tidy = tidy.rename(columns={"code_hash": "code_version"}).astype({"code_version": str})
        tidy["code_version"] = "hash:" + tidy["code_version"]
    return tidy[tidy["seed"].isin(seeds)].reset_index(drop=True) if seeds else tidy


def collect(run_dirs: list[Path], out: str | Path, committed: pd.DataFrame | None = None) -> Path:
    """Tidy the run folders into `out`, keeping the committed runs (of the current code) that no
    folder retrained: a new machine has no outputs/, and its sweep only adds to what the repository
    holds."""
    tidy = tidy_results(run_dirs)
    if committed is not None and len(committed):
        fresh = set(_run_keys(tidy))
        kept = committed[[k not in fresh for k in _run_keys(committed)]]
        as_str = {c: str for c in CATEGORICAL}
        tidy = _compact(pd.concat([tidy.astype(as_str), kept.astype(as_str)], ignore_index=True))
    files.atomic_write(out, lambda tmp: tidy.to_parquet(tmp, index=False))
    print(f"{out}: {len(tidy):,} rows from {tidy['run'].nunique()} runs "
          f"({Path(out).stat().st_size / 1e6:.1f} MB)")
    return Path(out)


def _run_keys(tidy: pd.DataFrame):
    """(variant, seed, threads) of each row: what a retrained run replaces."""
    return zip(tidy["variant"].astype(str), tidy["seed"].astype(int), tidy["threads"].astype(int))


# --- claims against results ---------------------------------------------------------------------

def stand_in(tidy: pd.DataFrame, variant: str) -> str:
    """The variant whose runs a side reads: its own, or, when it has none, those of its twin in
    `tidy`, which it would only repeat (curriculum-mixed on cpu-quick reads the baseline's)."""
    return variant if (tidy["variant"] == variant).any() else _twin_in(tidy, variant)


def distinct(tidy: pd.DataFrame, column: str) -> set[str]:
    """The values a column holds (from a categorical's codes: a str() of every row is slow)."""
    return {str(v) for v in pd.unique(tidy[column])}


def _twin_in(tidy: pd.DataFrame, variant: str) -> str:
    """The first other variant in `tidy` (the baseline first) that runs `variant`'s config on
    tidy's single preset; the variant itself when none does, or when tidy mixes presets."""
    presets = distinct(tidy, "preset")
    if len(presets) != 1:
        return variant
    others = sorted(distinct(tidy, "variant") - {variant}, key=lambda v: (v != "baseline", v))
    return _twin(presets.pop(), variant, tuple(others))


# The test set each preset's claims are judged on: where the recipe nears the ceiling on the
# preset's own test split, differences compress, so the harder set every run also scores decides.
CLAIM_SOURCE = {"cpu-quick": "generated:min_clues=0", "cpu-iters": "generated:min_clues=0"}


def claim_source(tidy: pd.DataFrame, source: str = "auto") -> str:
    """The test set the claims compare on: `source`, or for "auto" the preset's CLAIM_SOURCE when
    every run scored it, else the test split."""
    if source != "auto":
        return source
    presets = distinct(tidy, "preset")
    chosen = CLAIM_SOURCE.get(presets.pop(), "test") if len(presets) == 1 else "test"
    return chosen if chosen in distinct(tidy, "source") else "test"


def side_rows(tidy: pd.DataFrame, side: Side, source: str = "test") -> pd.DataFrame:
    """One side's rows: its variant (or its stand-in) at iterations_x times each run's trained
    count, on the source, with the chosen weights."""
    rows = tidy[(tidy["variant"] == stand_in(tidy, side.variant)) & (tidy["source"] == source)
                & (tidy["iterations"] == side.iterations_x * tidy["trained_iterations"])]
    if rows.empty:
        return rows
    weights = side.weights or ("ema" if (rows["weights"] == "ema").any() else "live")
    return rows[rows["weights"] == weights]


def _matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """(seeds, puzzles) solved; a puzzle some seed lacks is left out, so both axes stay paired."""
    table = rows.pivot_table(index="seed", columns="puzzle", values="solved", aggfunc="mean",
                             observed=True)
    return table.dropna(axis=1)


def compare(tidy: pd.DataFrame, claim: Claim, source: str = "test") -> pd.DataFrame:
    """Per bucket and overall ("all"): A %, B %, A - B with its LEVEL interval (lib.stats), A's,
    B's and A - B's value per seed, seeds and puzzles paired, the interval's verdict ("floor" where
    both sides solve almost nothing), and the log's effect against the interval where it decides.
    On `source`, or on the test split where a side is scored there alone (its "source" says which).
    """
    a_rows, b_rows = side_rows(tidy, claim.a, source), side_rows(tidy, claim.b, source)
    if (a_rows.empty or b_rows.empty) and source != "test":
        # a side scored on the test split alone (an EMA run's live weights) is compared there
        a_test, b_test = side_rows(tidy, claim.a, "test"), side_rows(tidy, claim.b, "test")
        if not (a_test.empty or b_test.empty):
            a_rows, b_rows, source = a_test, b_test, "test"
    if a_rows.empty or b_rows.empty:
        return pd.DataFrame([_row(claim, "all", source)])
    a_mat, b_mat = _matrix(a_rows), _matrix(b_rows)
    seeds = a_mat.index.intersection(b_mat.index)
    puzzles = a_mat.columns.intersection(b_mat.columns)
    if len(seeds) == 0 or len(puzzles) == 0:
        return pd.DataFrame([_row(claim, "all", source)])
    a_mat, b_mat = a_mat.loc[seeds, puzzles], b_mat.loc[seeds, puzzles]
    first = a_rows.drop_duplicates("puzzle").set_index("puzzle")
    bucket_of = first["bucket"].astype(str).reindex(puzzles)
    rows = []
    for bucket in bucket_order([*bucket_of.unique(), "all"]):
        cols = puzzles if bucket == "all" else puzzles[(bucket_of == bucket).to_numpy()]
        parts = paired_parts(a_mat[cols].to_numpy(), b_mat[cols].to_numpy())
        rows.append(_row(claim, bucket, source, parts, [int(s) for s in seeds]))
    return pd.DataFrame(rows)


def _row(claim: Claim, bucket: str, source: str, parts: dict | None = None, seeds=()) -> dict:
    nan = math.nan
    diff, lo, hi = interval(parts, LEVEL) if parts else (nan, nan, nan)
    said = verdict(diff, lo, hi, claim.direction, claim.margin)
    if parts and at_floor(parts):
        said = "floor"
    decides = said in ("holds", "reversed")
    effect = effect_answer(lo, hi, claim.log_effect)
    if parts and not decides and claim.log_effect is not None:
        effect = "not judged"  # the size of an effect whose direction is undecided says nothing
    per = {k: list(parts[k]) if parts else [] for k in ("a_per_seed", "b_per_seed", "per_seed")}
    return {"claim": claim.name, "bucket": bucket, "source": source, "A": claim.a.label(),
            "B": claim.b.label(),
            "A solved %": float(np.mean(per["a_per_seed"])) if parts else nan,
            "B solved %": float(np.mean(per["b_per_seed"])) if parts else nan,
            "A - B (pp)": diff, "CI low": lo, "CI high": hi,
            "n seeds": parts["seeds"] if parts else 0,
            "n puzzles": parts["puzzles"] if parts else 0,
            "seeds": list(seeds), "A per seed": per["a_per_seed"], "B per seed": per["b_per_seed"],
            "per seed (pp)": per["per_seed"], "verdict": said, "decided": decides,
            "log effect (pp)": claim.log_effect, "effect": effect, "parts": parts}


def preset_of(tidy: pd.DataFrame, default: str = "cpu-quick") -> str:
    presets = sorted(distinct(tidy, "preset"))
    return presets[0] if len(presets) == 1 else default


def comparisons(tidy: pd.DataFrame, claims: list[Claim] | None = None,
                source: str = "auto") -> pd.DataFrame:
    """Every claim (the preset's, by default) per bucket and overall, in claim order: the long
    table the claim table summarises."""
    chosen = claim_source(tidy, source)
    claims = claims_for(preset_of(tidy)) if claims is None else claims
    return pd.concat([compare(tidy, c, chosen) for c in claims], ignore_index=True)


def collapsed_seeds(rows: pd.DataFrame) -> dict[int, tuple]:
    """A side's seeds whose training collapsed: seed -> (measure, its value, the best sibling, its
    value). Collapsed: cell accuracy COLLAPSED_CELL_PP below the best sibling's, or under FLOOR_PCT
    solved while a sibling solves at least that (near the floor, where solved % cannot fall
    further, cell accuracy still shows a run that never took off)."""
    if rows.empty:
        return {}
    per = 100 * rows.groupby("seed", observed=True)[["solved", "cell_acc"]].mean()
    found = {}
    for seed, r in per.iterrows():
        others = per.drop(seed)
        if others.empty:
            continue
        cell, solved = others["cell_acc"], others["solved"]
        if r["cell_acc"] < cell.max() - COLLAPSED_CELL_PP:
            found[int(seed)] = ("cell accuracy", r["cell_acc"], int(cell.idxmax()), cell.max())
        elif r["solved"] < FLOOR_PCT <= solved.max():
            found[int(seed)] = ("solved", r["solved"], int(solved.idxmax()), solved.max())
    return found


def collapsed_note(label: str, found: dict[int, tuple]) -> list[str]:
    """One note per measure: "original seeds 0, 3, 4 collapsed: cell accuracy 37-39% vs seed 1's
    78%"."""
    notes = []
    for measure in dict.fromkeys(why[0] for why in found.values()):
        mine = {seed: why for seed, why in found.items() if why[0] == measure}
        low, high = min(w[1] for w in mine.values()), max(w[1] for w in mine.values())
        _, _, best, value = max(mine.values(), key=lambda w: w[3])
        digits = 1 if measure == "solved" else 0  # solved % near the floor: tenths matter
        low, high, value = (f"{x:.{digits}f}" for x in (low, high, value))
        span = f"{low}%" if low == high else f"{low}-{high}%"
        seeds = ", ".join(map(str, mine))
        notes.append(f"{label} seed{'s' * (len(mine) > 1)} {seeds} collapsed: {measure} {span} vs "
                     f"seed {best}'s {value}%")
    return notes


# --- how many seeds: triage and the adaptive plan -----------------------------------------------

def trains_as(preset: str, variant: str, claims: list[Claim] | None = None) -> str:
    """The variant whose runs a claim side on `preset` reads: itself, or its twin among those that
    train."""
    need = variants_to_train(preset, claims)
    return variant if variant in need else _twin(preset, variant, tuple(need))


@functools.lru_cache(maxsize=None)
def _side_config(preset: str, variant: str):
    try:
        return make_config(preset, variant)
    except ConfigError:
        return None


def seed_cap(claim: Claim, preset: str) -> int:
    """The most seeds a claim gets: MAX_SEEDS, or SAM_SEEDS where a side trains with SAM."""
    configs = [_side_config(preset, s.variant) for s in (claim.a, claim.b)]
    if any(cfg is not None and cfg.optim.name == "sam" for cfg in configs):
        return SAM_SEEDS_BY_CLAIM.get(claim.name, SAM_SEEDS)
    return MAX_SEEDS


def why_untestable(claim: Claim, preset: str) -> str:
    """Why `preset` cannot test the claim ("" when it can), from its sides' configs."""
    configs = [_side_config(preset, s.variant) for s in (claim.a, claim.b)]
    return claim.why_untestable(preset, [cfg for cfg in configs if cfg is not None])


def prior_spread(tidy: pd.DataFrame, source: str) -> tuple[float, str]:
    """The seed spread (sd of one seed's A - B, pp) that projects a claim with fewer than 2 seeds,
    and where it comes from: the baseline's seed-to-seed sd of solved % in `tidy` (at least 2
    seeds), else PRIOR_SEED_SD_PP. Taking A - B's sd as one variant's assumes A's and B's seeds are
    each as variable as the baseline's and correlated 0.5 through their shared initial weights and
    batch order (2 s^2 (1 - 0.5) = s^2); the puzzle term is taken as 0. Both make the projection
    narrow, so a claim is called undecidable before its runs only when even that cannot decide it.
    """
    rows = side_rows(tidy, Side("baseline"), source) if len(tidy) else tidy
    per_seed = 100 * rows.groupby("seed", observed=True)["solved"].mean() if len(rows) else []
    if len(per_seed) >= 2:
        sd = float(np.std(per_seed, ddof=1))
        return sd, f"the baseline's seed sd here ({len(per_seed)} seeds)"
    return PRIOR_SEED_SD_PP, "the cpu-quick baseline's seed sd (PRIOR_SEED_SD_PP)"


def judge(claim: Claim, preset: str, parts: dict | None, prior: tuple[float, str] | None) -> dict:
    """What a claim reads, why, and the seeds it needs (`target`: its sides get every seed below
    it). `parts`: its paired results (None without runs); `prior`: the spread that projects it
    before 2 seeds (None where A and B are one run, whose difference no other spread describes)."""
    n = parts["seeds"] if parts else 0
    cap = seed_cap(claim, preset)
    spread, came = None, ""
    if n >= 2:
        spread, came = parts, f"these runs ({n} seeds)"
    elif prior:
        spread, came = prior_parts(0.0, prior[0], 1), f"prior: {prior[0]:.1f}pp, {prior[1]}"
    out = {"cap": cap, "half-width at cap (pp)": math.nan, "detectable at cap (pp)": math.nan,
           "spread from": came, "target": 0}
    if spread is not None:
        out["half-width at cap (pp)"] = half_width(spread, LEVEL, cap)
        out["detectable at cap (pp)"] = detectable_effect(spread, cap)
    reason = why_untestable(claim, preset)
    if reason:
        return {**out, "status": "not testable here", "reason": reason}
    if n >= START_SEEDS:
        return {**out, **_judge_runs(claim, parts, cap, out["detectable at cap (pp)"])}
    gap = room(claim.direction, claim.margin, claim.log_effect)
    if spread is not None and not math.isnan(gap) and out["half-width at cap (pp)"] >= gap:
        return {**out, "status": "undecidable at this scale", "reason": (
            f"the log's effect lies {gap:.1f}pp from the boundary, inside a {cap}-seed interval's "
            f"±{out['half-width at cap (pp)']:.1f}pp; detectable at {cap} seeds: "
            f"{out['detectable at cap (pp)']:.1f}pp")}
    return {**out, "status": "awaiting runs", "reason": f"starts at {START_SEEDS} seeds",
            "target": START_SEEDS}


def _judge_runs(claim: Claim, parts: dict, cap: int, detectable: float) -> dict:
    """judge() for a claim with at least START_SEEDS seeds: its interval decides, or gets more
    seeds, or is undecidable."""
    n = parts["seeds"]
    untrained = untrained_side(claim, parts)  # before the floor: it says why a side sits there
    if untrained:
        return {"status": "not testable here", "reason": untrained}
    if at_floor(parts):
        return {"status": "undecidable at this scale", "reason": (
            f"floor: no seed of either side solves {FLOOR_PCT:g}% of the puzzles, where an "
            "interval says nothing (seeds that take off now and then set the expected "
            "difference)")}
    diff, lo, hi = interval(parts, LEVEL)
    if decided(lo, hi, claim.direction, claim.margin):
        return {"status": verdict(diff, lo, hi, claim.direction, claim.margin),
                "reason": f"decided at {n} seeds"}
    more = seeds_to_add(parts, claim.direction, claim.margin, cap, SEED_STEP)
    if more:
        return {"status": "awaiting runs", "target": n + more,
                "reason": f"undecided at {n} seeds; projected at {cap}, it would be decided"}
    why = f"undecided at its cap of {cap} seeds" if n >= cap else \
        f"undecided at {n} seeds, and {cap} would not decide it"
    return {"status": "undecidable at this scale",
            "reason": f"{why}; detectable at {cap} seeds: {detectable:.1f}pp"}


def untrained_side(claim: Claim, parts: dict) -> str:
    """Why a claim cannot be tested where one side, scored at its trained iteration count, solves
    under FLOOR_PCT on every seed while the log's same side solved LOG_LEARNED_PCT or more ("" when
    not): this scale does not train that setting (batch-4096's batch of 8, say), so A - B is the
    other side's own solve rate (or the floor's 0, where it solves nothing too), not what the knob
    does. A side scored beyond its trained count that solves nothing is a measured collapse, not an
    untrained side, and is judged."""
    sides, per_seed = (claim.a, claim.b), (parts["a_per_seed"], parts["b_per_seed"])
    for i, (side, seeds, logged) in enumerate(zip(sides, per_seed, claim.log_sides)):
        if side.iterations_x != 1 or logged is None or logged < LOG_LEARNED_PCT:
            continue
        if under_floor(seeds):
            other = sides[1 - i].label()
            a_minus_b = (f"0, {other} solving nothing either" if under_floor(per_seed[1 - i])
                         else f"{other}'s own solve rate")
            return (f"{side.label()} solves under {FLOOR_PCT:g}% on every seed here, where the "
                    f"log's solved {logged:.1f}%: this scale does not train it, so A - B is "
                    f"{a_minus_b}, not what the knob does")
    return ""


def seed_plan(tidy: pd.DataFrame, preset: str, claims: list[Claim] | None = None,
              source: str = "auto", compared: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per claim: the seeds its sides share, its cap, what it reads and why (judge), the projected
    half-width and detectable effect at its cap and the spread they come from, the runs it still
    needs (`jobs`) and their cost in baseline-run units (run_cost, for ordering the sweep). A claim
    starts at START_SEEDS, and gets SEED_STEP more while its interval straddles a boundary and the
    interval projected at its cap would decide it; neither an undecidable nor an untestable claim
    asks for a run."""
    claims = claims_for(preset) if claims is None else claims
    chosen = claim_source(tidy, source) if len(tidy) else "test"
    if compared is None and len(tidy):
        compared = comparisons(tidy, claims, chosen)
    overall = None
    if compared is not None:
        overall = compared[compared["bucket"] == "all"].set_index("claim")
    prior = prior_spread(tidy, chosen)
    rows = []
    for c in claims:
        sides = list(dict.fromkeys(trains_as(preset, s.variant, claims) for s in (c.a, c.b)))
        have = [set(tidy.loc[tidy["variant"] == v, "seed"].astype(int)) for v in sides]
        parts = overall.loc[c.name, "parts"] if overall is not None else None
        judged = judge(c, preset, parts if isinstance(parts, dict) else None,
                       prior if len(sides) == 2 else None)
        target = judged.pop("target")
        jobs = [(v, seed) for v, mine in zip(sides, have) for seed in range(target)
                if seed not in mine]
        if judged["status"] == "awaiting runs" and jobs:
            judged["status"] = f"awaiting {len(jobs)} run" + "s" * (len(jobs) > 1)
        elif judged["status"] == "awaiting runs" and len(tidy):
            judged["reason"] = unscored(tidy, c, chosen) or judged["reason"]
        cost = float(round(sum(run_cost(preset, v) for v, _ in jobs), 1))  # 0.0 when none, not 0
        trained = trained_hours(tidy, sides) if _seeds(parts) else 0.0  # a compared claim's runs
        rows.append({"claim": c.name, "variants": ", ".join(sides), "seeds": _seeds(parts),
                     **judged, "trained (CPU h)": trained, "jobs": jobs, "cost": cost})
    return pd.DataFrame(rows)


def unscored(tidy: pd.DataFrame, claim: Claim, source: str) -> str:
    """Why a claim whose runs are trained still has nothing to compare ("" when that is not so):
    a side's runs were never scored at the claim's multiple of their trained count."""
    for side in (claim.a, claim.b):
        runs = tidy[(tidy["variant"] == stand_in(tidy, side.variant)) & (tidy["source"] == source)]
        if runs.empty or not side_rows(tidy, side, source).empty:
            continue
        trained = sorted({int(t) for t in runs["trained_iterations"]})
        counts = [str(n) for n in sorted({int(n) for n in runs["iterations"]})]
        scored = " and ".join([", ".join(counts[:-1]), counts[-1]] if len(counts) > 1 else counts)
        wanted = ", ".join(str(side.iterations_x * t) for t in trained)
        return (f"{side.variant}'s runs ({runs['seed'].nunique()} seeds) are scored at {scored} "
                f"iterations only, not at the {side.iterations_x}x of their trained count "
                f"({wanted}) this claim reads")
    return ""


def trained_hours(tidy: pd.DataFrame, variants: list[str]) -> float:
    """What a compared claim's runs cost: their training wall time times torch threads, in hours,
    as measured on the machine that ran them. Only the seeds every side has count, the ones its
    comparison pairs (a run two claims read counts in each)."""
    runs = tidy[tidy["variant"].astype(str).isin(variants)]
    seeds = [set(runs.loc[runs["variant"].astype(str) == v, "seed"]) for v in variants]
    runs = runs[runs["seed"].isin(set.intersection(*seeds))].drop_duplicates("run")
    return round(float((runs["wall_seconds"] * runs["threads"]).sum()) / 3600, 1)


def _seeds(parts) -> int:
    return parts["seeds"] if isinstance(parts, dict) else 0


def status_kind(status: str) -> str:
    """One of STATUSES: "awaiting 6 runs" is "awaiting runs"."""
    return "awaiting runs" if status.startswith("awaiting") else status


def plan_grid(plan: pd.DataFrame, preset: str) -> dict:
    """The plan's runs as a sweep grid (`jobs:`): the cheapest claims first, so that a sweep cut
    short has finished whole claims; a run two claims need is listed once, where the first needs
    it."""
    jobs = []
    for _, r in plan.sort_values("cost", kind="stable").iterrows():
        jobs += [j for j in r["jobs"] if j not in jobs]
    listed = [{"variant": v, "seed": int(seed)} for v, seed in jobs]
    return {"jobs": listed, "fixed": {"preset": preset}}


@functools.lru_cache(maxsize=None)
def run_cost(preset: str, variant: str) -> float:
    """A run's training cost relative to the preset's baseline: sample-iterations through the core,
    times its width, times 2 for SAM's second pass (a proxy; the cost table reports measured
    minutes)."""
    def work(cfg) -> float:
        m = cfg.model
        per = m.n_layers * m.d_model * (4 * m.d_model + 2 * m.d_ff)
        sam = 2 if cfg.optim.name == "sam" else 1
        return cfg.train.steps * cfg.train.batch_size * m.iterations * per * sam
    return work(make_config(preset, variant)) / work(make_config(preset))


def plan_rule(prior: str = "") -> str:
    """The seed rule in one paragraph, for the plan's printout and FINDINGS.md."""
    caps = ", ".join(f"{k}: {v}" for k, v in SAM_SEEDS_BY_CLAIM.items())
    spread = f" ({prior.removeprefix('prior: ')})" if prior else ""
    return (f"Every claim starts at {START_SEEDS} seeds and gets {SEED_STEP} more while its "
            f"{LEVEL:.1%} interval straddles a decision boundary and the interval projected at "
            f"its cap would decide it; the cap is {MAX_SEEDS} seeds, {SAM_SEEDS} where a side "
            f"trains with SAM (twice the cost; {caps}). A claim is undecidable at this scale "
            "where both sides sit at the floor (neither one the log trained), or where the "
            "interval at its cap would not decide it: projected from its own runs' spreads once "
            f"it has 2 seeds, before that from a prior seed spread{spread}, centred on the log's "
            "effect. Neither it nor a claim not testable here asks for runs.")


def plan_text(plan: pd.DataFrame) -> str:
    """What the plan spends and why, for the sweep's log and the notebook."""
    prior = next((s for s in plan["spread from"] if s.startswith("prior")), "")
    runs = len({j for jobs in plan["jobs"] for j in jobs})
    lines = [f"{r['claim']}: {r['seeds']} of {r['cap']} seeds ({r['variants']}): {r['status']}"
             + (f" ({r['cost']:g} baseline-runs)" if r["jobs"] else "") + f"; {r['reason']}"
             for _, r in plan.iterrows()]
    return "\n".join([plan_rule(prior), *lines, f"{runs} runs to train"])


# --- the claim table ----------------------------------------------------------------------------

def claim_table(tidy: pd.DataFrame, claims: list[Claim] | None = None, source: str = "auto",
                compared: pd.DataFrame | None = None, plan: pd.DataFrame | None = None,
                preset: str = "") -> pd.DataFrame:
    """One row per claim: the log's section and figure, our figure (A, B, A - B and its LEVEL
    interval), A's, B's and A - B's value per seed (a collapsed seed marked †), what the claim
    reads (the plan's status: a verdict, not testable here, undecidable at this scale, or the runs
    it awaits), the log's effect against our interval where the direction is decided, whether the
    verdict survives Holm's correction, and notes (why, what the scale tests, collapsed seeds, and
    runs that mix configs, code, machines or thread counts)."""
    preset = preset or preset_of(tidy)
    claims = claims_for(preset) if claims is None else claims
    source = claim_source(tidy, source) if len(tidy) else "test"
    compared = comparisons(tidy, claims, source) if compared is None else compared
    plan = seed_plan(tidy, preset, claims, source, compared) if plan is None else plan
    overall = compared[compared["bucket"] == "all"].set_index("claim")
    status = plan.set_index("claim")
    kept = _holm(claims, overall, status)
    rows = [_claim_row(tidy, c, overall.loc[c.name], status.loc[c.name], kept.get(c.name, ""), source)
            for c in claims]
    return pd.DataFrame(rows)


def _claim_row(tidy: pd.DataFrame, c: Claim, r, s, holm_kept: str, table_source: str) -> dict:
    source = r["source"]
    moved = "" if source == table_source else \
        f"compared on the {source} split: a side is scored there alone, not on {table_source}"
    flagged = [collapsed_seeds(side_rows(tidy, side, source)) if len(tidy) else {}
               for side in (c.a, c.b)]
    notes = list(dict.fromkeys(note for side, found in zip((c.a, c.b), flagged)
                               for note in collapsed_note(side.label(), found)))
    return {
        "claim": c.text, "log section": c.section, "log figure": c.log_figure,
        "expected": f"A {c.direction} B" + (f" (±{c.margin:g}pp)" if c.direction in "≈≥≤" else ""),
        "our figure": _our_figure(r),
        "A per seed (%)": _seed_values(r["A per seed"], r["seeds"], flagged[0]),
        "B per seed (%)": _seed_values(r["B per seed"], r["seeds"], flagged[1]),
        "A - B per seed (pp)": ", ".join(f"{v:+.1f}" for v in r["per seed (pp)"]),
        "n seeds": int(r["n seeds"]), "scale": _scale(tidy, c, source),
        "verdict": s["status"], "log's effect": _effect_text(c, r, s["status"]),
        "Holm 5%": holm_kept, "collapses at (A; B)": _collapse_text(tidy, c, source),
        "note": "; ".join(filter(None, [s["reason"], _claim_note(tidy, c), *notes,
                                        moved, _one_side_floor_note(c, r, s["status"]),
                                        *(_chance_note(tidy, side, source) for side in (c.a, c.b)),
                                        *_provenance_notes(tidy, c, source)])),
    }


def _chance_note(tidy: pd.DataFrame, side: Side, source: str) -> str:
    """A side whose every seed's cell accuracy on the blanks is within CHANCE_PP of guessing one of
    n digits never learned: its runs say this setting does not train here, not what its knob does."""
    rows = side_rows(tidy, side, source) if len(tidy) else tidy
    if rows.empty:
        return ""
    n = int(rows["grid_size"].iloc[0])
    per = 100 * rows.groupby("seed", observed=True)["cell_acc"].mean()
    if (per > 100 / n + CHANCE_PP).any():
        return ""
    return (f"{side.label()} never learns: cell accuracy {per.min():.1f}-{per.max():.1f}% on every "
            f"seed, where guessing one of {n} digits scores {100 / n:.1f}%")


def _one_side_floor_note(c: Claim, r, status: str) -> str:
    """Where one side solves under FLOOR_PCT on every seed and the other does not, A - B is the
    other side's own solve rate: the claim then says the floored side does not learn here, not
    how much two learners differ (the log's both sides may have learned). A claim not testable
    here reads no A - B, so it needs no such note."""
    if status == "not testable here":
        return ""
    low = [under_floor(r["A per seed"]), under_floor(r["B per seed"])]
    if low[0] == low[1]:
        return ""
    floored, other = (c.a, c.b) if low[0] else (c.b, c.a)
    return (f"{floored.label()} solves under {FLOOR_PCT:g}% on every seed (the floor): A - B is "
            f"{other.label()}'s own solve rate here")


def _seed_values(values, seeds, flagged: dict) -> str:
    marked = (f"{v:.1f}" + ("†" if seed in flagged else "") for v, seed in zip(values, seeds))
    return ", ".join(marked)


def _effect_text(c: Claim, r, status: str) -> str:
    """The log's effect, judged against our interval only where the direction is decided."""
    if c.log_effect is None:
        return ""
    if status in ("holds", "reversed"):
        return f"{c.log_effect:+.1f}pp: {r['effect']}"
    if int(r["n seeds"]) and status_kind(status) != "not testable here":
        return f"{c.log_effect:+.1f}pp: not judged (direction undecided)"
    return f"{c.log_effect:+.1f}pp"


def _holm(claims: list[Claim], overall: pd.DataFrame, status: pd.DataFrame) -> dict:
    """Claim -> "kept" / "not kept" (a verdict, by Holm's step-down at family-wise 5%) or
    "undecided" (in the family, no verdict). The family: every claim judged on at least START_SEEDS
    seeds, away from the floor and testable here."""
    def judged(c: Claim) -> bool:
        r, untestable = overall.loc[c.name], status.loc[c.name, "status"] == "not testable here"
        return (isinstance(r["parts"], dict) and r["n seeds"] >= START_SEEDS
                and r["verdict"] != "floor" and not untestable)
    family = [c for c in claims if judged(c)]
    kept = holm([overall.loc[c.name, "parts"] for c in family], [c.direction for c in family],
                [c.margin for c in family])
    verdicts = {c.name: status.loc[c.name, "status"] in ("holds", "reversed") for c in family}
    return {c.name: ("kept" if k else "not kept") if verdicts[c.name] else "undecided"
            for c, k in zip(family, kept)}


def multiplicity_text(table: pd.DataFrame) -> str:
    """The multiplicity of the claim table's verdicts, in one paragraph."""
    family = table[table["Holm 5%"] != ""]
    verdicts = family[family["Holm 5%"] != "undecided"]
    m, v = len(family), len(verdicts)
    kept = int((verdicts["Holm 5%"] == "kept").sum())
    return (f"**Multiplicity.** {m} claims were judged on at least {START_SEEDS} seeds, {v} of "
            f"them with a verdict. Holm's step-down over the {m} at a family-wise 5% (a claim's "
            "p-value: the level at which its last interval stops deciding it) keeps "
            f"{kept} of the {v} verdicts (column Holm 5%). Each claim's seed rule decides wrongly "
            f"at most 5% of the time (tests/test_stats.py), so at most {0.05 * v:.2f} of the {v} "
            "verdicts are expected to be wrong.")


def _collapse_text(tidy: pd.DataFrame, claim: Claim, source: str) -> str:
    """For a claim scored beyond the trained count: each side's collapse point per seed (the first
    scored count at least 5pp below the best so far, lib.test_time), "none" where a seed never
    collapses."""
    if claim.a.iterations_x == 1 and claim.b.iterations_x == 1:
        return ""
    texts = []
    for side in (claim.a, claim.b):
        rows = tidy[(tidy["variant"] == stand_in(tidy, side.variant)) & (tidy["source"] == source)]
        default = "ema" if (rows["weights"] == "ema").any() else "live"
        rows = rows[rows["weights"] == (side.weights or default)]
        if rows.empty:
            return ""
        curve = 100 * rows.groupby(["seed", "iterations"], observed=True)["solved"].mean()
        points = [collapse_at(g.index.get_level_values("iterations"), g.to_numpy())
                  for _, g in curve.groupby(level="seed")]
        texts.append(", ".join("none" if p is None else str(p) for p in points))
    return "; ".join(texts)


def _claim_note(tidy: pd.DataFrame, claim: Claim) -> str:
    """The claim's own note for the preset(s) its results come from."""
    notes = []
    for preset in sorted(distinct(tidy, "preset")):
        try:
            cfg = make_config(preset)
        except ConfigError:
            cfg = None
        notes.append(claim.note(preset, cfg))
    return "; ".join(filter(None, notes))


def _our_figure(r) -> str:
    if r["verdict"] == "not run":
        return "—"
    return (f"{r['A']} {r['A solved %']:.1f}% vs {r['B']} {r['B solved %']:.1f}%: "
            f"{r['A - B (pp)']:+.1f}pp [{r['CI low']:+.1f}, {r['CI high']:+.1f}]")


def _scale(tidy: pd.DataFrame, claim: Claim, source: str) -> str:
    parts = []
    for side in (claim.a, claim.b):
        rows = side_rows(tidy, side, source)
        if rows.empty:
            return ""
        first = rows.iloc[0]
        parts.append((int(first["grid_size"]), int(first["iterations"]), int(first["params"])))
    (grid, it_a, p_a), (_, it_b, p_b) = parts
    its = f"{it_a}" if it_a == it_b else f"{it_a} vs {it_b}"
    params = f"{p_a / 1e3:.0f}K" if p_a == p_b else f"{p_a / 1e3:.0f}K vs {p_b / 1e3:.0f}K"
    return f"{grid}x{grid} {source}, {its} iterations, {params} params"


def _provenance_notes(tidy: pd.DataFrame, claim: Claim, source: str) -> list[str]:
    rows = pd.concat([side_rows(tidy, claim.a, source), side_rows(tidy, claim.b, source)])
    preset, notes = ", ".join(sorted(distinct(tidy, "preset"))), []
    for v in dict.fromkeys([claim.a.variant, claim.b.variant]):
        same = _twin_in(tidy, v)
        if same == v:
            continue
        own = (tidy["variant"] == v).any()
        notes.append(f"{v} runs the same config as {same} on {preset}" if own
                     else f"{v} runs {same}'s config on {preset}: read from {same}'s runs")
    for side in dict.fromkeys([claim.a.variant, claim.b.variant]):
        mine = rows[rows["variant"] == stand_in(tidy, side)]
        if mine["config_hash"].nunique() > 1:
            notes.append(f"{side} runs differ in config")
        if (mine.groupby("seed", observed=True)["run"].nunique() > 1).any():
            notes.append(f"{side} has several runs of one seed (averaged)")
    mixed = (("code_version", "code"), ("threads", "thread counts"), ("machine", "machines"))
    for col, what in mixed:
        if rows[col].nunique() > 1:
            notes.append(f"runs from different {what}")
    return notes


# --- the other tables ---------------------------------------------------------------------------

def variant_table(tidy: pd.DataFrame, source: str = "test") -> pd.DataFrame:
    """Per variant and bucket: solved % at the trained count (default weights) on `source`, mean
    and 95% CI over seeds."""
    columns = ["variant", "bucket", "solved % (final)", "CI low", "CI high", "n seeds"]
    out = []
    for (variant, bucket), g in per_seed(tidy, source).groupby(["variant", "bucket"]):
        m, lo, hi = mean_ci(g["solved %"])
        out.append(dict(zip(columns, [variant, bucket, m, max(lo, 0.0), min(hi, 100.0), len(g)])))
    table = pd.DataFrame(out, columns=columns)
    table["bucket"] = pd.Categorical(table["bucket"], bucket_order(table["bucket"]))
    return table.sort_values(["variant", "bucket"]).set_index(["variant", "bucket"]).round(1)


def seed_table(tidy: pd.DataFrame, source: str = "test") -> pd.DataFrame:
    """Variants x seeds: overall solved % at the trained count, a collapsed seed seen at once."""
    seeds = per_seed(tidy, source)
    overall = seeds[seeds["bucket"] == "all"]
    return overall.pivot(index="variant", columns="seed", values="solved %").round(1)


def cost_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per variant: runs, parameters, torch threads and training minutes per run on the machine
    that ran them: what each claim costs, and what the whole sweep took."""
    runs = tidy.drop_duplicates("run").astype({"variant": str})
    table = runs.groupby("variant").agg(runs=("run", "size"), params=("params", "first"),
                                        threads=("threads", "first"),
                                        minutes_per_run=("wall_seconds", "mean"))
    table["minutes_per_run"] = (table["minutes_per_run"] / 60).round(1)
    total = runs.groupby("variant")["wall_seconds"].sum(min_count=1)
    table["total_minutes"] = (total / 60).round(0)
    return table.sort_values("total_minutes", ascending=False)


def bucket_table(compared: pd.DataFrame) -> pd.DataFrame:
    """Claims x buckets: A - B (pp) with its LEVEL interval and what it says in each bucket."""
    done = compared[compared["verdict"] != "not run"]
    cell = done.apply(lambda r: f"{r['A - B (pp)']:+.1f} [{r['CI low']:+.1f}, "
                                f"{r['CI high']:+.1f}] {r['verdict']}", axis=1)
    wide = done.assign(cell=cell).pivot(index="claim", columns="bucket", values="cell")
    claims = [c for c in dict.fromkeys(compared["claim"]) if c in wide.index]
    return wide.reindex(index=claims, columns=bucket_order(wide.columns)).fillna("")


def per_seed(tidy: pd.DataFrame, source: str = "test") -> pd.DataFrame:
    """Solved % per variant x bucket (and "all") x seed at the trained count on `source`, default
    weights."""
    variants = [str(v) for v in pd.unique(tidy["variant"])]
    rows = pd.concat([side_rows(tidy, Side(v), source) for v in variants] or [tidy])
    both = pd.concat([rows.assign(bucket="all"), rows.assign(bucket=rows["bucket"].astype(str))])
    solved = both.groupby(["variant", "bucket", "seed"], observed=True)["solved"].mean().mul(100)
    return solved.rename("solved %").reset_index().astype({"variant": str})


# --- the notebook's files -----------------------------------------------------------------------

# cpu-smoke runs are too small to be findings: the smoke preset renders the committed test fixture
FIXTURES = {"cpu-smoke": REPO / "tests" / "fixtures" / "findings-cpu-smoke.parquet"}
HEADLINE_PRESET = "cpu-quick"  # whose findings the repository's FINDINGS.md reports
REPORTS = {HEADLINE_PRESET: "FINDINGS.md", "cpu-iters": "FINDINGS-sequel.md"}  # the sequel's own
README = REPO / "README.md"  # holds a copy of each report's verdicts between markers


def results_path_for(preset: str, results_path: str = "") -> Path:
    """The tidy results a findings notebook renders: `results_path`, else
    findings/<preset>.parquet."""
    if results_path:
        return Path(results_path)
    return FIXTURES.get(preset, REPO / "findings" / f"{preset}.parquet")


def findings_md_path(findings_md: str, preset: str, results_path: str,
                     output_dir: Path) -> Path | None:
    """Where FINDINGS.md goes. "auto": the repository's FINDINGS.md for the headline preset's
    committed results, the run folder otherwise (so smoke runs never overwrite it); "": nowhere;
    else the path."""
    if findings_md == "auto":
        committed = preset in REPORTS and not results_path
        return REPO / REPORTS[preset] if committed else Path(output_dir) / "FINDINGS.md"
    return Path(findings_md) if findings_md else None


def regenerate_command(preset: str) -> str:
    """The commands FINDINGS.md gives for regenerating itself."""
    sweep = f"make findings PRESET={preset}  # trains the missing runs, then renders the notebook"
    render = f"python -m lib.cli run notebooks/10_findings.ipynb -p preset {preset}"
    return f"{sweep}\n{render}  # renders only"


def output_folder(output_dir: str) -> Path:
    """The folder the runner gave this notebook, or outputs/findings/lab when run in JupyterLab."""
    out = Path(output_dir) if output_dir else OUTPUTS / "findings" / "lab"
    out.mkdir(parents=True, exist_ok=True)
    return out


def tally(table: pd.DataFrame) -> dict:
    """How many claims read each of STATUSES."""
    kinds = table["verdict"].map(status_kind)
    return {s: int((kinds == s).sum()) for s in STATUSES}


def finish(output_dir: Path, tidy: pd.DataFrame, table: pd.DataFrame, params: dict) -> dict:
    """The findings run's summary.json for the index: what the claims read, and each variant's
    solved % per bucket."""
    solved = variant_table(tidy)["solved % (final)"]
    summary = {
        "kind": NOTEBOOK_RUN, "status": "complete", "family": Path(output_dir).parent.name,
        "run": Path(output_dir).name, "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "params": params, "variants": sorted(distinct(tidy, "variant")),
        "seeds": sorted(int(s) for s in tidy["seed"].unique()),
        "grid_size": int(tidy["grid_size"].iloc[0]) if len(tidy) else "",
        "verdicts": tally(table),
        "solved_final": {f"{v}:{b}": float(x) for (v, b), x in solved.items()},
    }
    write_json(Path(output_dir) / "summary.json", summary)
    return summary


# --- report -------------------------------------------------------------------------------------

def markdown_table(df: pd.DataFrame) -> str:
    cells = [[str(v).replace("|", "\\|") for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


READING = (
    "A is the left side of each comparison, B the right; the scale column names the grid, test "
    "set and iteration counts. Our figure is solved % of each, and A - B in percentage points "
    f"with a {LEVEL:.1%} interval over seeds and test puzzles (lib/findings/stats.py: the seeds' t term "
    "plus the test sample's own, the cells' noise counted once; its coverage is tested by "
    "simulation). Beside it, A's and B's solved % and A - B per seed, a collapsed seed marked † "
    f"(cell accuracy {COLLAPSED_CELL_PP:g}pp below its best sibling's, or under {FLOOR_PCT:g}% "
    "solved while a sibling solves more; it stays in the interval, which is over seeds as they "
    "come). What a claim reads is computed from its runs: **holds** when the interval excludes 0 "
    "in the log's direction (≈: lies within ±margin; ≥ / ≤: excludes the wrong side of the "
    "margin), **reversed** when it decides the other way; **undecidable at this scale** when "
    "both sides solve almost nothing on every seed (the floor) and neither is a side the log "
    "trained, or when the seeds it may get would not decide it (the note gives the effect they "
    "could detect); **not testable here** when the preset cannot carry what the claim needs, or "
    f"when a side that learned in the log (solved {LOG_LEARNED_PCT:g}% or more) solves under "
    f"{FLOOR_PCT:g}% on every seed here at its trained iteration count (this scale does not train "
    "it, whatever the other side does); **awaiting N runs** when it has "
    "not had its seeds yet (**awaiting runs** with none to train: a side's runs were not scored "
    "where the claim reads them, and the note says so). Only a decided direction has its size "
    "judged: the log's effect is "
    "**consistent** (inside our interval), **smaller** (our interval lies between 0 and it), "
    "**smaller, maybe none** (below it and straddling 0), **larger** (beyond it), or "
    "**excluded** (our interval has the other sign). A disagreement with the log is a finding.")


def write_findings_md(table: pd.DataFrame, path: str | Path, command: str, source: str = "",
                      code: str = "", preset: str = HEADLINE_PRESET,
                      plan: pd.DataFrame | None = None) -> Path:
    """FINDINGS.md: the claim table, its multiplicity, the seeds each claim got and why, and the
    command that regenerates it. Written by the notebook only."""
    counts = tally(table)
    what = "the log's claims"
    if preset == "cpu-iters":
        what = "the sequel's conditions for test-time scaling"
    seeds = ""
    if plan is not None:
        shown = plan.drop(columns=["jobs"])
        shown = shown.rename(columns={"cost": "runs to train (baseline-runs)"})
        shown = shown.round({"half-width at cap (pp)": 1, "detectable at cap (pp)": 1})
        prior = next((s for s in plan["spread from"] if s.startswith("prior")), "")
        seeds = f"## Seeds per claim\n\n{plan_rule(prior)}\n\n{markdown_table(shown)}"
    text = "\n\n".join(filter(None, [
        f"# Findings: which of {what} hold at CPU scale ({preset})",
        "Generated by `notebooks/10_findings.ipynb`; do not edit by hand. Regenerate with:",
        f"```\n{command}\n```",
        (f"Results: `{source}`. " if source else "") + code,
        f"{tally_text(counts)} {READING}",
        markdown_table(table), multiplicity_text(table), seeds, ""]))
    written = write_text(path, text)
    if plan is not None and Path(path).resolve() == (REPO / REPORTS.get(preset, "-")).resolve():
        write_readme_table(README, preset, readme_table(table, plan))  # the README's copy of the verdicts
    return written


def tally_text(counts: dict) -> str:
    """The tally in bold, as FINDINGS.md and the README open: "**3 holds, 0 reversed, ...**"."""
    return f"**{', '.join(f'{n} {s}' for s, n in counts.items())}.**"


def readme_markers(preset: str) -> tuple[str, str]:
    return (f"<!-- {preset} verdicts: written by notebooks/10_findings.ipynb with {REPORTS[preset]} -->",
            f"<!-- end of {preset} verdicts -->")


def readme_table(table: pd.DataFrame, plan: pd.DataFrame) -> str:
    """The README's table of verdicts: per claim what it reads, on how many seeds, the log's effect
    against ours, what its runs cost and what it still needs (the report has the figures)."""
    rows = pd.DataFrame({
        "claim": plan["claim"], "verdict": table["verdict"], "seeds": plan["seeds"],
        "log's effect": table["log's effect"], "trained (CPU h)": plan["trained (CPU h)"],
        "to train (baseline-runs)": plan["cost"]})
    return f"{tally_text(tally(table))}\n\n{markdown_table(rows)}"


def write_readme_table(path: Path, preset: str, block: str) -> Path | None:
    """Replace the block between the preset's markers in the README; a README without them is
    left alone."""
    begin, end = readme_markers(preset)
    text = path.read_text()
    if begin not in text or end not in text:
        return None
    head, rest = text.split(begin, 1)
    return write_text(path, f"{head}{begin}\n{block}\n{end}{rest.split(end, 1)[1]}")


# --- are the committed results the current code's? ----------------------------------------------

def staleness(tidy: pd.DataFrame) -> tuple[int, int]:
    """(runs, runs made by other code than the current)."""
    runs = tidy.drop_duplicates("run")
    other = runs["code_version"].astype(str) != code_identity()["code_version"]
    return len(runs), int(other.sum())


def code_status(tidy: pd.DataFrame) -> str:
    """One line for FINDINGS.md: which code made the results, and whether it is the code checked
    out now."""
    current = code_identity()["code_version"]
    if tidy.empty:
        return (f"No runs yet: every claim awaits its seeds from the current code (version `{current}` of "
                "lib's computing modules).")
    runs = tidy.drop_duplicates("run")
    stale = runs[runs["code_version"].astype(str) != current]
    commits = ", ".join(sorted({c.split("+")[0][:7] for c in runs["commit"].astype(str)}))
    if stale.empty:
        return (f"All {len(runs)} runs were made by the current code (version `{current}` of "
                f"lib's computing modules; commits {commits}): retraining one reproduces it "
                "puzzle by puzzle on the machine that recorded it, and within its seed spread on "
                "another (`findings reproduce`).")
    versions = ", ".join(sorted(set(stale["code_version"].astype(str))))
    return (f"**Stale: {len(stale)} of {len(runs)} runs were made by other code** (version "
            f"{versions}, not the current `{current}`). `make findings` retrains them.")


def current_runs(tidy: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs the current code would make again: its code version, and the config it
    builds for the run's preset, variant, seed and thread count. Only these count as finished for a
    sweep."""
    if tidy.empty:
        return tidy
    current = code_identity()["code_version"]
    runs = tidy.drop_duplicates("run")
    keep = [r["run"] for _, r in runs.iterrows() if str(r["code_version"]) == current
            and str(r["config_hash"]) == config_hash(_rebuilt(r).to_dict())]
    return tidy[tidy["run"].isin(keep)]


def _rebuilt(row, overrides: dict | None = None):
    """The config the current code builds for a committed run's preset, variant, seed and thread
    count."""
    fields = {"train.seed": int(row["seed"]), "train.threads": int(row["threads"]),
              **(overrides or {})}
    return make_config(str(row["preset"]), str(row["variant"]), fields)


# --- reproducing a committed run ----------------------------------------------------------------

def reproduce(results: str | Path, variant: str, seed: int, out_dir: str | Path,
              overrides: dict | None = None) -> dict:
    """Retrain one committed (variant, seed) with its recorded preset and thread count into
    `out_dir`, and compare it with the committed run. On the machine that recorded it: puzzle by
    puzzle, exactly. Elsewhere (or where the run recorded no machine), the last bits of the kernels
    differ and a run drifts like another seed: each test set's solved % must lie within the
    variant's seed-to-seed spread (reproduced_within_spread). Returns {"comparison", "passed",
    "differences" (the rows that differ), "agreement %" (per-puzzle results alike), "solved" (per
    test set), "text"}. Refuses before training when the current code or config could not reproduce
    the run."""
    tidy = read_results(results)
    mine = tidy[(tidy["variant"] == variant) & (tidy["seed"] == seed)]
    if mine.empty:
        raise ValueError(f"{results} has no run of {variant} seed {seed}")
    first = mine.iloc[0]
    cfg = _rebuilt(first, overrides)
    if config_hash(cfg.to_dict()) != str(first["config_hash"]):
        raise ValueError(f"{variant} seed {seed} in {results} was made by another config than "
                         "the current code builds for it: retrain it with `make findings`")
    current = code_identity()["code_version"]
    if str(first["code_version"]) != current:
        raise ValueError(f"{variant} seed {seed} in {results} was made by code "
                         f"{first['code_version']}, not the current {current}: retrain it with "
                         "`make findings`")
    train(cfg, out_dir)
    retrained = _tidy_run(Path(out_dir))
    differ = per_puzzle_differences(mine, retrained)
    recorded, here = str(first["machine"]), machine_id()
    out = {"differences": differ, "agreement %": agreement(mine, retrained), "solved": None}
    name = f"{variant} seed {seed}"
    if recorded == here:
        return {**out, "comparison": "exact", "passed": differ.empty,
                "text": f"{name}: compared puzzle by puzzle, exactly, on the machine that "
                        f"recorded it ({here}): {len(differ)} per-puzzle results differ in solved or "
                        "cell accuracy"}
    committed = tidy[(tidy["variant"] == variant) & (tidy["config_hash"] == first["config_hash"])
                     & (tidy["threads"] == first["threads"])]
    solved = reproduced_within_spread(committed, seed, retrained)
    text = (f"{name}: recorded on machine {recorded}, retrained on {here}: compared within the "
            f"variant's seed spread (not exactly); {out['agreement %']:.1f}% of per-puzzle "
            f"results agree on solved ({len(differ)} differ in solved or cell accuracy)\n"
            f"{solved.round(2).to_string()}")
    return {**out, "comparison": "within the seed spread", "solved": solved,
            "passed": bool(len(solved)) and bool(solved["within"].all()), "text": text}


def _solved_by_source(rows: pd.DataFrame) -> pd.DataFrame:
    """Solved % per test set (rows) and seed (columns) at the trained count, default weights."""
    rows = rows[rows["iterations"] == rows["trained_iterations"]]
    rows = rows[rows["weights"] == ("ema" if (rows["weights"] == "ema").any() else "live")]
    table = rows.groupby(["source", "seed"], observed=True)["solved"].mean().mul(100)
    return table.unstack("seed")


def reproduced_within_spread(committed: pd.DataFrame, seed: int,
                             retrained: pd.DataFrame) -> pd.DataFrame:
    """Per test set: the committed run's solved %, the retrained one's, their difference, and
    whether it lies within the variant's seed spread. A run retrained elsewhere is a fresh draw
    like another seed, so the tolerance is a 95% prediction bound for the difference of two seeds:
    t(k - 1) x the sd of the k committed seeds x sqrt(2). Fewer than 2 committed seeds give no
    spread, and no pass."""
    seeds = _solved_by_source(committed)
    again = _solved_by_source(retrained)
    k = seeds.notna().sum(axis=1)
    sd = seeds.std(axis=1, ddof=1)
    tolerance = pd.Series([t_quantile(n - 1) * s * math.sqrt(2) if n >= 2 else math.nan
                           for n, s in zip(k, sd)], index=seeds.index)
    table = pd.DataFrame({"committed %": seeds[seed],
                          "retrained %": again.iloc[:, 0].reindex(seeds.index),
                          "committed seeds": k, "seed sd (pp)": sd, "tolerance (pp)": tolerance})
    table["difference (pp)"] = table["retrained %"] - table["committed %"]
    table["within"] = table["difference (pp)"].abs() <= table["tolerance (pp)"]
    return table


def agreement(committed: pd.DataFrame, retrained: pd.DataFrame) -> float:
    """% of the per-puzzle results (test set, puzzle, iteration count, weights) both hold that
    agree on solved."""
    key = ["source", "puzzle", "iterations", "weights"]
    both = _keyed(committed, key).merge(_keyed(retrained, key), on=key, suffixes=("", " again"))
    return 100 * float((both["solved"] == both["solved again"]).mean()) if len(both) else math.nan


def _keyed(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return df.astype({k: str for k in key})[key + ["solved", "cell_acc"]]


def per_puzzle_differences(committed: pd.DataFrame, retrained: pd.DataFrame) -> pd.DataFrame:
    """The (test set, puzzle, iteration count, weights) rows whose solved or cell accuracy differ,
    or that one side lacks."""
    key = ["source", "puzzle", "iterations", "weights"]
    both = _keyed(committed, key).merge(_keyed(retrained, key), on=key, how="outer",
                                        suffixes=("", " retrained"), indicator=True)
    differ = ((both["_merge"] != "both") | (both["solved"] != both["solved retrained"])
              | (both["cell_acc"] != both["cell_acc retrained"]))
    return both.loc[differ].drop(columns="_merge").reset_index(drop=True)
