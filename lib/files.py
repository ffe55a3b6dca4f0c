"""The one way to write a file that a kill must never leave half-written, and to read JSON back."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable


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
    root = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)
