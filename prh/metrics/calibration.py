"""Calibrated alignment (Gröger, Wen & Brbić, ICML 2026; their PyPI package ``calibrated-similarity``).

A raw alignment score grows with width and depth even between unrelated representations, and the best
over layer pairs grows with the number of pairs searched. Calibration compares the observed score with a
permutation null of the same statistic:

* Algorithm 1 (``calibrate``): from an observed score and K null scores, the critical value τ is the
  ⌈(1 − α)(K + 1)⌉-th smallest of the K + 1 values (null and observed together), the p-value is add-one,
  (1 + #{null ≥ observed}) / (K + 1), and ``calibrated = clamp((observed − τ) / (smax − τ), 0, 1)``:
  0 unless the score beats the null at level α, 1 at the maximum ``smax``.
* Algorithm 2 (``calibrate_layers``): the statistic is the max over layer pairs; each null draw applies one
  permutation of Y's samples to every layer of Y and takes the max again, so the search over layer pairs is
  part of the null. The engine (``prh.metrics.layerwise``) computes each layer's states once and re-indexes
  them per permutation: a null costs the cross terms only, not a recomputation of every layer pair.
* ``benjamini_hochberg``: q-values over the many model pairs of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from prh.metrics.layerwise import LayerStates, layer_scores, permutation_null, resolve_params

EPSILON = 1e-12  # the reference's floor on smax − τ


@dataclass(frozen=True)
class Calibration:
    """One calibrated statistic: the observed ``score``, its ``calibrated`` score, ``p_value``, critical value
    ``tau`` and the ``null`` draws (K,)."""

    score: float
    calibrated: float
    p_value: float
    tau: float
    null: np.ndarray


def check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha = {alpha} must lie in (0, 1)")
    return float(alpha)


def check_permutations(permutations, n: int) -> np.ndarray:
    """``permutations`` as a (K, N) index array, K ≥ 1, every row a permutation of 0..N − 1."""
    perms = np.asarray(permutations)
    if perms.ndim != 2 or perms.shape[0] < 1:
        raise ValueError(f"permutations: expected a (K, N) integer array with K >= 1, got shape {perms.shape}")
    if perms.shape[1] != n:
        raise ValueError(f"permutations: rows of {perms.shape[1]} entries, but there are N = {n} samples")
    if not np.issubdtype(perms.dtype, np.integer):
        raise ValueError(f"permutations: expected integers, got dtype {perms.dtype}")
    bad = np.flatnonzero((np.sort(perms, axis=1) != np.arange(n)).any(axis=1))
    if bad.size:
        raise ValueError(f"permutations: row(s) {bad[:5].tolist()} are not permutations of 0..{n - 1}")
    return perms.astype(np.intp, copy=False)


def draw_permutations(n: int, count: int, seed: int) -> np.ndarray:
    """(count, n) permutations of the samples, drawn from ``seed``: the same for every pair of a run."""
    if count < 1:
        raise ValueError(f"permutations = {count} must be at least 1")
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(count)])


def critical_value(observed: float, null: np.ndarray, alpha: float) -> float:
    """τ: the ⌈(1 − α)(K + 1)⌉-th smallest of null ∪ {observed} (the reference's index rule, clamped)."""
    k = len(null)
    index = min(max(math.ceil((1.0 - alpha) * (k + 1)) - 1, 0), k)
    return float(np.sort(np.append(null, observed))[index])


def p_value(observed: float, null: np.ndarray) -> float:
    """Add-one permutation p-value (1 + #{null ≥ observed}) / (K + 1), in (0, 1]."""
    return (1.0 + np.count_nonzero(np.asarray(null) >= observed)) / (len(null) + 1)


def calibrated_score(observed: float, tau: float, smax: float = 1.0) -> float:
    """clamp((observed − τ) / (smax − τ), 0, 1), the denominator floored at 1e-12 as in the reference."""
    return float(np.clip((observed - tau) / max(smax - tau, EPSILON), 0.0, 1.0))


def calibrate(observed: float, null, alpha: float = 0.05, smax: float = 1.0) -> Calibration:
    """Algorithm 1 on a null already drawn. A NaN score (an undefined metric) stays NaN throughout."""
    null = np.asarray(null, dtype=np.float64)
    if len(null) < 1:
        raise ValueError("permutations: the null needs K >= 1 draws")
    alpha = check_alpha(alpha)
    if np.isnan(observed):
        return Calibration(float("nan"), float("nan"), float("nan"), float("nan"), null)
    tau = critical_value(observed, null, alpha)
    return Calibration(float(observed), calibrated_score(observed, tau, smax), p_value(observed, null), tau, null)


def calibrate_layers(
    metric: str, Xs, Ys, permutations, alpha: float = 0.05, *, device: str = "cpu", **params
) -> Calibration:
    """Algorithm 2 with the max over layer pairs: ``metric`` between every layer of ``Xs`` and of ``Ys``
    (layer stacks or ``LayerStates``), its best layer pair, and the null of that best under ``permutations``
    ((K, N) integers: row r reorders Y's samples, Y[perm[r]], for null draw r, as the reference's ``Y[pi]``).

    Equals ``calibrated_similarity.calibrate_layers(X_layers, Y_layers, sim, agg="max", perm_fn=...)`` given
    the same permutations (tested): τ and the calibrated score to float32 rounding, the p-value exactly.
    """
    sx = Xs if isinstance(Xs, LayerStates) else LayerStates(list(Xs), device)
    sy = Ys if isinstance(Ys, LayerStates) else LayerStates(list(Ys), device)
    if sx.n != sy.n:
        raise ValueError(f"X and Y must describe the same samples: {sx.n} rows vs {sy.n}")
    perms = check_permutations(permutations, sx.n)
    alpha = check_alpha(alpha)
    params = resolve_params(metric, params)
    observed = float(np.nanmax(layer_scores(metric, sx, sy, **params)))
    null = permutation_null({metric: params}, sx, sy, perms)[metric]
    return calibrate(observed, null, alpha)


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini–Hochberg q-values (step-up FDR adjustment) of ``p_values``, any shape; NaNs are not tests
    and stay NaN. q_(i) = min_{j ≥ i} p_(j) m / j, capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    values = p[tested]
    m = values.size
    if m:
        order = np.argsort(values, kind="stable")
        scaled = values[order] * m / np.arange(1, m + 1)
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
        q[tested] = adjusted
    return q
