"""The workbook shell: run notebooks headlessly, render reports, keep an index, train from the shell.

    python -m lib.workbook run notebooks/01_baseline.ipynb -p preset cpu-quick [-f params.yaml]
    python -m lib.workbook train --preset cpu-quick [--variant NAME] [--set key=value ...] [--out DIR] [--resume]
    python -m lib.workbook variants
    python -m lib.workbook sweep notebooks/05_curriculum.ipynb --grid grid.yaml
    python -m lib.workbook index | screenshot

A notebook run lands in outputs/<family>/<run>/: the executed notebook, report.html (with code),
report-noinput.html (results only), run.log, summary.json, and runs/<variant>-s<seed>/ for each training run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from lib.config import VARIANTS, ConfigError, RunConfig, bucket_order, make_config, parse_set

REPO = Path(__file__).resolve().parent.parent
OUTPUTS = Path(os.environ.get("SUDOKU_WORKBOOK_OUTPUTS", REPO / "outputs"))
log = logging.getLogger("workbook")
NOTEBOOK_RUN = "notebook-run"  # marks a notebook run's summary.json, as opposed to a training run's


# --- small file helpers ------------------------------------------------------------------------

def write_json_atomic(path: Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        json.dump(obj, f, indent=2, default=str)
        tmp = f.name
    os.replace(tmp, path)


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def family_of(notebook: str | Path) -> str:
    """notebooks/01_baseline.ipynb -> baseline"""
    stem = Path(notebook).stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


# --- what notebooks call -----------------------------------------------------------------------

def prepare(output_dir: str, family: str) -> Path:
    """The folder a notebook writes into: the runner's, or outputs/<family>/lab when run in JupyterLab."""
    out = Path(output_dir) if output_dir else OUTPUTS / family / "lab"
    out.mkdir(parents=True, exist_ok=True)
    _log_to_file(out / "run.log")
    return out


def _log_to_file(path: Path) -> None:
    root = logging.getLogger()
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve() for h in root.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def config_for(preset: str, variant: str = "baseline", overrides: dict | None = None,
               device: str = "auto", seed: int = 0) -> RunConfig:
    overrides = dict(overrides or {})
    overrides.setdefault("train.device", device)
    overrides.setdefault("train.seed", seed)
    return make_config(preset, variant, overrides)


def run_dir_name(variant: str, seed: int) -> str:
    return f"{variant}-s{seed}"


def train_runs(preset: str, variants: list[str], seeds: list[int], output_dir: Path, device: str = "auto",
               overrides: dict | None = None, reuse: bool = True, progress: bool = True) -> list[Path]:
    """Train every (variant, seed) into output_dir/runs/. A finished run is reused; a killed one resumes."""
    from lib.train import train  # torch is imported only when training is asked for

    configs = [config_for(preset, v, overrides, device, s) for v in variants for s in seeds]  # fail fast
    dirs = []
    for cfg in configs:
        run = Path(output_dir) / "runs" / run_dir_name(cfg.variant, cfg.train.seed)
        summary = read_json(run / "summary.json", {})
        same = read_json(run / "config.json") == cfg.to_dict()
        if reuse and same and summary.get("status") == "complete":
            log.info("reusing finished run %s", run)
        else:
            resume = reuse and same and (run / "checkpoints" / "last.pt").exists()
            if run.exists() and not resume:
                shutil.rmtree(run)
            log.info("training %s (resume=%s)", run, resume)
            train(cfg, run, resume=resume, progress=progress)
        dirs.append(run)
    return dirs


@dataclass
class Results:
    """Every training run of a notebook, as tidy frames tagged with variant and seed."""
    metrics: pd.DataFrame
    evals: pd.DataFrame
    summaries: pd.DataFrame
    configs: dict

    @property
    def trained_iterations(self) -> int:
        return int(next(iter(self.configs.values()))["model"]["iterations"])


def collect(run_dirs: list[Path]) -> Results:
    from lib.evaluate import load_run

    metrics, evals, rows, configs = [], [], [], {}
    for d in run_dirs:
        run = load_run(d)
        cfg = run.config
        tag = {"variant": cfg["variant"], "seed": cfg["train"]["seed"], "run": Path(d).name}
        metrics.append(run.metrics.assign(**tag, trained_iterations=cfg["model"]["iterations"]))
        if run.evals is not None:
            evals.append(run.evals.assign(**tag))
        rows.append({**tag, **_flat_summary(run.summary)})
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
    run's trained iteration count; mean over seeds (with the spread of final solved % when seeds > 1)."""
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
        table["solved % (final) std"] = wide.groupby(["variant", "bucket"], observed=True)["solved % (final)"].std()
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
    """Which run folders this notebook's figures come from."""
    cols = ["run", "variant", "seed", "status", "steps", "params", "wall_seconds", "device", "final:all"]
    table = results.summaries[[c for c in cols if c in results.summaries.columns]]
    return table.rename(columns={"final:all": "solved % (final, all)"})


def config_diff(results: Results) -> pd.DataFrame:
    """The config keys that differ between runs; for a single run, those that differ from the log's recipe."""
    from lib.config import flatten

    flat = pd.DataFrame({run: flatten(cfg) for run, cfg in results.configs.items()}).astype(str)
    if flat.shape[1] == 1:
        flat["log recipe (defaults)"] = pd.Series(flatten(RunConfig().to_dict())).astype(str)
    differs = flat.nunique(axis=1) > 1
    return flat[differs]


def finish(output_dir: Path, results: Results, notebook_params: dict | None = None) -> dict:
    """Write the notebook run's summary.json, which the index reads."""
    table = rating_table(results).reset_index()
    headline = {f"{r.variant}:{r.bucket}": r["solved % (final)"] for _, r in table.iterrows()}
    summary = {
        "kind": NOTEBOOK_RUN,
        "status": "complete",
        "family": Path(output_dir).parent.name,
        "run": Path(output_dir).name,
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "params": notebook_params or {},
        "variants": sorted(results.summaries["variant"].unique().tolist()),
        "seeds": sorted(int(s) for s in results.summaries["seed"].unique()),
        "grid_size": int(results.summaries["grid_size"].iloc[0]),
        "wall_seconds": float(results.summaries["wall_seconds"].sum()),
        "solved_final": headline,
    }
    write_json_atomic(Path(output_dir) / "summary.json", summary)
    print(f"summary written to {Path(output_dir) / 'summary.json'}")
    return summary


# --- running notebooks -------------------------------------------------------------------------

def parse_params(pairs: list[list[str]] | None, files: list[str] | None) -> dict:
    """-f YAML files, then -p name value pairs; values are YAML so `true` and `[0, 1]` arrive typed."""
    params = {}
    for f in files or []:
        loaded = yaml.safe_load(Path(f).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{f}: a parameter file must hold a YAML mapping, got {type(loaded).__name__}")
        params.update(loaded)
    for name, value in pairs or []:
        params[name] = yaml.safe_load(value)
    return params


def notebook_parameters(notebook: Path) -> dict:
    """The names and defaults of a notebook's `parameters` cell (checked before a run starts)."""
    import papermill as pm
    return pm.inspect_notebook(str(notebook))


def run_notebook(notebook: str | Path, params: dict | None = None, name: str | None = None,
                 out_root: Path | None = None) -> Path:
    """Execute a notebook with papermill into outputs/<family>/<run>/, render its reports, refresh the index.
    A failed run keeps its executed notebook (with the error cell) and is marked failed in the index."""
    import papermill as pm

    notebook = Path(notebook)
    if not notebook.exists():
        raise FileNotFoundError(f"no notebook at {notebook}")
    params = dict(params or {})
    known = notebook_parameters(notebook)
    unknown = sorted(set(params) - set(known) - {"output_dir"})
    if unknown:
        raise ConfigError(f"{notebook.name} has no parameter(s) {', '.join(unknown)}; it takes: {', '.join(known)}")
    family = family_of(notebook)
    out_root = Path(out_root or OUTPUTS)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run = out_root / family / (name or f"{params.get('preset', 'default')}-{stamp}")
    run.mkdir(parents=True, exist_ok=True)
    params["output_dir"] = str(run.resolve())
    executed = run / notebook.name
    _log_to_file(run / "run.log")
    log.info("running %s with %s", notebook, params)
    error = None
    try:
        pm.execute_notebook(str(notebook), str(executed), parameters=params, kernel_name="python3",
                            cwd=str(REPO), progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as e:
        error = {"ename": e.ename, "evalue": e.evalue, "cell": e.cell_index, "exec_count": e.exec_count}
        log.error("notebook failed in cell %s: %s: %s", e.cell_index, e.ename, e.evalue)
    render_reports(executed)
    if error is not None:
        summary = read_json(run / "summary.json", {})
        summary.update({"kind": NOTEBOOK_RUN, "status": "failed", "family": family, "run": run.name, "error": error, "params": params})
        write_json_atomic(run / "summary.json", summary)
    refresh_index(out_root)
    if error is not None:
        raise RuntimeError(f"{notebook.name} failed in cell {error['cell']}: {error['ename']}: {error['evalue']} "
                           f"(executed notebook kept at {executed})")
    return run


def render_reports(executed: Path) -> tuple[Path, Path]:
    """report.html with code and report-noinput.html with results only, beside the executed notebook."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    paths = []
    for exclude, fname in ((False, "report.html"), (True, "report-noinput.html")):
        exporter = HTMLExporter(exclude_input=exclude, exclude_input_prompt=exclude, exclude_output_prompt=exclude)
        body, _ = exporter.from_notebook_node(nb)
        path = executed.parent / fname
        path.write_text(body)
        paths.append(path)
    return tuple(paths)


def refresh_index(out_root: Path | None = None) -> Path:
    """outputs/index.html: every notebook run with its status and headline solved % per bucket."""
    out_root = Path(out_root or OUTPUTS)
    rows = []
    for summary_path in sorted(out_root.glob("*/*/summary.json")):
        s = read_json(summary_path, {})
        if s.get("kind") != NOTEBOOK_RUN:  # training runs (outputs/train/...) have their own summary.json
            continue
        run = summary_path.parent
        headline = s.get("solved_final", {})
        rows.append({
            "family": run.parent.name, "run": run.name, "status": s.get("status", "unknown"),
            "preset": s.get("params", {}).get("preset", ""), "grid": s.get("grid_size", ""),
            "finished": s.get("finished", ""),
            "headline solved % (final)": ", ".join(f"{k} {v}" for k, v in headline.items()),
            "error": (s.get("error") or {}).get("evalue", ""),
            "report": f'<a href="{run.parent.name}/{run.name}/report.html">report</a>'
                      if (run / "report.html").exists() else "",
        })
    table = pd.DataFrame(rows).to_html(escape=False, index=False) if rows else "<p>No runs yet.</p>"
    page = (f"<html><head><meta charset='utf-8'><title>Sudoku workbook runs</title>"
            f"<style>body{{font-family:sans-serif}} td,th{{padding:4px 8px}}</style></head>"
            f"<body><h1>Sudoku workbook runs</h1><p>{html.escape(str(out_root))}</p>{table}</body></html>")
    out_root.mkdir(parents=True, exist_ok=True)
    index = out_root / "index.html"
    index.write_text(page)
    return index


def screenshot(report: Path | None = None, out: Path | None = None) -> Path:
    """Open an HTML report in headless Chromium and save a full-page PNG beside it."""
    report = Path(report) if report else max(OUTPUTS.glob("*/*/report-noinput.html"), key=os.path.getmtime, default=None)
    if report is None:
        raise FileNotFoundError("no report under outputs/: run `make run` first")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise FileNotFoundError("chromium not found: apt-get install chromium")
    out = Path(out) if out else report.with_suffix(".png")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1280,6000",
                        f"--screenshot={out.resolve()}", report.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    return out


# --- command line ------------------------------------------------------------------------------

def _cmd_run(args) -> None:
    params = parse_params(args.p, args.f)
    run = run_notebook(args.notebook, params, name=args.name)
    print(run / "report.html")


def _cmd_train(args) -> None:
    from lib.train import train

    overrides = parse_set(args.set or [])
    overrides.setdefault("train.device", args.device)
    cfg = make_config(args.preset, args.variant, overrides)
    out = Path(args.out) if args.out else OUTPUTS / "train" / f"{args.preset}-{run_dir_name(args.variant, cfg.train.seed)}"
    if out.exists() and not args.resume and any(out.iterdir()):
        raise SystemExit(f"{out} already holds a run: pass --resume to continue it, or --out for a new folder")
    train(cfg, out, resume=args.resume)
    print(out)


def _cmd_variants(args) -> None:
    width = max(map(len, VARIANTS))
    for name, (description, overrides) in VARIANTS.items():
        changes = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "-"
        print(f"{name:<{width}}  {description}  [{changes}]")


def _cmd_sweep(args) -> None:
    from lib.sweep import run_sweep

    slurm = {k: yaml.safe_load(v) for k, v in parse_set(args.slurm or []).items()}
    table = run_sweep(args.notebook, args.grid, workers=args.workers, executor=args.executor, name=args.name, slurm=slurm)
    print(table[["name", "status", "error"]].to_string(index=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lib.workbook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="execute a notebook with papermill and render its report")
    p.add_argument("notebook")
    p.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a parameter (YAML value)")
    p.add_argument("-f", action="append", metavar="PARAMS_YAML", help="a YAML file of parameters")
    p.add_argument("--name", help="run folder name (default: <preset>-<timestamp>)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("train", help="train a preset from the shell and print the run folder")
    p.add_argument("--preset", default="cpu-quick")
    p.add_argument("--variant", default="baseline")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a config override, e.g. train.steps=500")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="run folder (default: outputs/train/<preset>-<variant>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue from the folder's last checkpoint")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("variants", help="list every named variant")
    p.set_defaults(func=_cmd_variants)

    p = sub.add_parser("sweep", help="run a notebook over a grid of parameters in parallel workers")
    p.add_argument("notebook")
    p.add_argument("--grid", required=True, help="YAML: parameter -> list of values (a product is taken)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--executor", default="local", choices=["local", "submitit-local", "submitit-debug", "slurm"])
    p.add_argument("--name", help="sweep folder name")
    p.add_argument("--slurm", action="append", metavar="KEY=VALUE",
                   help="submitit parameter for --executor slurm, e.g. slurm_partition=gpu, gpus_per_node=1, timeout_min=600")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("index", help="rebuild outputs/index.html")
    p.set_defaults(func=lambda a: print(refresh_index()))

    p = sub.add_parser("screenshot", help="screenshot the newest report in headless Chromium")
    p.add_argument("--report")
    p.set_defaults(func=lambda a: print(screenshot(a.report)))

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
