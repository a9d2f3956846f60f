"""Alignment stage: layer × layer scores for one model pair, and their aggregation over all pairs.

The unit of work is one unordered model pair (names sorted), so adding a model costs only its new pairs.
Every metric here is symmetric; the aggregate fills (x, y) and, transposed, (y, x).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from prh.features import open_features, read_layers
from prh.metrics import get_metric, layer_scores, prepare_stack
from prh.provenance import as_attrs, package_versions


def _store_record(path: str | Path) -> dict:
    ds = open_features(path)
    return {
        "model": ds.attrs["model"],
        "modality": ds.attrs["modality"],
        "dataset_fingerprint": ds.attrs["dataset_fingerprint"],
        "layer_names": json.loads(ds.attrs["layer_names"]),
        "n_samples": ds.sizes["sample"],
    }


def align_pair(x_path: str | Path, y_path: str | Path, metrics: dict[str, dict], quantile: float) -> xr.Dataset:
    """Score every layer of the store ``x_path`` against every layer of ``y_path`` with each metric in
    ``metrics`` (name -> parameters), after the paper's preprocessing (``prepare_stack``)."""
    rx, ry = _store_record(x_path), _store_record(y_path)
    if rx["dataset_fingerprint"] != ry["dataset_fingerprint"] or rx["n_samples"] != ry["n_samples"]:
        raise ValueError(
            f"{x_path} and {y_path} were not computed on the same dataset "
            f"({rx['n_samples']} samples, {rx['dataset_fingerprint']} vs "
            f"{ry['n_samples']} samples, {ry['dataset_fingerprint']}); rerun the embedding of the older one"
        )
    Xs = prepare_stack(read_layers(x_path), quantile)
    Ys = prepare_stack(read_layers(y_path), quantile)
    data = {}
    for name, params in metrics.items():
        full_params = get_metric(name).defaults | params
        scores = layer_scores(name, Xs, Ys, **full_params)
        data[name] = xr.DataArray(scores, dims=("layer_x", "layer_y"), attrs=as_attrs({"params": full_params}))
    provenance = {
        "model_x": rx["model"],
        "model_y": ry["model"],
        "modality_x": rx["modality"],
        "modality_y": ry["modality"],
        "layer_names_x": rx["layer_names"],
        "layer_names_y": ry["layer_names"],
        "dataset_fingerprint": rx["dataset_fingerprint"],
        "n_samples": rx["n_samples"],
        "quantile": quantile,
        "versions": package_versions(("numpy", "xarray", "zarr")),
    }
    coords = {"layer_x": np.arange(len(Xs)), "layer_y": np.arange(len(Ys))}
    return xr.Dataset(data, coords=coords, attrs=as_attrs(provenance))


def write_netcdf(ds: xr.Dataset, path: str | Path) -> None:
    """Write ``ds`` as netCDF (scipy backend: no extra dependency, byte-stable output)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, engine="scipy")


def aggregate(pair_paths: Sequence[str | Path], models: Sequence[dict], metric: str) -> xr.Dataset:
    """Combine pair files into one Dataset over ``models`` (config entries, in config order):

    * ``score`` (model_x, model_y, layer_x, layer_y), NaN-padded past each model's last layer and on the
      diagonal (a model is not paired with itself);
    * ``best`` (model_x, model_y): the best score over layer pairs, the paper's cross-modal summary (App. C.2);
    * ``best_layer_x``, ``best_layer_y``: where it is reached (-1 where there is no score).
    """
    names = [m["name"] for m in models]
    index = {name: i for i, name in enumerate(names)}
    pairs = [xr.open_dataset(p, engine="scipy").load() for p in pair_paths]
    n_layers = {}
    layer_names = {}
    for pair in pairs:
        for side in ("x", "y"):
            model = pair.attrs[f"model_{side}"]
            n_layers[model] = pair.sizes[f"layer_{side}"]
            layer_names[model] = json.loads(pair.attrs[f"layer_names_{side}"])
    missing = [n for n in names if n not in n_layers]
    if len(names) > 1 and missing:
        raise ValueError(f"no pair file holds model(s) {missing}")
    max_layers = max(n_layers.values(), default=0)
    score = np.full((len(names), len(names), max_layers, max_layers), np.nan)
    for pair in pairs:
        mx, my = pair.attrs["model_x"], pair.attrs["model_y"]
        if mx not in index or my not in index:
            continue
        values = pair[metric].values
        i, j = index[mx], index[my]
        score[i, j, : values.shape[0], : values.shape[1]] = values
        score[j, i, : values.shape[1], : values.shape[0]] = values.T
    flat = score.reshape(len(names), len(names), -1)
    argbest = np.where(np.isnan(flat), -np.inf, flat).argmax(axis=-1)
    best = np.take_along_axis(flat, argbest[..., None], axis=-1)[..., 0]  # NaN where nothing was scored
    has_score = ~np.isnan(best)
    best_x = np.where(has_score, argbest // max(max_layers, 1), -1).astype(np.int32)
    best_y = np.where(has_score, argbest % max(max_layers, 1), -1).astype(np.int32)
    modality = [m["modality"] for m in models]
    params = json.loads(pairs[0][metric].attrs["params"]) if pairs else get_metric(metric).defaults
    ds = xr.Dataset(
        {
            "score": (("model_x", "model_y", "layer_x", "layer_y"), score),
            "best": (("model_x", "model_y"), best),
            "best_layer_x": (("model_x", "model_y"), best_x),
            "best_layer_y": (("model_x", "model_y"), best_y),
            "n_layers": (("model",), np.array([n_layers.get(n, 0) for n in names], dtype=np.int32)),
        },
        coords={
            "model_x": names,
            "model_y": names,
            "model": names,
            "modality_x": ("model_x", modality),
            "modality_y": ("model_y", modality),
            "layer_x": np.arange(max_layers),
            "layer_y": np.arange(max_layers),
        },
        attrs=as_attrs(
            {
                "metric": metric,
                "params": params,
                "layer_names": {n: layer_names.get(n, []) for n in names},
                "dataset_fingerprint": pairs[0].attrs["dataset_fingerprint"] if pairs else "",
                "quantile": float(pairs[0].attrs["quantile"]) if pairs else float("nan"),
                "versions": package_versions(("numpy", "xarray")),
            }
        ),
    )
    ds["best_layer_x"].attrs["missing"] = -1
    ds["best_layer_y"].attrs["missing"] = -1
    return ds
