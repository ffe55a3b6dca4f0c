"""What a notebook calls: prepare its output folder, train (or reuse) its runs, and finish its summary.

A notebook run lands in outputs/<family>/<run>/ (the runner, lib/workbook/runner.py, picks the folder): the executed
notebook, report.html (with code), report-noinput.html (results only), run.log, summary.json, and
runs/<variant>-s<seed>/ for each training run.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from pathlib import Path

from lib import files
from lib.files import NOTEBOOK_RUN, OUTPUTS, REPO  # noqa: F401  (the runner and sweep read them here)
from lib import train as training
from lib.config import ConfigError, RunConfig
from lib.experiments.resolve import make_config
from lib.provenance import code_identity
from lib.workbook.results import Results, rating_table, runs_from_other_code

# The runner sets this to 0 for the kernels it starts: it shows progress on the terminal itself, and a
# progress bar inside the kernel would only leave residue in the rendered report.
PROGRESS_ENV = "SUDOKU_WORKBOOK_PROGRESS"
log = logging.getLogger("lib.workbook")


def family_of(notebook: str | Path) -> str:
    """notebooks/01_baseline.ipynb -> baseline"""
    stem = Path(notebook).stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


def prepare(output_dir: str) -> Path:
    """The folder a notebook writes into: the runner's, or outputs/<family>/lab when run in JupyterLab.
    JupyterLab names the notebook in $JPY_SESSION_NAME; without it the family is 'scratch'."""
    if output_dir:
        out = Path(output_dir)
    else:
        out = OUTPUTS / family_of(os.environ.get("JPY_SESSION_NAME") or "scratch") / "lab"
        print(f"no output_dir given: writing to {files.relative(out)}")
    out.mkdir(parents=True, exist_ok=True)
    log_to_file(files.NotebookFiles(out).log)
    return out


def progress_default() -> bool:
    """Progress bars in this process: yes, unless the runner that started this kernel shows progress itself."""
    return os.environ.get(PROGRESS_ENV, "1") != "0"


def log_to_file(path: Path) -> None:
    """Send the lib.* loggers' records to `path` too (once per file)."""
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


def check_reuse(reuse) -> None:
    if not (isinstance(reuse, bool) or reuse == "config-only"):
        raise ConfigError(f"reuse must be true, false or \"config-only\", got {reuse!r}")


def train_runs(preset: str, variants: list[str], seeds: list[int], output_dir: Path, device: str = "auto",
               overrides: dict | None = None, reuse: bool | str = True, progress: bool | None = None) -> list[Path]:
    """Train every (variant, seed) into output_dir/runs/.

    reuse=True: a finished run with the same config and code is reused, a killed one resumes; anything
    else is trained afresh. reuse="config-only": a finished run with the same config is reused even when
    other code made it (the tables mark it). reuse=False: everything is trained afresh."""
    check_reuse(reuse)
    progress = progress_default() if progress is None else progress
    configs = [config_for(preset, v, overrides, device, s) for v in variants for s in seeds]  # fail fast
    code_version = code_identity()["code_version"]
    dirs = []
    for cfg in configs:
        run = files.NotebookFiles(output_dir).run(run_dir_name(cfg.variant, cfg.train.seed)).root
        action = reuse_action(run, cfg, code_version, reuse)
        if action == "reuse":
            log.info("reusing finished run %s", files.relative(run))
        else:
            if run.exists() and action != "resume":
                shutil.rmtree(run)
            log.info("training %s (%s)", files.relative(run), action)
            training.train(cfg, run, resume=action == "resume", progress=progress)
        dirs.append(run)
    return dirs


def reuse_action(run: Path, cfg: RunConfig, code_version: str, reuse: bool | str) -> str:
    """'reuse', 'resume' or 'train' for a run folder, by its config.json (config + "code") and summary.json."""
    folder = files.RunFiles(run)
    saved = files.read_json(folder.config) or {}
    recorded = (saved.pop("code", None) or {}).get("code_version")  # None: written before runs recorded it
    same_config = same_resolved_config(saved, cfg)
    same_code = recorded is not None and recorded == code_version
    finished = (files.read_json(folder.summary) or {}).get("status") == "complete"
    if reuse and same_config and finished and (same_code or reuse == "config-only"):
        return "reuse"
    if reuse and same_config and same_code and folder.last.exists():
        return "resume"
    return "train"


def same_resolved_config(saved: dict, cfg: RunConfig) -> bool:
    """Whether a run's recorded config is `cfg`. A field the record lacks takes its default (the run was made
    before the field existed, when the code ran what that default runs); a field the code no longer has
    makes it another config."""
    try:
        return RunConfig.from_dict(saved).to_dict() == cfg.to_dict()
    except ConfigError:
        return False


def finish(output_dir: Path, results: Results, notebook_params: dict) -> dict:
    """Write the notebook run's summary.json, which the index reads. notebook_params: every parameter."""
    table = rating_table(results).reset_index()
    headline = {f"{r.variant}:{r.bucket}": r["solved % (final)"] for _, r in table.iterrows()}
    summary = {
        "kind": NOTEBOOK_RUN,
        "status": "complete",
        "family": Path(output_dir).parent.name,
        "run": Path(output_dir).name,
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "params": notebook_params,
        "variants": sorted(results.summaries["variant"].unique().tolist()),
        "seeds": sorted(int(s) for s in results.summaries["seed"].unique()),
        "grid_size": int(results.summaries["grid_size"].iloc[0]),
        "wall_seconds": float(results.summaries["wall_seconds"].sum()),
        "solved_final": headline,
        "code": code_identity(),
        "runs_from_other_code": runs_from_other_code(results),
    }
    path = files.write_json(files.NotebookFiles(output_dir).summary, summary)
    print(f"summary written to {files.relative(path)}")
    return summary
