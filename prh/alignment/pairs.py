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
    null_distribution_permutations: int = 0,
    null_distribution_seed: int = 0,
    null_distribution_alpha: float = 0.05,
    bootstrap_resamples: int = 0,
    bootstrap_level: float = 0.95,
    bootstrap_seed: int = 0,
    device: str = "cpu",
    x_features: str | Path | None = None,
    y_features: str | Path | None = None,
) -> tuple[dict, dict, dict]:
    """Score every layer of one model against every layer of another with each metric, from the two models'
    state stores (``prh.alignment.states``): only cross terms are computed.

    Per metric and direction (``forward``: X against Y; ``reverse``: Y against X, which differs only for an
    asymmetric metric such as cycle_knn) the pair holds the (layer_x, layer_y) ``score``, the ``best`` score
    and its layers, and its calibration (``prh.metrics.calibration``, Algorithm 2 of Gröger et al. 2026): the
    max over layer pairs under each permutation of Y's samples; ``tau``, the critical value at level alpha;
    the add-one ``p_value``; ``calibrated = clamp((best - tau) / (1 - tau), 0, 1)``. ``null_mean``,
    ``null_std`` and the older ``calibrated_mean = (best - null_mean) / (1 - null_mean)`` are kept beside
    them, and ``null`` holds the draws. ``last`` is the score of the two last layers (the representation the
    probes read), with ``tau_last``, ``p_value_last`` and ``calibrated_last`` from the same permutations at that
    one layer pair (Algorithm 1). ``ci_low``/``ci_high``: the half-sample interval of the best score, the layer
    pair chosen again in each half-sample (``prh.metrics.resampling``).

    Parameters
    ----------
    x_state, y_state : str or Path
        The two models' state stores, computed on the same dataset.
    metrics : dict
        Metric name -> its parameters (``alignment.metrics``).
    null_distribution_permutations : int
        Permutations of the null; 0 for none.
    null_distribution_seed : int
        Seed of the permutations.
    null_distribution_alpha : float
        Level of the critical value tau.
    bootstrap_resamples : int
        Half-samples of the interval; 0 for none.
    bootstrap_level : float
        Coverage of the interval.
    bootstrap_seed : int
        Seed of the half-samples (the state jobs drew their neighbour lists as deep as these need).
    device : str
        Where the matrix products run (``auto``: a GPU when one is present).
    x_features, y_features : str or Path, optional
        The features stores: above the states' ``dense_limit`` there are no Gram matrices, and linear CKA and
        unbiased CKA are computed from feature-space statistics streamed from them.

    Returns
    -------
    tuple of dict
        ``(variables, coords, attrs)``: name -> (dims, array), dimension -> values, and the provenance; the
        parts of the pair's Dataset, which ``align_pair`` assembles with xarray and ``write_pair`` writes with
        scipy.
    """
    permutations, null_seed, alpha = null_distribution_permutations, null_distribution_seed, null_distribution_alpha
    resamples, level = bootstrap_resamples, bootstrap_level
    sx, sy, rx, ry, metrics = _open_pair(x_state, y_state, metrics, permutations, resamples, device)
    n, limit = rx["n_samples"], rx["dense_limit"]
    streamed = {}
    if n > limit and {"cka", "unbiased_cka"} & set(metrics):
        streamed = feature_space_cka(x_features, y_features, rx, ry)
    names = list(metrics)
    score = np.full((len(names), 2, len(sx), len(sy)), np.nan)
    summary = {v: np.full((len(names), 2), np.nan) for v in SUMMARY}
    null = np.full((len(names), 2, permutations), np.nan)
    perms = draw_permutations(n, permutations, null_seed) if permutations else None
    boot = half_sample_best(metrics, sx, sy, resamples, bootstrap_seed, True, limit) if resamples else {}
    for d, (a, b) in enumerate(((sx, sy), (sy, sx))):  # forward: X against Y; reverse: Y against X
        own = {n: p for n, p in metrics.items() if d == 0 or not get_metric(n).is_symmetric(p)}
        nulls = permutation_null(own, a, b, perms, True, limit) if permutations else {}
        for name, params in own.items():
            m = names.index(name)
            scores = streamed[name] if name in streamed else layer_scores(name, a, b, dense_limit=limit, **params)
            score[m, d] = scores if d == 0 else scores.T
            row = _best_and_last(scores, d)
            if permutations:
                null[m, d] = np.nanmax(nulls[name], axis=(1, 2))
                row |= _calibration(row["best"], row["last"], null[m, d], nulls[name][:, -1, -1], alpha)
            if resamples:
                values = boot[name] if d == 0 else boot[name, "reverse"]
                row["ci_low"], row["ci_high"] = half_sample_interval(row["best"], values, level)
            for v, value in row.items():
                summary[v][m, d] = value
    for m, name in enumerate(names):  # a symmetric metric reads the same both ways
        if get_metric(name).is_symmetric(metrics[name]):
            for values in (score, null, *summary.values()):
                values[m, 1] = values[m, 0]
    settings = {"permutations": permutations, "resamples": resamples, "level": level, "null_seed": null_seed,
                "alpha": alpha, "bootstrap_seed": bootstrap_seed, "device": sx.device}  # fmt: skip
    return (
        _pair_parts(score, summary, null, names, permutations),
        _pair_coords(names, score, permutations),
        as_attrs(_pair_provenance(rx, ry, metrics, settings)),
    )


def _open_pair(x_state, y_state, metrics: dict, permutations: int, resamples: int, device: str):
    """The two state stores, checked against each other and against what the metrics need."""
    sx, rx = open_state(x_state, device)
    sy, ry = open_state(y_state, device)
    _check_same_dataset(x_state, y_state, rx, ry)
    metrics = {name: resolve_params(name, params) for name, params in metrics.items()}
    for path, attrs in ((x_state, rx), (y_state, ry)):
        _check_parts(path, attrs, metrics)
    check_dense_metrics(metrics, rx["n_samples"], rx["dense_limit"], permutations, resamples, where=f"{x_state}: ")
    return sx, sy, rx, ry, metrics


def _best_and_last(scores: np.ndarray, direction: int) -> dict:
    """The best score with its layers (named from X's side in both directions), and the two last layers'."""
    best, bx, by = best_of(scores)
    layers = (bx, by) if direction == 0 else (by, bx)
    return {"best": best, "best_layer_x": layers[0], "best_layer_y": layers[1], "last": scores[-1, -1]}


def _calibration(best: float, last: float, draws: np.ndarray, last_draws: np.ndarray, alpha: float) -> dict:
    """Algorithm 2 on the best score over layer pairs (and the older mean-based calibration beside it), and
    Algorithm 1 on the two last layers, from the same permutations."""
    calibrated, at_last = calibrate(best, draws, alpha), calibrate(last, last_draws, alpha)
    return {
        "null_mean": draws.mean(),
        "null_std": draws.std(ddof=1) if len(draws) > 1 else 0.0,
        "calibrated_mean": (best - draws.mean()) / (1 - draws.mean()),
        "tau": calibrated.tau,
        "p_value": calibrated.p_value,
        "calibrated": calibrated.calibrated,
        "tau_last": at_last.tau,
        "p_value_last": at_last.p_value,
        "calibrated_last": at_last.calibrated,
    }


def _pair_parts(score, summary: dict, null, names: list[str], permutations: int) -> dict:
    data = {"score": (("metric", "direction", "layer_x", "layer_y"), score)}
    data |= {v: (("metric", "direction"), summary[v]) for v in SUMMARY}
    if permutations:  # (netCDF-3 has no empty fixed dimensions)
        data["null"] = (("metric", "direction", "permutation"), null)
    for v in ("best_layer_x", "best_layer_y"):
        data[v] = (("metric", "direction"), summary[v].astype(np.int32))
    return data


def _pair_coords(names: list[str], score: np.ndarray, permutations: int) -> dict:
    coords = {"metric": names, "direction": list(DIRECTIONS)}
    coords |= {"layer_x": np.arange(score.shape[2]), "layer_y": np.arange(score.shape[3])}
    if permutations:
        coords["permutation"] = np.arange(permutations)
    return coords


def _pair_provenance(rx: dict, ry: dict, metrics: dict, settings: dict) -> dict:
    return {
        "model_x": rx["model"],
        "model_y": ry["model"],
        "modality_x": rx["modality"],
        "modality_y": ry["modality"],
        "layer_names_x": rx["layer_names"],
        "layer_names_y": ry["layer_names"],
        "knn_ties_x": rx.get("knn_ties"),  # per layer, samples whose k-th neighbour is tied
        "knn_ties_y": ry.get("knn_ties"),
        "dataset_fingerprint": rx["dataset_fingerprint"],
        "n_samples": rx["n_samples"],
        "metric_params": metrics,
        **{key: rx[key] for key in ("quantile", "quantile_mode", "concat_layers", "normalize")},
        **settings,
        "versions": package_versions(("numpy", "scipy", "xarray", "zarr")),
    }


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
