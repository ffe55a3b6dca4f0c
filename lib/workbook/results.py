"""A notebook's training runs as tidy frames, and the tables the notebooks show.

Every run is tagged with the code that produced it: a run whose recorded code version differs from the
code running now (or that recorded none) keeps a marked variant name, e.g. "baseline [other code]",
so that no table or figure averages it with, or passes it off as, a result of this code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lib.config import RunConfig, bucket_order, flatten
from lib.evaluate import load_run
from lib.provenance import code_identity
from lib.findings.stats import mean_ci

OTHER_CODE = "other code"
UNKNOWN_CODE = "unknown code"  # a run folder written before runs recorded their code


@dataclass
class Results:
    """Every training run of a notebook, as tidy frames tagged with variant and seed."""
    metrics: pd.DataFrame
    evals: pd.DataFrame
    summaries: pd.DataFrame
    configs: dict

    @property
    def trained_iterations(self) -> int:
        return int(self._first_config["model"]["iterations"])

    @property
    def title(self) -> str:
        """Which scale the figures come from: '6x6 generated, buckets by deduction_depth (cpu-quick, 8 iterations)'."""
        cfg = self._first_config
        d = cfg["data"]
        n = d["grid_size"]
        return f"{n}x{n} {d['source']}, buckets by {d['bucket_by']} ({cfg['preset']}, {cfg['model']['iterations']} iterations)"

    @property
    def _first_config(self) -> dict:
        return next(iter(self.configs.values()))


def code_of(config: dict, code_version: str) -> str:
    """'this code', 'other code' or 'unknown code' for a run's config.json (its "code" entry)."""
    recorded = (config.get("code") or {}).get("code_version")
    if recorded is None:
        return UNKNOWN_CODE
    return "this code" if recorded == code_version else OTHER_CODE


def collect(run_dirs: list[Path]) -> Results:
    code_version = code_identity()["code_version"]
    metrics, evals, rows, configs = [], [], [], {}
    for d in run_dirs:
        run = load_run(d)
        cfg = run.config
        code = code_of(cfg, code_version)
        variant = cfg["variant"] if code == "this code" else f"{cfg['variant']} [{code}]"
        tag = {"variant": variant, "seed": cfg["train"]["seed"], "run": Path(d).name}
        metrics.append(run.metrics.assign(**tag, trained_iterations=cfg["model"]["iterations"]))
        if run.evals is not None:
            evals.append(run.evals.assign(**tag))
        rows.append({**tag, "code": code, **_flat_summary(run.summary)})
        configs[Path(d).name] = cfg
    return Results(pd.concat(metrics, ignore_index=True),
                   pd.concat(evals, ignore_index=True) if evals else pd.DataFrame(),
                   pd.DataFrame(rows), configs)


def _flat_summary(summary: dict) -> dict:
    out = {k: v for k, v in summary.items() if not isinstance(v, dict)}
    for kind in ("final", "peak", "final_cell_acc"):
        for bucket, value in summary.get(kind, {}).items():
            out[f"{kind}:{bucket}"] = value
    return out


def rating_table(results: Results) -> pd.DataFrame:
    """Per bucket: solved % and cell accuracy % (blank cells), final and peak over the evaluations at each
    run's trained iteration count; mean over seeds, and with several seeds the half-width of the 95% CI of
    final solved % over seeds (t-based) and the seed count."""
    m = results.metrics
    test = m[(m["split"] == "test") & (m["iterations"] == m["trained_iterations"])]
    per_run = test.groupby(["variant", "seed", "bucket", "metric"], observed=True).agg(
        final=("value", "last"), peak=("value", "max")).reset_index()  # metrics.jsonl is in step order
    wide = per_run.pivot_table(index=["variant", "seed", "bucket"], columns="metric", values=["final", "peak"])
    wide.columns = [f"{'solved %' if metric == 'solved' else 'cell acc %'} ({kind})" for kind, metric in wide.columns]
    wide = 100 * wide
    order = ["solved % (final)", "solved % (peak)", "cell acc % (final)", "cell acc % (peak)"]
    table = wide.groupby(["variant", "bucket"], observed=True)[order].mean()
    if results.summaries["seed"].nunique() > 1:
        final = wide.groupby(["variant", "bucket"], observed=True)["solved % (final)"]
        table.insert(1, "± 95% CI", final.agg(lambda v: mean_ci(v)[2] - mean_ci(v)[0]))
        table["seeds"] = final.count()
    return table.reindex(bucket_order(table.index.get_level_values("bucket")), level="bucket").round(1)


def failure_table(results: Results) -> pd.DataFrame:
    """How unsolved puzzles fail across iterations, per bucket (the log's failure analysis): of the puzzles
    unsolved at the trained count, how many were solved at some earlier iteration and lost again, how many
    had a better cell accuracy at an earlier iteration than at the last (peaked, then drifted), and the first
    iteration at which they reached their best."""
    ev = results.evals
    keys = ["variant", "seed", "bucket", "puzzle"]
    trained = ev[ev["iteration"] <= ev["trained_iterations"]]
    per = trained.groupby(keys, observed=True)
    final = trained[per["iteration"].transform("max") == trained["iteration"]].set_index(keys).sort_index()
    ever = per["solved"].any().reindex(final.index)
    best_acc = per["cell_acc"].max().reindex(final.index)
    best_it = trained.loc[per["cell_acc"].idxmax()].set_index(keys)["iteration"].reindex(final.index)
    failed = ~final["solved"]
    table = pd.DataFrame({
        "unsolved %": 100 * failed,
        "solved earlier, lost %": 100 * (failed & ever),
        "peaked early %": 100 * (failed & (best_acc > final["cell_acc"])),
        "best iteration of the unsolved": best_it.where(failed),
    }).groupby(["variant", "bucket"], observed=True).mean()
    n_failed = failed.groupby(["variant", "bucket"], observed=True).sum()
    for col in ("solved earlier, lost %", "peaked early %"):  # as shares of the unsolved puzzles
        table[col] = (table[col] / table["unsolved %"].where(table["unsolved %"] > 0) * 100)
    table.insert(1, "unsolved puzzles (all seeds)", n_failed)
    return table.round(1)


def runs_table(results: Results) -> pd.DataFrame:
    """Which run folders this notebook's figures come from, and whether this code produced them."""
    cols = ["run", "variant", "seed", "code", "status", "steps", "params", "wall_seconds", "device", "final:all"]
    table = results.summaries[[c for c in cols if c in results.summaries.columns]]
    return table.rename(columns={"final:all": "solved % (final, all)"})


def config_diff(results: Results) -> pd.DataFrame:
    """The config keys that differ between runs; for a single run, those that differ from the log's recipe.
    The code that made each run is in runs_table."""
    settings = {run: {k: v for k, v in cfg.items() if k != "code"} for run, cfg in results.configs.items()}
    flat = pd.DataFrame({run: flatten(cfg) for run, cfg in settings.items()}).astype(str)
    if flat.shape[1] == 1:
        flat["log recipe (defaults)"] = pd.Series(flatten(RunConfig().to_dict())).astype(str)
    differs = flat.nunique(axis=1) > 1
    return flat[differs]


def runs_from_other_code(results: Results) -> list[str]:
    """The run folders (names) that this code did not produce."""
    s = results.summaries
    return s.loc[s["code"] != "this code", "run"].tolist()
