"""`make gpu-check` in its reduced form on the CPU: the same steps (data, a compiled-when-CUDA training step
through lib.train, the bf16 comparison, the gpu-iters evaluation) run and print every figure."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_gpu_check_runs_on_a_cpu_in_its_reduced_form_with_only_the_numeric_stack(tmp_path):
    """As on a GPU image: the notebook stack, datasets, submitit, playwright and plotting cannot
    be imported (tests/gpu_image.py), and what it did import is the numeric stack's."""
    from test_gpu_image import NUMERIC, THEIR_OWN, on_gpu_image
    out, imported = on_gpu_image(["scripts/gpu_check.py", "--quick", "--device", "cpu"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    for figure in ("memory plan:", "puzzles/s:", "ms/step:", "projected recipe time", "MFU:",
                   "peak memory:", "compile + first step", "bf16 vs fp32 (TF32 off)",
                   "puzzle-iterations/s", "gpu check passed"):
        assert figure in out.stdout, figure
    assert imported <= NUMERIC | THEIR_OWN, imported - NUMERIC - THEIR_OWN


def test_a_failing_check_exits_non_zero():
    out = subprocess.run([sys.executable, "scripts/gpu_check.py", "--quick", "--device", "cpu", "--data", "nowhere.csv"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "gpu check FAILED" in out.stderr
