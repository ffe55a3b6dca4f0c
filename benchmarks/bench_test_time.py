"""Test-time scaling's cost: cpu-quick's 800 test puzzles scored to 1024 iterations in one rollout
(lib.evaluate.evaluate, every count to 2x the trained one and the powers of two beyond), against the FLOPs it
does and this machine's fp32 matmul rate, measured in the same run.

    python benchmarks/bench_test_time.py [--iterations 1024] [--threads 2]
    python benchmarks/bench_test_time.py --quick     # cpu-smoke's test set to 64 iterations (make test)

Target: under 90 s for 800 6x6 puzzles to 1024 iterations on 2 cores (about 7 TFLOP).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lib import data as data_lib  # noqa: E402
from lib.experiments.resolve import make_config  # noqa: E402
from lib.evaluate import evaluate  # noqa: E402
from lib.model import build_model  # noqa: E402

TARGET_SECONDS = 90.0


def matmul_rate(tokens: int, d: int, d_ff: int, repeats: int = 10) -> float:
    a, b = torch.randn(tokens, d), torch.randn(d, d_ff)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * tokens * d * d_ff / best


def step_flops(model, x) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        state = model.init_state(x)
        model.step(state, 0)
    return float(counter.get_total_flops())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu-quick")
    ap.add_argument("--iterations", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.preset, args.iterations = "cpu-smoke", 64
    torch.set_num_threads(args.threads)
    cfg = make_config(args.preset)
    test = data_lib.load_splits(cfg.data, progress=False).test
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.data.grid_size).eval()  # fresh weights: speed does not depend on them
    x = torch.from_numpy(data_lib.to_arrays(test)[0]).long()
    flops = step_flops(model, x) * args.iterations
    t = time.perf_counter()
    curves, per = evaluate(model, test, args.iterations, batch_size=len(test), trained=cfg.model.iterations)
    seconds = time.perf_counter() - t
    ceiling = matmul_rate(len(test) * cfg.data.grid_size ** 2, cfg.model.d_model, cfg.model.d_ff)
    print(f"== test-time evaluation: {len(test)} {cfg.data.grid_size}x{cfg.data.grid_size} puzzles ({args.preset}) to "
          f"{args.iterations} iterations, {args.threads} thread(s), one rollout ==")
    print(f"  {seconds:.1f} s ({len(test) * args.iterations / seconds:,.0f} puzzle-iterations/s); scored counts: "
          f"{per['iteration'].nunique()}" + ("" if args.quick else f"  (target < {TARGET_SECONDS:.0f} s)"))
    print(f"  {flops / 1e12:.2f} TFLOP, {flops / seconds / 1e9:.1f} GFLOP/s = {flops / seconds / ceiling:.0%} of an fp32 "
          f"matmul of the FFN's shape here ({ceiling / 1e9:.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
