"""Kernel-alignment metrics (paper, Appendix A), as small pure functions: arrays in, numbers out.

Representations are (N, D) arrays whose row ``i`` in ``X`` and row ``i`` in ``Y`` describe the same
sample (an image and its caption). A *layer stack* is a sequence of such arrays, one per layer, all with
the same N (widths may differ), or one (L, N, D) array.

Neighbourhoods use cosine similarity, i.e. the inner-product kernel after l2 normalisation (App. C.2),
and exclude the sample itself (eq. 9–10). Ties in similarity are broken towards the lower sample index,
so every score is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

LayerStack = Sequence[np.ndarray] | np.ndarray


def l2_normalize(X: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale every row of ``X`` to unit l2 norm (rows of zeros stay zero)."""
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), eps)


def clamp_quantile(layers: LayerStack, q: float = 0.95) -> list[np.ndarray]:
    """Clip every element of a model's layer stack to ``[-t, t]``, ``t`` = the ``q``-quantile of ``|x|``
    over all elements of all layers (App. C.2: "we truncate the elements in the features that are above the
    95-th percentile", against transformers' emergent outliers). ``q = 1`` leaves the stack unchanged.

    The quantile is numpy's linear interpolation over the whole stack; the authors' code uses, by default,
    the mean over samples of per-sample quantiles, which is close but not identical.
    """
    layers = [np.asarray(a, dtype=np.float64) for a in layers]
    if q >= 1.0:
        return layers
    threshold = np.quantile(np.abs(np.concatenate([a.ravel() for a in layers])), q)
    return [np.clip(a, -threshold, threshold) for a in layers]


def prepare_stack(layers: LayerStack, q: float = 0.95) -> list[np.ndarray]:
    """The paper's preprocessing of one model's layer stack: quantile clamp, then l2-normalise each sample."""
    return [l2_normalize(a) for a in clamp_quantile(layers, q)]


def knn_indices(X: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of each sample's k nearest neighbours by cosine similarity, itself excluded (eq. 9),
    most similar first; ties go to the lower index."""
    X = l2_normalize(X)
    n = X.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k = {k} must be between 1 and N - 1 = {n - 1}")
    similarity = X @ X.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def _neighbour_mask(knn: np.ndarray) -> np.ndarray:
    """Boolean (N, N) matrix with ``mask[i, j]`` true when ``j`` is among the neighbours of ``i``."""
    n = knn.shape[0]
    mask = np.zeros((n, n), dtype=bool)
    np.put_along_axis(mask, knn, True, axis=1)
    return mask


def mutual_knn(X: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    """Mutual k-nearest-neighbour alignment m_NN (App. A, eq. 9–11): the mean over samples of
    ``|S(x_i) ∩ S(y_i)| / k``, with S the k-NN sets within X and within Y. 1 for identical
    neighbourhoods; about k / (N - 1) for unrelated ones."""
    _check_paired(X, Y)
    knn_x, knn_y = knn_indices(X, k), knn_indices(Y, k)
    hits = np.take_along_axis(_neighbour_mask(knn_y), knn_x, axis=1)
    return float(hits.sum() / (k * X.shape[0]))


def _mutual_knn_layers(Xs: list[np.ndarray], Ys: list[np.ndarray], k: int = 10) -> np.ndarray:
    """All (Lx, Ly) mutual-kNN scores at once: neighbours once per layer, then one gather per X layer."""
    knn_x = [knn_indices(X, k) for X in Xs]
    masks_y = np.stack([_neighbour_mask(knn_indices(Y, k)) for Y in Ys])  # (Ly, N, N)
    rows = np.arange(masks_y.shape[1])[:, None]
    scores = np.empty((len(Xs), len(Ys)))
    for i, knn in enumerate(knn_x):
        scores[i] = masks_y[:, rows, knn].sum(axis=(1, 2))
    return scores / (k * masks_y.shape[1])


@dataclass(frozen=True)
class Metric:
    """A registered metric: the pairwise function, its defaults, and optionally a batched layer version."""

    pairwise: Callable[..., float]
    defaults: dict = field(default_factory=dict)
    layerwise: Callable[..., np.ndarray] | None = None
    symmetric: bool = True


METRICS: dict[str, Metric] = {
    "mutual_knn": Metric(mutual_knn, {"k": 10}, _mutual_knn_layers),
}


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        raise KeyError(f"unknown metric '{name}'; known: {', '.join(sorted(METRICS))}")
    return METRICS[name]


def layer_scores(metric: str, Xs: LayerStack, Ys: LayerStack, **params) -> np.ndarray:
    """Score every layer of ``Xs`` (Lx stacks of (N, Dx)) against every layer of ``Ys`` -> (Lx, Ly).

    Per-layer work (neighbour lists) is done once per layer, not once per pair.
    """
    spec = get_metric(metric)
    unknown = set(params) - set(spec.defaults)
    if unknown:
        raise TypeError(f"metric '{metric}' takes no parameter(s) {sorted(unknown)}")
    params = spec.defaults | params
    Xs, Ys = list(Xs), list(Ys)
    for X in Xs + Ys:
        _check_paired(Xs[0], X)
    if spec.layerwise is not None:
        return spec.layerwise(Xs, Ys, **params)
    return np.array([[spec.pairwise(X, Y, **params) for Y in Ys] for X in Xs])


def _check_paired(X: np.ndarray, Y: np.ndarray) -> None:
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"expected (N, D) arrays, got shapes {X.shape} and {Y.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must describe the same samples: {X.shape[0]} rows vs {Y.shape[0]}")
