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
    if n <= EXACT_UP_TO:
        null = np.array([_rho(x, y[list(order)]) for order in itertools.permutations(range(n))])
        out["p_value"] = float(np.mean(np.abs(null) >= abs(rho) - 1e-12))
    else:
        null = np.array([_rho(x, rng.permutation(y)) for _ in range(permutations)])
        out["p_value"] = float((1 + np.sum(np.abs(null) >= abs(rho) - 1e-12)) / (permutations + 1))
    boots = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        value = _rho(x[idx], y[idx])
        if not math.isnan(value):
            boots.append(value)
    if boots:
        out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]))
    return out


def pair_matrix(ds, metric: str, layers: str = "best", models=None) -> np.ndarray:
    """(model × model) alignment for ``metric`` from an aggregate: the best over layer pairs (``best``) or the
    score of the two last layers (``last``); NaN on the diagonal."""
    models = list(ds["model_x"].values) if models is None else list(models)
    sub = ds.sel(metric=metric, model_x=models, model_y=models)
    if layers == "best":
        return np.asarray(sub["best"].values, dtype=np.float64)
    n_layers = dict(zip(ds["model"].values, ds["n_layers"].values))
    score = sub["score"].values
    out = np.full((len(models), len(models)), np.nan)
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            if i != j:
                out[i, j] = score[i, j, n_layers[a] - 1, n_layers[b] - 1]
    return out


def _modality(ds, name: str) -> str:
    return str(ds["modality_x"].sel(model_x=name).values)


def run_trends(ds, competence=None, lm_scores=None, *, metric: str, layers: str = "last", seed: int = 0):
    """The trends of one dataset's aggregate ``ds`` (see the module docstring) as a polars table, with the
    per-model points (``x``, ``y``, ``models``) of each."""
    import polars as pl

    names = list(ds["model_x"].values)
    vision = [m for m in names if _modality(ds, m) == "vision"]
    world = [m for m in names if _modality(ds, m) == "world"]
    rows = []

    def add(trend, x_name, y_name, models, x, y):
        stats = spearman_trend(x, y, seed=seed)
        rows.append(
            {"trend": trend, "metric": metric, "x": x_name, "y": y_name}
            | stats
            | {"models": list(models), "x_values": [float(v) for v in x], "y_values": [float(v) for v in y]}
        )

    if competence is not None and len(vision) >= 2:
        by_model = dict(zip(competence["model"].to_list(), competence["competence"].to_list()))
        probed = [m for m in vision if m in by_model]
        x = np.array([by_model[m] for m in probed])
        if len(probed) >= 2:
            matrix = pair_matrix(ds, metric, layers, probed)
            add("fig2", "competence", f"mean {metric} to the other vision models ({layers} layer)", probed, x,
                np.nanmean(matrix, axis=1))  # fmt: skip
        if world:
            to_world = ds["best"].sel(metric=metric, model_x=probed, model_y=world[0]).values
            add("world_vision", "competence", f"{metric} to the world Z (best layer)", probed, x, to_world)
    if lm_scores is not None:
        causal = lm_scores.filter(lm_scores["applicable"])
        language = [m for m in causal["model"].to_list() if m in names]
        by_model = dict(zip(causal["model"].to_list(), causal["bits_per_byte"].to_list()))
        x = np.array([1 - by_model[m] for m in language])
        if language and vision:
            to_vision = ds["best"].sel(metric=metric, model_x=language, model_y=vision).values.mean(axis=1)
            add("fig3", "1 - bits per byte", f"mean {metric} to the vision models (best layers)", language, x,
                to_vision)  # fmt: skip
        if language and world:
            to_world = ds["best"].sel(metric=metric, model_x=language, model_y=world[0]).values
            add("world_language", "1 - bits per byte", f"{metric} to the world Z (best layer)", language, x, to_world)
    schema = {
        "trend": pl.String,
        "metric": pl.String,
        "x": pl.String,
        "y": pl.String,
        "n": pl.Int64,
        **{c: pl.Float64 for c in ("rho", "p_value", "ci_low", "ci_high")},
        "models": pl.List(pl.String),
        "x_values": pl.List(pl.Float64),
        "y_values": pl.List(pl.Float64),
    }
    return pl.DataFrame(rows, schema=schema)


def describe(row: dict | None) -> str:
    """One line for a figure or caption: what this run's data show for a trend."""
    if row is None or row["n"] < 3 or row["rho"] is None or math.isnan(row["rho"]):
        n = 0 if row is None else row["n"]
        return f"too few models for a trend (n = {n})"
    return (
        f"Spearman ρ = {row['rho']:.2f} (permutation p = {row['p_value']:.3g}, "
        f"95% bootstrap CI [{row['ci_low']:.2f}, {row['ci_high']:.2f}], n = {row['n']} models)"
    )
