"""Watch a run live in TensorBoard: each row of metrics.jsonl, as it is written, also goes to event
files in the run's tensorboard/ folder.

    python -m lib.cli train --preset gpu-paper --set train.tensorboard=true --out outputs/train/x
    tensorboard --logdir outputs               # every run under outputs/, refreshed as they train
    python -m lib.cli tensorboard RUN_DIR...   # a finished run's metrics.jsonl, converted

Scalars, one per metrics row: train/loss, train/lr, train/cell_acc, train/puzzles_per_second,
train/stage and train/step_seconds (the batch over the throughput); per bucket
"test solved % @16/<bucket>" and "test cell_acc % @16/<bucket>" at each reported iteration count
(likewise "source:<name> solved % @16/<bucket>"). The tensorboard package is optional: without it
a run says so once and trains on.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from lib import files

log = logging.getLogger("lib.watch")
MISSING = ("train.tensorboard=true, but the tensorboard package is not installed "
           "(pip install tensorboard): this run writes metrics.jsonl only")
PERCENT = ("solved", "cell_acc")  # test rows are shown as percentages
_said_missing = False


def tag(row: dict) -> tuple[str, float]:
    """(TensorBoard tag, value) of one metrics row."""
    split, metric, value = row["split"], row["metric"], float(row["value"])
    if split == "train":
        return f"train/{metric}", value
    if metric in PERCENT:
        metric, value = f"{metric} %", 100 * value
    at = f" @{row['iterations']}" if row.get("iterations") is not None else ""
    return f"{split} {metric}{at}/{row['bucket']}", value


class Board:
    """A TensorBoard writer of one run's rows. `purge_step`: the first step written again, so that
    events past a resumed run's checkpoint (or an older run's in a reused folder, with 0) are
    dropped, as metrics.jsonl drops its rows."""

    def __init__(self, folder: Path, batch_size: int, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when asked
        self.batch_size = batch_size
        self.writer = SummaryWriter(str(folder), purge_step=purge_step, flush_secs=10)

    def add(self, row: dict) -> None:
        name, value = tag(row)
        self.writer.add_scalar(name, value, row["step"])
        if name == "train/puzzles_per_second" and value > 0 and self.batch_size:
            self.writer.add_scalar("train/step_seconds", self.batch_size / value, row["step"])

    def close(self) -> None:
        self.writer.close()


def available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def open_board(run_dir, cfg, resumed_at: int | None = None) -> Board | None:
    """A Board for a run with train.tensorboard on and the package installed; else None, saying
    once per process that the package is missing."""
    global _said_missing
    if not cfg.train.tensorboard:
        return None
    if not available():
        if not _said_missing:
            log.warning(MISSING)
            print(f"warning: {MISSING}", file=sys.stderr)
            _said_missing = True
        return None
    purge = resumed_at + 1 if resumed_at is not None else 0
    return Board(files.RunFiles(run_dir).tensorboard, cfg.train.batch_size, purge)


def convert(run_dir) -> Path:
    """A run's metrics.jsonl as event files in its tensorboard/ folder, replacing what was there:
    written into a temporary folder first, so the folder is the old one or the whole new one."""
    run = files.RunFiles(run_dir)
    if not run.metrics.exists():
        raise FileNotFoundError(f"{run.root} has no {run.metrics.name} to convert")
    batch = (files.read_json(run.config) or {}).get("train", {}).get("batch_size", 0)
    tmp = Path(tempfile.mkdtemp(dir=run.root, prefix=".tensorboard."))
    try:
        board = Board(tmp, batch)
        for line in run.metrics.read_text().splitlines():
            try:
                board.add(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # the torn last line of a killed run
        board.close()
        old = run.root / f".tensorboard.old.{os.getpid()}"
        if run.tensorboard.exists():
            os.replace(run.tensorboard, old)
        os.replace(tmp, run.tensorboard)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run.tensorboard
