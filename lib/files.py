"""The one way to write a file that a kill must never leave half-written, to read JSON back, and the names
of the files in a run folder."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
OUTPUTS = Path(os.environ.get("SUDOKU_WORKBOOK_OUTPUTS", REPO / "outputs"))
NOTEBOOK_RUN = "notebook-run"  # marks a notebook run's summary.json, as opposed to a training run's


@dataclass(frozen=True)
class RunFiles:
    """A training run's folder (lib/train.py writes it; evaluate, results, findings and the runner read it)."""
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    config = property(lambda self: self.root / "config.json")  # the resolved config, plus "code"
    summary = property(lambda self: self.root / "summary.json")  # written last: status "complete" when done
    metrics = property(lambda self: self.root / "metrics.jsonl")  # tidy rows, one per line
    evals = property(lambda self: self.root / "eval.parquet")  # per test puzzle and scored iteration
    eval_sources = property(lambda self: self.root / "eval-sources.parquet")  # the same for eval.sources
    train_log = property(lambda self: self.root / "train.log")
    checkpoints = property(lambda self: self.root / "checkpoints")
    last = property(lambda self: self.root / "checkpoints" / "last.pt")
    best = property(lambda self: self.root / "checkpoints" / "best.pt")
    # a model folder (lib/workbook/share.py: exported or imported) holds its one model here instead of checkpoints/
    weights = property(lambda self: self.root / "model.safetensors")
    readme = property(lambda self: self.root / "README.md")  # a model folder's model card
    tensorboard = property(lambda self: self.root / "tensorboard")  # event files (lib/machine/watch.py)

    def checkpoint(self, which: str) -> Path:
        return self.checkpoints / f"{which}.pt"

    def model_file(self, which: str) -> Path:
        """checkpoints/<which>.pt, or model.safetensors in a model folder, which has no checkpoints."""
        path = self.checkpoint(which)
        return self.weights if not path.exists() and self.weights.exists() else path

    def test_time(self, iterations: int, checkpoint: str = "last", sources: bool = True) -> Path:
        """lib.workbook.test_time's per-puzzle scores of this run to `iterations` (from `checkpoint`)."""
        return self.root / f"test-time-{iterations}{'' if checkpoint == 'last' else '-' + checkpoint}{'' if sources else '-test'}.parquet"


@dataclass(frozen=True)
class NotebookFiles:
    """A notebook run's folder (lib/workbook/runner.py): its reports, log and summary, and its training runs."""
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    summary = property(lambda self: self.root / "summary.json")  # kind "notebook-run": what the index reads
    report = property(lambda self: self.root / "report.html")  # with code
    report_noinput = property(lambda self: self.root / "report-noinput.html")  # results only
    log = property(lambda self: self.root / "run.log")
    runs = property(lambda self: self.root / "runs")

    def run(self, name: str) -> RunFiles:
        return RunFiles(self.runs / name)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """write(tmp) into a temporary file beside `path`, fsync it, then os.replace: `path` always holds
    either the old content or the new, never a mix. On any error the temporary file is removed and
    the old file is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    # mkstemp makes the file private (0600); a report or result is meant to be shared like any other file
    os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=str))


def read_json(path: str | Path, default=None):
    """The parsed file, or `default` when it is missing or torn."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def relative(path: str | Path, root: str | Path | None = None) -> str:
    """A path as a shared report should show it: relative to `root` (default: the repository)."""
    root = Path(root) if root is not None else REPO
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
