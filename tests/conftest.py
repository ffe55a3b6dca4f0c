import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Tests never reach a hub; the real hub code paths are exercised on local files in the hub's format.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_MININTERVAL", "5")
# One thread for torch, here and in every kernel and worker a test starts (read when torch is imported): the tests'
# models are tiny (4x4 grids, d_model 24), where a second thread only synchronises, and on a busy machine OpenMP's
# waiting threads made the test-time notebook's evaluations 5x slower. A test about threads sets its own.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Nothing a test does may read or fill the repository's puzzle cache: set before lib.data reads it at import.
os.environ["SUDOKU_WORKBOOK_CACHE"] = tempfile.mkdtemp(prefix="sudoku-test-cache-")
atexit.register(shutil.rmtree, os.environ["SUDOKU_WORKBOOK_CACHE"], ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_data_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty puzzle cache of its own, in this process and in any notebook kernel or worker
    it starts (they inherit the environment)."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SUDOKU_WORKBOOK_CACHE", str(cache))
    if "lib.data" in sys.modules:
        monkeypatch.setattr(sys.modules["lib.data"], "CACHE_DIR", Path(cache))
    return cache


# cpu-smoke's 150 steps show the notebooks run, not that the model learns: with the scripts' row/col/box
# positions and dropout its baseline solves nothing by then, and 86.7% of its test puzzles at 600 steps.
# The tests that read a trained model (explorer, failure analysis, browser) share one such run.
TRAINED_SMOKE = {"train.steps": 600}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    from lib.workbook import workbook
    return workbook.train_runs("cpu-smoke", ["baseline"], [0], tmp_path_factory.getbasetemp() / "smoke",
                               overrides=TRAINED_SMOKE, progress=False)[0]
