"""Every benchmark runs in make test, in its reduced form (--quick: a few steps at small sizes), so none can
rot unseen; the full figures come from `make bench`. These check that each runs and prints its figures,
not the figures themselves (timings live in the benchmarks, never in tests)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH_CSV = REPO.parent / "shared" / "data" / "external" / "benchmark_sets.csv"


def bench(script: str, *args: str, tmp_path: Path) -> str:
    env = {**os.environ, "SUDOKU_WORKBOOK_OUTPUTS": str(tmp_path / "outputs")}
    out = subprocess.run([sys.executable, f"benchmarks/{script}", "--quick", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=500)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
@pytest.mark.skipif(not BENCH_CSV.exists(), reason="benchmark_sets.csv not found beside the repo")
def test_bench_data_runs_and_prints_rates(tmp_path):
    text = bench("bench_data.py", tmp_path=tmp_path)
    assert "rate" in text and "generate" in text and "puzzles2_17_clue" in text


@pytest.mark.slow
def test_bench_train_runs_and_prints_its_ratios(tmp_path):
    text = bench("bench_train.py", tmp_path=tmp_path)
    assert "speed ratio lib/naive" in text and "puzzles/s" in text and "GFLOP/s" in text
    assert "verified halting" in text and "ratio" in text


@pytest.mark.slow
def test_bench_memory_runs_and_prints_per_sample_memory(tmp_path):
    text = bench("bench_memory.py", tmp_path=tmp_path)
    assert "peak memory per sample without checkpointing" in text and "largest batch estimate" in text


@pytest.mark.slow
def test_bench_test_time_runs_and_prints_its_rate(tmp_path):
    text = bench("bench_test_time.py", tmp_path=tmp_path)
    assert "puzzle-iterations/s" in text and "GFLOP/s" in text and "of an fp32 matmul" in text


@pytest.mark.slow
def test_bench_dropout_runs_and_prints_its_ratio(tmp_path):
    text = bench("bench_dropout.py", tmp_path=tmp_path)
    assert "speed ratio torch/lib at dropout 0.1" in text and "ms/step" in text
