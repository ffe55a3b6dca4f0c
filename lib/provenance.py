"""Which code produced a result: the git commit and a hash of the source files that shape results.

A run records `code_identity()` in config.json and summary.json. Reuse and resume compare the
`code_hash`, so fixing a bug in lib/ never silently reuses results made by the buggy code. Reports,
plots and the runner do not shape a result, so editing them keeps finished runs reusable.
"""
from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parent
# the modules whose code decides what a run computes (data, model, training, curricula, evaluation)
RESULT_MODULES = ("config.py", "puzzles.py", "data.py", "model.py", "schedule.py", "curriculum.py",
                  "train.py", "evaluate.py")


def source_hash(files=RESULT_MODULES, root: Path = LIB) -> str:
    """sha256 over the named files' bytes (uncommitted edits included), 16 hex digits."""
    h = hashlib.sha256()
    for name in sorted(files):
        path = root / name
        if path.exists():
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def git_commit(root: Path = LIB.parent) -> str:
    """HEAD's commit, with '+dirty' when tracked files differ from it; 'unknown' outside git."""
    try:
        run = lambda *args: subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                           timeout=10, check=True).stdout.strip()
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def _identity() -> tuple[str, str]:
    return source_hash(), git_commit()


def code_identity() -> dict:
    """Computed once per process: a run is made by the code its process imported, so files edited while it
    runs must not change the identity its later checkpoints and summary record (nor cost a re-read each time)."""
    code_hash, commit = _identity()
    return {"code_hash": code_hash, "commit": commit}
