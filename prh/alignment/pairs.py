"""Alignment of one model pair: layer × layer scores of every metric, with its null, interval and provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prh.alignment.aggregate import SUMMARY
from prh.alignment.states import check_dense_metrics, open_state, state_parts
from prh.io.features import layer_reader
from prh.io.provenance import as_attrs, package_versions
from prh.metrics import (
    best_of,
    get_metric,
    half_sample_best,
    half_sample_interval,
    layer_scores,
    permutation_null,
    resolve_params,
)
from prh.metrics.calibration import calibrate, draw_permutations
from prh.metrics.definitions import l2_normalize
from prh.metrics.streaming import cka_from_readers

DIRECTIONS = ("forward", "reverse")


INDEX_COORDS = ("layer_x", "layer_y", "permutation")


def _check_same_dataset(x_path, y_path, rx: dict, ry: dict) -> None:
    if rx["dataset_fingerprint"] != ry["dataset_fingerprint"] or rx["n_samples"] != ry["n_samples"]:
        raise ValueError(
            f"{x_path} and {y_path} were not computed on the same dataset "
            f"({rx['n_samples']} samples, {rx['dataset_fingerprint']} vs "
            f"{ry['n_samples']} samples, {ry['dataset_fingerprint']}); rerun the older one's jobs"
        )


def _check_parts(path, attrs: dict, metrics: dict) -> None:
    """The state store must hold what the metrics ask for (the same config made both)."""
    have, want = attrs["parts"], state_parts(metrics)
    short = [
        part
        for part in ("k", "dims")
        if want[part] and (have[part] < want[part] if part == "k" else have[part] != want[part])
    ]
    short += [part for part in ("values", "rsa", "bases") if want[part] and not have.get(part)]
    short += ["grams"] if want["grams"] and not have["grams"] and attrs["n_samples"] <= attrs["dense_limit"] else []
    if short:
        raise ValueError(
            f"{path}: state store lacks {short} for metrics {sorted(metrics)}; rerun its alignment_state job"
        )


def pair_scores(
    x_state: str | Path,
    y_state: str | Path,
    metrics: dict[str, dict],
    permutations: int = 0,
    resamples: int = 0,
    level: float = 0.95,
    null_seed: int = 0,
    alpha: float = 0.05,
    bootstrap_seed: int = 0,
    device: str = "cpu",
    x_features: str | Path | None = None,
    y_features: str | Path | None = None,
) -> tuple[dict, dict, dict]:
    """Score every layer of one model against every layer of another with each metric in ``metrics``
    (name -> parameters), from the two models' state stores (``prh.alignment.states``): only cross terms are computed.

    Per metric and direction (``forward``: X against Y; ``reverse``: Y against X, which differs only for an
    asymmetric metric such as cycle_knn) the Dataset holds the (layer_x, layer_y) scores, the best score and
    its layers, and its calibration (``prh.metrics.calibration``, Algorithm 2 of Gröger et al. 2026):
    ``permutations`` shuffles of Y's samples drawn from ``null_seed``, one per null draw for every layer, the
    max over layer pairs taken each time; ``tau``, the critical value at level ``alpha``; the add-one
    ``p_value``; ``calibrated = clamp((best - tau) / (1 - tau), 0, 1)``. ``null_mean``, ``null_std`` and the
    older mean-based ``calibrated_mean = (best - null_mean) / (1 - null_mean)`` are kept beside them, and
    ``null`` holds the draws. ``last`` is the score of the two last layers (the representation the probes read),
    with ``tau_last``, ``p_value_last`` and ``calibrated_last`` from the same permutations at that one layer pair
    (Algorithm 1). ``ci_low``/``ci_high``: a ``level`` half-sample interval of the best score
    (``resamples`` half-samples), the layer pair chosen again in each (``prh.metrics.resampling``).
    ``device``: where the matrix products run (``auto`` picks a GPU when one is present).

    Above the states' ``dense_limit`` there are no Gram matrices: linear CKA and unbiased CKA are then
    computed from feature-space statistics streamed from ``x_features`` and ``y_features``.

    Returns ``(variables, coords, attrs)`` (name -> (dims, array), dimension -> values, provenance), the parts
    of the pair's Dataset: ``align_pair`` assembles them with xarray, ``write_pair`` writes them with scipy.
    """
    sx, rx = open_state(x_state, device)
    sy, ry = open_state(y_state, device)
    _check_same_dataset(x_state, y_state, rx, ry)
    metrics = {name: resolve_params(name, params) for name, params in metrics.items()}
    for path, attrs in ((x_state, rx), (y_state, ry)):
        _check_parts(path, attrs, metrics)
    n = rx["n_samples"]
    check_dense_metrics(metrics, n, rx["dense_limit"], permutations, resamples, where=f"{x_state}: ")
    streamed = {}
    if n > rx["dense_limit"] and {"cka", "unbiased_cka"} & set(metrics):
        streamed = feature_space_cka(x_features, y_features, rx, ry)
    states = {"forward": (sx, sy), "reverse": (sy, sx)}
    names = list(metrics)
    lx, ly = len(sx), len(sy)
    score = np.full((len(names), 2, lx, ly), np.nan)
    summary = {v: np.full((len(names), 2), np.nan) for v in SUMMARY}
    null = np.full((len(names), 2, permutations), np.nan)
    perms = draw_permutations(n, permutations, null_seed) if permutations else None
    limit = rx["dense_limit"]
    boot = half_sample_best(metrics, sx, sy, resamples, bootstrap_seed, True, limit) if resamples else {}
    for d, direction in enumerate(DIRECTIONS):
        own = {n: p for n, p in metrics.items() if d == 0 or not get_metric(n).is_symmetric(p)}
        sx, sy = states[direction]
        nulls = permutation_null(own, sx, sy, perms, True, limit) if permutations else {}
        for name, params in own.items():
            m = names.index(name)
            scores = streamed[name] if name in streamed else layer_scores(name, sx, sy, dense_limit=limit, **params)
            score[m, d] = scores if d == 0 else scores.T
            best, bx, by = best_of(scores)
            summary["best"][m, d], summary["best_layer_x"][m, d], summary["best_layer_y"][m, d] = (
                (best, bx, by) if d == 0 else (best, by, bx)
            )
            summary["last"][m, d] = scores[-1, -1]
            if permutations:
                draws = np.nanmax(nulls[name], axis=(1, 2))
                null[m, d] = draws
                calibration = calibrate(best, draws, alpha)
                summary["null_mean"][m, d] = draws.mean()
                summary["null_std"][m, d] = draws.std(ddof=1) if permutations > 1 else 0.0
                summary["calibrated_mean"][m, d] = (best - draws.mean()) / (1 - draws.mean())
                summary["tau"][m, d] = calibration.tau
                summary["p_value"][m, d] = calibration.p_value
                summary["calibrated"][m, d] = calibration.calibrated
                last = calibrate(scores[-1, -1], nulls[name][:, -1, -1], alpha)  # Algorithm 1, one layer pair
                summary["tau_last"][m, d] = last.tau
                summary["p_value_last"][m, d] = last.p_value
                summary["calibrated_last"][m, d] = last.calibrated
            if resamples:
                values = boot[name] if d == 0 else boot[name, "reverse"]
                summary["ci_low"][m, d], summary["ci_high"][m, d] = half_sample_interval(
                    summary["best"][m, d], values, level
                )
    for m, name in enumerate(names):  # a symmetric metric reads the same both ways
        if get_metric(name).is_symmetric(metrics[name]):
            score[m, 1] = score[m, 0]
            null[m, 1] = null[m, 0]
            for v in SUMMARY:
                summary[v][m, 1] = summary[v][m, 0]
    data = {"score": (("metric", "direction", "layer_x", "layer_y"), score)}
    data |= {v: (("metric", "direction"), summary[v]) for v in SUMMARY}
    if permutations:  # (netCDF-3 has no empty fixed dimensions)
        data["null"] = (("metric", "direction", "permutation"), null)
    for v in ("best_layer_x", "best_layer_y"):
        data[v] = (("metric", "direction"), summary[v].astype(np.int32))
    provenance = {
        "model_x": rx["model"],
        "model_y": ry["model"],
        "modality_x": rx["modality"],
        "modality_y": ry["modality"],
        "layer_names_x": rx["layer_names"],
        "layer_names_y": ry["layer_names"],
        "knn_ties_x": rx.get("knn_ties"),  # per layer, samples whose k-th neighbour is tied
        "knn_ties_y": ry.get("knn_ties"),
        "dataset_fingerprint": rx["dataset_fingerprint"],
        "n_samples": n,
        "metric_params": metrics,
        **{key: rx[key] for key in ("quantile", "quantile_mode", "concat_layers", "normalize")},
        "permutations": permutations,
        "resamples": resamples,
        "level": level,
        "null_seed": null_seed,
        "alpha": alpha,
        "bootstrap_seed": bootstrap_seed,
        "device": sx.device,
        "versions": package_versions(("numpy", "scipy", "xarray", "zarr")),
    }
    coords = {"metric": names, "direction": list(DIRECTIONS), "layer_x": np.arange(lx), "layer_y": np.arange(ly)}
    if permutations:
        coords["permutation"] = np.arange(permutations)
    return data, coords, as_attrs(provenance)


def align_pair(*args, **kwargs):
    """``pair_scores`` as one ``xarray.Dataset``: select with ``pair.sel(metric=..., direction="forward")``."""
    import xarray as xr

    data, coords, attrs = pair_scores(*args, **kwargs)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def write_pair(parts: tuple[dict, dict, dict], path: str | Path, provenance: dict | None = None) -> None:
    """Write the ``pair_scores`` of one pair as the netCDF file ``align_pair(...).to_netcdf`` would hold,
    without importing xarray (``prh.io.netcdf``)."""
    from prh.io.netcdf import write_netcdf3

    data, coords, attrs = parts
    coords = {k: np.asarray(v, dtype=np.int32) if k in INDEX_COORDS else v for k, v in coords.items()}
    write_netcdf3(path, data, coords, attrs | as_attrs(provenance or {}))


def feature_space_cka(x_features, y_features, state_x: dict, state_y: dict, chunk: int = 4096) -> dict:
    """Streamed CKA and unbiased CKA between two feature stores, prepared as their state stores record."""
    if x_features is None or y_features is None:
        raise ValueError("streamed CKA above the dense limit needs both models' feature stores")
    read_x, lx, n = store_reader(x_features, state_x["threshold"], state_x["normalize"])
    read_y, ly, _ = store_reader(y_features, state_y["threshold"], state_y["normalize"])
    return cka_from_readers(read_x, lx, read_y, ly, n, chunk)


def store_reader(features_path, threshold, normalize: bool) -> tuple:
    """A reader over a features store that applies the pipeline's preparation (clamp at ``threshold``, one
    number or one per layer, then l2 normalisation) chunk by chunk; returns (reader, layers, samples). A
    reader ``(layer, start, stop) -> rows`` is what ``prh.metrics.streaming`` consumes."""
    read_rows, widths, n = layer_reader(features_path)

    def read(i: int, start: int, stop: int) -> np.ndarray:
        rows = read_rows(i, start, stop).astype(np.float64)
        t = threshold[i] if isinstance(threshold, list) else threshold
        if t is not None:
            rows = np.clip(rows, -t, t)
        return l2_normalize(rows) if normalize else rows

    return read, len(widths), n
