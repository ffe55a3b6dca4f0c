"""The workbook's command line.

    python -m lib.cli run notebooks/01_baseline.ipynb -p preset cpu-quick [-f params.yaml]
    python -m lib.cli train --preset cpu-quick [--variant NAME] [--set key=value ...] [--out DIR] [--resume]
    python -m lib.cli variants [--preset cpu-quick]
    python -m lib.cli sweep notebooks/05_curriculum.ipynb --grid grid.yaml
    python -m lib.cli index | screenshot

A bad parameter or config value is reported in one line, with exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from lib import files, runner, sweep
from lib import train as training
from lib.config import PRESETS, VARIANTS, ConfigError, flatten, make_config, parse_set
from lib.workbook import OUTPUTS, run_dir_name


def parse_params(pairs: list[list[str]] | None, param_files: list[str] | None) -> dict:
    """-f YAML files, then -p name value pairs; values are YAML so `true` and `[0, 1]` arrive typed."""
    params = {}
    for f in param_files or []:
        loaded = yaml.safe_load(Path(f).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{f}: a parameter file must hold a YAML mapping, got {type(loaded).__name__}")
        params.update(loaded)
    for name, value in pairs or []:
        params[name] = yaml.safe_load(value)
    return params


def resolved_overrides(preset: str, variant: str) -> dict:
    """The config keys whose value at `preset` differs from the baseline's: what the variant really changes."""
    base = flatten(make_config(preset, "baseline").to_dict())
    this = flatten(make_config(preset, variant).to_dict())
    return {k: v for k, v in this.items() if k != "variant" and v != base.get(k)}


def _cmd_run(args) -> None:
    run = runner.run_notebook(args.notebook, parse_params(args.p, args.f), name=args.name)
    print(files.relative(run / "report.html"))


def _cmd_train(args) -> None:
    overrides = parse_set(args.set or [])
    overrides.setdefault("train.device", args.device)
    cfg = make_config(args.preset, args.variant, overrides)
    out = Path(args.out) if args.out else OUTPUTS / "train" / f"{args.preset}-{run_dir_name(args.variant, cfg.train.seed)}"
    first_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 may have made the folder already
    if first_rank and out.exists() and any(out.iterdir()) and not args.resume:
        raise ConfigError(f"{files.relative(out)} already holds a run: pass --resume to continue it, "
                          f"or --out for a new folder")
    training.train(cfg, out, resume=args.resume, progress=not args.no_progress)
    print(files.relative(out))


def _cmd_variants(args) -> None:
    width = max(map(len, VARIANTS))
    for name, variant in VARIANTS.items():
        try:
            changes = ", ".join(f"{k}={v}" for k, v in resolved_overrides(args.preset, name).items()) or "-"
        except ConfigError as e:
            changes = f"not valid at {args.preset}: {e}"
        print(f"{name:<{width}}  {variant.description}  [{changes}]")


def _cmd_sweep(args) -> None:
    slurm = {k: yaml.safe_load(v) for k, v in parse_set(args.slurm or []).items()}
    table = sweep.run_sweep(args.notebook, args.grid, workers=args.workers, executor=args.executor, name=args.name,
                            slurm=slurm)
    print(table[["name", "status", "error"]].to_string(index=False))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m lib.cli", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="execute a notebook with papermill and render its report")
    p.add_argument("notebook")
    p.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a parameter (YAML value)")
    p.add_argument("-f", action="append", metavar="PARAMS_YAML", help="a YAML file of parameters")
    p.add_argument("--name", help="run folder name (default: <preset>-<timestamp>)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("train", help="train one run from the shell and print its folder")
    p.add_argument("--preset", default="cpu-quick", choices=list(PRESETS))
    p.add_argument("--variant", default="baseline")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a config override, e.g. train.steps=500")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="run folder (default: outputs/train/<preset>-<variant>-s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the folder's run from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("variants", help="every named variant and the config keys it changes at a preset")
    p.add_argument("--preset", default="cpu-quick", choices=list(PRESETS))
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
    p.set_defaults(func=lambda a: print(files.relative(runner.refresh_index())))

    p = sub.add_parser("screenshot", help="screenshot the newest report in headless Chromium")
    p.add_argument("--report")
    p.set_defaults(func=lambda a: print(files.relative(runner.screenshot(a.report))))
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, FileNotFoundError, yaml.YAMLError) as e:  # the user's input: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except runner.NotebookFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
