"""Per-model alignment states: what every metric needs from one model alone, computed once per
(dataset, model) and stored, so a pair job computes only the cross terms, the null and the interval.

A state store (``results/states/{dataset}/{model}.zarr``) holds, for the model's prepared layer stack
(clamped at the quantile, l2-normalised, App. C.2):

    knn         (layer, sample, neighbour)  int32    neighbour lists up to the largest k of the metrics (deeper
                                                 for the bootstrap, and past any tie group at the k-th place)
    knn_starts  (layer, sample, neighbour)  int32    where each place's tie group starts (only with ties);
                                                 attrs ``knn_ties``: per layer, the samples whose k-th
                                                 neighbour ties with another sample
    knn_values  (layer, sample, neighbour)  float64  the row-centred kernel K̄ (eq. 12) at those neighbours
    gram        (layer, sample, sample_b)   float32  linear Gram matrices (dense metrics only), with their
                                                 float64 invariants centred_norm and unbiased_self (layer,)
    svd         (layer, sample, direction)  float64  SVCCA's directions
    half_svd    (resample, layer, half_sample, direction)  float32  SVCCA's directions on each of the run's
                                                 half-samples (``half_samples`` (resample, half_sample))
    rsa_ranks   (layer, sample, sample_b)   float32  RSA's standardised ranks of the cosine similarities
    basis_*     u (layer, sample, rank), s (layer, rank), v (layer, feature, rank), rank and width (layer,):
                                                 the thin SVD of each centred layer (Procrustes, CCA, PWCCA),
                                                 zero-padded
    attrs       threshold (the clamp), layer_names, model, dataset fingerprint, parameters, provenance

Only the parts the configured metrics use are computed. Grams are stored in float32: CKA and unbiased CKA
computed from them differ from the float64 values by about 1e-9 (tested to stay below 1e-6).

Up to ``dense_limit`` samples the states are computed on the whole stack in memory (the reference path).
Above it, layers are read one at a time, the clamp's quantile is found exactly in two streaming passes,
neighbours come from the blocked exact search (or faiss), and no N × N matrix is formed; metrics that need
one are refused (``check_dense_metrics``).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from prh.io.features import layer_reader, read_layers, store_attrs, store_dtype
from prh.io.provenance import as_attrs, package_versions
from prh.metrics import definitions as d
from prh.metrics import neighbours
from prh.metrics.dense import DenseLimitError, check_dense_metrics  # noqa: F401 (both part of this module's API)
from prh.metrics.layerwise import LayerStates, resolve_params
from prh.metrics.resampling import covering_depth, covers, deeper, half_sample_counts

NEIGHBOUR_METRICS = ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna")
BASIS_METRICS = ("procrustes", "cca", "pwcca")  # the thin SVD of each layer's centred features


def state_parts(metrics: dict[str, dict]) -> dict:
    """What the metrics need from each model: ``k`` (longest neighbour list, 0 for none), ``values``
    (CKNNA's kernel at the neighbours), ``grams`` and ``dims`` (SVCCA, 0 for none). The lists' depth for the
    bootstrap is set when they are computed (``compute_state``)."""
    metrics = {name: resolve_params(name, params) for name, params in metrics.items()}
    ks = [p["k"] for name, p in metrics.items() if name in NEIGHBOUR_METRICS]
    return {
        "k": max(ks, default=0),
        "values": "cknna" in metrics and metrics["cknna"]["variant"] == "paper",
        "grams": any(n in metrics for n in ("cka", "unbiased_cka", "rv_coefficient", "rsa"))
        or ("cknna" in metrics and metrics["cknna"]["variant"] == "authors"),
        "dims": metrics["svcca"]["dims"] if "svcca" in metrics else 0,
        "rsa": "rsa" in metrics,
        "bases": any(n in metrics for n in BASIS_METRICS),
    }


# --- the clamp's threshold, streamed -------------------------------------------------------------------


def _order_statistics(layers, ranks: list[int]) -> list[float]:
    """The values of |x| at the given 0-based ranks over every element of ``layers`` (an iterable factory of
    float32 arrays), exactly, in two passes: the bit pattern of a non-negative float32 orders it like its
    value, so a histogram of the high 16 bits finds each rank's bin and one of the low 16 bits its value."""
    high = np.zeros(1 << 16, dtype=np.int64)
    for layer in layers():
        high += np.bincount((np.abs(layer).view(np.uint32) >> 16).ravel(), minlength=1 << 16)
    starts = np.concatenate([[0], np.cumsum(high)])
    bins = [int(np.searchsorted(starts, r, side="right") - 1) for r in ranks]
    low = {b: np.zeros(1 << 16, dtype=np.int64) for b in set(bins)}
    for layer in layers():
        bits = np.abs(layer).view(np.uint32).ravel()
        for b, counts in low.items():
            inside = bits[(bits >> 16) == b]
            counts += np.bincount(inside & 0xFFFF, minlength=1 << 16)
    values = []
    for r, b in zip(ranks, bins):
        position = int(np.searchsorted(np.cumsum(low[b]), r - starts[b], side="right"))
        values.append(float(np.array([(b << 16) | position], dtype=np.uint32).view(np.float32)[0]))
    return values


def streamed_quantile(layers, q: float) -> float:
    """``np.quantile(|x|, q)`` (linear interpolation) over all elements of the float32 arrays that
    ``layers()`` yields, without holding them at once."""
    count = sum(layer.size for layer in layers())
    h = (count - 1) * q
    lo = math.floor(h)
    a, b = _order_statistics(layers, [lo, min(lo + 1, count - 1)])
    a, b, t = np.float64(a), np.float64(b), np.float64(h - lo)
    return float(b - (b - a) * (1 - t)) if t >= 0.5 else float(a + (b - a) * t)


# --- computing and storing states ---------------------------------------------------------------------


def _layer_reader(features_path: str | Path):
    read, widths, _ = layer_reader(features_path)
    return read, len(widths)


def compute_state(
    features_path: str | Path,
    metrics: dict[str, dict],
    *,
    quantile: float = 0.95,
    quantile_mode: str = "global",
    concat_layers: bool = False,
    normalize: bool = True,
    dense_limit: int = 8192,
    knn_method: str = "exact",
    knn_block: int = 1024,
    device: str = "cpu",
    bootstrap_resamples: int = 0,
    bootstrap_seed: int = 0,
) -> tuple:
    """The states of one model's store for ``metrics``; returns the ``xarray.Dataset`` to store and, for the
    approximate search, its measured recall. With ``bootstrap_resamples`` (drawn from ``bootstrap_seed``, as
    the pair jobs draw them) the neighbour lists reach as deep as every resample's k-NN lists need
    (``prh.metrics.resampling``)."""
    import xarray as xr

    parts = state_parts(metrics)
    store = store_attrs(features_path)
    n = store["n_samples"]
    resamples = bootstrap_resamples
    counts = half_sample_counts(n, resamples, bootstrap_seed) if resamples else None
    layer_names = json.loads(store["layer_names"]) + (["concat"] if concat_layers else [])
    if n <= dense_limit:
        data, threshold, info = _dense_states(
            features_path, parts, quantile, quantile_mode, concat_layers, normalize, device, counts
        )
    else:
        check_dense_metrics(metrics, n, dense_limit, where=f"{features_path}: ")
        if concat_layers:
            raise DenseLimitError(
                f"{features_path}: concat_layers holds every layer at once; it is not available above "
                f"alignment.dense_limit = {dense_limit} samples (N = {n})"
            )
        data, threshold, info = _streamed_states(
            features_path, parts, quantile, quantile_mode, normalize, knn_method, knn_block, counts
        )
    ds = xr.Dataset({name: (STATE_DIMS[name], values) for name, values in data.items()})
    record = {
        "model": store["model"],
        "modality": store["modality"],
        "dataset_fingerprint": store["dataset_fingerprint"],
        "layer_names": layer_names,
        "n_samples": n,
        "n_layers": len(layer_names),
        "threshold": threshold,
        "parts": parts,
        "bootstrap": {"resamples": resamples, "seed": bootstrap_seed},
        "metric_params": {name: resolve_params(name, p) for name, p in metrics.items()},
        "quantile": quantile,
        "quantile_mode": quantile_mode,
        "concat_layers": concat_layers,
        "normalize": normalize,
        "knn_method": knn_method,
        "dense_limit": dense_limit,
        **info,
        "versions": package_versions(("numpy", "scipy", "numba", "xarray", "zarr")),
    }
    ds.attrs.update(as_attrs(record))
    return ds, info


# The dimensions of each array a state store can hold.
STATE_DIMS = {
    "knn": ("layer", "sample", "neighbour"),
    "knn_starts": ("layer", "sample", "neighbour"),
    "knn_values": ("layer", "sample", "neighbour"),
    "gram": ("layer", "sample", "sample_b"),
    "svd": ("layer", "sample", "direction"),
    "half_samples": ("resample", "half_sample"),
    "half_svd": ("resample", "layer", "half_sample", "direction"),
    "centred_norm": ("layer",),
    "unbiased_self": ("layer",),
    "rsa_ranks": ("layer", "sample", "sample_b"),
    "basis_u": ("layer", "sample", "rank"),
    "basis_s": ("layer", "rank"),
    "basis_v": ("layer", "feature", "rank"),
    "basis_rank": ("layer",),
    "basis_width": ("layer",),
}


def _dense_states(features_path, parts: dict, quantile, quantile_mode, concat_layers, normalize, device, counts):
    """The states of a store of at most ``dense_limit`` samples, from all its layers in memory; returns
    (arrays, clamp threshold, facts for the record)."""
    raw = read_layers(features_path)
    threshold = _threshold_of(raw, quantile, quantile_mode)
    layers = d.prepare_stack(raw, quantile, quantile_mode, concat_layers, normalize)
    states = LayerStates(layers, device, precision=store_dtype(features_path))  # SVD ranks cut there
    data, info = {}, {}
    if parts["k"]:
        depth = parts["k"] if counts is None else covering_depth(states, parts["k"], counts)
        data |= _neighbour_arrays(states, depth, parts)
        info["knn_ties"] = states.tie_counts(parts["k"]).tolist()
    if parts["grams"]:
        data["gram"] = states.grams().astype(np.float32)
        # invariants under permutation, computed in float64 once here instead of in every pair job
        data["centred_norm"] = states.centred_norms()
        data["unbiased_self"] = states.unbiased_self()
    if parts["dims"]:
        data["svd"] = states.svd(parts["dims"])
        if counts is not None:
            data |= _half_svd(counts, lambda sample: states.svd_on(parts["dims"], sample))
    if parts["rsa"]:
        data["rsa_ranks"] = states.rsa_ranks().astype(np.float32)
    if parts["bases"]:
        data |= _padded_bases(states.bases(), len(layers[0]))
    return data, threshold, info


def _neighbour_arrays(states: LayerStates, depth: int, parts: dict) -> dict[str, np.ndarray]:
    """The lists (``knn``), their tie groups where there are any (``knn_starts``) and CKNNA's kernel at them."""
    lists, starts = states.neighbours(depth)
    data = {"knn": lists.astype(np.int32)}
    if neighbours.has_ties(starts):
        data["knn_starts"] = starts.astype(np.int32)
    if parts["values"]:
        data["knn_values"] = states.knn_values(depth)
    return data


def _half_svd(counts: np.ndarray, directions) -> dict[str, np.ndarray]:
    """SVCCA's directions on each half-sample, ``directions(sample)`` (L, m, dims), computed once per model
    here so that no pair job repeats them: ``half_samples`` (R, m) and ``half_svd`` (R, L, m, dims)."""
    samples = np.stack([np.flatnonzero(w) for w in counts])
    return {
        "half_samples": samples.astype(np.int32),
        "half_svd": np.stack([directions(s) for s in samples]).astype(np.float32),
    }


def _padded_bases(bases: list, n: int) -> dict[str, np.ndarray]:
    """The per-layer thin SVDs (U, σ, V) as zero-padded arrays, with each layer's rank and width."""
    rank = max(len(s) for _, s, _ in bases)
    width = max(v.shape[0] for _, _, v in bases)
    u = np.zeros((len(bases), n, rank))
    sigma = np.zeros((len(bases), rank))
    v = np.zeros((len(bases), width, rank))
    for layer, (ul, sl, vl) in enumerate(bases):
        u[layer, :, : len(sl)], sigma[layer, : len(sl)], v[layer, : vl.shape[0], : len(sl)] = ul, sl, vl
    ranks = np.array([len(s) for _, s, _ in bases], dtype=np.int32)
    widths = np.array([b[2].shape[0] for b in bases], dtype=np.int32)
    return {"basis_u": u, "basis_s": sigma, "basis_v": v, "basis_rank": ranks, "basis_width": widths}


def _unpadded_bases(values: dict) -> list | None:
    if "basis_u" not in values:
        return None
    return [
        (values["basis_u"][i, :, :r], values["basis_s"][i, :r], values["basis_v"][i, :w, :r])
        for i, (r, w) in enumerate(zip(values["basis_rank"], values["basis_width"]))
    ]


def _threshold_of(layers: list[np.ndarray], q: float, mode: str):
    """The clamp's threshold(s), for the record: one number (global) or one per layer."""
    if q >= 1.0:
        return None
    if mode == "global":
        return float(np.quantile(np.abs(np.concatenate([a.ravel() for a in layers])), q))
    return [float(np.quantile(np.abs(a), q)) for a in layers]


def _streamed_states(features_path, parts, q, mode, normalize, knn_method, block, counts=None):
    """States one layer at a time, memory O(N · D + block · N); no Grams (linear CKA streams in the pair).
    With bootstrap ``counts`` the lists are searched deeper (4k, doubled) until they cover every resample."""
    read, count = _layer_reader(features_path)
    precision = store_dtype(features_path)  # SVD ranks are cut at the stored precision
    if q >= 1.0:
        thresholds = [None] * count
    elif mode == "global":
        thresholds = [streamed_quantile(lambda: (read(i) for i in range(count)), q)] * count
    else:
        thresholds = [streamed_quantile(lambda i=i: iter([read(i)]), q) for i in range(count)]

    def prepared(i):
        layer = read(i).astype(np.float64)
        if thresholds[i] is not None:
            layer = np.clip(layer, -thresholds[i], thresholds[i])
        return d.l2_normalize(layer) if normalize else layer

    def neighbour_states(layer, depth):
        knn, starts, depth = _covering_search(layer, parts["k"], depth, counts, knn_method, block)
        values = None
        if parts["values"]:  # K̄_ij = x_i·x_j − x_i·mean(x): no Gram matrix needed
            values = np.einsum("nd,nkd->nk", layer, layer[knn]) - (layer @ layer.mean(axis=0))[:, None]
            values[knn < 0] = 0.0  # past a row's tie group
        return knn, starts, values, depth

    data: dict[str, list] = {"knn": [], "knn_starts": [], "knn_values": [], "svd": []}
    recalls, bases, half_svd, ties, depths = [], [], [], [], []
    depth = parts["k"]  # the deepest list so far: every later layer is searched at least this deep
    for i in range(count):
        layer = prepared(i)
        if parts["k"]:
            knn, starts, values, depth = neighbour_states(layer, depth)
            depths.append(depth)
            if knn_method == "faiss":
                recalls.append(neighbours.knn_recall(layer, knn, knn.shape[1]))
            data["knn"].append(knn.astype(np.int32))
            data["knn_starts"].append(starts.astype(np.int32))
            data["knn_values"].append(values)
            ties.append(neighbours.tied_samples(starts, parts["k"]))
        if parts["dims"]:
            data["svd"].append(d.svd_directions(layer, parts["dims"], precision))
            if counts is not None:
                directions = lambda rows, a=layer: d.svd_directions(a[rows], parts["dims"], precision)[None]  # noqa: E731
                half_svd.append(_half_svd(counts, directions))
        if parts["bases"]:
            bases.append(d.orthonormal_basis(layer, precision))
    for i, searched in enumerate(depths):  # a later layer's resamples reached deeper: one depth for all
        if searched < depth:
            knn, starts, data["knn_values"][i], _ = neighbour_states(prepared(i), depth)
            data["knn"][i], data["knn_starts"][i] = knn.astype(np.int32), starts.astype(np.int32)
    data["knn_values"] = [v for v in data["knn_values"] if v is not None]
    if data["knn"]:  # rows end after their tie groups: -1 (values 0) to the deepest layer's length
        width = max(knn.shape[1] for knn in data["knn"])
        data["knn"], data["knn_starts"] = map(list, neighbours.stacked(list(zip(data["knn"], data["knn_starts"]))))
        data["knn_values"] = [np.pad(v, ((0, 0), (0, width - v.shape[1]))) for v in data["knn_values"]]
    if not any(neighbours.has_ties(s) for s in data["knn_starts"]):
        data["knn_starts"] = []  # stored only where there are ties
    info = ({"knn_recall": recalls} if recalls else {}) | ({"knn_ties": ties} if ties else {})
    threshold = thresholds[0] if mode == "global" else thresholds
    stacked = {name: np.stack(v) for name, v in data.items() if v}
    if half_svd:  # per layer (R, 1, m, dims): joined along the layers
        stacked |= {"half_samples": half_svd[0]["half_samples"]}
        stacked |= {"half_svd": np.concatenate([h["half_svd"] for h in half_svd], axis=1)}
    return stacked | (_padded_bases(bases, len(bases[0][0])) if bases else {}), threshold, info


def _covering_search(layer, k, depth, counts, knn_method, block):
    """The layer's neighbour lists and tie groups, at least ``depth`` deep, deep enough for every resample in
    ``counts``; returns them and their depth. faiss's approximate lists carry no tie groups."""
    while True:
        if knn_method == "faiss":
            lists = neighbours.faiss_knn(layer, depth)
            starts = np.broadcast_to(np.arange(depth), lists.shape)
        else:
            lists, starts = neighbours.search(layer, k, depth, block)
        if counts is None or depth == len(layer) - 1 or covers(lists[None, :, :depth], counts, k):
            return lists, starts, depth
        depth = deeper(depth, k, len(layer))


def write_state(ds, path: str | Path, provenance: dict | None = None) -> Path:
    """Write a state store atomically: ``<path>.partial`` first, renamed when complete."""
    from prh.io.workflow import atomic_path

    if provenance:
        ds = ds.assign_attrs(as_attrs(provenance))
    encoding = {}
    for name, var in ds.data_vars.items():
        chunks = list(var.shape)
        if var.ndim > 1:
            chunks[0] = 1  # one layer per chunk
        encoding[name] = {"chunks": tuple(chunks)}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds.to_zarr(tmp, mode="w", zarr_format=3, encoding=encoding, consolidated=False)
    return Path(path)


def open_state(path: str | Path, device: str = "cpu") -> tuple[LayerStates, dict]:
    """A state store as ``LayerStates`` (Grams upcast to float64) and its attributes, JSON decoded. Read with
    zarr alone: a pair job imports neither xarray nor pandas."""
    import zarr

    from prh.io.features import FeatureStoreError, read_array

    try:
        with warnings.catch_warnings():  # Snakemake's .snakemake_timestamp in the store is not zarr's
            warnings.simplefilter("ignore", UserWarning)
            group = zarr.open_group(str(path), mode="r")
            arrays = dict(group.arrays())
    except Exception as err:
        message = f"{path}: cannot be opened as a state store ({err.__class__.__name__}: {err}); rerun its state job"
        raise FeatureStoreError(message) from None
    values = {name: read_array(path, array, name) for name, array in arrays.items()}
    attrs = {k: _decode(v) for k, v in group.attrs.items()}
    states = LayerStates.from_arrays(
        attrs["n_samples"],
        attrs["n_layers"],
        knn=values["knn"].astype(np.int64) if "knn" in values else None,
        knn_starts=values["knn_starts"].astype(np.int64) if "knn_starts" in values else None,
        knn_values=values.get("knn_values"),
        grams=values.get("gram"),  # float32 as stored; LayerStates upcasts a copy for the scores
        svd=values.get("svd"),
        centred_norms=values.get("centred_norm"),
        unbiased_self=values.get("unbiased_self"),
        rsa_ranks=values.get("rsa_ranks"),
        bases=_unpadded_bases(values),
        half_svd=(values["half_samples"], values["half_svd"]) if "half_svd" in values else None,
        device=device,
        source=str(path),
    )
    return states, attrs


def _decode(value):
    if isinstance(value, str) and value[:1] in "[{" or value in ("null", "true", "false"):
        try:
            return json.loads(value)
        except (TypeError, ValueError):
            return value
    return value
