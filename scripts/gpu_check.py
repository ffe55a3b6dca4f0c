"""The first command to run on a GPU machine: `python3 scripts/gpu_check.py` with the machine's
own python, or `make gpu-check`. It installs nothing. The gpu-paper recipe at its full batch,
compiled, in bf16, for a few hundred steps through lib.train's own step, then the sequel's model
evaluated to 256 iterations; figures printed beside the targets, exit status 1 when anything fails.
It refuses to run on a CPU, but for --quick.

    python3 scripts/gpu_check.py                  # generated 9x9 puzzles (no network needed)
    python3 scripts/gpu_check.py --data test.csv  # a sudoku-extreme-format CSV instead
    python3 scripts/gpu_check.py --quick          # a reduced form for a CPU (the tests)

Prints: the memory plan the run chose (lib/machine/memory.py: the micro-batches that fit the card),
puzzles/s and ms per optimizer step (all its micro-batches; the median after the first few
steps), the recipe's projected time (70K such steps), MFU against the card's bf16 peak and against
a bf16 matmul measured here, peak memory beside the plan's estimate, compile time (the first
step), how far bf16 is from true fp32 (TF32 off) on one batch (loss, predictions), and the
gpu-iters model's iterations per second at 256 test-time iterations.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lib.machine import gpu, memory  # noqa: E402
from lib import train as training  # noqa: E402
from lib.experiments.resolve import make_config  # noqa: E402
from lib.curriculum import batch_rng  # noqa: E402
from lib.evaluate import evaluate  # noqa: E402
from lib.model import autocast, build_model, sequence_loss  # noqa: E402
from lib.schedule import lr_at  # noqa: E402

TARGET_PUZZLES_PER_S = 40_000  # the log's pace: 70K steps x 4096 puzzles in about 2 hours
MOONSHOT_MFU = 0.5  # the recipe in under an hour
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "RTX 4090": 165e12}  # dense, per spec


def config(args, preset: str):
    data = {"data.source": args.data or "generated", "data.train_size": args.train_size, "data.train_max": 0,
            "data.test_per_bucket": args.test_per_bucket, "data.bucket_edges": [0, 1, 3], "train.device": args.device,
            "train.eval_every": 10**9, "train.log_every": 10**9, "curriculum.kind": "mixed"}  # speed, not curricula
    if args.quick:  # the same code on a CPU in seconds
        data |= {"model.d_model": 32, "model.n_layers": 1, "model.d_ff": 64, "model.iterations": 4, "train.compile": "off"}
    return make_config(preset, overrides={**data, "train.batch_size": args.batch})  # the schedule of the full run


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_flops(ctx, parts, p, a) -> float:
    """FLOPs of one training step (forward + backward) at the run's batch, counted eagerly on a slice."""
    from torch.utils.flop_counter import FlopCounterMode
    n = min(32, len(p))
    with FlopCounterMode(display=False) as counter:
        with autocast(ctx.device, ctx.amp_dtype):
            loss = sequence_loss(parts.model(p[:n]), a[:n], p[:n], ctx.cfg.model)
        loss.backward()
    parts.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops() * len(p) / n


def matmul_rate(device, quick: bool) -> float:
    """bf16 FLOP/s of a large square matmul here (CPU: fp32), a measured ceiling beside the card's spec."""
    size = 512 if quick else 8192
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    sync(device)
    t, reps = time.perf_counter(), 3 if quick else 20
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * size ** 3 * reps / (time.perf_counter() - t)


def train_check(args) -> dict:
    cfg = config(args, "gpu-paper")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        ctx = training.make_context(cfg, tmp, progress=False)
        t = time.perf_counter()
        run_data = training.prepare_data(ctx)
        data_seconds = time.perf_counter() - t
        ctx = memory.fit(ctx)  # as a run does: on CUDA, the micro-batches that fit this card
        parts = training.build_parts(ctx)
        cur = run_data.curriculum.start()
        times, losses = [], []
        if ctx.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(ctx.device)
        for step in range(args.steps):
            training.set_lr(parts.optimizer, lr_at(step, cfg), cfg.optim.lr)
            p, a = run_data.batcher(run_data.curriculum.pool(cur), batch_rng(cfg.train.seed, step, cur.stage),
                                    cfg.train.batch_size)
            sync(ctx.device)
            t = time.perf_counter()
            result = training.train_step(ctx, parts, *training.micro_batches(p, a, ctx))
            sync(ctx.device)
            times.append(time.perf_counter() - t)
            losses.append(result.loss)
            if not math.isfinite(result.loss):
                raise RuntimeError(f"non-finite loss {result.loss} at step {step}")
        peak_memory = torch.cuda.max_memory_allocated(ctx.device) if ctx.device.type == "cuda" else float("nan")
        flops = step_flops(ctx, parts, p, a)
        bf16_gap = precision_gap(ctx, parts, p, a)
    steady = times[min(10, len(times) - 1):] or times
    ms = 1e3 * statistics.median(steady)
    return {"cfg": cfg, "device": ctx.device, "ms": ms, "compile": times[0], "flops": flops, "memory": peak_memory,
            "losses": losses, "data": data_seconds, "gap": bf16_gap,
            "compiled": training.compile_mode(ctx), "plan": ctx.plan, "grad_accum": ctx.grad_accum}


def precision_gap(ctx, parts, p, a) -> dict:
    """bf16 autocast against true fp32 on one batch of the trained model: the loss and the final
    predictions. TF32 is off for the fp32 pass (it rounds every matmul's inputs to 10 bits)."""
    model = parts.model.eval()
    n = min(512, len(p))
    with torch.no_grad():
        if ctx.device.type == "cuda":
            gpu.set_tf32(False)
        try:
            fp32 = model(p[:n])
        finally:
            if ctx.device.type == "cuda":
                gpu.set_tf32(ctx.cfg.train.dtype != "float32")  # the run's own setting again
        with autocast(ctx.device, torch.bfloat16):
            bf16 = model(p[:n])
        loss32 = sequence_loss(fp32, a[:n], p[:n], ctx.cfg.model).item()
        loss16 = sequence_loss(bf16, a[:n], p[:n], ctx.cfg.model).item()
        same = (fp32.logits[-1].argmax(-1) == bf16.logits[-1].argmax(-1)).float().mean().item()
    model.train()
    return {"loss fp32": loss32, "loss bf16": loss16, "same argmax": same}


def eval_check(args, seconds: float) -> dict:
    """The gpu-iters model (fresh weights: speed does not depend on them) scored to 256 iterations, again and
    again for `seconds`: puzzle-iterations per second."""
    cfg = config(args, "gpu-iters")
    device = training.cuda_device(cfg.train.device, training.Dist()) if torch.cuda.is_available() and args.device != "cpu" \
        else torch.device("cpu")
    model = build_model(cfg.model, 9).to(device)
    from lib import data as data_lib
    test = data_lib.load_splits(cfg.data, progress=False).test
    iterations = 8 if args.quick else 256
    amp = torch.bfloat16 if device.type == "cuda" else None
    done, start = 0, time.perf_counter()
    while True:
        evaluate(model, test, iterations, batch_size=len(test), device=device, amp_dtype=amp)
        done += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return {"puzzle_iterations_per_s": done * len(test) * iterations / elapsed, "iterations": iterations,
            "puzzles": len(test), "rounds": done}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=4096, help="gpu-paper's")
    ap.add_argument("--data", default="", help="a sudoku-extreme-format CSV (default: generated 9x9 puzzles)")
    ap.add_argument("--train-size", type=int, default=20_000)
    ap.add_argument("--test-per-bucket", type=int, default=200)
    ap.add_argument("--eval-seconds", type=float, default=60.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="a reduced form for a CPU: a small model, a few steps")
    args = ap.parse_args(argv)
    if not args.quick and (args.device == "cpu" or not torch.cuda.is_available()):
        reason = gpu.unusable_gpu() or "torch sees no CUDA device here"
        print(f"gpu check refused: {reason}. It measures a GPU; --quick runs its reduced form on "
              f"a CPU", file=sys.stderr)
        return 1
    if args.quick:
        args.steps, args.batch, args.train_size, args.test_per_bucket = min(args.steps, 3), 8, 200, 5
        args.eval_seconds = min(args.eval_seconds, 1.0)
    t0 = time.perf_counter()
    r = train_check(args)
    cfg, device = r["cfg"], r["device"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    spec = next((v for k, v in BF16_PEAK.items() if k in name), None)
    measured = matmul_rate(device, args.quick)
    rate, achieved = cfg.train.batch_size / (r["ms"] / 1e3), r["flops"] / (r["ms"] / 1e3)
    print(f"device: {name} ({device}); torch {torch.__version__}; compile: {r['compiled'] or 'off'}; "
          f"autocast: {'bf16' if device.type == 'cuda' or cfg.train.dtype == 'bfloat16' else 'fp32'}")
    print(f"model: gpu-paper, {sum(p.numel() for p in build_model(cfg.model, 9).parameters()):,} params, batch "
          f"{cfg.train.batch_size}, {cfg.model.iterations} iterations; data {cfg.data.source} ({r['data']:.1f} s to prepare)")
    accum = r["grad_accum"]
    plan = r["plan"].describe() if r["plan"] else f"none on the {device.type} (grad_accum {accum})"
    print(f"memory plan: {plan}")
    print(f"steps: {args.steps}, loss {r['losses'][0]:.4f} -> {r['losses'][-1]:.4f}")
    print(f"compile + first step: {r['compile']:.1f} s")
    print(f"ms/step: {r['ms']:.1f} (an optimizer step of {accum} micro-batch(es); median after "
          f"the first 10 steps)")
    print(f"puzzles/s: {rate:,.0f} (target >= {TARGET_PUZZLES_PER_S:,}: {'met' if rate >= TARGET_PUZZLES_PER_S else 'not met'})")
    print(f"projected recipe time (70,000 steps at grad_accum {accum}): "
          f"{70_000 * r['ms'] / 3.6e6:.2f} h (the log: about 2 h)")
    print(f"FLOP/step: {r['flops'] / 1e12:.2f} TFLOP (counted), achieved {achieved / 1e12:.1f} TFLOP/s")
    mfu = f"{achieved / spec:.1%} of the {spec / 1e12:.0f} TFLOP/s bf16 spec" if spec else "no spec for this device"
    print(f"MFU: {mfu}; {achieved / measured:.1%} of a measured {'bf16' if device.type == 'cuda' else 'fp32'} "
          f"matmul ({measured / 1e12:.1f} TFLOP/s) (moonshot >= {MOONSHOT_MFU:.0%})")
    estimate = f" (the plan estimated {r['plan'].peak_bytes / 2**30:.1f} GiB)" if r["plan"] else ""
    print(f"peak memory: {r['memory'] / 2**30:.1f} GiB{estimate}" if device.type == "cuda"
          else "peak memory: (CPU, not measured)")
    g = r["gap"]
    print(f"bf16 vs fp32 (TF32 off), one batch: loss {g['loss bf16']:.5f} vs {g['loss fp32']:.5f} "
          f"({abs(g['loss bf16'] - g['loss fp32']) / max(abs(g['loss fp32']), 1e-12):.2e} relative); "
          f"final argmax agrees on {g['same argmax']:.2%} of cells")
    e = eval_check(args, args.eval_seconds)
    print(f"gpu-iters evaluation to {e['iterations']} iterations: {e['puzzle_iterations_per_s']:,.0f} puzzle-iterations/s "
          f"({e['puzzles']} puzzles, {e['rounds']} rounds)")
    print(f"gpu check passed in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:  # every failure exits non-zero, saying what failed
        print(f"gpu check FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        raise
