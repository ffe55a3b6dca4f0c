"""The statistics of the result tables and the claim checker, with numpy only (no scipy): intervals over
seeds, the paired comparison of two variants, and the verdict a comparison reaches."""
from __future__ import annotations

import math

import numpy as np

DIRECTIONS = (">", "<", "≈", "≥", "≤")  # the same as lib.claims: what a claim expects of A - B
VERDICTS = ("holds", "reversed", "inconclusive", "not run")


def t_quantile(df: int, p: float = 0.975) -> float:
    """Student-t quantile: exact for 1 and 2 degrees of freedom, a Cornish-Fisher expansion beyond
    (within 1% at df=3, closer as df grows); numpy only, so no scipy dependency."""
    if df < 1:
        raise ValueError(f"t_quantile needs at least 1 degree of freedom, got {df}")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = math.sqrt(2) * _erfinv(2 * p - 1)
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def _erfinv(y: float) -> float:
    x = 0.0
    for _ in range(60):  # Newton on erf(x) = y
        x -= (math.erf(x) - y) / (2 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the t-based CI of the mean over seeds; one value gives a zero-width interval."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return (math.nan, math.nan, math.nan)
    m = float(v.mean())
    if len(v) == 1:
        return (m, m, m)
    half = t_quantile(len(v) - 1, 0.5 + confidence / 2) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return (m, m - half, m + half)


def paired_bootstrap(a, b, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> tuple[float, float, float]:
    """(difference, low, high) of mean solved A - B in percentage points, with a bootstrap CI.

    a and b are (seeds, puzzles) 0/1 arrays aligned on both axes (one seed may be given as a 1-D array).
    Each bootstrap draw resamples seeds and puzzles with replacement, independently of each other (a crossed
    two-way bootstrap), and applies the same draw to both sides, so the comparison stays paired: seeds carry
    the training variance, puzzles the test-set variance. Crossing is slightly conservative for per-puzzle
    noise; with 3 seeds it underestimates the seed spread by a third, which the coverage test bounds."""
    a, b = (np.atleast_2d(np.asarray(x, dtype=float)) for x in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap: A {a.shape} and B {b.shape} must be aligned (seeds, puzzles)")
    if a.size == 0:
        raise ValueError("paired_bootstrap: no paired results")
    d = a - b
    n_seeds, n_puzzles = d.shape
    rng = np.random.default_rng(seed)
    seed_counts, puzzle_counts = (_resample_counts(rng, n, n_boot) for n in (n_seeds, n_puzzles))
    means = np.einsum("bp,bp->b", seed_counts @ d, puzzle_counts) / (n_seeds * n_puzzles)
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return 100 * float(d.mean()), 100 * float(lo), 100 * float(hi)


def _resample_counts(rng, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n): how often each item is drawn in each resample of n with replacement."""
    draws = rng.integers(0, n, (n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def verdict(diff: float, lo: float, hi: float, direction: str, margin: float = 1.0) -> str:
    """holds / reversed / inconclusive from a CI of A - B, or "not run" when there is none (NaN).
    > and <: the CI excludes 0 one way or the other. ≈: holds inside ±margin, reversed wholly outside it.
    ≥ (A at least as good, within margin): holds when lo > -margin, reversed when hi < -margin; ≤ mirrors it."""
    if direction not in DIRECTIONS:
        raise ValueError(f"verdict: direction {direction!r} is not one of {DIRECTIONS}")
    if any(math.isnan(x) for x in (diff, lo, hi)):
        return "not run"
    if direction in ("<", "≤"):
        return verdict(-diff, -hi, -lo, {"<": ">", "≤": "≥"}[direction], margin)
    if direction == ">":
        return "holds" if lo > 0 else "reversed" if hi < 0 else "inconclusive"
    if direction == "≥":
        return "holds" if lo > -margin else "reversed" if hi < -margin else "inconclusive"
    return "holds" if -margin <= lo and hi <= margin else "reversed" if lo > margin or hi < -margin else "inconclusive"
