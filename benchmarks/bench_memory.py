"""Peak training memory per sample, with and without per-iteration activation checkpointing.

    python benchmarks/bench_memory.py [--batch 32] [--config gpu-paper|cpu-quick] [--variant trm-nested]
    python benchmarks/bench_memory.py --quick    # cpu-smoke at batch 8: checks it runs (make test)

Each measurement runs one forward/backward of the lib's model and loss in a fresh subprocess and reads the
process's peak resident memory (ru_maxrss) against a baseline taken after the model, optimiser state and
batch exist, so the difference is what the step itself holds: activations kept for backward, and gradients.
From the measured bytes per sample it estimates the largest batch that fits on 80 GB and 141 GB GPUs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

GPU_BYTES = {"A100/H100 80GB": 80e9, "H200 141GB": 141e9}


def measure(config: str, batch: int, checkpointing: bool, variant: str = "baseline") -> dict:
    """Runs in a child process: peak RSS growth of one training step."""
    import resource

    import torch

    from lib.experiments.resolve import make_config
    from lib.model import build_model, iteration_loss
    from lib import files
    from lib.train import Context, Dist, backward_per_supervision_step

    torch.manual_seed(0)
    torch.set_num_threads(2)
    cfg = make_config(config, variant, overrides={"model.activation_checkpointing": checkpointing})
    n = cfg.data.grid_size
    model = build_model(cfg.model, n).train()
    puzzle = torch.randint(0, n + 1, (batch, n * n))
    answer = torch.randint(1, n + 1, (batch, n * n))
    for p in model.parameters():  # gradients allocated up front, so the delta is the step's activations
        p.grad = torch.zeros_like(p)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if cfg.model.sharing == "nested":  # trained one supervision step at a time, as lib.train does
        ctx = Context(cfg, torch.device("cpu"), None, Dist(), files.RunFiles("unused"), False)
        backward_per_supervision_step(model, puzzle, answer, ctx, 1)
    else:
        iteration_loss(model(puzzle), answer, cfg.model.loss).backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"bytes": peak - base, "batch": batch}


def run_child(config: str, batch: int, checkpointing: bool, variant: str) -> dict:
    code = ("import json, sys; sys.path.insert(0, '.'); from benchmarks.bench_memory import measure; "
            f"print(json.dumps(measure({config!r}, {batch}, {checkpointing}, {variant!r})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="gpu-paper", help="preset whose model is measured (9x9 800K by default)")
    parser.add_argument("--variant", default="baseline", help="e.g. trm-nested (the log ran it at batch 4096)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="cpu-smoke at batch 8 (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.config, args.batch = "cpu-smoke", 8

    plain = run_child(args.config, args.batch, False, args.variant)
    ckpt = run_child(args.config, args.batch, True, args.variant)
    per_plain = plain["bytes"] / args.batch
    per_ckpt = ckpt["bytes"] / args.batch
    print(f"model: preset {args.config}, variant {args.variant}, fp32 on CPU, batch {args.batch}, one forward+backward")
    print(f"peak memory per sample without checkpointing: {per_plain / 2**20:8.2f} MiB")
    print(f"peak memory per sample with per-iteration checkpointing: {per_ckpt / 2**20:8.2f} MiB")
    print(f"reduction: {per_plain / per_ckpt:.1f}x (target >= 3x)")
    # bf16 autocast on a GPU stores most activations in 2 bytes instead of 4: assume half of fp32 bytes.
    print("largest batch estimate on a GPU (bf16 activations ~ half the fp32 bytes measured here, 10% headroom):")
    for name, capacity in GPU_BYTES.items():
        for label, per in (("without", per_plain), ("with", per_ckpt)):
            fits = int(0.9 * capacity / (per / 2))
            verdicts = ", ".join(f"batch {b} {'fits' if fits >= b else 'does not fit'}" for b in (4096, 8192))
            print(f"  {name:<16} {label:>7} checkpointing: ~{fits:>7,} samples; {verdicts}")


if __name__ == "__main__":
    main()
