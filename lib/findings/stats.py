"""The statistics of the claim checker, with numpy only (no scipy): intervals over seeds, the
paired comparison of two variants, the verdict it reaches, how many seeds a claim gets, and whether
the log's effect fits it.

The paired interval. Two variants are trained with the same S seeds and scored on the same P test
puzzles; d[s, p] = solved_A - solved_B (pp). The claim is about the difference expected over
training seeds and over puzzles like these, so two things vary: the seed, and the puzzle sample
(shared by every seed, so the seeds' spread cannot see it). As in a two-way ANOVA without
replication:

    V_seed    var_s(d[s, .]) / S          a seed's mean moves with its run and its cells' noise
    V_puzzle  var_p(d[., p]) / P          a puzzle's mean moves with the puzzle and with that noise
    V_cell    MS_residual / (S P)         the noise, which both terms above count
    D +- sqrt(t(S - 1)^2 V_seed + t(P - 1)^2 max(V_puzzle - V_cell, 0))

V_seed + V_puzzle - V_cell is unbiased for the variance of D: the noise is counted once, in the
seed term, and the puzzle term is the puzzle sample's own (without the subtraction the interval was
2-21% too wide). It is floored at 0, the usual truncation of a variance component, so the interval
is never narrower than the seeds make it. Each term has its own t quantile: one pooled
Welch-Satterthwaite df covered only 92% at 3 seeds where the terms are comparable. Projected to n
seeds (`interval(parts, seeds=n)`), all of V_seed, noise included, shrinks as 1/n; the puzzle term
stays.

With 3 seeds t has 2 degrees of freedom, and the interval is as wide as the seeds make it; a
bootstrap over 3 seeds cannot be (its interval is about their range: it covered the truth 76% of
the time where seed variance dominates). tests/test_stats.py checks by simulation that the 95%
interval covers the truth about 95% of the time from seed spreads of 0.1 to 1.0 logit, 3 to 10
seeds and 200 to 800 puzzles, at middling base rates and near the floor.

The floor. Where every seed of both sides solves almost nothing (under FLOOR_PCT), an interval says
nothing: if most seeds never take off, three that did not give [0, 0] although the expected
difference is not 0 (covered 76% of the time at 3 seeds), and an ≈ claim would "hold". `at_floor`
names that case, and the claim checker reports it instead of a verdict; elsewhere the interval
keeps its coverage when seeds take off only now and then.

Sequential seeds. A claim starts at 3 seeds and gets 2 more while undecided and the interval
projected at its cap would decide it (`seeds_to_add`). Each look decides on a LEVEL (98.5%)
interval: in simulation the whole rule decides a claim whose two sides are equal (either way) 3-4%
of the time, where 97.5% at each look did 5-6% and 95% 10-11% (tests/test_stats.py).

All of it is deterministic: no random draw, so no seed of its own.
"""
from __future__ import annotations

import functools
import math

import numpy as np

DIRECTIONS = (">", "<", "≈", "≥", "≤")  # the same as lib.experiments.claims: what a claim expects of A - B
# What an interval says of a claim; "floor" is no verdict (at_floor), "not run" has no runs.
VERDICTS = ("holds", "reversed", "inconclusive", "floor", "not run")
# The log's effect against our interval; judged only once the direction is decided.
EFFECTS = ("consistent", "smaller", "smaller, maybe none", "larger", "excluded", "not judged",
           "not run")
LEVEL = 0.985  # the confidence of the interval each look decides on (see "Sequential seeds")
FLOOR_PCT = 1.0  # a seed that solves less than this % of the test puzzles did not take off
Z_POWER = 0.8416  # the normal's 80% quantile: a detectable effect is decided 80% of the time


# --- the t distribution -------------------------------------------------------------------------

# --- the t distribution -------------------------------------------------------------------------

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
    log_gamma = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(log_gamma + a * math.log(x) + b * math.log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


@functools.lru_cache(maxsize=4096)  # the same few (df, p) recur in every interval of a table
def t_quantile(df: float, p: float = 0.975) -> float:
    """Student-t quantile for any real df >= 1, by bisection on the CDF."""
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
    """(mean, low, high): the t-based CI of the mean over seeds (one value: a zero-width one)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return (math.nan, math.nan, math.nan)
    m = float(v.mean())
    if len(v) == 1:
        return (m, m, m)
    half = t_quantile(len(v) - 1, 0.5 + confidence / 2) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return (m, m - half, m + half)


# --- the paired comparison ----------------------------------------------------------------------

def paired_parts(a, b) -> dict:
    """The pieces of the paired interval of A - B (percentage points) for (seeds, puzzles) 0/1
    arrays aligned on both axes: the difference, each side's and each seed's, the variance of a
    seed's mean difference (seed_var), the puzzle sample's term of the mean (puzzle_term), and
    their counts."""
    a, b = (np.atleast_2d(np.asarray(x, dtype=float)) for x in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"paired interval: A {a.shape} and B {b.shape} must be aligned "
                         "(seeds, puzzles)")
    if a.size == 0:
        raise ValueError("paired interval: no paired results")
    d = 100 * (a - b)
    seeds, puzzles = d.shape
    per_seed, per_puzzle = d.mean(1), d.mean(0)
    seed_var = float(per_seed.var(ddof=1)) if seeds > 1 else 0.0
    puzzle_var = float(per_puzzle.var(ddof=1)) if puzzles > 1 else 0.0
    if seeds > 1 and puzzles > 1:
        # the residual (seed x puzzle) mean square: the cells' noise, which puzzle_var counts again
        residual = d - per_seed[:, None] - per_puzzle[None, :] + d.mean()
        cell_var = float((residual ** 2).sum()) / ((seeds - 1) * (puzzles - 1))
        puzzle_var = max(puzzle_var - cell_var / seeds, 0.0)
    return {"diff": float(d.mean()), "per_seed": per_seed, "a_per_seed": 100 * a.mean(1),
            "b_per_seed": 100 * b.mean(1), "seed_var": seed_var,
            "puzzle_term": puzzle_var / puzzles, "seeds": seeds, "puzzles": puzzles}


def prior_parts(diff: float, seed_sd: float, puzzles: int) -> dict:
    """Parts for a claim with no runs yet: the expected difference and a seed spread from elsewhere
    (the puzzle term taken as 0, so a projection from them is the narrowest the seeds allow)."""
    return {"diff": float(diff), "per_seed": np.array([]), "a_per_seed": np.array([]),
            "b_per_seed": np.array([]), "seed_var": float(seed_sd) ** 2, "puzzle_term": 0.0,
            "seeds": 0, "puzzles": puzzles}


def _terms(parts: dict, confidence: float, seeds: int | None) -> list[tuple[float, float]]:
    """(variance, t quantile) of the seed and puzzle terms of the mean, at `seeds` seeds."""
    n = seeds or parts["seeds"]
    if n < 1:
        raise ValueError("an interval from a prior needs a seed count to project to")
    q = 0.5 + confidence / 2
    terms = [(parts["seed_var"] / n, n - 1), (parts["puzzle_term"], parts["puzzles"] - 1)]
    return [(v, t_quantile(k, q)) for v, k in terms if v > 0 and k >= 1]


def interval(parts: dict, confidence: float = 0.95,
             seeds: int | None = None) -> tuple[float, float, float]:
    """(diff, low, high) from paired_parts; `seeds` projects it to another seed count (the measured
    variance of a seed's mean over that many seeds, the puzzle term unchanged)."""
    half = math.sqrt(sum(t * t * v for v, t in _terms(parts, confidence, seeds)))
    return parts["diff"], parts["diff"] - half, parts["diff"] + half


def half_width(parts: dict, confidence: float = LEVEL, seeds: int | None = None) -> float:
    _, lo, hi = interval(parts, confidence, seeds)
    return (hi - lo) / 2


def detectable_effect(parts: dict, seeds: int, confidence: float = LEVEL) -> float:
    """The smallest |A - B| (or distance from a margin) that an interval at `seeds` seeds would
    decide 80% of the time: its half-width plus Z_POWER standard errors."""
    se = math.sqrt(sum(v for v, _ in _terms(parts, confidence, seeds)))
    return half_width(parts, confidence, seeds) + Z_POWER * se


def paired_interval(a, b, confidence: float = 0.95) -> tuple[float, float, float]:
    """(difference, low, high) of mean solved A - B in percentage points (the module docstring)."""
    return interval(paired_parts(a, b), confidence)


def under_floor(per_seed, floor_pct: float = FLOOR_PCT) -> bool:
    """Some seeds, and every one solves under floor_pct %: they did not take off."""
    per_seed = np.asarray(per_seed, dtype=float)
    return per_seed.size > 0 and bool((per_seed < floor_pct).all())


def at_floor(parts: dict, floor_pct: float = FLOOR_PCT) -> bool:
    """Every seed of both sides solves under floor_pct %: no interval from these says anything."""
    return under_floor(np.concatenate([parts["a_per_seed"], parts["b_per_seed"]]), floor_pct)


# --- what an interval says ----------------------------------------------------------------------

def verdict(diff: float, lo: float, hi: float, direction: str, margin: float = 1.0) -> str:
    """holds / reversed / inconclusive from an interval of A - B, or "not run" when there is none
    (NaN). > and <: the interval excludes 0 one way or the other. ≈: holds inside ±margin, reversed
    wholly outside it. ≥ (A at least as good, within margin): holds when lo > -margin, reversed
    when hi < -margin; ≤ mirrors it."""
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
    if -margin <= lo and hi <= margin:
        return "holds"
    return "reversed" if lo > margin or hi < -margin else "inconclusive"


def effect_answer(lo: float, hi: float, log_effect: float | None) -> str:
    """The log's effect (A - B, pp) against our interval: consistent (inside it); smaller (the
    interval lies between 0 and the log's effect); smaller, maybe none (below it, and straddling
    0); larger (beyond it, the same sign); excluded (the interval has the other sign). A log effect
    of 0: consistent or larger. The caller judges it only where the direction is decided."""
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
    if lo > abs(log_effect):
        return "larger"
    if hi < 0:
        return "excluded"
    return "smaller" if lo > 0 else "smaller, maybe none"


def decided(lo: float, hi: float, direction: str, margin: float) -> bool:
    """The interval gives a verdict: it holds or it is reversed (an interval that only touches a
    boundary, as [0, 0] does for >, decides nothing)."""
    return verdict((lo + hi) / 2, lo, hi, direction, margin) in ("holds", "reversed")


def room(direction: str, margin: float, expected: float | None) -> float:
    """How far the expected A - B (the log's effect; 0 for ≈, ≥, ≤ without one) lies from the
    boundary the claim must clear to hold: an interval centred there decides only when narrower
    than this. NaN for > and < without an expected effect (nothing to project)."""
    if expected is None or math.isnan(expected):
        if direction in (">", "<"):
            return math.nan
        expected = 0.0
    return {">": expected, "<": -expected, "≈": margin - abs(expected),
            "≥": expected + margin, "≤": margin - expected}[direction]


# --- how many seeds -----------------------------------------------------------------------------

def seeds_to_add(parts: dict, direction: str, margin: float, cap: int, step: int = 2,
                 confidence: float = LEVEL) -> int:
    """0 when the interval decides the claim, the cap is reached, or the interval projected at the
    cap (the measured difference and spreads, `cap` seeds) would not decide it either; else `step`
    (at most up to the cap)."""
    n = parts["seeds"]
    _, lo, hi = interval(parts, confidence)
    if decided(lo, hi, direction, margin) or n >= cap or n < 2:
        return 0
    _, lo, hi = interval(parts, confidence, seeds=cap)
    return min(step, cap - n) if decided(lo, hi, direction, margin) else 0


def holm(parts: list[dict], directions: list[str], margins: list[float],
         alpha: float = 0.05) -> list[bool]:
    """Holm's step-down over claims: which verdicts survive at family-wise level alpha. A claim's
    p-value is the level at which its interval stops deciding it, so with k kept so far, every
    claim whose interval decides at 1 - alpha / (m - k) is kept too; counted without computing p.
    """
    claims = list(zip(parts, directions, margins))
    kept = [False] * len(claims)
    while not all(kept):
        level = 1 - alpha / (len(claims) - sum(kept))
        now = [k or _decides(*c, level) for c, k in zip(claims, kept)]
        if now == kept:
            break
        kept = now
    return kept


def _decides(parts: dict, direction: str, margin: float, confidence: float) -> bool:
    _, lo, hi = interval(parts, confidence)
    return decided(lo, hi, direction, margin)


COLLAPSE_PP = 5.0  # a count this far below the best so far is where a run collapses


def collapse_at(counts, solved) -> int | None:
    """The first count (ascending) whose solved % is at least COLLAPSE_PP below the best before it; None
    when there is none."""
    best = -math.inf
    for count, value in zip(counts, solved):
        if value <= best - COLLAPSE_PP:
            return int(count)
        best = max(best, value)
    return None
