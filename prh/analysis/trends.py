"""Trends over models: does alignment rise with competence? Spearman's ρ with a permutation p-value and a
bootstrap interval, computed from the run's own alignment, probes and language-model scores.

The unit of every statistic is the model: the p-value permutes which y belongs to which x (exactly, over all
n! orders, up to n = 8 models; otherwise ``permutations`` seeded draws, add-one), and the interval resamples
models with replacement (percentile; resamples where ρ is undefined, a constant x or y, are skipped).

Trends of a run (``run_trends``), each a row of ``results/trends/{dataset}.parquet``:

* ``fig2``: vision models; x = competence, y = mean alignment to the other trained vision models, on the
  representation the probes measure (``layers``: the last layer of each, or the best layer pair);
* ``fig3``: causal language models; x = 1 − bits-per-byte, y = mean best-over-layers alignment to the trained
  vision models (the paper's Fig. 3 statistic);
* ``world_vision`` / ``world_language``: the same x against the alignment (best over layers) to the latent
  scenes Z of the shapes world;
* ``size_vision`` / ``size_language``: x = log10 of each model's parameter count (its features store's, which
  for a model read from the authors' files is their ``num_params``), y as Fig. 2 on the best layers and as
  Fig. 3: does alignment rise with scale? (the paper's Fig. 2 and 3 read scale as the size of the points).

Each is computed for every metric, on the raw scores and on the calibrated ones (``score``: ``raw`` or
``calibrated``, ``prh.metrics.calibration``): whether a trend survives calibration is the question of
Gröger, Wen & Brbić (2026).

Controls (a model entry's ``control``: ``random``, an untrained model; ``positive``, a model taught the world's
latent attributes) are rows of the table with their ``roles`` but not points of ρ: the paper's trends compare
trained models that differ in competence, and an untrained model at the far end of x would decide ρ alone.
``control_checks`` says whether the positive controls aligned where they must.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import xarray as xr  # noqa: E402
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


TREND = "trend"  # the role of a model that is a point of ρ; controls have their kind as role


def run_trends(
    ds,
    competence=None,
    lm_scores=None,
    *,
    controls=None,
    metrics=None,
    layers: str = "last",
    seed: int = 0,
    parameters: dict | None = None,
):
    """The trends of one dataset's aggregate ``ds`` (see the module docstring) for each of ``metrics`` (all of
    the aggregate's by default), each on the raw and on the calibrated scores (``score``), as a polars table
    with the per-model points (``x``, ``y``, ``models``, ``roles``) of each. ``lm_scores``: one corpus's rows;
    ``controls``: {model: random | positive}, kept in the table, left out of ρ. Calibrated rows need the
    permutation null. ``parameters``: {model: parameter count} (unknown: absent or -1) for the size trends."""
    import polars as pl

    names = list(ds["model_x"].values)
    controls = {m: kind for m, kind in (controls or {}).items() if m in names}
    vision = [m for m in names if _modality(ds, m) == "vision"]
    world = [m for m in names if _modality(ds, m) == "world"]
    trained_vision = [m for m in vision if m not in controls]
    metrics = list(ds["metric"].values) if metrics is None else list(metrics)
    scores = SCORES if int(ds.attrs["permutations"]) > 0 else ("raw",)
    best = {"raw": "best", "calibrated": "calibrated"}
    probed, competences = _competence_axis(competence, vision)
    causal, fluency = _fluency_axis(lm_scores, ds, names, controls)
    sizes = {m: float(np.log10(p)) for m, p in (parameters or {}).items() if p and p > 0 and m in names}
    sized_vision = [m for m in trained_vision if m in sizes]
    sized_language = [m for m in names if m in sizes and m not in controls and _modality(ds, m) == "language"]
    rows = []

    def add(trend, metric, score, x_name, y_name, models, x, y):
        rows.append(_trend_row(trend, metric, score, x_name, y_name, models, x, y, controls, seed))

    for metric, score in itertools.product(metrics, scores):
        what = f"{metric}{' (calibrated)' if score == 'calibrated' else ''}"
        if len(probed) >= 2:
            mean = _mean_to_trained(pair_matrix(ds, metric, layers, probed, score), probed, controls)
            add("fig2", metric, score, "competence", f"mean {what} to the other trained vision models ({layers} layer)",
                probed, competences, mean)  # fmt: skip
        if probed and world:
            to_world = ds[best[score]].sel(metric=metric, model_x=probed, model_y=world[0]).values
            add("world_vision", metric, score, "competence", f"{what} to the world Z (best layer)", probed,
                competences, to_world)  # fmt: skip
        if causal and trained_vision:
            sel = ds[best[score]].sel(metric=metric, model_x=causal, model_y=trained_vision)
            to_vision = sel.values.mean(axis=1)
            add("fig3", metric, score, "1 - bits per byte", f"mean {what} to the trained vision models (best layers)",
                causal, fluency, to_vision)  # fmt: skip
        if causal and world:
            to_world = ds[best[score]].sel(metric=metric, model_x=causal, model_y=world[0]).values
            add("world_language", metric, score, "1 - bits per byte", f"{what} to the world Z (best layer)",
                causal, fluency, to_world)  # fmt: skip
        if len(sized_vision) >= 2:
            mean = _mean_to_trained(pair_matrix(ds, metric, "best", sized_vision, score), sized_vision, controls)
            add("size_vision", metric, score, "log10 parameters", f"mean {what} to the other trained vision models "
                "(best layers)", sized_vision, [sizes[m] for m in sized_vision], mean)  # fmt: skip
        if sized_language and trained_vision:
            to_vision = ds[best[score]].sel(metric=metric, model_x=sized_language, model_y=trained_vision).values
            x = [sizes[m] for m in sized_language]
            add("size_language", metric, score, "log10 parameters", f"mean {what} to the trained vision models "
                "(best layers)", sized_language, x, to_vision.mean(axis=1))  # fmt: skip
    return pl.DataFrame(rows, schema=_trend_schema())


def _competence_axis(competence, vision: list[str]) -> tuple[list[str], np.ndarray | None]:
    """The probed vision models and their competence (Fig. 2's x)."""
    if competence is None:
        return [], None
    by_model = dict(zip(competence["model"].to_list(), competence["competence"].to_list()))
    probed = [m for m in vision if m in by_model]
    return probed, np.array([by_model[m] for m in probed])


def _fluency_axis(lm_scores, ds, names: list[str], controls: dict) -> tuple[list[str], np.ndarray | None]:
    """The causal language models and their 1 - bits-per-byte (Fig. 3's x); the language controls without a
    next-token head (a caption encoder) join with no x."""
    if lm_scores is None:
        return [], None
    applicable = lm_scores.filter(lm_scores["applicable"])
    by_model = dict(zip(applicable["model"].to_list(), applicable["bits_per_byte"].to_list()))
    causal = [m for m in applicable["model"].to_list() if m in names]
    causal += [m for m in names if m in controls and _modality(ds, m) == "language" and m not in causal]
    return causal, np.array([1 - by_model[m] if m in by_model else math.nan for m in causal])


def _mean_to_trained(matrix: np.ndarray, probed: list[str], controls: dict) -> np.ndarray:
    """Each probed model's mean alignment to the other trained vision models (a control is measured against
    them too)."""
    matrix = matrix[:, [m not in controls for m in probed]]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a lone trained model has no other
        return np.nanmean(matrix, axis=1)


def _trend_row(trend, metric, score, x_name, y_name, models, x, y, controls: dict, seed: int) -> dict:
    """One trend: Spearman's ρ over the models that are not controls, with every model's point."""
    roles = [controls.get(m, TREND) for m in models]
    point = np.array([role == TREND for role in roles], dtype=bool)
    stats = spearman_trend(np.asarray(x, float)[point], np.asarray(y, float)[point], seed=seed)
    points = {"models": list(models), "roles": roles, "x_values": [float(v) for v in x],
              "y_values": [float(v) for v in y]}  # fmt: skip
    return {"trend": trend, "metric": metric, "score": score, "x": x_name, "y": y_name} | stats | points


def _trend_schema() -> dict:
    import polars as pl

    text = {c: pl.String for c in ("trend", "metric", "score", "x", "y")}
    numbers = {"n": pl.Int64} | {c: pl.Float64 for c in ("rho", "p_value", "ci_low", "ci_high")}
    points = {"models": pl.List(pl.String), "roles": pl.List(pl.String)}
    return text | numbers | points | {"x_values": pl.List(pl.Float64), "y_values": pl.List(pl.Float64)}


def control_checks(ds, controls: dict, metric: str, alpha: float = 0.05):
    """Whether each positive control aligned where it must (polars table, one row per positive control): to the
    world Z (its best score above every random control's of its modality, with a permutation p-value at most
    ``alpha``) and to the trained vision models (its mean best score above every random language control's).
    A check with nothing to compare against is null."""
    import polars as pl

    names = list(ds["model_x"].values)
    world = [m for m in names if _modality(ds, m) == "world"]
    vision = [m for m in names if _modality(ds, m) == "vision" and m not in controls]
    best = ds["best"].sel(metric=metric)
    rows = []
    for model, kind in controls.items():
        if kind != "positive" or model not in names:
            continue
        modality = _modality(ds, model)
        randoms = [m for m, k in controls.items() if k == "random" and m in names and _modality(ds, m) == modality]
        row = {"model": model, "modality": modality, "metric": metric, "random_controls": randoms}
        if world:
            to_world = float(best.sel(model_x=model, model_y=world[0]))
            p = float(ds["p_value"].sel(metric=metric, model_x=model, model_y=world[0])) if "p_value" in ds else None
            p = None if p is None or math.isnan(p) else p  # no null: the check is on the scores alone
            floor = max((float(best.sel(model_x=m, model_y=world[0])) for m in randoms), default=None)
            aligned = None if floor is None else bool(to_world > floor and (p is None or p <= alpha))
            row |= {"to_world": to_world, "to_world_p": p, "random_to_world": floor, "aligned_to_world": aligned}
        others = [m for m in vision if m != model]
        if others and modality == "language":
            mean = float(best.sel(model_x=model, model_y=others).mean())
            floor = max((float(best.sel(model_x=m, model_y=others).mean()) for m in randoms), default=None)
            row |= {"to_vision": mean, "random_to_vision": floor,
                    "aligned_to_vision": None if floor is None else bool(mean > floor)}  # fmt: skip
        rows.append(row)
    schema = {"model": pl.String, "modality": pl.String, "metric": pl.String, "random_controls": pl.List(pl.String),
              "to_world": pl.Float64, "to_world_p": pl.Float64, "random_to_world": pl.Float64,
              "aligned_to_world": pl.Boolean, "to_vision": pl.Float64, "random_to_vision": pl.Float64,
              "aligned_to_vision": pl.Boolean}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def describe_control(row: dict) -> str:
    """One line on a positive control: where it aligned, against the random controls."""
    parts = []
    if row.get("aligned_to_world") is not None:
        verdict = "aligned" if row["aligned_to_world"] else "did NOT align"
        p = "" if row["to_world_p"] is None else f", p = {row['to_world_p']:.3g}"
        parts.append(f"{verdict} to Z ({row['to_world']:.3f}{p}; random {row['random_to_world']:.3f})")
    if row.get("aligned_to_vision") is not None:
        verdict = "aligned" if row["aligned_to_vision"] else "did NOT align"
        parts.append(f"{verdict} to the vision models ({row['to_vision']:.3f}; random {row['random_to_vision']:.3f})")
    return f"positive control {row['model']}: " + ("; ".join(parts) or "no random control to compare with")


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


def vision_alignment(
    ds: xr.Dataset, competence, metric: str, models, layers: str = "best", score: str = "raw"
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The vision models that have both a competence and an alignment, their alignment matrix for ``metric``
    (``layers``: best over layer pairs, or last layer against last layer; ``score``: raw or calibrated) and
    their competences (Fig. 2)."""
    from prh.analysis.trends import pair_matrix

    known = set(ds["model_x"].values) & set(competence["model"].to_list())
    names = [m for m in models if m in known]
    alignment = pair_matrix(ds, metric, layers, names, score)
    by_model = dict(zip(competence["model"].to_list(), competence["competence"].to_list()))
    return names, alignment, np.array([by_model[m] for m in names])
