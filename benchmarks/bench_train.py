"""Training and inference throughput of the lib, against references measured in the same run.

    python benchmarks/bench_train.py [--steps 4] [--threads 1] [--infer-run DIR] [--infer-steps 2000]
    python benchmarks/bench_train.py --quick     # a few steps at small sizes: checks it runs (make test)

Training: one full step of lib.train (batch draw + symmetry augmentation, forward over all
iterations, loss, backward, clipping, AdamW) against a naive reference written the way the log's
scripts are (nn.TransformerEncoder, fp32, eager, a Python loop over iterations, torch.randint
batches), on the cpu-quick config (batch 64) and the 800K 9x9 gpu-paper model (batch 16). The two
are timed interleaved in one child process (best of rounds: robust to other load on the machine),
together with a plain fp32 matmul for a FLOP/s ceiling; FLOPs come from torch's FlopCounterMode.
Peak memory is each implementation's growth in peak RSS over two steps, in its own child process.

Inference: verified halting (stop a puzzle once its prediction is a valid solution keeping the
givens) against a fixed iteration count, on a trained cpu-quick model's mixed-difficulty test
split: at the trained count, and against the cheapest fixed count that is as accurate.
The model is trained once into outputs/bench/ (or pass --infer-run with any run folder).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRAIN_CASES = [("cpu-quick", 64), ("gpu-paper", 16)]


# --- the naive reference ---------------------------------------------------------------------------

def naive_model(cfg):
    """The log's baseline as its scripts wrote it: encode once, h_prev + pred_proj(preds) + row/col/box
    embeddings, an nn.TransformerEncoder, a Python loop collecting every iteration's logits."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from lib.sudoku.puzzles import box_shape

    n, m = cfg.data.grid_size, cfg.model

    class NaiveSudoku(nn.Module):
        def __init__(self):
            super().__init__()
            d = m.d_model
            self.initial_encoder = nn.Linear(n + 1, d)
            self.pred_proj = nn.Linear(n, d)
            self.row_embed, self.col_embed, self.box_embed = nn.Embedding(n, d), nn.Embedding(n, d), nn.Embedding(n, d)
            layer = nn.TransformerEncoderLayer(d, m.n_heads, m.d_ff, dropout=0.0, batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, m.n_layers, enable_nested_tensor=False)
            self.output_head = nn.Linear(d, n)
            r, c = box_shape(n)
            cell = torch.arange(n * n)
            self.register_buffer("rows", cell // n)
            self.register_buffer("cols", cell % n)
            self.register_buffer("boxes", (cell // n) // r * (n // c) + (cell % n) // c)

        def forward(self, x):
            h_prev = self.initial_encoder(F.one_hot(x, n + 1).float())
            preds = torch.zeros(x.shape[0], n * n, n)
            pos = self.row_embed(self.rows) + self.col_embed(self.cols) + self.box_embed(self.boxes)
            all_logits = []
            for _ in range(m.iterations):
                h = self.transformer(h_prev + self.pred_proj(preds) + pos)
                h_prev = h
                logits = self.output_head(h)
                preds = F.softmax(logits, dim=-1)
                all_logits.append(logits)
            return all_logits

    return NaiveSudoku()


def make_steps(preset: str, batch: int, which: str):
    """A zero-argument training step of the lib or the naive reference, on a small generated pool."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from lib.sudoku import puzzles
    from lib.experiments.resolve import make_config
    from lib import files
    from lib.train import Batcher, Context, Dist, build_parts, train_step

    cfg = make_config(preset)
    n = cfg.data.grid_size
    p, a = puzzles.generate(n, 256, seed=0, progress=False)
    p, a = p.reshape(len(p), -1), a.reshape(len(a), -1)
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    if which == "lib":
        ctx = Context(cfg, cpu, None, Dist(), files.RunFiles("unused"), False)
        parts = build_parts(ctx)
        model = parts.model.train()
        batcher, pool = Batcher(p, a, n, True, 0), np.arange(len(p))
        rngs = (np.random.default_rng([0, s]) for s in range(10**9))

        def step():
            bp, ba = batcher(pool, next(rngs), batch)
            train_step(ctx, parts, [bp], [ba])
    else:
        model = naive_model(cfg).train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        P, A = torch.from_numpy(p).long(), torch.from_numpy(a).long()

        def step():
            idx = torch.randint(0, len(P), (batch,))
            x, y = P[idx], A[idx]
            opt.zero_grad()
            all_logits = model(x)
            loss = sum(F.cross_entropy(lg.reshape(-1, n), y.reshape(-1) - 1) for lg in all_logits) / len(all_logits)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
    return step, model


def step_flops(step) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def matmul_gflops(m: int, k: int, n: int, repeats: int = 20) -> float:
    import torch
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * m * k * n / best / 1e9


# --- child processes ---------------------------------------------------------------------------------

def child_timing(preset: str, batch: int, steps: int, threads: int) -> dict:
    import torch
    torch.set_num_threads(threads)
    from lib.experiments.resolve import make_config
    cfg = make_config(preset)
    lib_step, lib_model = make_steps(preset, batch, "lib")
    naive_step, naive_model_ = make_steps(preset, batch, "naive")
    flops = {"lib": step_flops(lib_step), "naive": step_flops(naive_step)}  # also the warm-up steps
    best = {"lib": float("inf"), "naive": float("inf")}
    for _ in range(steps):  # interleaved, so both see the same machine load
        for name, step in (("lib", lib_step), ("naive", naive_step)):
            t = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - t)
    tokens = batch * cfg.data.grid_size ** 2
    return {"seconds": best, "flops": flops, "batch": batch,
            "params": {"lib": sum(p.numel() for p in lib_model.parameters()),
                       "naive": sum(p.numel() for p in naive_model_.parameters())},
            "matmul_square": matmul_gflops(1024, 1024, 1024),
            "matmul_model": matmul_gflops(tokens, cfg.model.d_model, cfg.model.d_ff)}


def child_memory(preset: str, batch: int, which: str, threads: int) -> dict:
    import resource

    import torch
    torch.set_num_threads(threads)
    step, _ = make_steps(preset, batch, which)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step()
    step()  # the second step holds optimiser state and gradients too
    return {"bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base}


def child_inference(run_dir: str, threads: int, repeats: int) -> dict:
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    from lib import data as data_lib
    from lib.evaluate import evaluate, load_model, load_run, solve

    cfg = load_run(run_dir).run_config
    model = load_model(run_dir, "best")
    test = data_lib.load_splits(cfg.data, progress=False).test
    puzzles_flat, answers_flat = data_lib.to_arrays(test)
    trained = cfg.model.iterations
    curves, _ = evaluate(model, test, 2 * trained, batch_size=cfg.eval.batch_size)
    fixed_acc = curves[curves.bucket == "all"].set_index("iteration").solved

    def run(**kw):
        t = time.perf_counter()
        result = solve(puzzles_flat, model, batch_size=cfg.eval.batch_size, **kw)
        seconds = time.perf_counter() - t
        solved = (result.grids.reshape(len(answers_flat), -1) == answers_flat).all(1)
        return seconds, float(solved.mean()), int(result.iterations_used.sum())

    rows = []
    for cap in (trained, 2 * trained):
        halt = run(iterations=cap, halt="verified")
        # the cheapest fixed count at least as accurate as halting; failing that, the most accurate one
        k_eq = next((int(k) for k, acc in fixed_acc.items() if acc >= halt[1] - 1e-12), None)
        modes = {"fixed": dict(iterations=cap, halt="none"), "halt": dict(iterations=cap, halt="verified"),
                 "fixed_eq": dict(iterations=k_eq or int(fixed_acc.idxmax()), halt="none")}
        best = {m: run(**kw) for m, kw in modes.items()}
        for _ in range(repeats - 1):  # interleaved: every mode sees the same machine load
            for m, kw in modes.items():
                again = run(**kw)
                best[m] = min(best[m], again)
        rows.append({"cap": cap, "k_eq": k_eq, "k_best": int(fixed_acc.idxmax()), **best})
    buckets = test.with_format("numpy")["bucket"]
    return {"n": len(puzzles_flat), "buckets": {str(b): int(c) for b, c in zip(*np.unique(buckets, return_counts=True))},
            "trained": trained, "rows": rows, "fixed_curve": {int(k): float(v) for k, v in fixed_acc.items()}}


def run_child(func: str, *args) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(REPO)!r}); import benchmarks.bench_train as b; "
            f"print(json.dumps(b.{func}(*{args!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{func}{args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- report --------------------------------------------------------------------------------------

def bench_training(steps: int, threads: int, cases=TRAIN_CASES) -> None:
    print(f"== training step, fp32 eager on CPU, {threads} thread(s), best of {steps} interleaved steps ==")
    for preset, batch in cases:
        r = run_child("child_timing", preset, batch, steps, threads)
        mem = {w: run_child("child_memory", preset, batch, w, threads)["bytes"] for w in ("lib", "naive")}
        s, f = r["seconds"], r["flops"]
        print(f"{preset} (batch {batch}; params lib {r['params']['lib']:,} / naive {r['params']['naive']:,})")
        for w in ("lib", "naive"):
            gflops = f[w] / s[w] / 1e9
            print(f"  {w:<5}: {batch / s[w]:8.1f} puzzles/s  {s[w] * 1e3:8.1f} ms/step  {f[w] / batch / 1e9:6.2f} GFLOP/puzzle"
                  f"  {gflops:6.1f} GFLOP/s  peak RSS growth {mem[w] / 2**20:7.1f} MiB")
        print(f"  speed ratio lib/naive: {s['naive'] / s['lib']:.2f}x" + ("  (target >= 2x)" if preset == "cpu-quick" else ""))
        achieved = f["lib"] / s["lib"] / 1e9
        print(f"  plain fp32 matmul: {r['matmul_square']:.1f} GFLOP/s at 1024^3, {r['matmul_model']:.1f} GFLOP/s at the "
              f"model's FFN shape; lib step achieves {achieved / r['matmul_square']:.0%} / {achieved / r['matmul_model']:.0%} of them")


def bench_inference(run_dir: Path | None, train_steps: int, threads: int, repeats: int, preset: str = "cpu-quick") -> None:
    if run_dir is None:
        from lib.experiments.resolve import make_config
        from lib.train import train
        from lib.workbook.workbook import OUTPUTS
        run_dir = OUTPUTS / "bench" / f"infer-{preset}-{train_steps}"
        cfg = make_config(preset, overrides={"train.steps": train_steps, "train.threads": threads,
                                             "train.eval_every": train_steps, "train.checkpoint_every": train_steps})
        if not (run_dir / "summary.json").exists():
            print(f"training the inference model ({train_steps} cpu-quick steps) into {run_dir} ...", flush=True)
        train(cfg, run_dir, resume=True, progress=False)
    r = run_child("child_inference", str(run_dir), threads, repeats)
    n = r["n"]
    print(f"== inference on {n} mixed-difficulty test puzzles {r['buckets']}, model {run_dir.name} "
          f"(trained with {r['trained']} iterations), best of {repeats} interleaved ==")
    for row in r["rows"]:
        cap, (t_f, acc_f, work_f), (t_h, acc_h, work_h) = row["cap"], row["fixed"], row["halt"]
        print(f"  cap {cap:>2}: fixed {t_f:6.2f} s solved {acc_f:6.1%} | verified halting {t_h:6.2f} s solved {acc_h:6.1%}, "
              f"mean iterations {work_h / n:.2f} | speed {t_f / t_h:.2f}x, compute {work_f / work_h:.2f}x")
        t_e, acc_e, work_e = row["fixed_eq"]
        label = (f"equal accuracy: fixed {row['k_eq']}" if row["k_eq"] is not None else
                 f"no fixed count matches halting; the most accurate, fixed {row['k_best']}")
        print(f"          {label} iterations {t_e:6.2f} s solved {acc_e:6.1%} | speed {t_e / t_h:.2f}x, "
              f"compute {work_e / work_h:.2f}x (target >= 3x)")
    print("  fixed-count accuracy by iteration: " + ", ".join(f"{k}: {v:.1%}" for k, v in r["fixed_curve"].items()))


def bench_augmentation(batch: int = 4096, repeats: int = 5) -> None:
    """The training batch draw with per-sample symmetries, vectorised, against augmenting sample by sample."""
    import numpy as np

    from lib.sudoku import puzzles
    from lib.train import Batcher

    p, a = puzzles.generate(9, 64, seed=0, progress=False)
    batcher = Batcher(p.reshape(64, -1), a.reshape(64, -1), 9, augment=True, seed=0)
    batcher(np.arange(64), np.random.default_rng(0), batch)  # warm-up
    t = time.perf_counter()
    for step in range(repeats):
        batcher(np.arange(64), np.random.default_rng(step), batch)
    vectorised = (time.perf_counter() - t) / repeats
    idx = np.random.default_rng(0).integers(0, 64, batch)
    rng = np.random.default_rng(0)
    flat_p, flat_a = p.reshape(64, -1), a.reshape(64, -1)
    t = time.perf_counter()
    for i in idx:  # the reference: one symmetry drawn and applied per sample, in numpy
        cell, digit = puzzles.random_symmetry(9, rng)
        digit[flat_p[i][cell]], digit[flat_a[i][cell]]
    per_sample = time.perf_counter() - t
    print(f"== augmentation, 9x9 batch of {batch} ==")
    print(f"  lib Batcher (vectorised): {vectorised * 1e3:7.1f} ms/batch; per sample in numpy: {per_sample * 1e3:7.1f} ms/batch;"
          f" ratio {per_sample / vectorised:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per implementation")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is robust on a shared machine)")
    parser.add_argument("--infer-run", type=Path, help="a run folder to benchmark inference on")
    parser.add_argument("--infer-steps", type=int, default=2000, help="cpu-quick steps for the inference model")
    parser.add_argument("--repeats", type=int, default=3, help="inference timings per mode (best is kept)")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-infer", action="store_true")
    parser.add_argument("--quick", action="store_true", help="one step, small batches, a 30-step model: checks it runs")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.quick:
        args.steps, args.infer_steps, args.repeats = 1, 30, 1
    if not args.skip_train:
        bench_augmentation(batch=256 if args.quick else 4096, repeats=1 if args.quick else 5)
        bench_training(args.steps, args.threads, [("cpu-smoke", 16)] if args.quick else TRAIN_CASES)
    if not args.skip_infer:
        bench_inference(args.infer_run, args.infer_steps, args.threads, args.repeats,
                        preset="cpu-smoke" if args.quick else "cpu-quick")


if __name__ == "__main__":
    main()
