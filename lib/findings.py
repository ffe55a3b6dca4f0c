"""Findings: which of the log's claims hold at CPU scale, from tidy per-puzzle results of seeded runs.

    python -m lib.cli findings sweep --grid findings/cpu-quick-grid.yaml --workers 2 --threads 1
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

from lib.claims import CLAIMS, Claim, Side, claim_variants
from lib.config import ConfigError, RunConfig, bucket_order, config_twin, make_config
from lib import files
from lib.files import read_json, relative, write_json, write_text
from lib.provenance import code_identity
from lib.stats import VERDICTS, mean_ci, paired_bootstrap, verdict
from lib.train import train
from lib.workbook import NOTEBOOK_RUN, OUTPUTS

REPO = Path(__file__).resolve().parent.parent
FINDINGS_SEEDS = 3  # the findings run trains seeds 0, 1, 2; a claim on fewer is provisional


# --- which variants need runs --------------------------------------------------------------------

def variants_to_train(preset: str, claims: list[Claim] = CLAIMS) -> list[str]:
    """The claims' variants that need runs of their own on `preset`: one that runs the same config as an
    earlier one there (curriculum-mixed as the baseline on cpu-quick) reads that one's runs (stand_in)."""
    need = list(dict.fromkeys(["baseline", *claim_variants(claims)]))
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


TIDY_COLUMNS = ["variant", "seed", "puzzle", "bucket", "iterations", "trained_iterations", "weights", "solved",
                "cell_acc", "threads", "params", "wall_seconds", "grid_size", "preset", "config_hash", "code_version", "commit", "run"]


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
        "config_hash": config_hash(config), "code_version": code.get("code_version", "unknown"),
        "commit": code.get("commit", "unknown"), "run": relative(run),
    })


CATEGORICAL = ("variant", "puzzle", "bucket", "weights", "preset", "config_hash", "code_version", "commit", "run")


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
            "note": "; ".join(filter(None, [_seed_note(r), _claim_note(tidy, c), *_provenance_notes(tidy, c)])),
        })
    return pd.DataFrame(rows)


def _claim_note(tidy: pd.DataFrame, claim: Claim) -> str:
    """The claim's own note for the preset(s) its results come from."""
    return "; ".join(filter(None, (claim.note(p) for p in sorted(set(tidy["preset"].astype(str))) or [""])))


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
    for col, what in (("code_version", "code"), ("threads", "thread counts")):
        if rows[col].nunique() > 1:
            notes.append(f"runs from different {what}")
    return notes


def variant_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per variant and bucket: solved % at the trained count (default weights), mean and 95% CI over seeds."""
    out = []
    for (variant, bucket), g in per_seed(tidy).groupby(["variant", "bucket"]):
        m, lo, hi = mean_ci(g["solved %"])
        out.append({"variant": variant, "bucket": bucket, "solved % (final)": m, "CI low": max(lo, 0.0),
                    "CI high": min(hi, 100.0), "n seeds": len(g)})
    table = pd.DataFrame(out, columns=["variant", "bucket", "solved % (final)", "CI low", "CI high", "n seeds"])
    table["bucket"] = pd.Categorical(table["bucket"], bucket_order(table["bucket"]))
    return table.sort_values(["variant", "bucket"]).set_index(["variant", "bucket"]).round(1)


def seed_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Variants x seeds: overall solved % at the trained count, so a seed that collapsed is seen at once."""
    seeds = per_seed(tidy)
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


def per_seed(tidy: pd.DataFrame) -> pd.DataFrame:
    """Solved % per variant x bucket (and "all") x seed at the trained count, default weights."""
    rows = pd.concat([side_rows(tidy, Side(v)) for v in tidy["variant"].astype(str).unique()] or [tidy])
    both = pd.concat([rows.assign(bucket="all"), rows.assign(bucket=rows["bucket"].astype(str))])
    return both.groupby(["variant", "bucket", "seed"], observed=True)["solved"].mean().mul(100) \
        .rename("solved %").reset_index().astype({"variant": str})



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
