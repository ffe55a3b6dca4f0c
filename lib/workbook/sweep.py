"""Sweeps: one notebook over a grid of parameters (variants x seeds x anything), each a separate run.

    python -m lib.cli sweep notebooks/05_curriculum.ipynb --grid grid.yaml --workers 2

grid.yaml maps notebook parameters to lists of values; the product is taken. `variant:` and `seed:` are
shorthands that become one-element `variants` / `seeds` lists on notebooks that take lists. A `fixed:`
mapping is passed to every run unchanged:

    variant: [baseline, mlp-mixer, curriculum-mixed]
    seed: [0, 1, 2]
    fixed: {preset: gpu-paper}

Finished runs are skipped, so a sweep resumes where it stopped; one failure never stops the others.
On a machine with GPUs the local executor runs one worker per visible GPU, each pinned to its own device
(CUDA_VISIBLE_DEVICES), since two gpu-paper runs would not fit one card; without, two workers.
The same grid goes to a Slurm cluster as a job array through submitit (`--executor slurm`).
"""
from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import logging
import multiprocessing as mp
import os
import traceback
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import yaml

from lib import files
from lib.findings import findings
from lib.workbook import runner
from lib.config import ConfigError
from lib.workbook.workbook import OUTPUTS, family_of

log = logging.getLogger("lib.sweep")


def expand_grid(grid: dict, notebook_params: dict) -> list[dict]:
    """The product of the grid's lists, with the variant/seed shorthands mapped onto the notebook; or, under
    `jobs:`, a list of parameter mappings taken one by one (the findings plan asks different seeds of
    different variants)."""
    grid = dict(grid)
    fixed = grid.pop("fixed", {}) or {}
    listed = grid.pop("jobs", None)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid entry {key!r} must be a non-empty list, got {values!r}")
    if listed is not None and grid:
        raise ConfigError(f"a grid has either jobs: or lists to multiply, not both (it has {', '.join(grid)})")
    combos = [tuple(job.values()) for job in listed] if listed is not None else list(itertools.product(*grid.values()))
    keys = [list(job) for job in listed] if listed is not None else [list(grid)] * len(combos)
    jobs = []
    for names, combo in zip(keys, combos):
        params = dict(fixed)
        for key, value in zip(names, combo):
            plural = key + "s"
            if key in ("variant", "seed") and key not in notebook_params and plural in notebook_params:
                params[plural] = [value]
            else:
                params[key] = value
        jobs.append(params)
    unknown = sorted({k for p in jobs for k in p} - set(notebook_params))
    if unknown:
        raise ConfigError(f"the notebook has no parameter(s) {', '.join(unknown)}; it takes: {', '.join(notebook_params)}")
    return jobs


def job_name(sweep: str, params: dict, fixed: dict) -> str:
    """A readable, filesystem-safe run name from the parameters that vary."""
    parts = []
    for key, value in params.items():
        if key in fixed:
            continue
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        parts.append(f"{key}={value}")
    slug = ",".join(parts).replace("/", "_").replace(" ", "")
    return f"{sweep}--{slug}" if slug else sweep


def run_job(notebook: str, params: dict, name: str, out_root: str | None) -> dict:
    """One sweep cell: a normal notebook run. Runs in a worker process or a Slurm job."""
    try:
        run = runner.run_notebook(notebook, params, name=name, out_root=Path(out_root) if out_root else None)
        return {"name": name, "status": "complete", "run": files.relative(run), "error": ""}
    except Exception as e:  # isolate: the sweep records the failure and goes on
        return {"name": name, "status": "failed", "run": "", "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=3)}


def gpu_ids() -> list[str]:
    """The CUDA devices this process sees, as CUDA_VISIBLE_DEVICES names them (all, when it is unset)."""
    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else []
    return (ids or [str(i) for i in range(torch.cuda.device_count())])[:torch.cuda.device_count()]


def default_workers() -> int:
    return len(gpu_ids()) or 2


def _pin_gpu(free) -> None:
    # a worker's first act: take one GPU for every job it will run (before anything touches CUDA)
    os.environ["CUDA_VISIBLE_DEVICES"] = free.get()


def run_sweep(notebook: str | Path, grid_path: str | Path, workers: int | None = None, executor: str = "local",
              name: str | None = None, out_root: Path | None = None, slurm: dict | None = None,
              have: Callable[[dict], bool] | None = None) -> pd.DataFrame:
    """Run every job of the grid that is not finished: neither a complete run folder nor, when `have` is
    given, a job whose parameters `have(params)` says are already held elsewhere (committed results)."""
    notebook = Path(notebook)
    grid = yaml.safe_load(Path(grid_path).read_text()) or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{grid_path}: a grid must be a YAML mapping of parameter -> list of values")
    jobs = expand_grid(grid, runner.notebook_parameters(notebook))
    sweep = name or Path(grid_path).stem
    fixed = grid.get("fixed", {}) or {}
    root = Path(out_root or OUTPUTS)
    family_dir = root / family_of(notebook)

    todo, rows = [], []
    for params in jobs:
        jname = job_name(sweep, params, fixed)
        done = files.read_json(files.NotebookFiles(family_dir / jname).summary, {}).get("status") == "complete"
        if done:
            rows.append({"name": jname, "status": "skipped (finished)", "run": files.relative(family_dir / jname), "error": ""})
        elif have and have(params):
            rows.append({"name": jname, "status": "skipped (committed)", "run": "", "error": ""})
        else:
            todo.append((str(notebook), params, jname, str(root)))
    log.info("sweep %s: %d runs, %d to do", sweep, len(jobs), len(todo))
    rows += _execute(todo, workers or default_workers(), executor, root / "sweeps" / sweep, slurm or {})

    table = pd.DataFrame(rows)
    files.write_json(root / "sweeps" / sweep / "sweep.json", table.to_dict(orient="records"))
    runner.refresh_index(root)
    failed = table[table.status == "failed"]
    if len(failed):
        log.error("sweep %s: %d failed: %s", sweep, len(failed), "; ".join(failed.name + ": " + failed.error))
    return table


def _execute(todo: list[tuple], workers: int, executor: str, folder: Path, slurm: dict) -> list[dict]:
    if not todo:
        return []
    if executor == "local":
        gpus = gpu_ids()
        if not gpus:
            with cf.ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
                return list(pool.map(run_job, *zip(*todo)))
        if workers > len(gpus):
            log.warning("sweep: %d workers asked for, %d GPUs visible: one worker per GPU", workers, len(gpus))
        spawn = mp.get_context("spawn")  # a fresh process per worker, so CUDA_VISIBLE_DEVICES is read afresh
        free = spawn.Queue()
        for gpu in gpus[:workers]:
            free.put(gpu)
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(gpus)), mp_context=spawn, initializer=_pin_gpu,
                                    initargs=(free,)) as pool:
            return list(pool.map(run_job, *zip(*todo)))
    import submitit

    cluster = {"submitit-local": "local", "submitit-debug": "debug", "slurm": "slurm"}[executor]
    ex = submitit.AutoExecutor(folder=str(folder / "submitit"), cluster=cluster)
    ex.update_parameters(timeout_min=slurm.get("timeout_min", 24 * 60), **{k: v for k, v in slurm.items() if k != "timeout_min"})
    jobs = ex.map_array(run_job, *map(list, zip(*todo)))  # one Slurm job array
    return [job.result() for job in jobs]


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


def _job_key(params: dict) -> tuple[str, int]:
    """A sweep job's (variant, seed); the notebooks take both as one-element lists."""
    variant = params["variant"] if "variant" in params else params["variants"][0]
    seed = params["seed"] if "seed" in params else params["seeds"][0]
    return str(variant), int(seed)


def findings_sweep(preset: str, notebook: str | Path, workers: int | None, threads: int, out: str = "",
                   grid_path: str | Path | None = None, max_runs: int = 0, rounds: int = 4) -> Path:
    """Train what a preset's findings lack, then collect into findings/<preset>.parquet, keeping the committed
    runs of the current code that no folder retrained. Without a grid, the adaptive plan decides
    (findings.seed_plan: 3 seeds per claim, 2 more at a time while more would decide it, up to its cap), round after
    round until it asks for nothing or `rounds` are done; `max_runs` stops a round after that many (the
    cheapest claims come first, so a slice finishes whole claims). What each round spends, and why, is
    printed and written beside the grid."""
    out = out or f"findings/{preset}.parquet"
    for round_ in range(1 if grid_path else rounds):
        committed = _committed(out, threads)
        if grid_path:
            grid = yaml.safe_load(Path(grid_path).read_text()) or {}
        else:
            plan = findings.seed_plan(committed, preset)
            grid = findings.plan_grid(plan, preset)
            print(f"findings plan, round {round_ + 1}:\n{findings.plan_text(plan)}")
            if not grid["jobs"]:
                break
        if max_runs and "jobs" in grid:
            grid["jobs"] = grid["jobs"][:max_runs]
        grid = effective_grid(grid, threads)
        name = sweep_name(grid, threads)
        held = set(zip(committed["variant"].astype(str), committed["seed"].astype(int)))
        effective = OUTPUTS / "sweeps" / f"{name}.yaml"
        files.write_text(effective, yaml.safe_dump(grid, sort_keys=False))
        table = run_sweep(notebook, effective, workers=workers, name=name, have=lambda params: _job_key(params) in held)
        print(table[["name", "status", "error"]].to_string(index=False))
        findings.collect(run_dirs_of(name, OUTPUTS), out, committed)
        if max_runs:
            break
    return Path(out)


def _committed(out: str | Path, threads: int) -> pd.DataFrame:
    """The committed results the current code would make again, at this thread count."""
    previous = findings.read_results(out)
    committed = findings.current_runs(previous)
    committed = committed[committed["threads"] == threads]
    if previous["run"].nunique() > committed["run"].nunique():
        print(f"{previous['run'].nunique() - committed['run'].nunique()} runs in {out} are from other code, "
              f"config or thread count: they are retrained where the plan needs them, and leave {out}")
    return committed
