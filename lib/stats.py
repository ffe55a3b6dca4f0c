"""Small statistics shared by the result tables and the claim checker, with numpy only (no scipy)."""
from __future__ import annotations

import math

import numpy as np


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
