"""Kernel-alignment metrics (paper, Appendix A and B), as small pure functions: arrays in, numbers out.

Representations are (N, D) arrays whose row ``i`` in ``X`` and row ``i`` in ``Y`` describe the same
sample (an image and its caption). A *layer stack* is a sequence of such arrays, one per layer, all with
the same N (widths may differ), or one (L, N, D) array.

Conventions shared by every metric:

* neighbourhoods use cosine similarity (the inner-product kernel after l2 normalisation, App. C.2) and
  exclude the sample itself (eq. 9–10). Similarities within ``tie_tolerance`` of each other are ties; a
  score is its expectation when ties are broken by a uniformly random order of the samples, one order for
  every row of both representations (the lower-index rule after a random relabelling of the samples): exact
  for mutual k-NN and CKNNA (``joint_weights``), a seeded average over ``TIE_DRAWS`` random orders for cycle
  k-NN, LCS and edit distance (``tie_orders``). Without ties this is the plain definition, and identical
  representations score 1 with ties too; ``knn_indices`` lists tied neighbours by index;
* kernels are the inner product of the features as given (the pipeline l2-normalises them first,
  ``prepare_stack``); ``cka`` also offers an RBF kernel.

The functions below are the reference definitions, written to be read next to the paper. The batched
versions that score all layer pairs at once live in ``prh.metrics.layerwise`` and are tested against these.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from math import comb

import numpy as np

from prh.metrics import dense as limits
from prh.metrics import kernels
from prh.metrics.dense import DenseLimitError

LayerStack = Sequence[np.ndarray] | np.ndarray


def dense(function):
    """Refuse N above ``prh.metrics.dense.DENSE_LIMIT`` in a reference definition that forms N × N matrices, with one
    error naming it, N and the limit, before any is allocated (``prh.metrics.layer_scores`` is bounded)."""

    @functools.wraps(function)
    def checked(X, *args, **kwargs):
        n = len(X)
        if n > limits.DENSE_LIMIT:
            raise DenseLimitError(
                f"{function.__name__}: N = {n} samples is above the dense limit of {limits.DENSE_LIMIT} "
                f"(prh.metrics.dense.DENSE_LIMIT); this reference definition forms N x N matrices "
                f"({n * n * 8 / 1e9:.1f} GB each in float64). prh.metrics.layer_scores scores large N in bounded "
                "memory (blocked neighbour search, streamed CKA) or says which metric cannot"
            )
        return function(X, *args, **kwargs)

    return checked


# --- preprocessing -----------------------------------------------------------------------------------


def l2_normalize(X: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale every row of ``X`` to unit l2 norm (rows of zeros stay zero)."""
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), eps)


def clamp_quantile(layers: LayerStack, q: float = 0.95, mode: str = "global") -> list[np.ndarray]:
    """Clip elements to ``[-t, t]`` with ``t`` the ``q``-quantile of ``|x|`` (App. C.2: "we truncate the
    elements in the features that are above the 95-th percentile", against emergent outliers).

    ``mode="global"`` (default) takes one ``t`` over all elements of all layers of the model's stack, as the
    authors' code clamps the whole (N, L, D) tensor; ``mode="per_layer"`` takes one ``t`` per layer.
    ``q = 1`` leaves the stack unchanged. The quantile is numpy's linear interpolation; the authors' code by
    default uses the mean over samples of per-sample quantiles, which is close but not identical.
    """
    layers = [np.asarray(a, dtype=np.float64) for a in layers]
    if q >= 1.0:
        return layers
    if mode == "global":
        threshold = np.quantile(np.abs(np.concatenate([a.ravel() for a in layers])), q)
        return [np.clip(a, -threshold, threshold) for a in layers]
    if mode == "per_layer":
        return [np.clip(a, -(t := np.quantile(np.abs(a), q)), t) for a in layers]
    raise ValueError(f"quantile mode '{mode}' is not one of global, per_layer")


def prepare_stack(
    layers: LayerStack, q: float = 0.95, mode: str = "global", concat: bool = False, normalize: bool = True
) -> list[np.ndarray]:
    """The paper's preprocessing of one model's layer stack: quantile clamp, then l2-normalise each sample
    (``normalize=False`` skips the normalisation; neighbourhoods are cosine-based either way).

    ``concat=True`` appends the paper's extra candidate "all layers concatenated" (App. C.2): the
    normalised layers side by side, normalised again, as one more layer at the end.
    """
    scale = l2_normalize if normalize else (lambda a: a)
    prepared = [scale(a) for a in clamp_quantile(layers, q, mode)]
    if concat:
        prepared.append(scale(np.concatenate(prepared, axis=1)))
    return prepared


# --- neighbourhoods ----------------------------------------------------------------------------------


@dense
def cosine_similarity(X: np.ndarray) -> np.ndarray:
    """The (N, N) cosine-similarity matrix of the rows of ``X``."""
    X = l2_normalize(X)
    return X @ X.T


def tie_tolerance(width: int) -> float:
    """Cosine similarities of ``width``-wide rows that differ by no more than this are a tie: twice the bound
    on float64 rounding of one (normalising both rows, then a ``width``-long dot product: (width + 4) u,
    u = 2^-53). It is 1e-12 at width 4,096, five orders under float32 rounding: ties are judged on float64
    values, so float32 products can neither make nor hide one."""
    gamma = (width + 4) * 2.0**-53
    return 2.0 * gamma / (1.0 - gamma)


@dense
def sorted_neighbours(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every sample's other samples by cosine similarity, most similar first, each tie group by index:
    (N, N − 1) indices and the place each place's tie group starts (``kernels.tie_starts``)."""
    n = len(X)
    similarity = cosine_similarity(X)
    np.fill_diagonal(similarity, -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(n), (n, n)), -similarity), axis=1)[:, : n - 1]
    starts = kernels.tie_starts(np.take_along_axis(similarity, order, axis=1), tie_tolerance(X.shape[1]))
    return kernels.order_groups(order, starts), starts


@dense
def knn_indices(X: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of each sample's k nearest neighbours by cosine similarity, itself excluded (eq. 9),
    most similar first; tied neighbours by index."""
    _check_k(len(X), k)
    return sorted_neighbours(X)[0][:, :k]


@dense
def neighbour_weights(X: np.ndarray, k: int) -> np.ndarray:
    """(N, N) P(j ∈ S(x_i)), the k-NN sets under uniformly random tie-breaking: 1 for neighbours more similar
    than the k-th, r / t for the t samples tied with the k-th when r of them fill the set, 0 otherwise.
    Without ties, the boolean ``neighbour_mask`` of the k nearest."""
    _check_k(len(X), k)
    order, starts = sorted_neighbours(X)
    weights = np.zeros((len(X), len(X)))
    np.put_along_axis(weights, order, kernels.place_weights(starts, k), axis=1)
    return weights


@dense
def tie_orders(X: np.ndarray, k: int, draws: int) -> list[np.ndarray]:
    """(N, k) lists of ``draws`` random tie orders: in draw r each tie group is ordered by
    ``kernels.tie_key(r, j)``, sample j's place in a random order of the samples (a fixed hash: every draw is
    reproducible, and the engine draws the same)."""
    return _orders(*sorted_neighbours(X), k, draws)


def _orders(order: np.ndarray, starts: np.ndarray, k: int, draws: int) -> list[np.ndarray]:
    """``tie_orders`` from ``sorted_neighbours``' lists and tie groups."""
    out = []
    for r in range(draws):
        resorted = np.lexsort((kernels.tie_keys(r, order), starts), axis=1)
        out.append(np.take_along_axis(order, resorted, axis=1)[:, :k])
    return out


TIE_DRAWS = 32  # random orders averaged by cycle k-NN, LCS and edit distance when a representation has ties


def both_tied_chance(a: int, b: int, c: int, rx: int, ry: int) -> float:
    """P(a sample in both tie groups at the k-th place is in both k-NN sets), the samples in a uniformly random
    order: X's group holds it, a others and c − 1 shared with Y's, rx of them fill X's set; Y's holds it, b
    others and the same c − 1, ry fill Y's. Its place among the a + b + c is uniform, and the samples before it
    a uniform subset of that size: sum over α + γ < rx, β + γ < ry of C(a, α) C(b, β) C(c − 1, γ) /
    C(a + b + c − 1, α + β + γ), over a + b + c. (rx / (a + 1) when Y's group is the sample alone.)"""
    m = a + b + c - 1
    total = sum(
        comb(a, x) * comb(b, y) * comb(c - 1, g) / comb(m, x + y + g)
        for g in range(min(c - 1, rx - 1, ry - 1) + 1)
        for x in range(min(a, rx - 1 - g) + 1)
        for y in range(min(b, ry - 1 - g) + 1)
    )
    return total / (m + 1)


@dense
def joint_weights(X: np.ndarray, Y: np.ndarray, k: int) -> np.ndarray:
    """(N, N) P(j ∈ S(x_i) and j ∈ S(y_i)) with ties broken by one uniformly random order of the samples:
    ``neighbour_weights`` of X times Y's, except for a sample tied at the k-th place in both
    (``both_tied_chance``). Identical representations: exactly ``neighbour_weights``."""
    _check_paired(X, Y)
    return _joint(neighbour_weights(X, k), neighbour_weights(Y, k), k)


def _joint(wx: np.ndarray, wy: np.ndarray, k: int) -> np.ndarray:
    """``joint_weights`` from the two sides' ``neighbour_weights``."""
    joint = wx * wy
    for i in range(len(wx)):
        tied_x, tied_y = (wx[i] > 0) & (wx[i] < 1), (wy[i] > 0) & (wy[i] < 1)
        shared = tied_x & tied_y
        if shared.any():
            c = int(shared.sum())
            rx, ry = k - int(np.sum(wx[i] == 1)), k - int(np.sum(wy[i] == 1))
            joint[i, shared] = both_tied_chance(int(tied_x.sum()) - c, int(tied_y.sum()) - c, c, rx, ry)
    return joint


def top_k(similarity: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest entries of each row, largest first, exact ties to the lower index:
    the first k columns of a stable descending argsort, found by partial sorting."""
    n = similarity.shape[1]
    if k >= n - 1:
        return np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    candidates = np.argpartition(-similarity, k, axis=1)[:, : k + 1]
    values = np.take_along_axis(similarity, candidates, axis=1)
    order = np.lexsort((candidates, -values), axis=1)
    candidates = np.take_along_axis(candidates, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    result = candidates[:, :k].copy()
    # A tie across the k-th place may leave out an equal value with a lower index: redo those rows fully.
    tied = values[:, k - 1] == values[:, k]
    if tied.any():
        result[tied] = np.argsort(-similarity[tied], axis=1, kind="stable")[:, :k]
    return result


def neighbour_mask(knn: np.ndarray) -> np.ndarray:
    """Boolean (N, N) matrix with ``mask[i, j]`` true when ``j`` is among the neighbours of ``i``."""
    n = knn.shape[0]
    mask = np.zeros((n, n), dtype=bool)
    np.put_along_axis(mask, knn, True, axis=1)
    return mask


# --- nearest-neighbour metrics -----------------------------------------------------------------------


@dense
def mutual_knn_terms(X: np.ndarray, Y: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-sample terms of ``mutual_knn``: ``E|S(x_i) ∩ S(y_i)| / k`` (eq. 11) = sum_j P(j ∈ S(x_i) and
    j ∈ S(y_i)) / k (``joint_weights``)."""
    return joint_weights(X, Y, k).sum(axis=1) / k


@dense
def mutual_knn(X: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    """Mutual k-nearest-neighbour alignment m_NN (App. A, eq. 9–11): the mean over samples of
    ``|S(x_i) ∩ S(y_i)| / k``, with S the k-NN sets within X and within Y (its expectation over random
    tie-breaking where neighbours tie). 1 for identical neighbourhoods; about k / (N - 1) for unrelated ones.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.
    k : int, default=10
        Neighbourhood size: each sample's k nearest other samples by cosine similarity.

    Returns
    -------
    float
        In [0, 1]; 1 for identical neighbourhoods.
    """
    return float(mutual_knn_terms(X, Y, k).mean())


@dense
def cycle_knn_terms(X: np.ndarray, Y: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-sample terms of ``cycle_knn``: 1 when the cycle from sample i closes, else 0; with ties, the mean
    over ``TIE_DRAWS`` random orders of the samples (every row's tie-breaking then depends on the one order,
    so there is no closed form)."""
    return _drawn(X, Y, k, _closes, ordered=False).mean(axis=0)


def _closes(lists_x: np.ndarray, lists_y: np.ndarray) -> np.ndarray:
    """1 where sample i is an X-neighbour of one of its Y-neighbours: mask_x[j, i] looked up for every
    Y-neighbour j of i."""
    return neighbour_mask(lists_x).T[np.arange(len(lists_x))[:, None], lists_y].any(axis=1).astype(float)


@dense
def cycle_knn(X: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    """Cycle k-NN (App. B, Table 11): the fraction of samples i for which going to the k nearest
    neighbours of i **in Y**, then to their k nearest neighbours **in X**, returns to i (where neighbours
    tie, the mean over ``TIE_DRAWS`` seeded random tie orders; ``tie_error``: its standard error).

    Direction: Y then X, as the authors' ``knn_A[knn_B]`` with A = X, B = Y. Asymmetric:
    ``cycle_knn(X, Y) != cycle_knn(Y, X)`` in general. With Y = X it is 1 only when every sample is a
    neighbour of one of its own neighbours (true in most data, not guaranteed).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.
    k : int, default=10
        Neighbourhood size: each sample's k nearest other samples by cosine similarity.

    Returns
    -------
    float
        In [0, 1]: the fraction of samples that return to themselves.
    """
    return float(cycle_knn_terms(X, Y, k).mean())


def longest_common_subsequence(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common subsequence of two sequences (dynamic programming)."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions, each cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _drawn(X: np.ndarray, Y: np.ndarray, k: int, score, ordered: bool) -> np.ndarray:
    """(draws, N) per-sample ``score(lists_x, lists_y)`` ((N, k) lists) over the tie orders of
    ``tie_orders``: one draw when no tie matters (for a set metric, ``ordered`` False, a tie that straddles the
    k-th place; for an ordinal one, any tie in the first k places), as every order is then the same."""
    _check_paired(X, Y)
    _check_k(len(X), k)
    places = min(k + 1, len(X) - 1)  # a tie reaching the k-th place shows at place k + 1
    first = 0 if ordered else k  # the places whose tie groups matter
    sides = [sorted_neighbours(A) for A in (X, Y)]
    tied = any(np.any(starts[:, first:places] != np.arange(first, places)) for _, starts in sides)
    draws = TIE_DRAWS if tied else 1
    pairs = zip(*(_orders(order, starts, k, draws) for order, starts in sides))
    return np.array([score(lx, ly) for lx, ly in pairs])


def _rowwise(distance):
    return lambda lists_x, lists_y: np.array([distance(a, b) for a, b in zip(lists_x, lists_y)], dtype=float)


@dense
def lcs_knn_terms(X: np.ndarray, Y: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-sample LCS / k, averaged over the tie orders (``_ordinal_draws``)."""
    return _drawn(X, Y, k, _rowwise(longest_common_subsequence), ordered=True).mean(axis=0) / k


@dense
def lcs_knn(X: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    """Longest common subsequence of the two ordered k-NN lists of each sample, divided by k, averaged
    (App. B, Table 11). Ordinal: the order of the neighbours matters. 1 = identical lists. Where neighbours
    tie, the mean over ``TIE_DRAWS`` seeded random tie orders (``tie_error``: its standard error).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.
    k : int, default=10
        Neighbourhood size: each sample's k nearest other samples by cosine similarity.

    Returns
    -------
    float
        In [0, 1]; 1 for identical ordered lists.
    """
    return float(lcs_knn_terms(X, Y, k).mean())


@dense
def edit_distance_knn_terms(X: np.ndarray, Y: np.ndarray, k: int = 10) -> np.ndarray:
    return 1.0 - _drawn(X, Y, k, _rowwise(edit_distance), ordered=True).mean(axis=0) / k


@dense
def edit_distance_knn(X: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    """One minus the edit distance between the two ordered k-NN lists of each sample divided by k, averaged
    (App. B, Table 11). 1 = identical lists, 0 = no element in place. Ties: as ``lcs_knn``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.
    k : int, default=10
        Neighbourhood size: each sample's k nearest other samples by cosine similarity.

    Returns
    -------
    float
        In [0, 1]; 1 for identical ordered lists.
    """
    return float(edit_distance_knn_terms(X, Y, k).mean())


@dense
def tie_error(X: np.ndarray, Y: np.ndarray, metric: str = "lcs_knn", k: int = 10) -> float:
    """The standard error that averaging over ``TIE_DRAWS`` tie orders leaves in ``cycle_knn``, ``lcs_knn``
    or ``edit_distance_knn``: the per-draw scores' standard deviation over sqrt(draws); 0 without ties."""
    score, ordered = {
        "cycle_knn": (_closes, False),
        "lcs_knn": (_rowwise(longest_common_subsequence), True),
        "edit_distance_knn": (_rowwise(edit_distance), True),
    }[metric]
    scores = _drawn(X, Y, k, score, ordered).mean(axis=1) / (k if ordered else 1)  # LCS, edit distance: / k
    return float(scores.std(ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else 0.0


# --- kernel metrics ----------------------------------------------------------------------------------


def kernel(X: np.ndarray, kind: str = "linear", sigma: float = 1.0, gram: np.ndarray | None = None) -> np.ndarray:
    """Gram matrix: ``linear`` = <x_i, x_j>; ``rbf`` = exp(-|x_i - x_j|^2 / (2 sigma^2)). ``gram``: X Xᵀ if
    already computed (e.g. on a GPU)."""
    if gram is None:
        X = np.asarray(X, dtype=np.float64)
        gram = X @ X.T
    if kind == "linear":
        return gram
    if kind == "rbf":
        sq = np.diag(gram)
        return np.exp(-np.maximum(sq[:, None] + sq[None, :] - 2 * gram, 0.0) / (2 * sigma**2))
    raise ValueError(f"kernel '{kind}' is not one of linear, rbf")


def hsic(K: np.ndarray, L: np.ndarray) -> float:
    """Biased HSIC estimator (eq. 13): tr(H K H L) / (n - 1)^2, H the centring matrix."""
    n = len(K)
    H = np.eye(n) - 1.0 / n
    return float(np.trace(H @ K @ H @ L) / (n - 1) ** 2)


@dense
def cka(X: np.ndarray, Y: np.ndarray, kernel_kind: str = "linear", sigma: float = 1.0) -> float:
    """Centred kernel alignment (Kornblith et al. 2019; eq. 14): HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.
    kernel_kind : {"linear", "rbf"}, default="linear"
        The kernel of both representations.
    sigma : float, default=1.0
        Bandwidth of the rbf kernel.

    Returns
    -------
    float
        In [0, 1]; 1 when the kernels agree up to scale.
    """
    _check_paired(X, Y)
    K, L = kernel(X, kernel_kind, sigma), kernel(Y, kernel_kind, sigma)
    return _ratio(hsic(K, L), hsic(K, K), hsic(L, L))


def unbiased_hsic(trace, sums, rows, n: int):
    """The unbiased HSIC estimator of Song et al. (2012), eq. 5, from its sufficient statistics of the kernels
    with zeroed diagonals K~, L~: ``trace`` = tr(K~L~), ``sums`` = 1ᵀK~1 · 1ᵀL~1 and ``rows`` = 1ᵀK~L~1 (numbers,
    or arrays that broadcast): [tr(K~L~) + 1ᵀK~1 1ᵀL~1 / ((n−1)(n−2)) − 2 1ᵀK~L~1 / (n−2)] / (n(n−3)). Every
    path that computes the unbiased HSIC (dense, batched over layers, sparse, weighted resamples, streamed)
    gathers its statistics its own way and calls this."""
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 samples, got {n}")
    return (trace + sums / ((n - 1) * (n - 2)) - 2.0 * rows / (n - 2)) / (n * (n - 3))


def hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    """Unbiased HSIC (``unbiased_hsic``) of two kernel matrices, its statistics as written: with K~, L~ the
    kernels with zeroed diagonals, tr(K~ L~), 1ᵀK~1 · 1ᵀL~1 and 1ᵀK~L~1."""
    n = len(K)
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    return float(unbiased_hsic(np.trace(Kt @ Lt), Kt.sum() * Lt.sum(), (Kt @ Lt).sum(), n))


def hsic_unbiased_fast(K: np.ndarray, L: np.ndarray) -> float:
    """``hsic_unbiased`` for symmetric K and L in O(n^2): tr(K~L~) = <K~, L~> and 1'K~L~1 = (K~1)·(L~1)."""
    n = len(K)
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    return float(unbiased_hsic((Kt * Lt).sum(), Kt.sum() * Lt.sum(), Kt.sum(1) @ Lt.sum(1), n))


@dense
def unbiased_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """CKA with the unbiased HSIC estimator (Song et al. 2012) in place of the biased one (linear kernel).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.

    Returns
    -------
    float
        About 0 for independent representations, 1 when the kernels agree up to scale.
    """
    _check_paired(X, Y)
    K, L = kernel(X), kernel(Y)
    return _ratio(hsic_unbiased(K, L), hsic_unbiased(K, K), hsic_unbiased(L, L))


@dense
def row_centred_kernel(X: np.ndarray) -> np.ndarray:
    """K̄_ij = <x_i, x_j> - E_l[<x_i, x_l>] (eq. 12): each row minus its mean over all l."""
    K = kernel(X)
    return K - K.mean(axis=1, keepdims=True)


@dense
def cknna_row_terms(X: np.ndarray, Y: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample sums over j of eq. 16 for (K, L), (K, K) and (L, L): CKNNA is the ratio of their totals."""
    _check_paired(X, Y)
    Kb, Lb = row_centred_kernel(X), row_centred_kernel(Y)
    mask_x, mask_y = neighbour_weights(X, k), neighbour_weights(Y, k)
    alpha = _joint(mask_x, mask_y, k)  # eq. 17 in expectation over tie orders; neighbour sets exclude i = j
    return (alpha * Kb * Lb).sum(1), (mask_x * Kb * Kb).sum(1), (mask_y * Lb * Lb).sum(1)


@dense
def cknna(X: np.ndarray, Y: np.ndarray, k: int = 10, variant: str = "paper") -> float:
    """Centred Kernel Nearest-Neighbour Alignment (App. A, eq. 16–18).

    ``variant="paper"`` (default): Align_knn(K, L) = sum_ij alpha(i, j) K̄_ij L̄_ij with K̄ the row-centred
    kernel of eq. 12 and alpha(i, j) = 1 when j is among the k nearest neighbours of i in both X and Y
    (i != j); CKNNA = Align(K, L) / sqrt(Align(K, K) Align(L, L)), where Align(K, K) keeps X's own
    neighbours. Where neighbours tie, alpha and the masks are their expectations over random tie orders
    (``joint_weights``, ``neighbour_weights``): on l2-normalised features tied neighbours have equal K̄_ij, so
    Align(K, K) does not depend on the tie order and the score is its exact expectation.

    ``variant="authors"``: what the authors' published code computes instead: the *unbiased HSIC* of the
    neighbour-masked, uncentred kernels, HSIC_1(alpha∘K, alpha∘L) / sqrt(HSIC_1(m_X∘K, m_X∘K)
    HSIC_1(m_Y∘L, m_Y∘L)). It centres through the estimator (over all n samples, masked entries counting as
    zeros) rather than row-wise, and its trace term pairs alpha_ij with alpha_ji. The two agree in trend,
    not in value. (The authors also add 1e-6 to the denominator; this does not.) Ties: the expected masks
    and their product for alpha (the HSIC is not linear in the masks: an approximation of its expectation);
    their code breaks ties by ``torch.topk``'s order.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.
    k : int, default=10
        Neighbourhood size: each sample's k nearest other samples by cosine similarity.
    variant : {"paper", "authors"}, default="paper"
        The paper's definition (eq. 16–18), or what the authors' code computes.

    Returns
    -------
    float
        1 when the neighbour-masked kernels agree; about 0 for unrelated representations.
    """
    if variant == "paper":
        kl, kk, ll = cknna_row_terms(X, Y, k)
        return _ratio(kl.sum(), kk.sum(), ll.sum())
    if variant == "authors":
        _check_paired(X, Y)
        K, L = kernel(X), kernel(Y)
        mask_x, mask_y = neighbour_weights(X, k), neighbour_weights(Y, k)
        alpha = mask_x * mask_y
        return _ratio(
            hsic_unbiased(alpha * K, alpha * L),
            hsic_unbiased(mask_x * K, mask_x * K),
            hsic_unbiased(mask_y * L, mask_y * L),
        )
    raise ValueError(f"cknna variant '{variant}' is not one of paper, authors")


# --- SVCCA -------------------------------------------------------------------------------------------


def svd_directions(X: np.ndarray, dims: int, precision=None) -> np.ndarray:
    """Top ``dims`` left singular vectors (N, dims) of X with every feature centred and scaled to unit
    variance. Exact and deterministic up to signs (which no score depends on): the top eigenvectors of the
    smaller of XᵀX and XXᵀ (LAPACK's subset eigensolver, about 3x faster than a full SVD here). A direction
    past X's numerical rank (σ at or below ``orthonormal_basis``'s tolerance at the stored ``precision``) is
    no direction of X: its column is zero, and ``svcca`` counts only the others."""
    from scipy.linalg import eigh

    eps = np.finfo(stored_precision(X, precision)).eps
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    X = X / (X.std(axis=0) + 1e-8)
    n, width = X.shape
    if dims > min(n, width):
        raise ValueError(f"svcca dims = {dims} exceeds min(N, D) = {min(n, width)}")
    if width <= n:
        values, vectors = eigh(X.T @ X, subset_by_index=[width - dims, width - 1])
        U = X @ vectors / np.sqrt(np.maximum(values, np.finfo(float).tiny))
    else:
        values, U = eigh(X @ X.T, subset_by_index=[n - dims, n - 1])
    sigma = np.sqrt(np.maximum(values, 0.0))
    tolerance = max(eps * np.linalg.norm(X), sigma.max(initial=0.0) * max(n, width) * np.finfo(np.float64).eps)
    U[:, sigma <= tolerance] = 0.0
    return U[:, ::-1]


def direction_rank(U: np.ndarray) -> np.ndarray:
    """How many of ``svd_directions``' columns are directions (unit norm, not zeroed), over the last two axes:
    (..., N, dims) -> (...)."""
    return (np.linalg.norm(U, axis=-2) > 0.5).sum(axis=-1)


def svcca(X: np.ndarray, Y: np.ndarray, dims: int = 10) -> float:
    """SVCCA (Raghu et al. 2017): reduce each representation to its top ``dims`` singular directions, then
    average the canonical correlations between the two subspaces. The directions are orthonormal and
    centred, so the canonical correlations are exactly the singular values of U_Xᵀ U_Y (no iterative CCA, no
    noise: deterministic). A representation whose numerical rank r is below ``dims`` keeps its r directions
    (as CCA keeps rank X), and the mean is over the min(r_X, r_Y) canonical correlations the two subspaces
    have, so a layer against itself gives 1. The authors' code uses a randomised low-rank SVD and sklearn's
    CCA.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.
    dims : int, default=10
        Singular directions kept of each representation.

    Returns
    -------
    float
        In [0, 1]: the mean canonical correlation of the two subspaces.
    """
    _check_paired(X, Y)
    Ux, Uy = svd_directions(X, dims), svd_directions(Y, dims)
    return float(svcca_of_directions(Ux, Uy))


def svcca_of_directions(Ux: np.ndarray, Uy: np.ndarray) -> np.ndarray:
    """``svcca`` from ``svd_directions`` (..., N, dims) of each side: the canonical correlations' sum over
    min(r_X, r_Y), the directions the two have (0 where one has none)."""
    values = np.linalg.svd(np.swapaxes(Ux, -1, -2) @ Uy, compute_uv=False).sum(axis=-1)
    count = np.minimum(direction_rank(Ux), direction_rank(Uy))
    return np.where(count > 0, values / np.maximum(count, 1), 0.0)


# --- measures of the 2026 re-analysis (Gröger, Wen & Brbić): Procrustes, RSA, RV, CCA, PWCCA -------------


def _centred(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X - X.mean(axis=0)


def procrustes(X: np.ndarray, Y: np.ndarray, variant: str = "paper") -> float:
    """Orthogonal Procrustes similarity (Ding et al. 2021; Williams et al. 2021): with both representations
    centred and scaled to unit Frobenius norm, 1 − d²/2, where d² = min over orthogonal Q of ‖X̃ − ỸQ‖²_F
    (the narrower one padded with zero columns) = 2 − 2‖X̃ᵀỸ‖_*. So it is the nuclear norm ‖X̃ᵀỸ‖_*, in
    [0, 1], 1 when the two agree up to a rotation, a reflection, a translation and an isotropic scaling.

    ``variant="aristotelian"``: the 2026 re-analysis's registered metric (``mlbio-epfl/Aristotelian``,
    ``Procrustes``), 1 − sqrt(‖Xc‖² + ‖Yc‖² − 2‖XcᵀYc‖_*) / ‖Yc‖ with no scaling: scale-dependent,
    asymmetric, in (−∞, 1]. It is 1 − ‖XcR − Yc‖_F / ‖Yc‖_F (R the orthogonal Procrustes fit, their numpy
    ``procrustes_score``) when X is no wider than Y. (They add 1e-8 to the denominator.)

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.
    variant : {"paper", "aristotelian"}, default="paper"
        The published definition, or the 2026 re-analysis's registered metric.

    Returns
    -------
    float
        In [0, 1] (``paper``); in (−∞, 1] (``aristotelian``).
    """
    _check_paired(X, Y)
    Xc, Yc = _centred(X), _centred(Y)
    if variant == "aristotelian":
        nuclear = np.linalg.svd(Xc.T @ Yc, compute_uv=False).sum()
        return _procrustes_distance_score((Xc**2).sum(), (Yc**2).sum(), nuclear)
    if variant != "paper":
        raise ValueError(f"procrustes variant '{variant}' is not one of paper, aristotelian")
    Xc, Yc = Xc / np.linalg.norm(Xc), Yc / np.linalg.norm(Yc)
    return float(np.linalg.svd(Xc.T @ Yc, compute_uv=False).sum())


def _procrustes_distance_score(norm_x2: float, norm_y2: float, nuclear: float) -> float:
    """1 − (the Procrustes residual ‖XcR − Yc‖) / ‖Yc‖ from ‖Xc‖², ‖Yc‖² and ‖XcᵀYc‖_*."""
    return float(1.0 - np.sqrt(max(norm_x2 + norm_y2 - 2.0 * nuclear, 0.0)) / np.sqrt(norm_y2))


@dense
def rsa(X: np.ndarray, Y: np.ndarray) -> float:
    """Representational similarity analysis (Kriegeskorte et al. 2008): Spearman's rank correlation (average
    ranks for ties) between the upper triangles of the two representational dissimilarity matrices, the
    cosine distance 1 − cos(x_i, x_j) of every pair of samples. On l2-normalised features (the pipeline's)
    this RDM orders the pairs as the squared Euclidean distance does, so it equals RSA with Euclidean RDMs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.

    Returns
    -------
    float
        Spearman's ρ, in [−1, 1].
    """
    from scipy.stats import spearmanr

    _check_paired(X, Y)
    upper = np.triu_indices(len(X), k=1)
    return float(spearmanr(1 - cosine_similarity(X)[upper], 1 - cosine_similarity(Y)[upper]).statistic)


@dense
def rv_coefficient(X: np.ndarray, Y: np.ndarray, variant: str = "classic") -> float:
    """RV coefficient (Robert & Escoufier 1976) of column-centred X and Y: ⟨K, L⟩ / (‖K‖ ‖L‖) with K = XcXcᵀ,
    L = YcYcᵀ, i.e. tr(XcᵀYcYcᵀXc) / sqrt(tr((XcᵀXc)²) tr((YcᵀYc)²)); numerically linear CKA.
    ``variant="modified"``: RV2 of Smilde et al. (2009), K and L with their diagonals zeroed, which removes
    the classic coefficient's drift towards 1 when the width is large against N.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.
    variant : {"classic", "modified"}, default="classic"
        The classic coefficient, or RV2 (diagonals zeroed).

    Returns
    -------
    float
        In [0, 1] (``classic``).
    """
    _check_paired(X, Y)
    Xc, Yc = _centred(X), _centred(Y)
    K, L = Xc @ Xc.T, Yc @ Yc.T
    if variant == "modified":
        np.fill_diagonal(K, 0.0)
        np.fill_diagonal(L, 0.0)
    elif variant != "classic":
        raise ValueError(f"rv_coefficient variant '{variant}' is not one of classic, modified")
    return _ratio((K * L).sum(), (K * K).sum(), (L * L).sum())


def stored_precision(X, precision=None) -> np.dtype:
    """The floating dtype whose rounding bounds what X can resolve: ``precision`` when given (the dtype the
    features were stored in), else X's own when it is a float, else float64."""
    if precision is not None:
        return np.dtype(precision)
    dtype = np.asarray(X).dtype
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def orthonormal_basis(X: np.ndarray, precision=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of the centred X, truncated where the precision X was stored in (``stored_precision``) can no
    longer resolve a direction: σ > max(eps_stored · ‖X‖_F, σ_max · max(N, D) · eps_float64). Rounding to
    the stored dtype perturbs X by at most eps_stored · ‖X‖_F in Frobenius (hence spectral) norm, and by
    Weyl's inequality moves no singular value by more, so a smaller one may be rounding alone; the second
    term is numpy's ``matrix_rank`` rule in float64 (centring's own null direction). CCA would otherwise
    count rounding as signal. Returns U (N, r) orthonormal, σ (r,), V (D, r), Xc = U diag(σ) Vᵀ."""
    eps = np.finfo(stored_precision(X, precision)).eps
    X = np.asarray(X, dtype=np.float64)
    Xc = _centred(X)
    U, sigma, Vt = np.linalg.svd(Xc, full_matrices=False)
    if not sigma.size:
        return U, sigma, Vt.T
    tolerance = max(eps * np.linalg.norm(X), sigma[0] * max(Xc.shape) * np.finfo(np.float64).eps)
    rank = int(np.sum(sigma > tolerance))
    return U[:, :rank], sigma[:rank], Vt[:rank].T


def canonical_correlations(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The canonical correlations of X and Y (Hotelling 1936), largest first: the cosines of the principal
    angles between the column spaces of the centred representations, min(rank X, rank Y) of them."""
    _check_paired(X, Y)
    Ux, Uy = orthonormal_basis(X)[0], orthonormal_basis(Y)[0]
    return np.clip(np.linalg.svd(Ux.T @ Uy, compute_uv=False), 0.0, 1.0)


def pwcca_of_bases(Ux: np.ndarray, sx: np.ndarray, Vx: np.ndarray, Uy: np.ndarray) -> float:
    """``pwcca`` from the thin SVDs (``orthonormal_basis``) of X (U, σ, V) and Y (U): the canonical variates
    h_i = Ux W[:, i] and h_iᵀ Xc = W[:, i]ᵀ diag(σ) Vᵀ, so no N × D product is formed."""
    W, rho, _ = np.linalg.svd(Ux.T @ Uy, full_matrices=False)
    alpha = np.abs(W.T @ (sx[:, None] * Vx.T)).sum(axis=1)
    return float((alpha * np.clip(rho, 0.0, 1.0)).sum() / alpha.sum())


def cca(X: np.ndarray, Y: np.ndarray) -> float:
    """Mean canonical correlation between X and Y (no dimensionality reduction: SVCCA is CCA after keeping
    the top directions). When a width reaches N − 1 the centred features span every centred direction and
    the score is 1 whatever the data: CCA needs N well above the widths.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.

    Returns
    -------
    float
        The mean canonical correlation, in [0, 1].
    """
    return float(canonical_correlations(X, Y).mean())


def pwcca(X: np.ndarray, Y: np.ndarray) -> float:
    """Projection-weighted CCA (Morcos et al. 2018): Σ_i α_i ρ_i / Σ_i α_i over the canonical correlations
    ρ_i, with α_i = Σ_j |⟨h_i, x_j⟩| the summed absolute projections of X's centred features (columns x_j)
    onto X's i-th canonical variate h_i. Asymmetric: the weights come from X.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features_x)
        One representation, a row per sample (as the pipeline prepares it: clamped and l2-normalised).
    Y : ndarray of shape (n_samples, n_features_y)
        The other, its rows the same samples in the same order.

    Returns
    -------
    float
        In [0, 1].
    """
    _check_paired(X, Y)
    return pwcca_of_bases(*orthonormal_basis(X), orthonormal_basis(Y)[0])


# --- helpers -----------------------------------------------------------------------------------------


def _ratio(cross: float, self_x: float, self_y: float) -> float:
    denominator = np.sqrt(self_x * self_y)
    return float(cross / denominator) if denominator > 0 else float("nan")


def _check_k(n: int, k: int) -> None:
    if not 1 <= k <= n - 1:
        raise ValueError(f"k = {k} must be between 1 and N - 1 = {n - 1}")


def _check_paired(X: np.ndarray, Y: np.ndarray) -> None:
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"expected (N, D) arrays, got shapes {X.shape} and {Y.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must describe the same samples: {X.shape[0]} rows vs {Y.shape[0]}")
