"""Nearest neighbours at any N: exact top-k over row blocks (memory O(block × N), never N × N), with the
tie groups at every place of the lists, and an approximate option through faiss that reports its recall
against the exact search on a sample.

``search`` returns (N, depth) neighbour indices by cosine similarity, the sample itself excluded, most similar
first, and the tie group of each place. Samples whose similarities differ by no more than ``tie_tolerance``
form one group; within a group the lists go by index (the deterministic order ``definitions.knn_indices``
gives), and the metrics count a group that straddles the k-th place fractionally (``definitions``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from prh.metrics import backend, kernels
from prh.metrics import definitions as d

KNN_METHODS = ("exact", "faiss")


def _ulp_bound(width: int) -> float:
    """An upper bound on |float32 dot − exact dot| for unit vectors of ``width`` elements: rounding the
    inputs (2u) plus a length-``width`` float32 accumulation (γ_width), u = 2^-24, with a factor 2 to spare."""
    u = 2.0**-24
    return 2.0 * (2 * u + width * u / (1 - width * u))


tie_tolerance = d.tie_tolerance


@njit(cache=True, parallel=True)
def _rescore(X: np.ndarray, rows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Float64 similarities of each row of ``rows`` with its candidates, the row itself at -inf: a gather-free
    loop (X[candidates] would copy rows × keep × width floats)."""
    b, keep = candidates.shape
    width = X.shape[1]
    out = np.empty((b, keep))
    for r in prange(b):
        i = rows[r]
        for p in range(keep):
            j = candidates[r, p]
            if j == i:
                out[r, p] = -np.inf
                continue
            total = 0.0
            for c in range(width):
                total += X[i, c] * X[j, c]
            out[r, p] = total
    return out


def search(X: np.ndarray, k: int, depth: int | None = None, block: int = 2048, device: str = "cpu"):
    """Exact neighbour lists of every row of ``X`` (rows l2-normalised here) and their tie groups.

    Each block of ``block`` rows is ranked by float32 products on ``device`` (half the time of float64),
    keeping ``depth + margin`` candidates; their similarities are recomputed in float64, sorted, and grouped
    into ties (``kernels.tie_starts``). A row whose last wanted float64 value does not clear the best excluded
    float32 value by the float32 error bound plus the tie tolerance (a near-tie or a tie across the cut) is
    searched again in float64 over all samples, so the result is the float64 search's.

    Returns
    -------
    lists : (N, D) int64
        Neighbours, most similar first, ties by index; D ≥ max(k, ``depth``) reaches past the whole tie
        group at that place of every row (so past the group at the k-th place too).
    starts : (N, D) int64
        The place where each place's tie group starts (``starts[i, p] == p`` for a place tied with none
        before it).
    """
    X = d.l2_normalize(X)
    n, width = X.shape
    if not 1 <= k <= n - 1:
        raise ValueError(f"k = {k} must be between 1 and N - 1 = {n - 1}")
    want = max(k, depth or k)
    X32 = X.astype(np.float32)
    tolerance, bound = d.tie_tolerance(width), _ulp_bound(width)
    keep = min(n - 1, want + max(8, k))
    while True:
        lists, values = [], []
        for start in range(0, n, block):
            found, exact = _block(X, X32, start, min(n, start + block), want, keep, tolerance, bound, device)
            lists.append(found)
            values.append(exact)
        lists, values = np.concatenate(lists), np.concatenate(values)
        starts = kernels.tie_starts(values, tolerance)
        lists = kernels.order_groups(lists, starts)
        reach = int(kernels.group_ends(starts, want).max())
        if reach < keep or keep == n - 1:
            return lists[:, :reach], starts[:, :reach]
        keep = min(n - 1, 2 * keep)  # a tie group that may run past the candidates: search deeper


def _block(X, X32, start, stop, k, keep, tolerance, bound, device):
    """One block's candidates (rows × keep, by float64 value, ties by index) and their float64 values."""
    n = len(X)
    rows = np.arange(start, stop)
    similarity = backend.products(X32[start:stop], X32, device, dtype=np.float32)
    similarity[rows - start, rows] = -np.inf
    if keep < n - 1:
        candidates, excluded = kernels.top_candidates(similarity, keep)
    else:
        candidates = np.argsort(-similarity, axis=1, kind="stable")[:, : n - 1]
        excluded = np.full(stop - start, -np.inf)
    exact = _rescore(X, rows, candidates)
    order = np.lexsort((candidates, -exact), axis=1)
    candidates = np.take_along_axis(candidates, order, axis=1)
    exact = np.take_along_axis(exact, order, axis=1)
    unsure = exact[:, k - 1] - tolerance <= excluded + 2 * bound
    if unsure.any():  # a (near-)tie across the cut: the float64 search of those rows decides
        full = backend.products(X[rows[unsure]], X, device)
        full[np.arange(len(full)), rows[unsure]] = -np.inf
        order = np.lexsort((np.broadcast_to(np.arange(n), full.shape), -full), axis=1)[:, :keep]
        candidates[unsure] = order
        exact[unsure] = np.take_along_axis(full, order, axis=1)
    return candidates, exact


def tied_samples(starts: np.ndarray, k: int, straddling: bool = False) -> int:
    """How many rows of ``starts`` (N, D) have their k-th neighbour tied with another sample (``straddling``:
    with one outside the k nearest, so that the k-NN set depends on tie-breaking)."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = kernels.group_ends(starts, k)
    return int(np.sum(ends > k) if straddling else np.sum(ends - starts[:, k - 1] > 1))


def blocked_knn(X: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """(N, k) exact neighbour lists (``search``'s first k places)."""
    return search(X, k, block=block)[0][:, :k]


def faiss_knn(X: np.ndarray, k: int, *, nlist: int | None = None, nprobe: int = 16, seed: int = 0) -> np.ndarray:
    """Approximate k nearest neighbours by cosine with a faiss inverted-file index (inner product on
    l2-normalised rows, ``nlist`` clusters, ``nprobe`` visited per query), sorted like the exact search."""
    import faiss

    X = np.ascontiguousarray(d.l2_normalize(X), dtype=np.float32)
    n, width = X.shape
    nlist = nlist or max(1, int(np.sqrt(n)))
    quantizer = faiss.IndexFlatIP(width)
    index = faiss.IndexIVFFlat(quantizer, width, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.train(X)
    index.add(X)
    index.nprobe = nprobe
    _, found = index.search(X, k + 1)
    out = np.empty((n, k), dtype=np.int64)
    for i, row in enumerate(found):
        row = [j for j in row if j != i and j >= 0][:k]
        if len(row) < k:  # too few candidates in the visited clusters: search this row exactly
            similarity = X.astype(np.float64) @ X[i].astype(np.float64)
            similarity[i] = -np.inf
            row = d.top_k(similarity[None, :], k)[0]
        out[i] = row
    return out


def knn_recall(X: np.ndarray, approximate: np.ndarray, k: int, sample: int = 256, seed: int = 0) -> float:
    """Fraction of the exact k nearest neighbours that ``approximate`` finds, over ``sample`` seeded rows."""
    X = d.l2_normalize(X)
    rows = np.sort(np.random.default_rng(seed).choice(len(X), size=min(sample, len(X)), replace=False))
    similarity = X[rows] @ X.T
    similarity[np.arange(len(rows)), rows] = -np.inf
    exact = d.top_k(similarity, k)
    hits = [len(set(a) & set(b)) for a, b in zip(exact, approximate[rows, :k])]
    return float(np.sum(hits) / (len(rows) * k))
