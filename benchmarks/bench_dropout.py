"""Dropout's cost on CPU: one cpu-quick training step (forward, the loss at every iteration, backward) at
dropout 0, at 0.1 through torch's own F.dropout and fused SDPA, and at 0.1 through lib.model's dropout(),
measured in one run. Profiled, torch's CPU bernoulli_ costs ~5 ns an element, 41% of the step: lib.model cuts
two keep masks from each 64-bit draw and writes the attention out where SDPA would fall back to its math path.

    python benchmarks/bench_dropout.py [--threads 2] [--repeats 10]
    python benchmarks/bench_dropout.py --quick     # cpu-smoke's model, 2 repeats (make test)
"""
from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lib import model as model_lib  # noqa: E402
from lib.experiments.resolve import make_config  # noqa: E402
from lib.model import build_model, sequence_loss  # noqa: E402


@contextmanager
def torch_dropout():
    """lib.model with torch's own dropout and SDPA, the reference the ratio is against."""
    saved = model_lib.dropout, model_lib.attention
    model_lib.dropout = lambda x, p, training: F.dropout(x, p, training) if p else x
    model_lib.attention = lambda q, k, v, p, training: F.scaled_dot_product_attention(
        q, k, v, dropout_p=p if training else 0.0)
    try:
        yield
    finally:
        model_lib.dropout, model_lib.attention = saved


def step_seconds(preset: str, dropout: float, repeats: int) -> float:
    cfg = make_config(preset, overrides={"model.dropout": dropout})
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.data.grid_size).train()
    cells, n = cfg.data.grid_size ** 2, cfg.data.grid_size
    puzzle = torch.randint(0, n + 1, (cfg.train.batch_size, cells))
    answer = torch.randint(1, n + 1, (cfg.train.batch_size, cells))

    def step():
        sequence_loss(model(puzzle), answer, puzzle, cfg.model).backward()

    for _ in range(2):
        step()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset, repeats = ("cpu-smoke", 2) if args.quick else ("cpu-quick", args.repeats)
    none = step_seconds(preset, 0.0, repeats)
    with torch_dropout():
        torch_own = step_seconds(preset, 0.1, repeats)
    ours = step_seconds(preset, 0.1, repeats)
    print(f"{preset}, {args.threads} threads, best of {repeats} steps")
    print(f"dropout 0:                        {1e3 * none:7.1f} ms/step")
    print(f"dropout 0.1, torch F.dropout+SDPA: {1e3 * torch_own:7.1f} ms/step  ({torch_own / none:.2f}x dropout 0)")
    print(f"dropout 0.1, lib.model.dropout:    {1e3 * ours:7.1f} ms/step  ({ours / none:.2f}x dropout 0)")
    print(f"speed ratio torch/lib at dropout 0.1: {torch_own / ours:.2f}")


if __name__ == "__main__":
    main()
