"""Findings: which of the log's claims hold at CPU scale, from tidy per-puzzle results of seeded runs.

    python -m lib.cli findings sweep --preset cpu-quick --workers 2 --threads 1   # the adaptive seed plan
    python -m lib.cli findings collect outputs/baseline/findings-cpu-quick-t1--* -o findings/cpu-quick.parquet
    python -m lib.cli findings reproduce baseline 1

Run folders become one tidy per-puzzle table (`tidy_results`), which notebooks/10_findings.ipynb renders into
the claim table and FINDINGS.md. Every variant of a preset is evaluated on the same test puzzles, so a claim
(lib/claims.py) compares A with B puzzle by puzzle (lib/stats.py) and its verdict comes from the interval,
never from a typed string.
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

from lib.claims import Claim, Side, claim_variants, claims_for
from lib.config import ConfigError, RunConfig, bucket_order, config_twin, make_config
from lib import files
from lib.files import read_json, relative, write_json, write_text
from lib.provenance import code_identity
from lib.stats import VERDICTS, decided, effect_answer, interval, mean_ci, paired_parts, verdict
from lib.test_time import collapse_at
from lib.train import train
from lib.workbook import NOTEBOOK_RUN, OUTPUTS

REPO = Path(__file__).resolve().parent.parent
FINDINGS_SEEDS = 5  # every variant starts with seeds 0-4; a claim on fewer is provisional
MAX_SEEDS = 10  # a claim its interval leaves undecided gets more, up to this many (plan_seeds)


# --- which variants need runs --------------------------------------------------------------------

def variants_to_train(preset: str, claims: list[Claim] | None = None) -> list[str]:
    """The claims' variants (the preset's claims by default) that need runs of their own on `preset`: one
    that runs the same config as an earlier one there reads that one's runs (stand_in)."""
    need = list(dict.fromkeys(["baseline", *claim_variants(claims_for(preset) if claims is None else claims)]))
    return [v for i, v in enumerate(need) if _twin(preset, v, tuple(need[:i])) == v]


@functools.lru_cache(maxsize=None)
def _twin(preset: str, variant: str, candidates: tuple) -> str:
    return config_twin(preset, variant, list(candidates))


# --- tidy per-puzzle results ---------------------------------------------------------------------

def config_hash(config: dict) -> str:
    """What a run computed, minus its seed and code identity: runs of one variant share it. A field added
    since the run was made counts at its default, as workbook.same_resolved_config reads it."""
    cfg = json.loads(json.dumps(config))
    cfg.pop("code", None)
    try:
        cfg = RunConfig.from_dict(cfg).to_dict()
    except ConfigError:
        pass  # a field the code no longer has: the hash of the record as it is, which matches no current config
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


TIDY_COLUMNS = ["variant", "seed", "source", "puzzle", "bucket", "iterations", "trained_iterations", "weights", "solved",
                "cell_acc", "threads", "params", "wall_seconds", "grid_size", "preset", "config_hash", "code_version", "commit", "run"]


def kept_counts(trained: int, asked) -> list[int]:
    """The scored counts the tidy table keeps: the trained one, twice it, the powers of two beyond (the
    sequel's claims compare at a multiple of the trained count) and any the config asked for."""
    top = max([trained, *asked])
    return sorted({trained, 2 * trained, *asked} | {2 ** k for k in range(top.bit_length()) if 2 * trained < 2 ** k <= top})


def _tidy_run(run: Path) -> pd.DataFrame | None:
    folder = files.RunFiles(run)
    config = read_json(folder.config)
    if config is None or not folder.evals.exists():
        return None
    ev = pd.read_parquet(folder.evals).assign(source="test")
    if folder.eval_sources.exists():
        ev = pd.concat([ev, pd.read_parquet(folder.eval_sources)], ignore_index=True)
    trained = int(config["model"]["iterations"])
    ev = ev[ev["iteration"].isin(kept_counts(trained, map(int, config["eval"]["iterations"])))]
    summary = read_json(folder.summary, {})
    code = config.get("code") or summary.get("code") or {}
    key = ev["question"] if "question" in ev.columns else ev["puzzle"]  # pair on the puzzle itself when known
    return pd.DataFrame({
        "variant": config["variant"], "seed": int(config["train"]["seed"]), "source": ev["source"].astype(str).to_numpy(),
        "puzzle": key.astype(str).to_numpy(),
        "bucket": ev["bucket"].astype(str).to_numpy(), "iterations": ev["iteration"].to_numpy(),
        "trained_iterations": trained,
        "weights": ev["weights"].astype(str).to_numpy() if "weights" in ev.columns else "live",
        "solved": ev["solved"].to_numpy(bool), "cell_acc": ev["cell_acc"].to_numpy(np.float32),
        "threads": int(config["train"]["threads"]),
        "params": int(summary.get("params", -1)), "wall_seconds": float(summary.get("wall_seconds", math.nan)),
        "grid_size": int(config["data"]["grid_size"]), "preset": config["preset"],
        "config_hash": config_hash(config), "code_version": code.get("code_version", "unknown"),
        "commit": code.get("commit", "unknown"), "run": relative(run),
    })


CATEGORICAL = ("variant", "source", "puzzle", "bucket", "weights", "preset", "config_hash", "code_version", "commit", "run")


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
    if "source" not in tidy.columns:  # collected before extra test sets were kept
        tidy["source"] = "test"
    if "code_hash" in tidy.columns:  # collected when runs recorded a hash of the source bytes: none is current
        tidy = tidy.rename(columns={"code_hash": "code_version"}).astype({"code_version": str})
        tidy["code_version"] = "hash:" + tidy["code_version"]
    return tidy[tidy["seed"].isin(seeds)].reset_index(drop=True) if seeds else tidy


def collect(run_dirs: list[Path], out: str | Path, committed: pd.DataFrame | None = None) -> Path:
    """Tidy the run folders into `out`, keeping the committed runs (of the current code) that no folder
    retrained: a new machine has no outputs/, and its sweep only adds to what the repository holds."""
    tidy = tidy_results(run_dirs)
    if committed is not None and len(committed):
        fresh = set(zip(tidy["variant"].astype(str), tidy["seed"].astype(int), tidy["threads"].astype(int)))
        keys = zip(committed["variant"].astype(str), committed["seed"].astype(int), committed["threads"].astype(int))
        kept = committed[[k not in fresh for k in keys]]
        tidy = _compact(pd.concat([tidy.astype({c: str for c in CATEGORICAL}),
                                   kept.astype({c: str for c in CATEGORICAL})], ignore_index=True))
    files.atomic_write(out, lambda tmp: tidy.to_parquet(tmp, index=False))
    print(f"{out}: {len(tidy):,} rows from {tidy['run'].nunique()} runs "
          f"({Path(out).stat().st_size / 1e6:.1f} MB)")
    return Path(out)


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
    return _twin(presets.pop(), variant, tuple(others))


# The test set each preset's claims are judged on: where the recipe nears the ceiling on the preset's own test
# split, differences compress, so the harder set that every run also scores decides.
CLAIM_SOURCE = {"cpu-quick": "generated:min_clues=0", "cpu-iters": "generated:min_clues=0"}
COLLAPSED_PP = 20.0  # a seed this far below its siblings' median collapsed


def claim_source(tidy: pd.DataFrame, source: str = "auto") -> str:
    """The test set the claims compare on: `source`, or for "auto" the preset's CLAIM_SOURCE when every run
    scored it, else the test split."""
    if source != "auto":
        return source
    presets = set(tidy["preset"].astype(str))
    chosen = CLAIM_SOURCE.get(presets.pop(), "test") if len(presets) == 1 else "test"
    return chosen if (tidy["source"].astype(str) == chosen).any() else "test"


def side_rows(tidy: pd.DataFrame, side: Side, source: str = "test") -> pd.DataFrame:
    """One side's rows: its variant (or its stand-in) at iterations_x times each run's trained count, on the
    source, with the chosen weights."""
    rows = tidy[(tidy["variant"] == stand_in(tidy, side.variant)) & (tidy["source"] == source)
                & (tidy["iterations"] == side.iterations_x * tidy["trained_iterations"])]
    if rows.empty:
        return rows
    weights = side.weights or ("ema" if (rows["weights"] == "ema").any() else "live")
    return rows[rows["weights"] == weights]


def _matrix(rows: pd.DataFrame) -> pd.DataFrame:
    """(seeds, puzzles) solved; a puzzle that some seed lacks is left out, so both axes stay paired."""
    table = rows.pivot_table(index="seed", columns="puzzle", values="solved", aggfunc="mean", observed=True)
    return table.dropna(axis=1)


def compare(tidy: pd.DataFrame, claim: Claim, source: str = "test") -> pd.DataFrame:
    """Per bucket and overall ("all"): A %, B %, A - B with its 95% interval (lib.stats), each seed's A - B,
    seeds and puzzles paired, the verdict, and the log's effect against the interval."""
    a_rows, b_rows = side_rows(tidy, claim.a, source), side_rows(tidy, claim.b, source)
    a_mat, b_mat = _matrix(a_rows), _matrix(b_rows)
    seeds = a_mat.index.intersection(b_mat.index)
    puzzles = a_mat.columns.intersection(b_mat.columns)
    if len(seeds) == 0 or len(puzzles) == 0:
        return pd.DataFrame([_row(claim, "all", math.nan, math.nan, None, source)])
    a_mat, b_mat = a_mat.loc[seeds, puzzles], b_mat.loc[seeds, puzzles]
    bucket_of = a_rows.drop_duplicates("puzzle").set_index("puzzle")["bucket"].astype(str).reindex(puzzles)
    rows = []
    for bucket in bucket_order([*bucket_of.unique(), "all"]):
        cols = puzzles if bucket == "all" else puzzles[(bucket_of == bucket).to_numpy()]
        a, b = a_mat[cols].to_numpy(), b_mat[cols].to_numpy()
        parts = paired_parts(a, b)
        rows.append(_row(claim, bucket, 100 * a.mean(), 100 * b.mean(), parts, source, list(seeds),
                         100 * a.mean(1), 100 * b.mean(1)))
    return pd.DataFrame(rows)


def _row(claim: Claim, bucket: str, a_pct: float, b_pct: float, parts: dict | None, source: str,
         seeds: list | None = None, a_seeds=None, b_seeds=None) -> dict:
    diff, lo, hi = interval(parts) if parts else (math.nan,) * 3
    projected = interval(parts, seeds=MAX_SEEDS) if parts and parts["seeds"] > 1 else (math.nan,) * 3
    return {"claim": claim.name, "bucket": bucket, "source": source, "A": claim.a.label(), "B": claim.b.label(),
            "A solved %": a_pct, "B solved %": b_pct, "A - B (pp)": diff, "CI low": lo, "CI high": hi,
            "n seeds": parts["seeds"] if parts else 0, "n puzzles": parts["puzzles"] if parts else 0,
            "seeds": seeds or [], "A per seed": list(a_seeds) if a_seeds is not None else [],
            "B per seed": list(b_seeds) if b_seeds is not None else [],
            "per seed (pp)": list(parts["per_seed"]) if parts else [],
            "verdict": verdict(diff, lo, hi, claim.direction, claim.margin),
            "log effect (pp)": claim.log_effect, "effect": effect_answer(lo, hi, claim.log_effect),
            "decided": decided(lo, hi, claim.direction, claim.margin) if parts else False,
            f"decided at {MAX_SEEDS} seeds": decided(projected[1], projected[2], claim.direction, claim.margin)
            if parts and parts["seeds"] > 1 else False}


def preset_of(tidy: pd.DataFrame, default: str = "cpu-quick") -> str:
    presets = sorted(set(tidy["preset"].astype(str)))
    return presets[0] if len(presets) == 1 else default


def comparisons(tidy: pd.DataFrame, claims: list[Claim] | None = None, source: str = "auto") -> pd.DataFrame:
    """Every claim (the preset's, by default) per bucket and overall, in claim order: the long table the
    claim table summarises."""
    chosen = claim_source(tidy, source)
    claims = claims_for(preset_of(tidy)) if claims is None else claims
    return pd.concat([compare(tidy, c, chosen) for c in claims], ignore_index=True)


def claim_table(tidy: pd.DataFrame, claims: list[Claim] | None = None, source: str = "auto",
                compared: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim: the log's section and figure, our figure (A, B, A - B and its 95% interval), each
    seed's A - B, the verdict, the log's effect against our interval, and notes (what the scale tests,
    collapsed seeds, and runs that mix configs, code or thread counts)."""
    claims = claims_for(preset_of(tidy)) if claims is None else claims
    compared = comparisons(tidy, claims, source) if compared is None else compared
    overall = compared[compared["bucket"] == "all"].set_index("claim")
    presets = sorted(set(tidy["preset"].astype(str)))
    rows = []
    for c in claims:
        r = overall.loc[c.name]
        untestable = "; ".join(filter(None, (c.why_untestable(p) for p in presets)))
        rows.append({
            "claim": c.text, "log section": c.section, "log figure": c.log_figure,
            "expected": f"A {c.direction} B" + (f" (±{c.margin:g}pp)" if c.direction in "≈≥≤" else ""),
            "our figure": _our_figure(r), "per seed A - B (pp)": _per_seed_text(r),
            "n seeds": int(r["n seeds"]), "scale": _scale(tidy, c, r["source"]),
            "verdict": "not testable here" if untestable else r["verdict"],
            "log's effect": "" if untestable or c.log_effect is None else f"{c.log_effect:+.1f}pp: {r['effect']}",
            "collapses at (A; B)": _collapse_text(tidy, c, r["source"]),
            "note": "; ".join(filter(None, [untestable, _seed_note(r), _claim_note(tidy, c), *_collapsed(tidy, c, r["source"]),
                                            *_provenance_notes(tidy, c, r["source"])])),
        })
    return pd.DataFrame(rows)


def _collapse_text(tidy: pd.DataFrame, claim: Claim, source: str) -> str:
    """For a claim scored beyond the trained count: each side's collapse point per seed (the first scored
    count at least 5pp below the best so far, lib.test_time), "none" where a seed never collapses."""
    if claim.a.iterations_x == 1 and claim.b.iterations_x == 1:
        return ""
    texts = []
    for side in (claim.a, claim.b):
        rows = tidy[(tidy["variant"] == stand_in(tidy, side.variant)) & (tidy["source"] == source)]
        rows = rows[rows["weights"] == (side.weights or ("ema" if (rows["weights"] == "ema").any() else "live"))]
        if rows.empty:
            return ""
        curve = 100 * rows.groupby(["seed", "iterations"], observed=True)["solved"].mean()
        points = [collapse_at(g.index.get_level_values("iterations"), g.to_numpy())
                  for _, g in curve.groupby(level="seed")]
        texts.append(", ".join("none" if p is None else str(p) for p in points))
    return "; ".join(texts)


def _per_seed_text(r) -> str:
    return ", ".join(f"{v:+.1f}" for v in r["per seed (pp)"])


def _collapsed(tidy: pd.DataFrame, claim: Claim, source: str) -> list[str]:
    """A seed of a side far below its siblings (COLLAPSED_PP under their median): say so, by name."""
    notes = []
    for side in dict.fromkeys([claim.a, claim.b]):
        rows = side_rows(tidy, side, source)
        if rows.empty:
            continue
        per_seed = 100 * rows.groupby("seed", observed=True)["solved"].mean()
        for seed, value in per_seed.items():
            others = per_seed.drop(seed)
            if len(others) >= 2 and value < others.median() - COLLAPSED_PP:
                notes.append(f"{side.label()} seed {seed} collapsed ({value:.1f}% vs its siblings' median "
                             f"{others.median():.1f}%)")
    return notes


def _claim_note(tidy: pd.DataFrame, claim: Claim) -> str:
    """The claim's own note for the preset(s) its results come from."""
    notes = []
    for preset in sorted(set(tidy["preset"].astype(str))):
        try:
            cfg = make_config(preset)
        except ConfigError:
            cfg = None
        notes.append(claim.note(preset, cfg))
    return "; ".join(filter(None, notes))


def _seed_note(r) -> str:
    n = int(r["n seeds"])
    return f"provisional: {n} of the {FINDINGS_SEEDS} seeds run so far" if 0 < n < FINDINGS_SEEDS else ""


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
        parts.append((int(rows["grid_size"].iloc[0]), int(rows["iterations"].iloc[0]), int(rows["params"].iloc[0])))
    (grid, it_a, p_a), (_, it_b, p_b) = parts
    its = f"{it_a}" if it_a == it_b else f"{it_a} vs {it_b}"
    params = f"{p_a / 1e3:.0f}K" if p_a == p_b else f"{p_a / 1e3:.0f}K vs {p_b / 1e3:.0f}K"
    return f"{grid}x{grid} {source}, {its} iterations, {params} params"


def _provenance_notes(tidy: pd.DataFrame, claim: Claim, source: str) -> list[str]:
    rows = pd.concat([side_rows(tidy, claim.a, source), side_rows(tidy, claim.b, source)])
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
    for col, what in (("code_version", "code"), ("threads", "thread counts")):
        if rows[col].nunique() > 1:
            notes.append(f"runs from different {what}")
    return notes


def variant_table(tidy: pd.DataFrame, source: str = "test") -> pd.DataFrame:
    """Per variant and bucket: solved % at the trained count (default weights) on `source`, mean and 95% CI
    over seeds."""
    out = []
    for (variant, bucket), g in per_seed(tidy, source).groupby(["variant", "bucket"]):
        m, lo, hi = mean_ci(g["solved %"])
        out.append({"variant": variant, "bucket": bucket, "solved % (final)": m, "CI low": max(lo, 0.0),
                    "CI high": min(hi, 100.0), "n seeds": len(g)})
    table = pd.DataFrame(out, columns=["variant", "bucket", "solved % (final)", "CI low", "CI high", "n seeds"])
    table["bucket"] = pd.Categorical(table["bucket"], bucket_order(table["bucket"]))
    return table.sort_values(["variant", "bucket"]).set_index(["variant", "bucket"]).round(1)


def seed_table(tidy: pd.DataFrame, source: str = "test") -> pd.DataFrame:
    """Variants x seeds: overall solved % at the trained count, so a seed that collapsed is seen at once."""
    seeds = per_seed(tidy, source)
    return seeds[seeds["bucket"] == "all"].pivot(index="variant", columns="seed", values="solved %").round(1)


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


def per_seed(tidy: pd.DataFrame, source: str = "test") -> pd.DataFrame:
    """Solved % per variant x bucket (and "all") x seed at the trained count on `source`, default weights."""
    rows = pd.concat([side_rows(tidy, Side(v), source) for v in tidy["variant"].astype(str).unique()] or [tidy])
    both = pd.concat([rows.assign(bucket="all"), rows.assign(bucket=rows["bucket"].astype(str))])
    return both.groupby(["variant", "bucket", "seed"], observed=True)["solved"].mean().mul(100) \
        .rename("solved %").reset_index().astype({"variant": str})



# --- how many seeds: the adaptive plan ------------------------------------------------------------

SEED_STEP = 2  # the seeds an undecided claim gets per round, up to MAX_SEEDS


def trains_as(preset: str, variant: str, claims: list[Claim] | None = None) -> str:
    """The variant whose runs a claim side on `preset` reads: itself, or its twin among those that train."""
    need = variants_to_train(preset, claims)
    return variant if variant in need else _twin(preset, variant, tuple(need))


def seed_plan(tidy: pd.DataFrame, preset: str, claims: list[Claim] | None = None,
              source: str = "auto") -> pd.DataFrame:
    """Per claim: the seeds its sides share, where its interval stands, and the seeds it needs next.
    - fewer than FINDINGS_SEEDS: every seed below FINDINGS_SEEDS ("start");
    - its interval straddles a decision boundary, fewer than MAX_SEEDS, and the interval projected at
      MAX_SEEDS (the same spreads, more seeds) would decide: SEED_STEP more ("undecided: more seeds");
    - otherwise none, and why (decided; at MAX_SEEDS; would not decide at MAX_SEEDS; not testable here).
    `cost` is each claim's missing runs in baseline-run units (run_cost), for ordering the sweep."""
    claims = claims_for(preset) if claims is None else claims
    compared = comparisons(tidy, claims, source) if len(tidy) else None
    rows = []
    for c in claims:
        sides = list(dict.fromkeys(trains_as(preset, s.variant, claims) for s in (c.a, c.b)))
        have = [set(tidy.loc[tidy["variant"] == v, "seed"].astype(int)) for v in sides] if len(tidy) else [set()] * 2
        shared = set.intersection(*have)
        r = compared[(compared["claim"] == c.name) & (compared["bucket"] == "all")].iloc[0] if compared is not None else None
        if c.why_untestable(preset):
            action, target = "not testable here", 0
        elif len(shared) < FINDINGS_SEEDS:
            action, target = "start", FINDINGS_SEEDS
        elif r["decided"]:
            action, target = f"decided at {len(shared)} seeds", 0
        elif len(shared) >= MAX_SEEDS:
            action, target = f"undecided at {MAX_SEEDS} seeds, the most a claim gets", 0
        elif not r[f"decided at {MAX_SEEDS} seeds"]:
            action, target = f"undecided, and {MAX_SEEDS} seeds would not decide it", 0
        else:
            action, target = "undecided: more seeds", min(MAX_SEEDS, len(shared) + SEED_STEP)
        jobs = [(v, seed) for v, mine in zip(sides, have) for seed in range(target) if seed not in mine]
        rows.append({"claim": c.name, "variants": ", ".join(sides), "seeds": len(shared), "action": action,
                     "jobs": jobs, "cost": round(sum(run_cost(preset, v) for v, _ in jobs), 1)})
    return pd.DataFrame(rows)


def plan_grid(plan: pd.DataFrame, preset: str) -> dict:
    """The plan's runs as a sweep grid (`jobs:`): the cheapest claims first, so that a sweep cut short has
    finished whole claims; a run two claims need is listed once, where the first needs it."""
    jobs = []
    for _, r in plan.assign(order=plan["cost"]).sort_values("order", kind="stable").iterrows():
        jobs += [j for j in r["jobs"] if j not in jobs]
    return {"jobs": [{"variant": v, "seed": int(seed)} for v, seed in jobs], "fixed": {"preset": preset}}


@functools.lru_cache(maxsize=None)
def run_cost(preset: str, variant: str) -> float:
    """A run's training cost relative to the preset's baseline: sample-iterations through the core, times
    its width, times 2 for SAM's second pass (a proxy; the cost table reports measured minutes)."""
    def work(cfg) -> float:
        m = cfg.model
        per = m.n_layers * m.d_model * (4 * m.d_model + 2 * m.d_ff)
        return cfg.train.steps * cfg.train.batch_size * m.iterations * per * (2 if cfg.optim.name == "sam" else 1)
    return work(make_config(preset, variant)) / work(make_config(preset))


def plan_text(plan: pd.DataFrame) -> str:
    """What the plan spends and why, for the sweep's log and the notebook."""
    runs = len({j for jobs in plan["jobs"] for j in jobs})
    lines = [f"{r['claim']}: {r['seeds']} seeds ({r['variants']}): {r['action']}"
             + (f": {len(r['jobs'])} runs, {r['cost']:g} baseline-runs" if r["jobs"] else "")
             for _, r in plan.iterrows()]
    return "\n".join(lines + [f"{runs} runs to train"])


# cpu-smoke runs are too small to be findings: the smoke preset renders the committed test fixture
FIXTURES = {"cpu-smoke": REPO / "tests" / "fixtures" / "findings-cpu-smoke.parquet"}
HEADLINE_PRESET = "cpu-quick"  # whose findings the repository's FINDINGS.md reports
REPORTS = {HEADLINE_PRESET: "FINDINGS.md", "cpu-iters": "FINDINGS-sequel.md"}  # the sequel's claims: their own


def results_path_for(preset: str, results_path: str = "") -> Path:
    """The tidy results a findings notebook renders: `results_path`, else findings/<preset>.parquet."""
    if results_path:
        return Path(results_path)
    return FIXTURES.get(preset, REPO / "findings" / f"{preset}.parquet")


def findings_md_path(findings_md: str, preset: str, results_path: str, output_dir: Path) -> Path | None:
    """Where FINDINGS.md goes. "auto": the repository's FINDINGS.md for the headline preset's committed
    results, the run folder otherwise (so smoke runs never overwrite it); "": nowhere; else the path."""
    if findings_md == "auto":
        committed = preset in REPORTS and not results_path
        return REPO / REPORTS[preset] if committed else Path(output_dir) / "FINDINGS.md"
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


def write_findings_md(table: pd.DataFrame, path: str | Path, command: str, source: str = "", code: str = "",
                      preset: str = HEADLINE_PRESET, plan: pd.DataFrame | None = None) -> Path:
    """FINDINGS.md: the claim table, the seeds each claim got and why, and the command that regenerates it.
    Written by the notebook only."""
    counts = table["verdict"].value_counts()
    tally = ", ".join(f"{counts.get(v, 0)} {v}" for v in (*VERDICTS, "not testable here"))
    what = "the sequel's conditions for test-time scaling" if table is not None and preset == "cpu-iters" \
        else "the log's claims"
    text = "\n\n".join(filter(None, [
        f"# Findings: which of {what} hold at CPU scale ({preset})",
        "Generated by `notebooks/10_findings.ipynb`; do not edit by hand. Regenerate with:",
        f"```\n{command}\n```",
        (f"Results: `{source}`. " if source else "") + code,
        f"**{tally}.** A is the left side of each comparison, B the right; the scale column names the grid, "
        "test set and iteration counts. Our figure is solved % of each, and A - B in percentage points with a "
        "95% interval over seeds and test puzzles (lib/stats.py: the per-seed paired differences' t interval, "
        "plus the test sample's own term; its coverage is tested by simulation in `make test`). Each claim has "
        "two answers. The direction: **holds** when the interval excludes 0 in the log's direction (≈: lies "
        "within ±margin; ≥ / ≤: excludes the wrong side of the margin), **reversed** when it excludes 0 the "
        "other way, **inconclusive** otherwise. The log's effect size against the interval: **consistent** "
        "(inside it), **smaller** or **larger** (our whole interval is beyond it on that side, with the same "
        "sign), **excluded** (our interval has the other sign). Each seed's A - B is listed, a seed far below "
        "its siblings is flagged as collapsed, and a disagreement with the log is a finding.",
        markdown_table(table),
        "## Seeds per claim\n\nEvery variant starts with 5 seeds; a claim whose interval straddles a decision "
        "boundary gets 2 more per round, up to 10, while the interval projected at 10 seeds would decide it.\n\n"
        + markdown_table(plan.drop(columns=["jobs"]).rename(columns={"cost": "runs still to train (baseline-run units)"}))
        if plan is not None else "", ""]))
    return write_text(path, text.replace("\n\n\n\n", "\n\n"))


# --- are the committed results the current code's? ----------------------------------------------

def staleness(tidy: pd.DataFrame) -> tuple[int, int]:
    """(runs, runs made by other code than the current)."""
    runs = tidy.drop_duplicates("run")
    return len(runs), int((runs["code_version"].astype(str) != code_identity()["code_version"]).sum())


def code_status(tidy: pd.DataFrame) -> str:
    """One line for FINDINGS.md: which code made the results, and whether it is the code checked out now."""
    if tidy.empty:
        return ""
    current = code_identity()["code_version"]
    runs = tidy.drop_duplicates("run")
    stale = runs[runs["code_version"].astype(str) != current]
    commits = ", ".join(sorted({c.split("+")[0][:7] for c in runs["commit"].astype(str)}))
    if stale.empty:
        return (f"All {len(runs)} runs were made by the current code (version `{current}` of lib's computing modules; "
                f"commits {commits}), so retraining any of them reproduces its per-puzzle results.")
    return (f"**Stale: {len(stale)} of {len(runs)} runs were made by other code** (version "
            f"{', '.join(sorted(set(stale['code_version'].astype(str))))}, not the current `{current}`). "
            "`make findings` retrains them.")


def current_runs(tidy: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs the current code would make again: its code version, and the config it builds for
    the run's preset, variant, seed and thread count. Only these count as finished for a sweep."""
    if tidy.empty:
        return tidy
    current = code_identity()["code_version"]
    runs = tidy.drop_duplicates("run")
    keep = [r["run"] for _, r in runs.iterrows()
            if str(r["code_version"]) == current and str(r["config_hash"]) == config_hash(_rebuilt(r).to_dict())]
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
    if str(first["code_version"]) != code_identity()["code_version"]:
        raise ValueError(f"{variant} seed {seed} in {results} was made by code {first['code_version']}, not the "
                         f"current {code_identity()['code_version']}: retrain it with `make findings`")
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
