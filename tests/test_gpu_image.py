"""What a researcher's GPU machine meets: a python with only the numeric stack (tests/gpu_image.py
blocks the rest), an NVIDIA GPU that torch may not be able to use, and compiled runs one after
another in one process."""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from lib import data as data_lib, train as train_mod
from lib.machine import gpu
from lib.experiments.resolve import make_config
from lib.sudoku.tables import ArrowDataset
from lib.train import Dist

REPO = Path(__file__).resolve().parent.parent
NUMERIC = {"torch", "numpy", "pandas", "pyarrow", "numba", "yaml", "tqdm"}
# what the numeric stack imports itself, optional helpers of torch and numba included
THEIR_OWN = {
    "llvmlite", "torchgen", "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock",
    "fsspec", "typing_extensions", "triton", "dateutil", "pytz", "tzdata", "six", "_cyutility",
    "_distutils_hack", "setuptools", "pkg_resources", "packaging", "dill", "cloudpickle", "cffi",
    "_cffi_backend", "pycparser", "psutil", "importlib_metadata", "zipp",
}


def on_gpu_image(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, set]:
    """`python tests/gpu_image.py ARGS`: the process, and the third-party packages it imported."""
    report = tmp_path / "imported.txt"
    env = {**os.environ, "GPU_IMAGE_REPORT": str(report)}
    out = subprocess.run([sys.executable, "tests/gpu_image.py", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    return out, set(report.read_text().split()) if report.exists() else set()


def test_train_needs_only_the_numeric_stack_and_computes_the_same(tmp_path):
    sets = {"train.steps": 3, "schedule.warmup_steps": 1, "train.eval_every": 3}
    train_mod.train(make_config("cpu-smoke", overrides=sets), tmp_path / "full", progress=False)
    args = [f"--set={k}={v}" for k, v in sets.items()]
    out, imported = on_gpu_image(["-m", "lib.cli", "train", "--preset", "cpu-smoke", *args,
                                  "--no-progress", "--out", str(tmp_path / "numeric")], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert {"torch", "numpy", "pyarrow"} <= imported <= NUMERIC | THEIR_OWN, \
        imported - NUMERIC - THEIR_OWN
    # datasets.Dataset and its stand-in serve the same puzzles: the same run
    metrics = [pd.read_json(tmp_path / run / "metrics.jsonl", lines=True)
               for run in ("full", "numeric")]
    pd.testing.assert_frame_equal(*metrics)
    evals = [pd.read_parquet(tmp_path / run / "eval.parquet") for run in ("full", "numeric")]
    pd.testing.assert_frame_equal(*evals)


@pytest.mark.slow
def test_test_time_and_memory_need_only_the_numeric_stack(tmp_path):
    sets = {"train.steps": 2, "schedule.warmup_steps": 1, "train.eval_every": 2}
    train_mod.train(make_config("cpu-smoke", overrides=sets), tmp_path / "run", progress=False)
    commands = [["test-time", str(tmp_path / "run"), "--iterations", "8"],
                ["memory", "--preset", "cpu-smoke", "--set", "train.grad_accum=0", "--gpu-memory", "1"]]
    for command in commands:
        out, imported = on_gpu_image(["-m", "lib.cli", *command], tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        assert imported <= NUMERIC | THEIR_OWN, (command[0], imported - NUMERIC - THEIR_OWN)
    assert out.stdout.strip().splitlines()[-1].startswith("plan: micro-batch 64, grad_accum 1")


def test_the_gpu_check_refuses_a_cpu_without_quick():
    out = subprocess.run([sys.executable, "scripts/gpu_check.py", "--device", "cpu"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "gpu check refused" in out.stderr and "--quick" in out.stderr


def test_the_arrow_stand_in_reads_as_datasets_does(tmp_path):
    grids = ["1234341221434321", "2143341212344321", "4321123434122143"]
    table = pa.table({"question": [g[:5] + "." * 11 for g in grids], "answer": grids,
                      "rating": [0, 2, 1]})
    path = tmp_path / "t.arrow"
    data_lib._write_arrow(table, path)
    ours, theirs = ArrowDataset.from_file(str(path)), datasets.Dataset.from_file(str(path))
    assert len(ours) == len(theirs) and ours.column_names == theirs.column_names
    assert ours["rating"] == list(theirs["rating"])
    assert ours[1] == theirs[1] and ours[-1] == theirs[-1] and ours[0:2] == theirs[0:2]
    pick = [2, 0]
    question = lambda ds: ds.select(pick).with_format("arrow")["question"].to_pylist()
    assert question(ours) == question(theirs)
    arrays = [data_lib.to_arrays(ds.select(pick)) for ds in (ours, theirs)]
    for a, b in zip(*arrays):
        np.testing.assert_array_equal(a, b)
    assert ours.to_pandas().equals(theirs.to_pandas())
    frame = theirs.to_pandas()
    assert ArrowDataset.from_pandas(frame).to_pandas().equals(
        datasets.Dataset.from_pandas(frame, preserve_index=False).to_pandas())
    with pytest.raises(KeyError, match="no column 'nope'"):
        ours["nope"]


@pytest.mark.parametrize("cuda, driver, cause", [("13.0", "535.104.05", "driver 535.104.05"),
                                                 (None, "unknown", "is a CPU build")])
def test_an_nvidia_gpu_torch_cannot_use_is_named_before_training_on_the_cpu(monkeypatch, cuda,
                                                                          driver, cause):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu, "nvidia_gpu", lambda: True)
    monkeypatch.setattr(gpu, "driver_version", lambda: driver)
    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.warns(RuntimeWarning, match=cause) as caught:
        device, _ = train_mod.setup_device(make_config("cpu-smoke"), Dist())
    assert device == torch.device("cpu") and "training on the CPU" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asked = make_config("cpu-smoke", overrides={"train.device": "cpu"})
        train_mod.setup_device(asked, Dist())  # the CPU, asked for: nothing to say
        monkeypatch.setattr(gpu, "nvidia_gpu", lambda: False)
        train_mod.setup_device(make_config("cpu-smoke"), Dist())  # no GPU: nothing to say


def test_the_driver_version_is_read_from_the_kernel_driver(monkeypatch, tmp_path):
    version = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 2025\n"
    (tmp_path / "version").write_text(version)
    monkeypatch.setattr(gpu, "NVIDIA_PROC", tmp_path)
    assert gpu.driver_version() == "580.65.06"
    monkeypatch.setattr(gpu, "NVIDIA_PROC", tmp_path / "none")
    assert gpu.driver_version() == "unknown"


@pytest.mark.slow
def test_nine_compiled_runs_in_one_process_are_each_compiled(tmp_path, monkeypatch):
    """Dynamo recompiles the step for every new config and gives up after 8 (its recompile limit):
    without a fresh budget per run, the 9th config of a notebook or a sweep worker would train
    eager, unsaid. Nine widths here; the compiler's backend only records what it is given."""
    compiled = []

    def backend(graph, example_inputs):
        compiled.append(run)
        return graph.forward

    monkeypatch.setattr(train_mod, "_compile",
                        lambda fn, mode: torch.compile(fn, backend=backend, dynamic=False))
    for run in range(9):
        cfg = make_config("cpu-smoke", overrides={
            "model.d_model": 16 + 4 * run, "train.steps": 2, "schedule.warmup_steps": 1,
            "train.eval_every": 2, "train.compile": "default"})
        assert train_mod.train(cfg, tmp_path / f"run{run}", progress=False)["status"] == "complete"
    assert sorted(set(compiled)) == list(range(9)), f"runs compiled: {sorted(set(compiled))}"
