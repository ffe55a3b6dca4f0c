"""The statistics of the result tables and the claim checker, with numpy only (no scipy): intervals over
seeds, the paired comparison of two variants, the verdict it reaches, and whether the log's effect fits it.

The paired interval. Two variants are trained with the same S seeds and scored on the same P test puzzles;
d[s, p] = solved_A - solved_B. The claim is about the difference expected over training seeds and over
puzzles like these, so two things vary: the seed (each seed's mean difference moves with its training run),
and the puzzle sample (shared by every seed, so the seeds' spread cannot see it). The interval adds both:

    seed term    s2_seeds / S                                   (S - 1 degrees of freedom)
    puzzle term  var_p(mean over seeds of d[., p]) / P           (P - 1)
    D +- sqrt(t(S - 1)^2 seed term + t(P - 1)^2 puzzle term)

Each term is scaled by its own t quantile: with Welch-Satterthwaite's pooled df the interval covered only 92%
at 3 seeds where the two terms are comparable (a 0.5-logit seed spread), this one at least 95%.

With 3 seeds and seeds that disagree, t has about 2 degrees of freedom, and the interval is as wide as the
seeds make it; a bootstrap over 3 seeds cannot be (its interval is about the range of the three, and covered
the truth about 76% of the time where seed variance dominates). tests/test_stats.py checks by simulation that
this one covers at least 93% across seed spreads of 0.1 to 1.0 logit, 3 to 10 seeds and test-set sizes.
It is deterministic: no random draw, so no seed of its own.
"""
from __future__ import annotations

import math

import numpy as np

DIRECTIONS = (">", "<", "≈", "≥", "≤")  # the same as lib.claims: what a claim expects of A - B
VERDICTS = ("holds", "reversed", "inconclusive", "not run")
EFFECTS = ("consistent", "smaller", "larger", "excluded", "not run")  # the log's effect against our interval


# --- the t distribution --------------------------------------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (Lentz's method)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0 or x >= 1:
        return float(x >= 1)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_quantile(df: float, p: float = 0.975) -> float:
    """Student-t quantile for any real df >= 1 (Welch's df is fractional), by bisection on the CDF."""
    if df < 1:
        raise ValueError(f"t_quantile needs at least 1 degree of freedom, got {df}")
    if not 0 < p < 1:
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p}")
    lo, hi = -1e3, 1e3
    for _ in range(64):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


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


# --- the paired comparison ------------------------------------------------------------------------------

def paired_parts(a, b) -> dict:
    """The pieces of the paired interval of A - B (percentage points) for (seeds, puzzles) 0/1 arrays aligned on
    both axes: the difference, each seed's, the seed and puzzle variance terms of the mean, and their counts."""
    a, b = (np.atleast_2d(np.asarray(x, dtype=float)) for x in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"paired interval: A {a.shape} and B {b.shape} must be aligned (seeds, puzzles)")
    if a.size == 0:
        raise ValueError("paired interval: no paired results")
    d = 100 * (a - b)
    seeds, puzzles = d.shape
    per_seed = d.mean(1)
    seed_term = per_seed.var(ddof=1) / seeds if seeds > 1 else 0.0
    puzzle_term = d.mean(0).var(ddof=1) / puzzles if puzzles > 1 else 0.0
    return {"diff": float(d.mean()), "per_seed": per_seed, "seed_var": float(per_seed.var(ddof=1)) if seeds > 1 else 0.0,
            "seed_term": float(seed_term), "puzzle_term": float(puzzle_term), "seeds": seeds, "puzzles": puzzles}


def interval(parts: dict, confidence: float = 0.95, seeds: int | None = None) -> tuple[float, float, float]:
    """(diff, low, high) from paired_parts; `seeds` projects the half-width to another seed count (the seed
    variance as measured, the puzzle term unchanged)."""
    n = seeds or parts["seeds"]
    seed_term = parts["seed_var"] / n if parts["seeds"] > 1 else 0.0
    q = 0.5 + confidence / 2
    spread = sum(t_quantile(k, q) ** 2 * v for v, k in ((seed_term, n - 1), (parts["puzzle_term"], parts["puzzles"] - 1))
                 if v > 0 and k >= 1)
    half = math.sqrt(spread)
    return parts["diff"], parts["diff"] - half, parts["diff"] + half


def paired_interval(a, b, confidence: float = 0.95) -> tuple[float, float, float]:
    """(difference, low, high) of mean solved A - B in percentage points (see the module docstring)."""
    return interval(paired_parts(a, b), confidence)


# --- what an interval says -------------------------------------------------------------------------------

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


def effect_answer(lo: float, hi: float, log_effect: float | None) -> str:
    """The log's effect (A - B, pp) against our interval: consistent (inside it), smaller (the interval lies
    between 0 and the log's effect: the same direction, weaker), larger (beyond it, the same direction), or
    excluded (ruled out, and not the same direction for sure). A log effect of 0: consistent or larger."""
    if log_effect is None or math.isnan(log_effect):
        return ""
    if any(math.isnan(x) for x in (lo, hi)):
        return "not run"
    if lo <= log_effect <= hi:
        return "consistent"
    if log_effect == 0:
        return "larger"
    sign = 1 if log_effect > 0 else -1
    lo, hi = sorted((sign * lo, sign * hi))
    target = abs(log_effect)
    if hi < target and lo > 0:
        return "smaller"
    return "larger" if lo > target else "excluded"


def boundaries(direction: str, margin: float) -> list[float]:
    """The values of A - B at which a claim's verdict changes."""
    return [0.0] if direction in (">", "<") else [-margin, margin] if direction == "≈" else \
        [-margin] if direction == "≥" else [margin]


def decided(lo: float, hi: float, direction: str, margin: float) -> bool:
    return all(not (lo < edge < hi) for edge in boundaries(direction, margin))
