"""The one statistical rule: a paired comparison of two models over matching (fold, seed) runs, with a 95%
confidence interval from a seeded hierarchical bootstrap that counts both the run-to-run spread and the finite
test set (docs/statistics.md).

Each resample draws runs with replacement, then, within each drawn run, test rows with replacement -- the same
rows for both models, so the comparison stays paired at the row level too (Davison & Hinkley 1997, sec. 3.8, the
two-stage bootstrap; Bouthillier et al., MLSys 2021, on counting both sources of variance in ML benchmarks). The
difference is "helps"/"hurts" only when the interval excludes 0, and fewer than ``MIN_RUNS`` paired runs get no
verdict. Many comparisons at once are adjusted with Holm's step-down procedure (Holm 1979).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel

Rows = Mapping[str, np.ndarray]  # one run's per-test-row arrays (targets, predictions, hits), all (N,)
Statistic = Callable[[Rows, np.ndarray], np.ndarray]  # (rows, (B, n) row indices) -> (B,) metric values

RESAMPLES = 2000
LEVEL = 0.95
MIN_RUNS = 3
BLOCK = 256  # resamples drawn at a time (bounds the (BLOCK, n) index matrix)

Verdict = Literal["helps", "hurts", "no clear difference", "no verdict"]


class PairedDiff(BaseModel):
    """Model A minus model B on one metric, over paired runs (positive: A is better when higher is better)."""

    mean: float  # mean over runs of each run's observed difference on its whole test split
    ci_low: float
    ci_high: float
    n_runs: int
    verdict: Verdict
    p_value: float  # two-sided bootstrap p-value (the share of resamples on the other side of 0, doubled)
    resamples: int
    level: float


def verdict_of(ci_low: float, ci_high: float, n_runs: int, higher_is_better: bool = True) -> Verdict:
    """"helps" / "hurts" only when the interval excludes 0 and there are at least ``MIN_RUNS`` paired runs."""
    if n_runs < MIN_RUNS:
        return "no verdict"
    if ci_low > 0:
        return "helps" if higher_is_better else "hurts"
    if ci_high < 0:
        return "hurts" if higher_is_better else "helps"
    return "no clear difference"


def _row_resampled_diffs(a: Rows, b: Rows, statistic: Statistic, resamples: int,
                         rng: np.random.Generator) -> np.ndarray:
    """(resamples,) differences A - B of one run, each on one bootstrap resample of its test rows (the same
    rows for both models)."""
    n = len(next(iter(a.values())))
    if len(next(iter(b.values()))) != n:
        raise ValueError(f"paired runs must score the same test rows: {n} vs {len(next(iter(b.values())))}")
    out = np.empty(resamples)
    for start in range(0, resamples, BLOCK):
        stop = min(resamples, start + BLOCK)
        idx = rng.integers(0, n, size=(stop - start, n))  # (block, n)
        out[start:stop] = statistic(a, idx) - statistic(b, idx)
    return out


def paired_diff(runs_a: Mapping[tuple, Rows], runs_b: Mapping[tuple, Rows], statistic: Statistic,
                higher_is_better: bool = True, resamples: int = RESAMPLES, level: float = LEVEL,
                seed: int = 0) -> PairedDiff:
    """Compare model A with model B over the (fold, seed) keys both have. ``statistic`` computes the metric on
    row resamples; the whole-split value is ``statistic(rows, arange(n)[None])``."""
    keys = sorted(set(runs_a) & set(runs_b), key=str)
    if not keys:
        raise ValueError("no (fold, seed) run is shared by the two models: nothing to pair")
    rng = np.random.default_rng(seed)
    observed = np.array([float(statistic(runs_a[k], _whole(runs_a[k]))[0] - statistic(runs_b[k], _whole(runs_b[k]))[0])
                         for k in keys])  # (R,)
    per_run = np.stack([_row_resampled_diffs(runs_a[k], runs_b[k], statistic, resamples, rng) for k in keys])  # (R, B)
    runs = rng.integers(0, len(keys), size=(resamples, len(keys)))  # (B, R): runs drawn with replacement
    columns = rng.integers(0, resamples, size=(resamples, len(keys)))  # an independent row resample per draw
    means = per_run[runs, columns].mean(axis=1)  # (B,)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    p_value = min(1.0, 2.0 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0))))
    return PairedDiff(mean=float(observed.mean()), ci_low=float(low), ci_high=float(high), n_runs=len(keys),
                      verdict=verdict_of(float(low), float(high), len(keys), higher_is_better), p_value=p_value,
                      resamples=resamples, level=level)


def _whole(rows: Rows) -> np.ndarray:
    return np.arange(len(next(iter(rows.values()))))[None, :]  # (1, n): every row once


def holm(p_values: list[float], alpha: float = 1.0 - LEVEL) -> list[bool]:
    """Holm's step-down procedure: which of several hypotheses are rejected at family-wise error ``alpha``."""
    order = np.argsort(p_values)
    rejected = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        rejected[index] = True
    return rejected


# ---- statistics of the built-in tasks (vectorised over resamples) ---------------------------------------------
def mean_of(column: str) -> Statistic:
    """The mean of a per-row score (accuracy: 1 for a right answer; retrieval: a query's hit at 1)."""
    return lambda rows, idx: rows[column][idx].mean(axis=1)


def r_squared(rows: Rows, idx: np.ndarray) -> np.ndarray:
    """R^2 of ``predicted`` against ``target`` on each resample."""
    target, predicted = rows["target"][idx], rows["predicted"][idx]  # (B, n)
    residual = ((target - predicted) ** 2).sum(axis=1)
    total = ((target - target.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    return 1.0 - residual / np.maximum(total, 1e-12)
