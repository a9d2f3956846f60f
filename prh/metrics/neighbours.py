"""Nearest neighbours at any N: exact top-k over row blocks (memory O(block × N), never N × N), and an
approximate option through faiss that reports its recall against the exact search on a sample.

Both return what ``definitions.knn_indices`` returns, (N, k) neighbour indices by cosine similarity, the
sample itself excluded, most similar first, ties to the lower index.
"""

from __future__ import annotations

import numpy as np

from prh.metrics import definitions as d
from prh.metrics import kernels

KNN_METHODS = ("exact", "faiss")


def _ulp_bound(width: int) -> float:
    """An upper bound on |float32 dot − exact dot| for unit vectors of ``width`` elements: rounding the
    inputs (2u) plus a length-``width`` float32 accumulation (γ_width), u = 2^-24, with a factor 2 to spare."""
    u = 2.0**-24
    return 2.0 * (2 * u + width * u / (1 - width * u))


def blocked_knn(X: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """Exact k nearest neighbours of every row of ``X`` (rows l2-normalised here), ``block`` query rows at a time.

    Each block is ranked in float32 (half the time of float64), keeping ``k + margin`` candidates; their
    similarities are then recomputed in float64 and sorted exactly. A row whose float64 k-th value does not
    clear the best excluded float32 value by the float32 error bound (a near-tie across the cut) is searched
    again in float64 in full, so the result equals the float64 search."""
    X = d.l2_normalize(X)
    n, width = X.shape
    if not 1 <= k <= n - 1:
        raise ValueError(f"k = {k} must be between 1 and N - 1 = {n - 1}")
    X32 = X.astype(np.float32)
    keep = min(n - 1, k + max(8, k))
    bound = _ulp_bound(width)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = np.arange(start, stop)
        similarity = X32[start:stop] @ X32.T
        similarity[rows - start, rows] = -np.inf
        if keep < n - 1:
            candidates, excluded = kernels.top_candidates(similarity, keep)
        else:
            candidates = np.argsort(-similarity, axis=1)[:, : n - 1]
            excluded = np.full(stop - start, -np.inf)
        exact = np.einsum("bd,bkd->bk", X[start:stop], X[candidates])
        exact[candidates == rows[:, None]] = -np.inf
        order = np.lexsort((candidates, -exact), axis=1)
        candidates = np.take_along_axis(candidates, order, axis=1)
        kth = np.take_along_axis(exact, order, axis=1)[:, k - 1]
        out[start:stop] = candidates[:, :k]
        unsure = kth <= excluded + 2 * bound
        for row in rows[unsure]:  # a near-tie across the cut: the float64 search of that row decides
            similarity = X @ X[row]
            similarity[row] = -np.inf
            out[row] = d.top_k(similarity[None, :], k)[0]
    return out


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
