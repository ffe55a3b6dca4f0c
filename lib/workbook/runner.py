"""Run a notebook headlessly with papermill: check its parameters first, show progress while it runs,
render its two HTML reports, and keep outputs/index.html up to date.

    python -m lib.cli run notebooks/01_baseline.ipynb -p preset cpu-quick
"""
from __future__ import annotations

import ast
import contextlib
import datetime as dt
import html
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pandas as pd
import papermill as pm
import zmq
from nbconvert import HTMLExporter
from traitlets.config import Config

from lib import files
from lib.findings import findings
from lib.config import ConfigError, bucket_order
from lib.workbook.workbook import NOTEBOOK_RUN, OUTPUTS, PROGRESS_ENV, REPO, check_reuse, config_for, family_of, log_to_file

log = logging.getLogger("lib.runner")
FINDINGS = "findings"  # notebooks/10_findings.ipynb: its newest report heads the index
PYTHON_TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": list, "dict": dict}


class NotebookFailed(RuntimeError):
    """A notebook raised in a cell; its executed notebook and reports are kept."""


# --- parameters, checked before a kernel starts ----------------------------------------------

def notebook_parameters(notebook: str | Path) -> dict:
    """The names, annotations, defaults and comments of a notebook's `parameters` cell."""
    return pm.inspect_notebook(str(notebook))


def validate_parameters(notebook: str | Path, params: dict) -> None:
    """Raise ConfigError naming the first bad parameter: an unknown name, a value of the wrong type for the
    parameters cell's annotation, or values make_config refuses (unknown preset or variant, bad overrides)."""
    known = notebook_parameters(notebook)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"{Path(notebook).name} has no parameter(s) {', '.join(unknown)}; it takes: {', '.join(known)}")
    for name, value in params.items():
        _check_type(name, value, known[name])
    values = {name: _default(p) for name, p in known.items()} | params
    if "reuse" in values:
        check_reuse(values["reuse"])
    if "preset" in values:
        variants = values.get("variants") or [values.get("variant", "baseline")]
        for variant in variants:
            for seed in values.get("seeds", [0]):
                config_for(values["preset"], variant, values.get("overrides"), values.get("device", "auto"), seed)


def _check_type(name: str, value, param: dict) -> None:
    annotation = param.get("inferred_type_name") or "None"
    names = [t.strip() for t in annotation.removeprefix("Union[").removesuffix("]").replace("|", ",").split(",")]
    if annotation == "None":  # no annotation: the default's type
        names = [type(_default(param)).__name__]
    types = [PYTHON_TYPES[t] for t in names if t in PYTHON_TYPES]
    if len(types) < len(names):
        return  # an annotation this check does not know: the notebook decides
    if isinstance(value, bool) and bool not in types:  # bool is an int to isinstance
        types = []
    if not any(isinstance(value, t) for t in types):
        raise ConfigError(f"parameter {name} must be {annotation}, got {value!r} ({type(value).__name__})")


def _default(param: dict):
    try:
        return ast.literal_eval(param["default"])
    except (ValueError, SyntaxError):
        return None


# --- running -------------------------------------------------------------------------------------

def run_notebook(notebook: str | Path, params: dict | None = None, name: str | None = None,
                 out_root: Path | None = None, progress: bool = True) -> Path:
    """Execute a notebook with papermill into outputs/<family>/<run>/, render its reports, refresh the index.
    A failed run keeps its executed notebook (with the error cell) and is marked failed in the index."""
    notebook = Path(notebook)
    if not notebook.exists():
        raise FileNotFoundError(f"no notebook at {notebook}")
    params = dict(params or {})
    validate_parameters(notebook, params)
    family = family_of(notebook)
    out_root = Path(out_root or OUTPUTS)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run = out_root / family / (name or f"{params.get('preset', 'default')}-{stamp}")
    run.mkdir(parents=True, exist_ok=True)
    params["output_dir"] = files.relative(run)  # the kernel runs in the repo; the report shows no machine path
    executed = run / notebook.name
    log_to_file(files.NotebookFiles(run).log)
    log.info("running %s with %s", files.relative(notebook), params)
    error = None
    watcher = Progress(executed, run, label=f"{family}/{run.name}") if progress else None
    if watcher:
        watcher.start()
    try:
        with _environment({PROGRESS_ENV: "0"}):  # the kernel inherits it: no progress bars in the report
            pm.execute_notebook(str(notebook), str(executed), parameters=params, kernel_name="python3",
                                cwd=str(REPO), progress_bar=False, log_output=False, config=_kernel_config())
    except pm.PapermillExecutionError as e:
        error = {"ename": e.ename, "evalue": e.evalue, "cell": e.cell_index, "exec_count": e.exec_count}
        log.error("notebook failed in cell %s: %s: %s", e.cell_index, e.ename, e.evalue)
    finally:
        if watcher:
            watcher.stop()
    render_reports(executed)
    if error is not None:
        summary_path = files.NotebookFiles(run).summary
        summary = files.read_json(summary_path, {})
        summary.update({"kind": NOTEBOOK_RUN, "status": "failed", "family": family, "run": run.name, "error": error,
                        "params": params})
        files.write_json(summary_path, summary)
    refresh_index(out_root)
    if error is not None:
        raise NotebookFailed(f"{notebook.name} failed in cell {error['cell']}: {error['ename']}: {error['evalue']} "
                             f"(executed notebook kept at {files.relative(executed)})")
    return run


@contextlib.contextmanager
def _environment(values: dict):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kernel_config() -> Config:
    """Encrypt the kernel's channels (CurveZMQ) when pyzmq can: the kernel then has no reason to warn on the
    terminal that it runs over TCP without encryption."""
    return Config({"KernelManager": {"transport_encryption": "required" if zmq.has("curve") else "disabled"}})


class Progress:
    """A thread that prints one line when the running cell changes, and at least every `every` seconds:
    which code cell runs (n/N) and, while a run trains, its step and ETA. It reads only files: the executed
    notebook (papermill saves it at every cell start) and the newest runs/*/metrics.jsonl."""

    def __init__(self, executed: Path, run: Path, label: str, every: float = 10.0, poll: float = 1.0, out=None):
        self.executed, self.run, self.label, self.every, self.poll, self.out = executed, run, label, every, poll, out
        self.first_seen: dict[Path, tuple[float, int]] = {}  # metrics file -> (time, step) when first seen
        self.last_step: dict[Path, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        last_cell, last_print = None, 0.0
        while not self._stop.wait(self.poll):
            cell, training = self.cell(), self.training(time.monotonic())
            if cell and (cell != last_cell or time.monotonic() - last_print >= self.every):
                line = f"[{self.label}] {cell}" + (f" | {training}" if training else "")
                # one write with its newline: sweep workers share the stream, and print's two writes interleave
                print(line + "\n", end="", file=self.out or sys.stderr, flush=True)
                last_cell, last_print = cell, time.monotonic()

    def cell(self) -> str | None:
        """'cell 3/9' for the running code cell, from papermill's per-cell status in the executed notebook."""
        try:
            cells = json.loads(self.executed.read_text())["cells"]
        except (OSError, ValueError, KeyError):  # not written yet, or caught mid-write
            return None
        code = [c for c in cells if c.get("cell_type") == "code"]
        status = [c.get("metadata", {}).get("papermill", {}).get("status") for c in code]
        return f"cell {status.index('running') + 1}/{len(code)}" if "running" in status else None

    def training(self, now: float) -> str | None:
        """'training baseline-s0: step 120/600, ETA 1m40s' for the newest run folder that is writing metrics."""
        metrics = max(self.run.glob("runs/*/metrics.jsonl"), key=_mtime, default=None)
        if metrics is None:
            return None
        step = _last_step(metrics)
        total = (files.read_json(files.RunFiles(metrics.parent).config) or {}).get("train", {}).get("steps")
        if step is None or not total or step >= total:  # nothing trains before the first row, or after the last
            return None
        if step < self.last_step.get(metrics, 0):  # the run went back (resumed from an earlier checkpoint)
            self.first_seen.pop(metrics, None)  # so time it from here
        self.last_step[metrics] = step
        t0, step0 = self.first_seen.setdefault(metrics, (now, step))
        eta = "" if step <= step0 else f", ETA {_duration((total - step) * (now - t0) / (step - step0))}"
        return f"training {metrics.parent.name}: step {step}/{total}{eta}"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _last_step(metrics: Path) -> int | None:
    """The step of the last complete row of metrics.jsonl (only its tail is read)."""
    try:
        with open(metrics, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn or partial line
    return None


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{s:02d}s"


# --- reports and the index -----------------------------------------------------------------------

def render_reports(executed: Path) -> tuple[Path, Path]:
    """report.html with code and report-noinput.html with results only, beside the executed notebook."""
    nb = strip_progress(nbformat.read(str(executed), as_version=4))
    # Saved widget state makes nbconvert load the widget manager from a CDN; a shared report must work
    # offline, so widgets show their text fallback and notebooks add static figures beside them.
    nb.metadata.pop("widgets", None)
    paths = []
    folder = files.NotebookFiles(executed.parent)
    for exclude, path in ((False, folder.report), (True, folder.report_noinput)):
        exporter = HTMLExporter(exclude_input=exclude, exclude_input_prompt=exclude, exclude_output_prompt=exclude)
        body, _ = exporter.from_notebook_node(nb)
        paths.append(files.write_text(path, body))
    return tuple(paths)


# What a tqdm bar draws: "  0%|          | 0/7400 [00:00<?, it/s]" (text) or its widget's text fallback.
_PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*[\d.]+[kM]?/[\d.?]+[kM]?\s*\[")


def strip_progress(nb):
    """The notebook without progress-bar residue: bar lines in stream outputs (tqdm redraws with \\r), and
    progress widgets whose text fallback is a bar. A bar belongs on the terminal, never in a shared report."""
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and _PROGRESS_BAR.search(out.get("text", "")):
                lines = re.split(r"[\r\n]", out["text"])
                out["text"] = "".join(f"{line}\n" for line in lines if line.strip() and not _PROGRESS_BAR.search(line))
                if not out["text"]:
                    continue
            elif _PROGRESS_BAR.search(str(out.get("data", {}).get("text/plain", ""))):
                continue
            kept.append(out)
        if "outputs" in cell:
            cell["outputs"] = kept
    return nb


def index_rows(out_root: Path) -> pd.DataFrame:
    """One row per notebook run and variant: status, seeds, solved % (final) per bucket, and its report."""
    rows = []
    for summary_path in sorted(out_root.glob("*/*/summary.json")):
        s = files.read_json(summary_path, {})
        if s.get("kind") != NOTEBOOK_RUN:  # training runs (outputs/train/...) have their own summary.json
            continue
        run = summary_path.parent
        report = files.NotebookFiles(run).report
        base = {
            "family": run.parent.name, "run": run.name, "status": s.get("status", "unknown"),
            "preset": (s.get("params") or {}).get("preset", ""), "seeds": len(s.get("seeds", [])) or "",
            "finished": s.get("finished", ""),
            "code": f"{len(s['runs_from_other_code'])} run(s) from other code" if s.get("runs_from_other_code") else "",
            "error": (s.get("error") or {}).get("evalue", ""),
            "report": f'<a href="{html.escape(files.relative(report, out_root))}">report</a>' if report.exists() else "",
        }
        by_variant: dict[str, dict] = {}
        for key, value in (s.get("solved_final") or {}).items():
            variant, _, bucket = key.rpartition(":")
            by_variant.setdefault(variant, {})[bucket] = value
        for variant, buckets in (by_variant or {"": {}}).items():
            rows.append({**base, "variant": variant, **buckets})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    fixed = ["family", "run", "variant", "status", "preset", "seeds"]
    tail = ["code", "finished", "error", "report"]
    buckets = bucket_order([c for c in table.columns if c not in fixed + tail])
    table = table[fixed + buckets + tail]
    return table.astype(object).where(table.notna(), "")


def refresh_index(out_root: Path | None = None) -> Path:
    """outputs/index.html: the findings report first, then every notebook run (click a heading to sort)."""
    out_root = Path(out_root or OUTPUTS)
    report = max(out_root.glob(f"{FINDINGS}/*/report-noinput.html"), key=_mtime, default=None)
    head = findings_line(out_root) + (
        f'<p><b>Newest findings report:</b> <a href="{html.escape(files.relative(report, out_root))}">'
        f"{html.escape(report.parent.name)}</a></p>" if report else
        "<p>No findings report rendered here yet: run notebooks/10_findings.ipynb.</p>")
    table = index_rows(out_root)
    body = table.to_html(escape=False, index=False, table_id="runs") if len(table) else "<p>No runs yet.</p>"
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Sudoku workbook runs</title>"
            f"<style>{_INDEX_CSS}</style></head><body><h1>Sudoku workbook runs</h1>{head}"
            f"<p>Solved % (final) per bucket at the trained iteration count; click a column heading to sort.</p>"
            f"{body}<script>{_SORT_JS}</script></body></html>")
    return files.write_text(out_root / "index.html", page)


def findings_line(out_root: Path) -> str:
    """The repository's FINDINGS.md, linked, and whether the committed runs it rests on are the current code's."""
    md = REPO / "FINDINGS.md"
    if not md.exists():
        return "<p>No FINDINGS.md yet: make findings.</p>"
    tidy = findings.read_results(findings.results_path_for(findings.HEADLINE_PRESET))
    runs, stale = findings.staleness(tidy)
    state = ("rests on no runs yet" if not runs else f"all {runs} runs it rests on are the current code's"
             if not stale else f"stale: {stale} of its {runs} runs were made by other code (make findings retrains them)")
    link = html.escape(os.path.relpath(md, out_root))
    return f'<p><b>Findings:</b> <a href="{link}">FINDINGS.md</a> ({findings.HEADLINE_PRESET}): {state}.</p>'


_INDEX_CSS = ("body{font-family:sans-serif} td,th{padding:4px 8px} th{cursor:pointer;background:#eee} "
              "tr:nth-child(even){background:#f7f7f7}")
# Sort the table by a clicked heading: numbers as numbers, the rest as text; a second click reverses.
_SORT_JS = """
document.querySelectorAll('#runs th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], up = th.dataset.dir !== 'up';
  const key = tr => { const t = tr.cells[col].innerText.trim(), x = parseFloat(t); return isNaN(x) ? t : x; };
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    const c = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
    return up ? c : -c; });
  th.dataset.dir = up ? 'up' : 'down';
  rows.forEach(r => body.appendChild(r));
}));
"""


def screenshot(report: Path | None = None, out: Path | None = None) -> Path:
    """Open an HTML report in headless Chromium and save a full-page PNG beside it."""
    report = Path(report) if report else max(OUTPUTS.glob("*/*/report-noinput.html"), key=_mtime, default=None)
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
