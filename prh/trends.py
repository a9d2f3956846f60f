"""Trends over models: does alignment rise with competence? Spearman's ρ with a permutation p-value and a
bootstrap interval, computed from the run's own alignment, probes and language-model scores.

The unit of every statistic is the model: the p-value permutes which y belongs to which x (exactly, over all
n! orders, up to n = 8 models; otherwise ``permutations`` seeded draws, add-one), and the interval resamples
models with replacement (percentile; resamples where ρ is undefined, a constant x or y, are skipped).

Trends of a run (``run_trends``), each a row of ``results/trends/{dataset}.parquet``:

* ``fig2``: vision models; x = competence, y = mean alignment to the other vision models, on the
  representation the probes measure (``layers``: the last layer of each, or the best layer pair);
* ``fig3``: causal language models; x = 1 − bits-per-byte, y = mean best-over-layers alignment to the vision
  models (the paper's Fig. 3 statistic);
* ``world_vision`` / ``world_language``: the same x against the alignment (best over layers) to the latent
  scenes Z of the shapes world.

Each is computed for every metric, on the raw scores and on the calibrated ones (``score``: ``raw`` or
``calibrated``, ``prh.metrics.calibration``): whether a trend survives calibration is the question of
Gröger, Wen & Brbić (2026).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.stats import rankdata

EXACT_UP_TO = 8


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = rankdata(x), rankdata(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return math.nan
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def _rows_rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's ρ of each row of ``x`` (R, n) against the same row of ``y``; NaN where one is constant."""
    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    scale = rx.std(axis=1) * ry.std(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, (rx * ry).mean(axis=1) / scale, np.nan)


def spearman_trend(
    x, y, *, permutations: int = 9999, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict:
    """Spearman's ρ of ``y`` against ``x`` (one value per model), its two-sided permutation p-value and a
    ``level`` bootstrap percentile interval. NaN pairs are dropped; fewer than 3 models give NaNs."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    out = {"n": n, "rho": math.nan, "p_value": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if n < 3:
        return out
    rho = _rho(x, y)
    out["rho"] = rho
    if math.isnan(rho):
        return out
    rng = np.random.default_rng(seed)
    # ranks move with the values they rank: the null reorders y's centred ranks against x's
    rx, ry = rankdata(x), rankdata(y)
    rx, ry, scale = rx - rx.mean(), ry - ry.mean(), n * rx.std() * ry.std()
    if n <= EXACT_UP_TO:
        null = ry[np.array(list(itertools.permutations(range(n))))] @ rx / scale
        out["p_value"] = float(np.mean(np.abs(null) >= abs(rho) - 1e-12))
    else:
        null = ry[np.stack([rng.permutation(n) for _ in range(permutations)])] @ rx / scale
        out["p_value"] = float((1 + np.sum(np.abs(null) >= abs(rho) - 1e-12)) / (permutations + 1))
    idx = rng.integers(0, n, size=(resamples, n))
    boots = _rows_rho(x[idx], y[idx])
    boots = boots[~np.isnan(boots)]
    if boots.size:
        out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]))
    return out


SCORES = ("raw", "calibrated")  # the score of a trend: the metric itself, or its calibration


def pair_matrix(ds, metric: str, layers: str = "best", models=None, score: str = "raw") -> np.ndarray:
    """(model × model) alignment for ``metric`` from an aggregate: the best over layer pairs (``best``) or the
    score of the two last layers (``last``), raw or ``calibrated`` (against the null of the same statistic:
    the max over layer pairs, or that one layer pair); NaN on the diagonal."""
    models = list(ds["model_x"].values) if models is None else list(models)
    sub = ds.sel(metric=metric, model_x=models, model_y=models)
    if score not in SCORES:
        raise ValueError(f"score '{score}' is not one of {', '.join(SCORES)}")
    variable = {("best", "raw"): "best", ("best", "calibrated"): "calibrated"}.get((layers, score))
    variable = variable or ("last" if score == "raw" else "calibrated_last")
    return np.asarray(sub[variable].values, dtype=np.float64)


def _modality(ds, name: str) -> str:
    return str(ds["modality_x"].sel(model_x=name).values)


def run_trends(ds, competence=None, lm_scores=None, *, metrics=None, layers: str = "last", seed: int = 0):
    """The trends of one dataset's aggregate ``ds`` (see the module docstring) for each of ``metrics`` (all of
    the aggregate's by default), each on the raw and on the calibrated scores (``score``), as a polars table
    with the per-model points (``x``, ``y``, ``models``) of each. Calibrated rows need the permutation null."""
    import polars as pl

    names = list(ds["model_x"].values)
    vision = [m for m in names if _modality(ds, m) == "vision"]
    world = [m for m in names if _modality(ds, m) == "world"]
    metrics = list(ds["metric"].values) if metrics is None else list(metrics)
    scores = SCORES if int(ds.attrs["permutations"]) > 0 else ("raw",)
    best = {"raw": "best", "calibrated": "calibrated"}
    rows = []

    def add(trend, metric, score, x_name, y_name, models, x, y):
        stats = spearman_trend(x, y, seed=seed)
        rows.append(
            {"trend": trend, "metric": metric, "score": score, "x": x_name, "y": y_name}
            | stats
            | {"models": list(models), "x_values": [float(v) for v in x], "y_values": [float(v) for v in y]}
        )

    probed, competences = [], None
    if competence is not None:
        by_model = dict(zip(competence["model"].to_list(), competence["competence"].to_list()))
        probed = [m for m in vision if m in by_model]
        competences = np.array([by_model[m] for m in probed])
    causal, fluency = [], None
    if lm_scores is not None:
        applicable = lm_scores.filter(lm_scores["applicable"])
        by_model = dict(zip(applicable["model"].to_list(), applicable["bits_per_byte"].to_list()))
        causal = [m for m in applicable["model"].to_list() if m in names]
        fluency = np.array([1 - by_model[m] for m in causal])
    for metric, score in itertools.product(metrics, scores):
        what = f"{metric}{' (calibrated)' if score == 'calibrated' else ''}"
        if len(probed) >= 2:
            matrix = pair_matrix(ds, metric, layers, probed, score)
            add("fig2", metric, score, "competence", f"mean {what} to the other vision models ({layers} layer)",
                probed, competences, np.nanmean(matrix, axis=1))  # fmt: skip
        if probed and world:
            to_world = ds[best[score]].sel(metric=metric, model_x=probed, model_y=world[0]).values
            add("world_vision", metric, score, "competence", f"{what} to the world Z (best layer)", probed,
                competences, to_world)  # fmt: skip
        if causal and vision:
            to_vision = ds[best[score]].sel(metric=metric, model_x=causal, model_y=vision).values.mean(axis=1)
            add("fig3", metric, score, "1 - bits per byte", f"mean {what} to the vision models (best layers)",
                causal, fluency, to_vision)  # fmt: skip
        if causal and world:
            to_world = ds[best[score]].sel(metric=metric, model_x=causal, model_y=world[0]).values
            add("world_language", metric, score, "1 - bits per byte", f"{what} to the world Z (best layer)",
                causal, fluency, to_world)  # fmt: skip
    schema = {
        "trend": pl.String,
        "metric": pl.String,
        "score": pl.String,
        "x": pl.String,
        "y": pl.String,
        "n": pl.Int64,
        **{c: pl.Float64 for c in ("rho", "p_value", "ci_low", "ci_high")},
        "models": pl.List(pl.String),
        "x_values": pl.List(pl.Float64),
        "y_values": pl.List(pl.Float64),
    }
    return pl.DataFrame(rows, schema=schema)


def trend_row(trends, trend: str, metric: str, score: str = "raw") -> dict | None:
    """One row of a trends table as a dict, or None when the run has no such trend."""
    rows = trends.filter(
        (trends["trend"] == trend) & (trends["metric"] == metric) & (trends["score"] == score)
    ).to_dicts()
    return rows[0] if rows else None


def describe(row: dict | None) -> str:
    """One line for a figure or caption: what this run's data show for a trend."""
    if row is None or row["n"] < 3 or row["rho"] is None or math.isnan(row["rho"]):
        n = 0 if row is None else row["n"]
        return f"too few models for a trend (n = {n})"
    return (
        f"Spearman ρ = {row['rho']:.2f} (permutation p = {row['p_value']:.3g}, "
        f"95% bootstrap CI [{row['ci_low']:.2f}, {row['ci_high']:.2f}], n = {row['n']} models)"
    )
