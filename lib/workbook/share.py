"""Share and open models: a run exported as a folder that stands on its own, a checkpoint in the
log's format imported as one, and any model scored on a test source you name.

A model folder is a run folder whose one model is model.safetensors instead of checkpoints/*.pt,
so lib.evaluate.load_run / load_model, the notebooks and the commands open it like any run:

    config.json        the resolved run config: its variant, preset and code version
    model.safetensors  the plain model's parameters (the EMA weights when the run kept them)
    README.md          the model card: what was trained, on what, for how long, and its results
    summary.json, metrics.jsonl, eval.parquet   its results on its config's test set

    python -m lib.cli export RUN_DIR --to DIR
    python -m lib.cli import-checkpoint model_recur_add.pt --variant recur-add --out DIR

The log's checkpoints (chenglou/sudoku-solver at c716dfe) are torch.save(state_dict) of its
scripts' model: input_proj, row/col/box_embed, an nn.TransformerEncoder
(`transformer.layers.i.self_attn.in_proj_weight`, ...) and output_head, sometimes with
torch.compile's `_orig_mod.` prefix or inside a `model_state_dict`. LOG_NAMES maps them onto the
workbook's names; every other name must already be one of the variant's. An imported model is
scored on its test source by the training loop's own evaluation (lib.train.run_eval).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from lib import data as data_lib
from lib import files
from lib import train as training
from lib.config import ConfigError, apply_overrides, bucket_order
from lib.experiments.resolve import VARIANTS, make_config
from lib.evaluate import load_model, load_run
from lib.model import build_model, count_params
from lib.provenance import code_identity

LOG_REPO = "chenglou/sudoku-solver at c716dfe"
# The log's published checkpoints: the variant that runs the script that saved it, and that script
LOG_CHECKPOINTS = {
    "model_recur_add.pt": ("recur-add", "exp_recur_add.py"),
    "model_mixed.pt": ("kaggle-mixed", "train_mixed.py"),
    "model_sam_bs512.pt": ("sam-bs512", "eval_difficulties.py"),
}
PRESET_OF_GRID = {9: "gpu-paper", 6: "cpu-quick", 4: "cpu-smoke"}  # the scale an import runs at
# (pattern, replacement): nn.TransformerEncoder's names and the scripts' head -> the workbook's
LOG_NAMES = [
    (r"transformer\.layers\.(\d+)\.self_attn\.in_proj_", r"cores.0.layers.\1.attn.qkv."),
    (r"transformer\.layers\.(\d+)\.self_attn\.out_proj\.", r"cores.0.layers.\1.attn.proj."),
    (r"transformer\.layers\.(\d+)\.linear([12])\.", r"cores.0.layers.\1.ff.fc\2."),
    (r"transformer\.layers\.(\d+)\.norm([12])\.", r"cores.0.layers.\1.norm\2."),
    (r"output_head\.", "head.{head}."),  # the head's Linear: head.0, or head.1 after a LayerNorm
]
PREFIXES = ("_orig_mod.", "module.")  # torch.compile's and DDP's wrappers
KEYWORDS = ("benchmark", "kaggle", "sudoku-extreme")  # test sources named by a word, not a path


class CheckpointMismatch(ConfigError):
    """A checkpoint that does not fit the variant; the message names the first parameter that does
    not and what the variant expected."""


# --- the log's checkpoints -------------------------------------------------------------------

def log_state_dict(path) -> dict[str, torch.Tensor]:
    """name -> tensor from a checkpoint file: a bare state dict, or one under model_state_dict,
    state_dict or model, with the wrappers' prefixes taken off."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model_state_dict", "state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(map(torch.is_tensor, obj.values())):
        raise CheckpointMismatch(f"{path}: not a state dict (parameter name -> tensor), nor one "
                                 "under model_state_dict, state_dict or model")
    return {_unwrapped(k): v for k, v in obj.items()}


def _unwrapped(name: str) -> str:
    while name.startswith(PREFIXES):
        name = name.split(".", 1)[1]
    return name


def workbook_name(name: str, head: int) -> str:
    """The workbook's name for a log name (any other name is taken as the workbook's already)."""
    for pattern, replacement in LOG_NAMES:
        if re.match(pattern, name):
            return re.sub(pattern, replacement.replace("{head}", str(head)), name, count=1)
    return name


def fitted(state: dict, model: torch.nn.Module, variant: str) -> dict:
    """`state` under the model's names, or CheckpointMismatch naming the first parameter that
    does not fit and what the variant expected there."""
    expected = model.state_dict()
    head = len(model.head) - 1
    out = {}
    for name, tensor in state.items():
        mine, shape = workbook_name(name, head), tuple(tensor.shape)
        if mine not in expected:
            left = [f"{k} {tuple(v.shape)}" for k, v in expected.items() if k not in out][:4]
            left = left or ["none: every one is matched"]
            raise CheckpointMismatch(
                f"checkpoint parameter {name!r} {shape} does not fit variant {variant!r}: it has "
                f"no {mine!r} (its parameters not yet matched begin {', '.join(left)})")
        if shape != tuple(expected[mine].shape):
            raise CheckpointMismatch(
                f"checkpoint parameter {name!r} has shape {shape}; variant {variant!r} expects "
                f"{mine!r} of shape {tuple(expected[mine].shape)}")
        out[mine] = tensor
    missing = [k for k in expected if k not in out]
    if missing:
        first = missing[0]
        raise CheckpointMismatch(
            f"the checkpoint has no parameter for {first!r} {tuple(expected[first].shape)}, which "
            f"variant {variant!r} has ({len(missing)} missing)")
    return out


# --- writing a model folder ------------------------------------------------------------------

def write_weights(folder: files.RunFiles, model: torch.nn.Module, config: dict) -> None:
    from safetensors.torch import save  # only model folders need it
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    code = (config.get("code") or {}).get("code_version")
    blob = save(state, metadata={"variant": config["variant"], "preset": config["preset"],
                                 "code_version": str(code)})
    files.atomic_write(folder.weights, lambda tmp: tmp.write_bytes(blob))


def _empty_target(path) -> files.RunFiles:
    folder = files.RunFiles(path)
    if folder.root.exists() and any(folder.root.iterdir()):
        raise ConfigError(f"{files.relative(folder.root)} already exists and is not empty: "
                          "choose a new folder")
    return folder


def _copy(src: Path, dest: Path) -> None:
    if src.exists():
        files.atomic_write(dest, lambda tmp: shutil.copyfile(src, tmp))


def score(folder, origin: dict, steps: int, progress: bool = False) -> dict:
    """Evaluate a model folder on its config's test split (and eval.sources) with the training
    loop's own evaluation, writing what a finished run holds: metrics.jsonl's test rows,
    eval.parquet and summary.json, logged at `steps` (those the model was trained for)."""
    t0 = time.time()
    cfg = load_run(folder).run_config
    ctx = training.make_context(cfg, folder, progress)
    model = load_model(folder, device=ctx.device)
    test = data_lib.load_splits(cfg.data, progress).test
    tests = {"test": data_lib.eval_subset(test, cfg.eval.max_puzzles)}
    for spec in cfg.eval.sources:
        tests[spec] = data_lib.load_eval_source(spec, cfg.data, progress)
    state = training.TrainState(step=steps)
    metrics = training.MetricsWriter(ctx.files.metrics, cfg.train.seed, None, True)
    try:
        result = training.run_eval(ctx, model, tests["test"], metrics, steps)
        state.record_eval(result)
        parts = training.Parts(model, None, None, None, model, {})
        training.write_eval(ctx, result, parts, tests, metrics, steps)
    finally:
        metrics.close()
    # a summary's wall_seconds is training time, which is not known here
    summary = training.make_summary(ctx, state, "complete", count_params(model), 0.0)
    summary["origin"] = {**origin, "scored_seconds": round(time.time() - t0, 1)}
    files.write_json(ctx.files.summary, summary)
    return summary


def source_overrides(source: str, per_bucket: int) -> dict:
    """The config fields that make `source` (a KEYWORDS word or a puzzle file, kept absolute for
    any cwd) a model folder's test set of `per_bucket` puzzles per bucket. A model folder never
    trains: its train split is what the source leaves (0 = all, so no shortfall is reported)."""
    path = source if source in KEYWORDS else str(Path(source).resolve())
    return {"data.source": path, "data.test_per_bucket": per_bucket, "data.train_size": 0,
            "eval.sources": [], "eval.max_puzzles": 0}


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- the three ways to make one --------------------------------------------------------------

def export(run_dir, to) -> Path:
    """A finished run as a model folder: the weights its results were scored with (the last
    checkpoint's, EMA when the run kept it), its config, metrics, results, summary and a card."""
    run = load_run(run_dir)
    if run.summary.get("status") != "complete" or run.evals is None:
        raise ConfigError(f"{files.relative(run_dir)} has not finished (no complete summary.json "
                          "and eval.parquet): export a finished run")
    src, dest = files.RunFiles(run_dir), _empty_target(to)
    files.write_json(dest.config, run.config)
    write_weights(dest, load_model(run_dir, "last"), run.config)
    for name in ("metrics", "evals", "eval_sources"):
        _copy(getattr(src, name), getattr(dest, name))
    origin = {"kind": "exported", "from": files.relative(run_dir)}
    files.write_json(dest.summary, {**run.summary, "origin": origin})
    files.write_text(dest.readme, model_card(dest.root))
    return dest.root


def import_checkpoint(file, variant: str = "", out=None, grid: int = 9, test: str = "benchmark",
                      per_bucket: int = 100, overrides: dict | None = None, device: str = "auto",
                      progress: bool = False) -> Path:
    """A checkpoint in the log's format as a model folder of `variant` at the grid's preset, scored
    on `per_bucket` puzzles per bucket of `test`. For the log's three published checkpoints the
    variant defaults to the one that runs the script that saved it."""
    file = Path(file)
    variant = variant or LOG_CHECKPOINTS.get(file.name, ("",))[0]
    if not variant:
        known = ", ".join(f"{name} ({v})" for name, (v, _) in LOG_CHECKPOINTS.items())
        raise ConfigError(f"{file.name}: name its variant (--variant); the log's checkpoints are "
                          f"{known}")
    if grid not in PRESET_OF_GRID:
        raise ConfigError(f"--grid: {grid} is not supported; choose one of "
                          f"{tuple(PRESET_OF_GRID)}")
    cfg = make_config(PRESET_OF_GRID[grid], variant, {**source_overrides(test, per_bucket),
                                                      "train.device": device, **(overrides or {})})
    model = build_model(cfg.model, cfg.data.grid_size)
    model.load_state_dict(fitted(log_state_dict(file), model, variant))
    dest = _empty_target(out)
    config = {**cfg.to_dict(), "code": code_identity()}
    files.write_json(dest.config, config)
    write_weights(dest, model, config)
    origin = {"kind": "imported", "file": file.name, "sha256": sha256(file),
              "script": LOG_CHECKPOINTS.get(file.name, ("", ""))[1]}
    score(dest.root, origin, cfg.train.steps, progress)
    files.write_text(dest.readme, model_card(dest.root))
    return dest.root


def on_source(run_dirs, source: str, out_dir, per_bucket: int = 0,
              progress: bool = False) -> list[Path]:
    """Each run's (or model folder's) model scored on another test source, as a model folder
    out_dir/runs/<name>-on-<source> that every notebook opens like the run; the runs themselves
    when `source` is empty. One made from the same weights, config and code is kept as it is."""
    if not source:
        return [Path(d) for d in run_dirs]
    return [_rescored(Path(d), source, Path(out_dir), per_bucket, progress) for d in run_dirs]


def _rescored(run_dir: Path, source: str, out_dir: Path, per_bucket: int, progress: bool) -> Path:
    run = load_run(run_dir)
    cfg = run.run_config
    apply_overrides(cfg, source_overrides(source, per_bucket or cfg.data.test_per_bucket))
    config = json.loads(json.dumps({**cfg.to_dict(), "code": run.config.get("code")}))
    origin = {"kind": "rescored", "from": files.relative(run_dir),
              "weights_sha256": sha256(files.RunFiles(run_dir).model_file("last")),
              "scored_by": code_identity()["code_version"]}
    dest = files.NotebookFiles(out_dir).run(f"{run_dir.name}-on-{Path(source).stem}")
    kept = (files.read_json(dest.summary) or {}).get("origin", {})
    if files.read_json(dest.config) == config and {k: kept.get(k) for k in origin} == origin:
        return dest.root
    shutil.rmtree(dest.root, ignore_errors=True)
    files.write_json(dest.config, config)
    write_weights(dest, load_model(run_dir, "last"), config)
    score(dest.root, origin, int(run.summary.get("steps") or cfg.train.steps), progress)
    files.write_text(dest.readme, model_card(dest.root))
    return dest.root


# --- the model card --------------------------------------------------------------------------

def model_card(folder) -> str:
    """README.md of a model folder, from its config.json, summary.json and eval.parquet."""
    run = load_run(folder)
    cfg, summary, m = run.run_config, run.summary, run.run_config.model
    n, where = cfg.data.grid_size, files.relative(folder)
    variant = VARIANTS.get(cfg.variant)
    code = (run.config.get("code") or {}).get("code_version", "unknown")
    lines = [
        f"# {cfg.variant}: a recurrent-depth transformer for {n}x{n} Sudoku", "",
        f"Variant `{cfg.variant}` of the sudoku workbook at preset `{cfg.preset}`"
        + (f": {variant.description}." if variant else "."), "",
        "## What was trained, on what, for how long", "",
        _provenance(cfg, summary, summary.get("origin", {})), "",
        f"- model: {summary.get('params', 0):,} parameters; d_model {m.d_model}, {m.n_layers} "
        f"{m.block} layers, {m.n_heads} heads, d_ff {m.d_ff}; input {m.input}, recurrence "
        f"{m.recurrence}, positions {m.pos}; {m.iterations} iterations in training",
        f"- training: {cfg.train.steps:,} steps at batch {cfg.train.batch_size:,}; "
        f"{cfg.optim.name}, lr {cfg.optim.lr:g}, schedule {cfg.schedule.kind}, "
        f"curriculum {cfg.curriculum.kind}",
        f"- code: {code}", "",
        "## Results", "", _test_set(cfg, run.evals), "",
        *_results_table(run.evals, training.eval_counts(cfg)), "",
        "## Use", "", "```bash",
        f"python -m lib.cli test-time {where} --iterations 1024",
        f"python -m lib.cli run notebooks/07_explorer.ipynb -p run_dir {where}",
        f"python -m lib.cli run notebooks/09_failure_analysis.ipynb -p run_dirs '[\"{where}\"]'",
        "```", "", "```python", "from lib.evaluate import load_model, solve",
        f"model = load_model(\"{where}\")  # model.safetensors, built as config.json says",
        "solve([\"<81 characters, '.' for blanks>\"], model, halt=\"verified\").grids", "```", ""]
    return "\n".join(lines)


def _provenance(cfg, summary: dict, origin: dict) -> str:
    if origin.get("kind") == "imported":
        script = f"`{origin['script']}`" if origin.get("script") else "a script"
        return (f"Trained by {script} of the log ({LOG_REPO}), imported here from its checkpoint "
                f"`{origin['file']}` (sha256 {origin['sha256'][:16]}). The training figures below "
                "are the variant's, which runs that script; the training data is the script's "
                "(see the description above). config.json's `data` section names the test set the "
                "workbook's notebooks draw from.")
    if origin.get("kind") == "rescored":  # its data section names this test set, not its training
        return (f"The model of `{origin['from']}`, scored here on another test set: that folder's "
                "config.json and README say what it was trained on.")
    n, minutes = cfg.data.grid_size, summary.get("wall_seconds", 0) / 60
    return (f"Trained by this workbook on {n}x{n} puzzles from `{cfg.data.source}` "
            f"({cfg.data.train_size:,} training puzzles), {summary.get('steps', 0):,} steps in "
            f"{minutes:.1f} min on {summary.get('device', 'an unknown device')}.")


def _test_set(cfg, evals) -> str:
    d = cfg.data
    count = evals["puzzle"].nunique() if evals is not None else 0
    cap = f", rated at most {d.train_max}" if d.train_max else ""
    counts = ", ".join(map(str, training.eval_counts(cfg)))
    return (f"Test set: {count} puzzles from `{d.source}`, up to {d.test_per_bucket} per "
            f"`{d.bucket_by}` bucket (lower edges {d.bucket_edges}{cap}). Solved: every blank "
            f"cell right at that iteration count; cell accuracy: over the blank cells. Trained at "
            f"{cfg.model.iterations} iterations; scored at {counts}.")


def _results_table(evals: pd.DataFrame | None, counts: list[int]) -> list[str]:
    """Markdown rows: per bucket (and all), solved % and cell accuracy % at each reported count."""
    if evals is None:
        return ["(no evaluation)"]
    if "weights" in evals.columns:  # an EMA run reported its EMA weights
        evals = evals[evals["weights"] == "ema"]
    ev = evals[evals["iteration"].isin(counts)]
    both = pd.concat([ev, ev.assign(bucket="all")], ignore_index=True)
    table = both.groupby(["bucket", "iteration"]).agg(
        solved=("solved", "mean"), cell=("cell_acc", "mean"), puzzles=("puzzle", "nunique"))
    head = (["bucket", "puzzles"] + [f"solved % @{c}" for c in counts]
            + [f"cell acc % @{c}" for c in counts])
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for bucket in bucket_order(table.index.get_level_values("bucket")):
        t = table.loc[bucket]
        cells = [f"{100 * t.loc[c, metric]:.1f}" for metric in ("solved", "cell") for c in counts]
        rows.append(f"| {bucket} | {int(t['puzzles'].iloc[0])} | " + " | ".join(cells) + " |")
    return rows
