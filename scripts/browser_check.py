"""Check the explorer in a real browser: JupyterLab + headless Debian chromium driven by playwright.

    python scripts/browser_check.py [--run-dir RUN] [--screenshot outputs/screenshots/explorer.png]

1. starts JupyterLab on a free localhost port with a random token, on a copy of notebooks/07_explorer.ipynb
   (so the committed notebook never gets outputs saved into it);
2. opens it in headless chromium (/usr/bin/chromium; playwright's own browser download is not needed);
3. runs all cells and waits for the explorer's grid;
4. checks the grid has N*N cells, moves the iteration slider, and checks the cells change;
5. saves a screenshot after the move;
6. always stops the JupyterLab server it started: its kernels through the REST API, then its process group.

Exit status 0 when every check passed; the failure otherwise, with a screenshot of the page as it was.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "07_explorer.ipynb"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium floods a closed network with refused connections
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDGET_GRID = ".explorer-grid .sudoku-grid"  # the widget's grid, not the static strip's


class CheckFailed(AssertionError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(settings_dir: Path) -> None:
    """No news feed or update check (they reach for the network and pop a toast over the page), the
    notebook's own kernel started without a "Select Kernel" dialog, and no windowing of cells."""
    for plugin, values in {"apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                           # every cell stays in the page: windowing detaches the widget once it scrolls out
                           "notebook-extension/tracker": {"autoStartDefaultKernel": True, "windowingMode": "none"}
                           }.items():
        path = settings_dir / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def notebook_copy(folder: Path, run_dir: str | None) -> Path:
    """The explorer notebook in `folder`, with run_dir set after the parameters cell as papermill would."""
    nb = json.loads(NOTEBOOK.read_text())
    if run_dir:
        at = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c.get("metadata", {}).get("tags", []))
        nb["cells"].insert(at + 1, {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                                    "source": f"run_dir = {str(Path(run_dir).resolve())!r}"})
    path = folder / NOTEBOOK.name
    path.write_text(json.dumps(nb))
    return path


class Lab:
    """A JupyterLab server in its own process group; `stop` ends it whatever state it is in."""

    def __init__(self, root: Path, log_path: Path, env: dict):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")  # noqa: SIM115 - the server writes to it until stop() closes it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.extension_manager=readonly", "--ServerApp.port_retries=0", "--allow-root"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(f"JupyterLab exited with status {self.proc.returncode}; see {self.log.name}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.5)
        raise CheckFailed(f"JupyterLab did not answer on {self.url} within {timeout:.0f} s; see {self.log.name}")

    def wait_kernel_idle(self, timeout: float, settle: float = 2.0) -> None:
        """Until the notebook's kernel has been idle for `settle` seconds: JupyterLab may start one kernel and
        swap it for another as it opens a notebook, and a Run All sent in between is lost."""
        deadline, idle_since = time.time() + timeout, None
        while time.time() < deadline:
            sessions = self.api("/api/sessions")
            idle = bool(sessions) and all(s["kernel"]["execution_state"] == "idle" for s in sessions)
            ids = tuple(s["kernel"]["id"] for s in sessions)
            if idle and idle_since and idle_since[1] == ids and time.time() - idle_since[0] >= settle:
                return
            idle_since = (idle_since[0], ids) if idle and idle_since and idle_since[1] == ids else \
                ((time.time(), ids) if idle else None)
            time.sleep(0.5)
        raise CheckFailed(f"no idle kernel for the notebook within {timeout:.0f} s; see {self.log.name}")

    def stop(self) -> None:
        try:  # kernels run in sessions of their own, so they are shut down through the server first
            for kernel in self.api("/api/kernels"):
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except Exception as e:  # noqa: BLE001 - the server may already be gone; the group kill below still runs
            print(f"could not shut kernels down through the API: {e}", file=sys.stderr)
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


def grid_cells(page) -> list[str]:
    return page.locator(f"{WIDGET_GRID} td").evaluate_all("tds => tds.map(td => td.outerHTML)")


def settled_cells(page, before: list[str], timeout: float, quiet: float = 1.0) -> list[str]:
    """The grid's cells once they differ from `before` and have stopped changing for `quiet` seconds
    (each slider step redraws the grid), or `before` if nothing changed within `timeout`."""
    deadline, last, since = time.time() + timeout, before, time.time()
    while time.time() < deadline:
        cells = grid_cells(page)
        if cells != last:
            last, since = cells, time.time()
        elif last != before and time.time() - since >= quiet:
            return last
        time.sleep(0.2)
    return last


def drive(page, lab: Lab, notebook: str, screenshot: Path, timeout_s: float) -> dict:
    """Open the notebook, run all cells, check the grid, move the slider, check the change, screenshot."""
    page.set_default_timeout(60_000)
    page.goto(f"{lab.url}/lab/tree/{notebook}?token={lab.token}")
    page.locator(".jp-NotebookPanel").first.wait_for()
    lab.wait_kernel_idle(60)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li[data-command='runmenu:run-all']").click()
    grid = page.locator(WIDGET_GRID).first
    grid.wait_for(state="visible", timeout=timeout_s * 1000)
    lab.wait_kernel_idle(timeout_s)  # the later cells' outputs shift the page; interact once they are in
    before = grid_cells(page)
    n = round(len(before) ** 0.5)
    if n * n != len(before) or n not in (4, 6, 9):
        raise CheckFailed(f"the grid has {len(before)} cells, not a 4x4, 6x6 or 9x9 grid")
    status = page.locator(".explorer-status").first
    shown_before = status.inner_text()
    handle = page.locator(".explorer-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    handle.press("ArrowLeft")  # one step back from the trained count: the screenshot shows what changed
    after = settled_cells(page, before, timeout=30)
    changed = sum(a != b for a, b in zip(before, after))
    if changed == 0:
        raise CheckFailed("moving the slider did not change any cell of the grid")
    shown_after = status.inner_text()
    its = [re.search(r"iteration (\d+)", text) for text in (shown_before, shown_after)]
    if not all(its) or int(its[1][1]) >= int(its[0][1]):
        raise CheckFailed(f"the status line did not follow the slider back: {shown_before!r} -> {shown_after!r}")
    page.locator(".explorer-grid").first.scroll_into_view_if_needed()  # the widget stays; its table is redrawn
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot))
    return {"grid": f"{n}x{n}", "cells_changed": changed, "iterations": [int(m[1]) for m in its]}


def run(run_dir: str | None, screenshot: Path, timeout_s: float = 300) -> dict:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise CheckFailed(f"{CHROMIUM} not found: apt-get install chromium")
    work = Path(tempfile.mkdtemp(prefix="browser-check-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           # a fresh Jupyter home: no user settings, workspaces or runtime files leak in or out
           **{var: str(work / sub) for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                                                    ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                                                    ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"))}}
    lab_settings(work / "settings")
    (work / "lab").mkdir()
    notebook = notebook_copy(work / "lab", run_dir)
    lab = Lab(work / "lab", work / "jupyterlab.log", env)
    started = time.time()
    try:
        lab.wait_ready(60)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                try:
                    result = drive(page, lab, notebook.name, screenshot, timeout_s)
                except Exception:
                    page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-failed.png")))
                    raise
            finally:
                browser.close()
    finally:
        lab.stop()
    result.update(seconds=round(time.time() - started, 1), screenshot=str(screenshot), server_pid=lab.proc.pid)
    shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", help="training run to explore (default: the notebook's own default)")
    parser.add_argument("--screenshot", default=str(REPO / "outputs" / "screenshots" / "explorer.png"))
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the grid after Run All")
    args = parser.parse_args(argv)
    try:
        result = run(args.run_dir, Path(args.screenshot), args.timeout)
    except CheckFailed as e:
        print(f"browser check failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
