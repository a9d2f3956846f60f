"""Alignment stage: layer × layer scores for one model pair, and their aggregation over all pairs.

The unit of work is one unordered model pair (names sorted), so adding a model costs only its new pairs.
Every metric here is symmetric; the aggregate fills (x, y) and, transposed, (y, x).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prh.features import read_layers, store_reader
from prh.metrics import (
    best_of,
    get_metric,
    half_sample_best,
    half_sample_interval,
    layer_scores,
    permutation_null,
    prepare_stack,
    resolve_params,
)
from prh.metrics.calibration import benjamini_hochberg, calibrate, draw_permutations
from prh.metrics.definitions import cosine_similarity
from prh.metrics.streaming import cka_from_readers
from prh.provenance import as_attrs, package_versions
from prh.states import check_dense_metrics, open_state, state_parts

DIRECTIONS = ("forward", "reverse")
INDEX_COORDS = ("layer_x", "layer_y", "permutation")
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
    (name -> parameters), from the two models' state stores (``prh.states``): only cross terms are computed.

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
    without importing xarray (``prh.netcdf``)."""
    from prh.netcdf import write_netcdf3

    data, coords, attrs = parts
    coords = {k: np.asarray(v, dtype=np.int32) if k in INDEX_COORDS else v for k, v in coords.items()}
    write_netcdf3(path, data, coords, attrs | as_attrs(provenance or {}))


def write_netcdf(ds, path: str | Path, provenance: dict | None = None) -> None:
    """Write ``ds`` as netCDF (scipy backend: no extra dependency, byte-stable output), atomically, with
    ``provenance`` (``prh.provenance.run_provenance``) among its attributes."""
    from prh.provenance import as_attrs
    from prh.workflow import atomic_path

    if provenance:
        ds = ds.assign_attrs(as_attrs(provenance))
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="scipy")


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
    layer_names, ties = {}, {}
    for pair in pairs:
        for side in ("x", "y"):
            layer_names[pair.attrs[f"model_{side}"]] = json.loads(pair.attrs[f"layer_names_{side}"])
            ties[pair.attrs[f"model_{side}"]] = max(json.loads(pair.attrs.get(f"knn_ties_{side}", "null")) or [0])
    missing = [n for n in names if n not in layer_names]
    if missing:
        raise ValueError(f"no pair file holds model(s) {missing}")
    n_models, n_metrics = len(names), len(metrics)
    max_layers = max(len(v) for v in layer_names.values())
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
    first = pairs[0].attrs
    ds = xr.Dataset(
        data,
        coords={
            "metric": metrics,
            "model_x": names,
            "model_y": names,
            "model": names,
            "modality_x": ("model_x", modality),
            "modality_y": ("model_y", modality),
            "layer_x": np.arange(max_layers),
            "layer_y": np.arange(max_layers),
        },
        attrs={
            **{
                k: first[k]
                for k in (
                    "metric_params",
                    "quantile",
                    "quantile_mode",
                    "concat_layers",
                    "normalize",
                    "dataset_fingerprint",
                    "n_samples",
                )
            },
            **{k: first[k] for k in ("permutations", "resamples", "level", "null_seed", "bootstrap_seed")},
            "alpha": first["alpha"],
            **as_attrs({"layer_names": layer_names, "versions": package_versions(("numpy", "xarray"))}),
        },
    )
    ds["best_layer_x"].attrs["missing"] = -1
    ds["best_layer_y"].attrs["missing"] = -1
    return ds


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


def _ranked_layers(layers: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per prepared layer: ranks (N, N) (rank[i, j] = place of j in i's neighbour list, 0 first, ties to the
    lower index, i itself last) and the row-centred kernel K̄ (eq. 12)."""
    out = []
    n = layers[0].shape[0]
    dtype = np.int16 if n <= np.iinfo(np.int16).max else np.int32
    for a in layers:
        similarity = cosine_similarity(a)
        np.fill_diagonal(similarity, -np.inf)
        order = np.argsort(-similarity, axis=1, kind="stable")
        ranks = np.empty((n, n), dtype=dtype)
        np.put_along_axis(ranks, order, np.arange(n, dtype=dtype)[None, :], axis=1)
        gram = a @ a.T
        out.append((ranks, gram - gram.mean(axis=1, keepdims=True)))
    return out


def _cumulative(ranks: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """sum of ``weights`` over entries of rank < k, for k = 1 .. N - 1 (index k - 1)."""
    return np.cumsum(np.bincount(ranks.ravel(), weights.ravel(), minlength=n))[: n - 1]


def cknna_versus_k(
    store_paths: Sequence[str | Path], models: Sequence[dict], ks: Sequence[int], quantile: float, quantile_mode: str
):
    """Best CKNNA (paper variant) over layer pairs of every (vision, language) model pair for each k in
    ``ks`` below N - 1, and for N - 1 (App. A, Fig. 10: small k emphasises local alignment; k near N approaches
    a CKA-like global score). ``store_paths`` follow ``models``. Returns ``cknna`` (k, vision, language).

    Every k at once: j is a mutual neighbour of i at size k when max(rank_x[i, j], rank_y[i, j]) < k, so one
    weighted histogram of that maximum, summed cumulatively, gives CKNNA's numerator for all k."""
    import xarray as xr

    paths = dict(zip([m["name"] for m in models], store_paths))
    vision = [m["name"] for m in models if m["modality"] == "vision"]
    language = [m["name"] for m in models if m["modality"] == "language"]

    def ranked(name):
        return _ranked_layers(prepare_stack(read_layers(paths[name]), quantile, quantile_mode))

    language_layers = {name: ranked(name) for name in language}
    n = next(iter(language_layers.values()))[0][0].shape[0] if language else 0
    ks = sorted({int(k) for k in ks if k < n - 1} | {n - 1}) if language else []
    scores = np.full((len(ks), len(vision), len(language)), np.nan)
    take = np.asarray(ks, dtype=int) - 1
    for i, v in enumerate(vision):
        vision_layers = ranked(v)  # one vision model in memory at a time
        self_v = [_cumulative(r, c * c, n)[take] for r, c in vision_layers]
        for j, lang in enumerate(language):
            self_l = [_cumulative(r, c * c, n)[take] for r, c in language_layers[lang]]
            best = np.full(len(ks), -np.inf)
            for (rv, cv), sv in zip(vision_layers, self_v):
                for (rl, cl), sl in zip(language_layers[lang], self_l):
                    cross = _cumulative(np.maximum(rv, rl), cv * cl, n)[take]
                    best = np.fmax(best, cross / np.sqrt(sv * sl))
            scores[:, i, j] = best
    from prh.features import store_attrs

    parameters = [int(store_attrs(paths[v]).get("model_parameters", -1)) for v in vision]
    return xr.Dataset(
        {"cknna": (("k", "vision", "language"), scores), "parameters": (("vision",), np.asarray(parameters))},
        coords={"k": np.asarray(ks, dtype=np.int32), "vision": vision, "language": language},
        attrs=as_attrs({"quantile": quantile, "quantile_mode": quantile_mode, "variant": "paper"}),
    )


def metric_variants(
    store_paths: Sequence[str | Path],
    models: Sequence[str],
    metrics: dict[str, dict],
    ks: Sequence[int],
    sizes: Sequence[int],
    seed: int,
    quantile: float,
    quantile_mode: str,
):
    """Fig. 12's grid: every metric at every neighbourhood size of ``ks`` (metrics that take a k) and every
    sample size of ``sizes`` below N and N itself (the paper's bsz: a seeded subset, the same for every model),
    scored on the last layer of each pair of ``models`` (the representation of Fig. 2). Returns ``score``
    (variant, pair) with each variant's metric, k (0 where none) and size."""
    import xarray as xr

    from prh.metrics.layerwise import LayerStates

    last = {m: prepare_stack(read_layers(p)[-1:], quantile, quantile_mode) for m, p in zip(models, store_paths)}
    n = next(iter(last.values()))[0].shape[0]
    sizes = sorted({int(s) for s in sizes if s < n} | {n})  # a hub dataset's size is known only here
    rng = np.random.default_rng(seed)
    subsets = {size: np.sort(rng.choice(n, size, replace=False)) if size < n else np.arange(n) for size in sizes}
    variants = []
    for metric, params in metrics.items():
        for k in ks if "k" in resolve_params(metric, params) else [0]:
            variants += [(metric, params | ({"k": int(k)} if k else {}), int(k), size) for size in sizes]
    variants = [v for v in variants if v[2] < v[3] - 1]  # k below the sample size
    pairs = [(x, y) for i, x in enumerate(models) for y in models[i + 1 :]]
    scores = np.full((len(variants), len(pairs)), np.nan)
    for size, subset in subsets.items():
        states = {m: LayerStates([layers[0][subset]]) for m, layers in last.items()}
        for v, (metric, params, _, vsize) in enumerate(variants):
            if vsize == size:
                for p, (x, y) in enumerate(pairs):
                    scores[v, p] = layer_scores(metric, states[x], states[y], **params)[0, 0]
    return xr.Dataset(
        {"score": (("variant", "pair"), scores)},
        coords={
            "variant": [f"{m} k={k} bsz={s}" if k else f"{m} bsz={s}" for m, _, k, s in variants],
            "metric": ("variant", [m for m, *_ in variants]),
            "k": ("variant", np.asarray([k for _, _, k, _ in variants], dtype=np.int32)),
            "size": ("variant", np.asarray([s for *_, s in variants], dtype=np.int32)),
            "model_x": ("pair", [x for x, _ in pairs]),
            "model_y": ("pair", [y for _, y in pairs]),
        },
        attrs=as_attrs({"seed": seed, "quantile": quantile, "quantile_mode": quantile_mode, "layer": "last"}),
    )


def feature_space_cka(x_features, y_features, state_x: dict, state_y: dict, chunk: int = 4096) -> dict:
    """Streamed CKA and unbiased CKA between two feature stores, prepared as their state stores record."""
    if x_features is None or y_features is None:
        raise ValueError("streamed CKA above the dense limit needs both models' feature stores")
    read_x, lx, n = store_reader(x_features, state_x["threshold"], state_x["normalize"])
    read_y, ly, _ = store_reader(y_features, state_y["threshold"], state_y["normalize"])
    return cka_from_readers(read_x, lx, read_y, ly, n, chunk)
