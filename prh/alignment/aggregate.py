"""All pairs of a dataset in one ``xarray.Dataset``: best-layer scores, nulls, intervals and q-values per metric."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prh.io.provenance import as_attrs, package_versions
from prh.metrics import get_metric
from prh.metrics.calibration import benjamini_hochberg

SUMMARY = (
    "best",
    "best_layer_x",
    "best_layer_y",
    "null_mean",
    "null_std",
    "calibrated_mean",
    "tau",
    "p_value",
    "calibrated",
    "ci_low",
    "ci_high",
    "last",
    "tau_last",
    "p_value_last",
    "calibrated_last",
)


def aggregate(pair_paths: Sequence[str | Path], models: Sequence[dict]):
    """Combine pair files into one Dataset over ``models`` (config entries, in config order) and metrics:

    * ``score`` (metric, model_x, model_y, layer_x, layer_y): NaN-padded past each model's last layer and on
      the diagonal (a model is not paired with itself); entry (x, y) scores x's layers against y's;
    * per (metric, model_x, model_y): ``best`` (the best over layer pairs, the paper's summary, App. C.2),
      ``best_layer_x``/``best_layer_y`` (-1 where there is no score), ``null_mean``, ``null_std``,
      ``calibrated_mean``, ``tau``, ``p_value``, ``calibrated``, ``ci_low``, ``ci_high`` (see ``pair_scores``);
    * ``q_value`` (metric, model_x, model_y): Benjamini–Hochberg q-values of the p-values over the model pairs,
      per metric: each unordered pair is one test of a symmetric metric, each direction one of an asymmetric;
    * ``knn_ties`` (model): the most samples, over the model's layers, whose k-th neighbour is tied (the
      neighbour metrics then take their expectation over random tie-breaking, ``prh.metrics.definitions``).

    Select with ``ds.sel(metric="cknna", model_x=..., model_y=...)``.
    """
    import xarray as xr

    names = [m["name"] for m in models]
    index = {name: i for i, name in enumerate(names)}
    pairs = [xr.open_dataset(p, engine="scipy").load() for p in pair_paths]
    pairs = [p for p in pairs if p.attrs["model_x"] in index and p.attrs["model_y"] in index]
    if not pairs:
        raise ValueError("no pair files to aggregate: the config needs at least two models")
    metrics = list(pairs[0]["metric"].values)
    layer_names, ties = _layers_and_ties(pairs, names)
    max_layers = max(len(v) for v in layer_names.values())
    score, summary = _gathered(pairs, index, metrics, max_layers)
    params = pairs[0].attrs.get("metric_params") or {}  # a variant can make a metric asymmetric
    params = json.loads(params) if isinstance(params, str) else params
    symmetric = [get_metric(m).is_symmetric(params.get(m)) for m in metrics]
    summary["q_value"] = pair_q_values(summary["p_value"], symmetric)
    dims = ("metric", "model_x", "model_y")
    data = {"score": (dims + ("layer_x", "layer_y"), score)}
    for v, values in summary.items():
        if v.startswith("best_layer"):
            values = np.where(np.isnan(values), -1, values).astype(np.int32)
        data[v] = (dims, values)
    data["n_layers"] = (("model",), np.array([len(layer_names[n]) for n in names], dtype=np.int32))
    data["knn_ties"] = (("model",), np.array([ties.get(n, 0) for n in names], dtype=np.int32))
    modality = [m["modality"] for m in models]
    coords = {"metric": metrics, "model_x": names, "model_y": names, "model": names}
    coords |= {"modality_x": ("model_x", modality), "modality_y": ("model_y", modality)}
    coords |= {"layer_x": np.arange(max_layers), "layer_y": np.arange(max_layers)}
    ds = xr.Dataset(data, coords=coords, attrs=_aggregate_attrs(pairs[0].attrs, layer_names))
    ds["best_layer_x"].attrs["missing"] = -1
    ds["best_layer_y"].attrs["missing"] = -1
    return ds


# What every pair file of one run shares, carried over to the aggregate.
SHARED_ATTRS = ("metric_params", "quantile", "quantile_mode", "concat_layers", "normalize", "dataset_fingerprint",
                "n_samples", "permutations", "resamples", "level", "null_seed", "bootstrap_seed", "alpha")  # fmt: skip


def _aggregate_attrs(first: dict, layer_names: dict) -> dict:
    shared = {k: first[k] for k in SHARED_ATTRS}
    return shared | as_attrs({"layer_names": layer_names, "versions": package_versions(("numpy", "xarray"))})


def _layers_and_ties(pairs: list, names: list[str]) -> tuple[dict, dict]:
    """Each model's layer names and its most tied samples over layers, from the pair files that hold it."""
    layer_names, ties = {}, {}
    for pair in pairs:
        for side in ("x", "y"):
            layer_names[pair.attrs[f"model_{side}"]] = json.loads(pair.attrs[f"layer_names_{side}"])
            ties[pair.attrs[f"model_{side}"]] = max(json.loads(pair.attrs.get(f"knn_ties_{side}", "null")) or [0])
    missing = [n for n in names if n not in layer_names]
    if missing:
        raise ValueError(f"no pair file holds model(s) {missing}")
    return layer_names, ties


def _gathered(pairs: list, index: dict, metrics: list, max_layers: int) -> tuple[np.ndarray, dict]:
    """Every pair's scores and summaries at (x, y) and, from its reverse direction, at (y, x)."""
    n_models, n_metrics = len(index), len(metrics)
    score = np.full((n_metrics, n_models, n_models, max_layers, max_layers), np.nan)
    summary = {v: np.full((n_metrics, n_models, n_models), np.nan) for v in SUMMARY}
    for pair in pairs:
        if list(pair["metric"].values) != metrics:
            raise ValueError(f"pair files disagree on metrics: {metrics} vs {list(pair['metric'].values)}")
        i, j = index[pair.attrs["model_x"]], index[pair.attrs["model_y"]]
        lx, ly = pair.sizes["layer_x"], pair.sizes["layer_y"]
        forward, reverse = pair.sel(direction="forward"), pair.sel(direction="reverse")
        score[:, i, j, :lx, :ly] = forward["score"].values
        score[:, j, i, :ly, :lx] = np.swapaxes(reverse["score"].values, 1, 2)
        for v in summary:
            summary[v][:, i, j] = forward[v].values
            summary[v][:, j, i] = reverse[v].values
        # seen from (y, x), the layers swap roles
        summary["best_layer_x"][:, j, i] = reverse["best_layer_y"].values
        summary["best_layer_y"][:, j, i] = reverse["best_layer_x"].values
    return score, summary


def pair_q_values(p_values: np.ndarray, symmetric: Sequence[bool]) -> np.ndarray:
    """Benjamini–Hochberg q-values of (metric, model_x, model_y) p-values, per metric, over the tests of that
    metric: the upper triangle for a symmetric metric (its (y, x) entry is the same test), every off-diagonal
    entry for an asymmetric one. The q-value is written to both entries of a symmetric pair."""
    q = np.full(p_values.shape, np.nan)
    upper = np.triu(np.ones(p_values.shape[1:], dtype=bool), k=1)
    for m, sym in enumerate(symmetric):
        if sym:
            tested = np.where(upper, p_values[m], np.nan)
            q[m] = benjamini_hochberg(tested)
            q[m] = np.where(upper, q[m], q[m].T)
        else:
            q[m] = benjamini_hochberg(p_values[m])
    return q
