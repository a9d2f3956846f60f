"""Metric variants over all pairs: CKNNA against k (Fig. 10) and the metrics' alternative definitions (Fig. 12)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prh.io.features import read_layers
from prh.io.provenance import as_attrs
from prh.metrics import (
    layer_scores,
    prepare_stack,
    resolve_params,
)
from prh.metrics.definitions import cosine_similarity


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
    store_paths: Sequence[str | Path],
    models: Sequence[dict],
    cknna_k: Sequence[int],
    quantile: float,
    quantile_mode: str,
):
    """Best CKNNA (paper variant) over layer pairs of every (vision, language) model pair for each k in
    ``cknna_k`` below N - 1, and for N - 1 (App. A, Fig. 10: small k emphasises local alignment; k near N approaches
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
    ks = sorted({int(k) for k in cknna_k if k < n - 1} | {n - 1}) if language else []
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
    from prh.io.features import store_attrs

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
    k: Sequence[int],
    bsz: Sequence[int],
    seed: int,
    quantile: float,
    quantile_mode: str,
):
    """Fig. 12's grid: every metric at every neighbourhood size of ``k`` (metrics that take a k) and every
    sample size of ``bsz`` below N and N itself (the paper's bsz: a seeded subset, the same for every model),
    scored on the last layer of each pair of ``models`` (the representation of Fig. 2). Returns ``score``
    (variant, pair) with each variant's metric, k (0 where none) and size."""
    import xarray as xr

    from prh.metrics.layerwise import LayerStates

    last = {m: prepare_stack(read_layers(p)[-1:], quantile, quantile_mode) for m, p in zip(models, store_paths)}
    n = next(iter(last.values()))[0].shape[0]
    sizes = sorted({int(s) for s in bsz if s < n} | {n})  # a hub dataset's size is known only here
    rng = np.random.default_rng(seed)
    subsets = {size: np.sort(rng.choice(n, size, replace=False)) if size < n else np.arange(n) for size in sizes}
    variants = []
    for metric, params in metrics.items():
        for size_k in k if "k" in resolve_params(metric, params) else [0]:
            variants += [(metric, params | ({"k": int(size_k)} if size_k else {}), int(size_k), size) for size in sizes]
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
