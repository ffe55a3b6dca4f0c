"""Which code produced a result: a results version, certified by what the code computes.

A run records `code_identity()` in config.json and summary.json; reuse, resume and the findings compare its
`code_version`. The config a run resolved is compared on its own (config.json), so the registry of presets
and variants is not part of the code's identity: a new variant or preset never stales a finished run.

Why a version and not a hash of the source bytes: a byte hash stales every result on a comment, a docstring,
a rename or an input-validation fix, and a workbook in which fixing a bug costs half a day of CPU does not
get its bugs fixed. Why not an AST hash alone: a refactor changes the AST without changing one number. So:

    code_version = "r<RESULTS_VERSION>"                       the computing modules' AST is the certified one
                 = "r<RESULTS_VERSION>+edited.<ast hash>"     any other AST: not yet certified

- Comments and docstrings are not in the stripped AST, so editing them keeps every run current.
- Any other edit of a computing module (a refactor, a rename, a new branch, a bug fix) makes the identity
  "edited" until `make golden` certifies it: lib/findings/golden.py reruns the behavioural fingerprints (one short
  training of every variant on cpu-smoke, a full cpu-smoke run's per-puzzle results, the data pipeline),
  and records the new AST as version RESULTS_VERSION only when every number is unchanged. When a number
  changed, it refuses until RESULTS_VERSION is bumped, which stales every earlier run: an intended change
  is explicit, and an unintended one cannot slip through (tests/test_golden.py fails in `make test`).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parent
REPO = LIB.parent
# Bump when what a run computes changes on purpose (then `make golden`): every earlier run becomes stale.
RESULTS_VERSION = 3
# The modules whose code decides what a run computes from its resolved config (paths under lib/). config.py
# and lib/experiments/ only build configs, and a run's config is compared directly.
COMPUTING_MODULES = ("sudoku/__init__.py", "sudoku/puzzles.py", "data.py", "model.py", "schedule.py",
                     "curriculum.py", "train.py", "optim.py", "evaluate.py")
CERTIFIED = REPO / "tests" / "golden" / "certified.json"  # {results_version, ast_hash}: findings/golden.py


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return tree


def ast_hash(files=COMPUTING_MODULES, root: Path = LIB) -> str:
    """sha256 over the named modules' syntax trees without docstrings (comments and layout never reach an
    AST), 16 hex digits; uncommitted edits included."""
    h = hashlib.sha256()
    for name in sorted(files):
        path = root / name
        if path.exists():
            tree = _strip_docstrings(ast.parse(path.read_text(), filename=name))
            h.update(name.encode() + b"\0" + ast.dump(tree, include_attributes=False).encode() + b"\0")
    return h.hexdigest()[:16]


def certified() -> dict:
    try:
        return json.loads(CERTIFIED.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def code_version(current_ast: str | None = None) -> str:
    """"r<N>" when the computing modules are the certified ones of RESULTS_VERSION, else "r<N>+edited.<ast>"."""
    current_ast = current_ast or ast_hash()
    record = certified()
    if record.get("results_version") == RESULTS_VERSION and record.get("ast_hash") == current_ast:
        return f"r{RESULTS_VERSION}"
    return f"r{RESULTS_VERSION}+edited.{current_ast}"


@functools.lru_cache(maxsize=1)
def git_commit(root: Path = REPO) -> str:
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
def machine() -> dict:
    """What decides a CPU run's last bits besides the code: the processor (vendor, family, model, stepping,
    flags) and the kernels' libraries. Two machines that both say "AVX512" can still round differently (an
    EPYC of another model, another MKL path), so results are compared exactly only where this is equal."""
    import platform

    import numpy
    import torch

    cpu = _cpuinfo()
    flags = " ".join(sorted(cpu.get("flags", "").split()))
    mkl = next((line.strip() for line in torch.__config__.show().splitlines() if "Math Kernel" in line), "")
    return {"vendor": cpu.get("vendor_id", platform.processor()), "model_name": cpu.get("model name", ""),
            "family": cpu.get("cpu family", ""), "model": cpu.get("model", ""),
            "stepping": cpu.get("stepping", ""), "flags": hashlib.sha256(flags.encode()).hexdigest()[:12],
            "capability": torch.backends.cpu.get_cpu_capability(),
            # a str, not torch's TorchVersion: checkpoints hold this, and torch.load(weights_only=True) refuses
            # any class it does not know
            "torch": str(torch.__version__),
            "mkl": mkl, "numpy": numpy.__version__}


def machine_id(record: dict | None = None) -> str:
    """A short name for a machine() record: equal records, equal names."""
    blob = json.dumps(record if record is not None else machine(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _cpuinfo() -> dict:
    """The first processor's fields of /proc/cpuinfo ({} where there is none: macOS, Windows)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    first = text.split("\n\n")[0]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines()) if k.strip()}


@functools.lru_cache(maxsize=1)
def _identity() -> tuple[str, str]:
    return code_version(), git_commit()


def code_identity() -> dict:
    """Computed once per process: a run is made by the code its process imported, so files edited while it
    runs must not change the identity its later checkpoints and summary record (nor cost a re-read each time)."""
    version, commit = _identity()
    return {"code_version": version, "commit": commit, "machine": machine()}
