"""Every benchmark runs in make test, in its reduced form (--quick: a few steps at small sizes), so none can
rot unseen; the full figures come from `make bench`. These check that each runs and that its figures are sane
(finite, positive, each ratio the quotient of the figures it divides), never how fast: two timings taken
apart move anywhere under load (a speed ratio read 34x beside a sweep), so timings live in the benchmarks only."""
import math
import os
import re
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


def figure(text: str, pattern: str) -> float:
    """The number a pattern's group captures (thousands commas allowed), checked finite and positive."""
    found = re.search(pattern, text)
    assert found, f"no figure matching {pattern!r} in:\n{text[-2000:]}"
    value = float(found.group(1).replace(",", ""))
    assert math.isfinite(value) and value > 0, (pattern, value)
    return value


NUMBER = r"([0-9][0-9,]*\.?[0-9]*)"


def assert_quotient(ratio: float, top: float, bottom: float, places: float = 0.1) -> None:
    """ratio (printed to 2 decimals) is top / bottom, each printed to `places`: within their rounding."""
    slack = 0.005 + 0.5 * places * (1 + top / bottom) / bottom + 1e-9
    assert abs(ratio - top / bottom) <= slack, (ratio, top, bottom)


@pytest.mark.slow
@pytest.mark.skipif(not BENCH_CSV.exists(), reason="benchmark_sets.csv not found beside the repo")
def test_bench_data_runs_and_prints_rates(tmp_path):
    text = bench("bench_data.py", tmp_path=tmp_path)
    rows = [line.split() for line in text.splitlines() if line.startswith(("generate", "rate"))]
    assert rows, text[-2000:]
    for row in rows:  # task, set..., count, wall /s, per CPU-s[, target, verdict]
        numbers = [float(x.replace(",", "")) for x in row if re.fullmatch(r"[0-9][0-9,]*", x)]
        assert len(numbers) >= 3 and all(n > 0 for n in numbers[:3]), row
    assert "puzzles2_17_clue" in text


@pytest.mark.slow
def test_bench_train_runs_and_prints_its_ratios(tmp_path):
    text = bench("bench_train.py", tmp_path=tmp_path)
    lib = figure(text, rf"lib  : +[0-9.,]+ puzzles/s +{NUMBER} ms/step")
    naive = figure(text, rf"naive: +[0-9.,]+ puzzles/s +{NUMBER} ms/step")
    assert_quotient(figure(text, rf"speed ratio lib/naive: {NUMBER}x"), naive, lib)
    figure(text, rf"{NUMBER} puzzles/s")
    figure(text, rf"plain fp32 matmul: {NUMBER} GFLOP/s")
    assert "verified halting" in text


@pytest.mark.slow
def test_bench_memory_runs_and_prints_per_sample_memory(tmp_path):
    text = bench("bench_memory.py", tmp_path=tmp_path)
    plain = figure(text, rf"without checkpointing: +{NUMBER} MiB")
    checkpointed = figure(text, rf"with per-iteration checkpointing: +{NUMBER} MiB")
    # --quick's batch is too small for the ratio to mean anything (fixed costs dominate): only its arithmetic
    assert figure(text, rf"reduction: {NUMBER}x") == pytest.approx(plain / checkpointed, rel=0.05, abs=0.06)
    assert "largest batch estimate" in text


@pytest.mark.slow
def test_bench_test_time_runs_and_prints_its_rate(tmp_path):
    text = bench("bench_test_time.py", tmp_path=tmp_path)
    figure(text, rf"{NUMBER} puzzle-iterations/s")
    rollout = figure(text, rf"TFLOP, {NUMBER} GFLOP/s")
    matmul = figure(text, rf"of the FFN's shape here \({NUMBER} GFLOP/s\)")
    share = re.search(r"= ([0-9]+)% of an fp32", text)
    # the rollout and the reference matmul are timed apart, so load on the machine moves their ratio anywhere
    # (169% read once beside another test process, 0% under a sweep): only its arithmetic is checked, to the
    # printed figures' rounding (whole percent; 0.1 GFLOP/s on each of the two rates it divides)
    assert share, text[-2000:]
    low = 100 * max(rollout - 0.05, 0) / (matmul + 0.05) - 0.5
    high = 100 * (rollout + 0.05) / (matmul - 0.05) + 0.5 if matmul > 0.05 else math.inf
    assert low <= int(share.group(1)) <= high, text[-2000:]


@pytest.mark.slow
def test_bench_dropout_runs_and_prints_its_ratio(tmp_path):
    text = bench("bench_dropout.py", tmp_path=tmp_path)
    torch_own = figure(text, rf"torch F.dropout\+SDPA: +{NUMBER} ms/step")
    ours = figure(text, rf"lib.model.dropout: +{NUMBER} ms/step")
    assert_quotient(figure(text, rf"speed ratio torch/lib at dropout 0.1: {NUMBER}"), torch_own, ours)
    figure(text, rf"dropout 0: +{NUMBER} ms/step")


def test_a_printed_quotient_is_checked_to_its_rounding_and_no_further():
    assert_quotient(34.12, 6056.2, 177.5)  # however far out of any plausible range, if it is the quotient
    assert_quotient(1.45, 177.5, 122.1)
    with pytest.raises(AssertionError):
        assert_quotient(1.50, 177.5, 122.1)
