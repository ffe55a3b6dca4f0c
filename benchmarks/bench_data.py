"""Speed of lib/sudoku/puzzles.py: solve, count-to-2 and rate on three benchmark sets, canonical forms, and
generation of minimal puzzles per grid size, printed next to the targets.

    python benchmarks/bench_data.py [--quick] [--csv PATH] [--sample N] [--workers K]
    python benchmarks/bench_data.py --prepare 1000000     # time preparing N sudoku-extreme train rows

Figures are wall-clock puzzles/s using all workers, plus puzzles per CPU-second (robust when other jobs
share the machine: on an idle 2-core machine wall/s is about 2x the per-CPU-second figure).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lib.sudoku import puzzles as P  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = REPO / ".." / "shared" / "data" / "external" / "benchmark_sets.csv"
SOURCES = ["puzzles2_17_clue", "puzzles3_magictour_top1465", "puzzles5_forum_hardest_1905_11+"]
# wall-clock puzzles/s targets on the 2-core machine (tdoku does ~17,000 and ~100,000 natively)
TARGETS = {("rate", "puzzles5_forum_hardest_1905_11+"): 4_000, ("rate", "puzzles2_17_clue"): 30_000,
           ("generate", 9): 1_000}


def timed(fn, *args, **kw):
    """(result, wall seconds, cpu seconds of this process over all threads)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, time.perf_counter() - w, time.process_time() - c


def row(task, what, count, wall, cpu, target=None):
    t = f"{target:>10,}" if target else f"{'':>10}"
    ok = "" if not target else ("  ok" if count / wall >= target else "  MISSED")
    print(f"{task:<12}{what:<34}{count:>7}{count / wall:>12,.0f}{count / cpu:>14,.0f}{t}{ok}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small samples (a smoke run)")
    ap.add_argument("--csv", default=str(DEFAULT_CSV), help="benchmark_sets.csv (default: %(default)s)")
    ap.add_argument("--sample", type=int, default=None, help="puzzles per benchmark set (default 3000, quick 300)")
    ap.add_argument("--workers", type=int, default=None, help="threads (default: all cores)")
    ap.add_argument("--prepare", type=int, default=0, help="only time preparing this many hub-format train rows")
    args = ap.parse_args(argv)
    if args.prepare:
        return prepare(args.prepare, Path(args.csv))
    sample = args.sample or (300 if args.quick else 3000)
    csv = Path(args.csv)
    if not csv.exists():
        sys.exit(f"benchmark CSV not found: {csv} (pass --csv)")
    df = pd.read_csv(csv, dtype={"question": str, "answer": str, "source": str})

    t = time.perf_counter()  # compile or load the numba cache before timing anything
    P.rate_many(P.parse_many(list(df.question[:4])), progress=False)
    P.solve_many(P.parse_many(list(df.question[:4])), max_solutions=1)
    P.canonical_many(P.parse_many(list(df.question[:4])), progress=False)
    for n in (4, 6, 9):
        P.generate(n, 2, progress=False)
    print(f"numba compile / cache load: {time.perf_counter() - t:.1f} s; cores: {len(os.sched_getaffinity(0))}; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print(f"{'task':<12}{'set':<34}{'count':>7}{'wall /s':>12}{'per CPU-s':>14}{'target /s':>10}")
    for src in SOURCES:
        d = df[df.source == src]
        d = d.sample(min(sample, len(d)), random_state=0)
        grids = P.parse_many(list(d.question))
        (sols, _, _), wall, cpu = timed(P.solve_many, grids, max_solutions=1, workers=args.workers)
        assert P.format_many(sols) == list(d.answer), "wrong solution"
        row("solve", src, len(grids), wall, cpu)
        (_, nsol, _), wall, cpu = timed(P.solve_many, grids, max_solutions=2, workers=args.workers)
        assert (nsol == 1).all()
        row("count-to-2", src, len(grids), wall, cpu)
        r, wall, cpu = timed(P.rate_many, grids, progress=False, workers=args.workers)
        row("rate", src, len(grids), wall, cpu, TARGETS.get(("rate", src)))
        print(f"{'':<12}  guesses mean {r['guesses'].mean():.1f}, guesses_full mean {r['guesses_full'].mean():.1f}, "
              f"solved by singles {np.mean(r['deduction_depth'] < P.NEEDS_GUESS):.0%}")
        k = min(len(grids), sample // 3)
        _, wall, cpu = timed(P.canonical_many, grids[:k], progress=False, workers=args.workers)
        row("canonical", src, k, wall, cpu)
    for n, count in ((4, 20_000), (6, 10_000), (9, 3_000)):
        count = count // 10 if args.quick else count
        (pz, _), wall, cpu = timed(P.generate, n, count, seed=1, workers=args.workers, progress=False)
        row("generate", f"{n}x{n} minimal, {(pz > 0).sum((1, 2)).mean():.1f} clues", count, wall, cpu,
            TARGETS.get(("generate", n)))
    count = 200 if args.quick else 1_000
    (pz, _), wall, cpu = timed(P.generate, 9, count, hard_fraction=1.0, seed=1, workers=args.workers, progress=False)
    row("generate", "9x9 minimal, all hard", count, wall, cpu)


def prepare(rows: int, csv: Path) -> None:
    """Preparing a sudoku-extreme train split of `rows` rows from local CSVs in the hub's format: read,
    validate (answers fit their givens and solve them) and cache. The shipped rating is kept; the extra
    ratings are computed later, only where a run uses them (the test split, or bucketing by them)."""
    import tempfile

    from lib import data

    df = pd.read_csv(csv, dtype={"source": str, "question": str, "answer": str, "rating": np.int64})
    big = df.iloc[np.arange(rows) % len(df)][["source", "question", "answer", "rating"]]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SUDOKU_WORKBOOK_CACHE"] = tmp
        data.CACHE_DIR = Path(tmp)
        big.to_csv(Path(tmp) / "train.csv", index=False)
        t = time.perf_counter()
        ds = data.load_puzzles("sudoku-extreme", split="train", data_dir=tmp, progress=False)
        seconds = time.perf_counter() - t
    print(f"prepared {len(ds):,} sudoku-extreme train rows in {seconds:.1f} s ({len(ds) / seconds:,.0f} rows/s; "
          f"load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
