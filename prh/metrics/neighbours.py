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
from numba import njit

from prh.metrics import backend, kernels
from prh.metrics import definitions as d

KNN_METHODS = ("exact", "faiss")


def _ulp_bound(width: int) -> float:
    """An upper bound on |float32 dot − exact dot| for unit vectors of ``width`` elements: rounding the
    inputs (2u) plus a length-``width`` float32 accumulation (γ_width), u = 2^-24, with a factor 2 to spare."""
    u = 2.0**-24
    return 2.0 * (2 * u + width * u / (1 - width * u))


tie_tolerance = d.tie_tolerance


@njit(cache=True)
def _unit32(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``X`` l2-normalised in float32 and 1 / each row's float64 norm (zero rows stay zero): one pass."""
    n, width = X.shape
    out = np.empty((n, width), np.float32)
    inverse = np.empty(n)
    for i in range(n):
        total = 0.0
        for c in range(width):
            total += X[i, c] * X[i, c]
        inverse[i] = 1.0 / max(np.sqrt(total), 1e-12)
        for c in range(width):
            out[i, c] = X[i, c] * inverse[i]
    return out, inverse


@njit(cache=True, fastmath=True)
def _rescore(X, inverse, rows, candidates, similarity, gap, skip):
    """Per row, its candidates' similarities: the float32 value where no other candidate's is within ``gap`` (twice
    the float32 error bound: the order is then exact), else the float64 cosine, recomputed from ``X``
    (fastmath vectorises the sum: a rounding difference, far inside the tie tolerance). The row itself is
    -inf, and so is every value of a row in ``skip``."""
    b, keep = candidates.shape
    width = X.shape[1]
    out = np.full((b, keep), -np.inf)
    for r in range(b):
        if skip[r]:
            continue
        i = rows[r]
        values = np.empty(keep)
        for p in range(keep):
            values[p] = similarity[r, candidates[r, p]]
        order = np.argsort(-values)
        for s in range(keep):
            p = order[s]
            close = (s > 0 and values[order[s - 1]] - values[p] < gap) or (
                s + 1 < keep and values[p] - values[order[s + 1]] < gap
            )
            j = candidates[r, p]
            if j == i:
                out[r, p] = -np.inf
            elif not close:
                out[r, p] = values[p]
            else:
                total = 0.0
                for c in range(width):
                    total += X[i, c] * X[j, c]
                out[r, p] = total * inverse[i] * inverse[j]
    return out


@njit(cache=True)  # no fastmath: the rows hold -inf (the sample itself), which fastmath may not compare
def _through_ties(X, inverse, rows, similarity, which, want, tolerance, bound):
    """For rows whose cut is not clear in float32: every column down to ``tolerance`` below the row's
    ``want``-th largest float64 similarity (so the whole tie group at that place, whose members lie within
    ``tolerance`` of its first), most similar first, equal values by index; (rows, M) columns and values, -1
    and -inf after each row's own. Only the columns within twice the float32 error bound of that place are
    re-scored in float64: no column below can reach it. Only the rows in ``which``."""
    width = X.shape[1]
    found = []
    for r in np.nonzero(which)[0]:
        i = rows[r]
        row = similarity[r]
        floor = -np.partition(-row, want - 1)[want - 1] - 2 * bound - tolerance
        columns = np.nonzero(row >= floor)[0]
        values = np.empty(len(columns))
        for p in range(len(columns)):
            j = columns[p]
            total = 0.0
            for c in range(width):
                total += X[i, c] * X[j, c]
            values[p] = total * inverse[i] * inverse[j]
        order = np.argsort(-values, kind="mergesort")  # stable: equal values stay in index order
        columns, values = columns[order], values[order]
        kept = np.sum(values >= values[want - 1] - tolerance)
        found.append((columns[:kept], values[:kept]))
    depth = max([len(c) for c, _ in found])
    lists = np.full((len(found), depth), -1, np.int64)
    values = np.full((len(found), depth), -np.inf)
    for r in range(len(found)):
        lists[r, : len(found[r][0])] = found[r][0]
        values[r, : len(found[r][1])] = found[r][1]
    return lists, values


# The loops here run on one thread: right after a GEMM, OpenBLAS's threads still spin on the other cores, and
# numba's parallel loops measured 1.3-1.6x slower against them than serial ones (benchmarks/knn_bench.py).


def search(X: np.ndarray, k: int, depth: int | None = None, block: int = 2048, device: str = "cpu"):
    """Exact neighbour lists of every row of ``X`` (rows l2-normalised here) and their tie groups.

    Each block of ``block`` rows is ranked by float32 products on ``device`` (half the time of float64),
    keeping ``depth + 4`` candidates; those whose float32 values are too close to order (within twice the
    float32 error bound of another's) are re-scored in float64, then all are sorted and grouped into ties
    (``kernels.tie_starts``). A row whose last wanted value does not clear the best excluded float32 value by
    the float32 error bound plus the tie tolerance (a near-tie or a tie across the cut) is searched again:
    every sample whose float32 value comes within the error bound of that place is re-scored in float64, and
    all down to the tie tolerance below the place's float64 value are kept, so the result is the float64
    search's.

    Returns
    -------
    lists : (N, D) int64
        Neighbours, most similar first, ties by index, exact to place max(k, ``depth``) and on past the tie
        group at that place; -1 after (rows reach different depths; D is the deepest).
    starts : (N, D) int64
        The place where each place's tie group starts (``starts[i, p] == p`` for a place tied with none
        before it, and for the -1 places).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, width = X.shape
    if not 1 <= k <= n - 1:
        raise ValueError(f"k = {k} must be between 1 and N - 1 = {n - 1}")
    want = min(max(k, depth or k), n - 1)
    X32, inverse = _unit32(X)
    tolerance, bound = d.tie_tolerance(width), _ulp_bound(width)
    keep = min(n - 1, want + 4)  # a margin: the boundary then rarely needs the float64 row
    found = [
        _block(X, inverse, X32, start, min(n, start + block), want, keep, tolerance, bound, device)
        for start in range(0, n, block)
    ]
    depth = max(lists.shape[1] for lists, _ in found)
    return _padded([f[0] for f in found], depth, -1), _padded([f[1] for f in found], depth, None)


def stacked(found: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Several layers' ``search`` results as (L, N, D) lists and starts, at the deepest layer's D."""
    depth = max(lists.shape[1] for lists, _ in found)
    return (
        np.stack([_padded([lists], depth, -1) for lists, _ in found]),
        np.stack([_padded([starts], depth, None) for _, starts in found]),
    )


def _padded(blocks: list[np.ndarray], depth: int, fill) -> np.ndarray:
    """Blocks of rows (rows, D_b) side by side at ``depth`` columns: -1 after each, or (``fill`` None) the
    place itself, a group of one."""
    out = np.empty((sum(len(b) for b in blocks), depth), np.int64)
    out[:] = -1 if fill is not None else np.arange(depth)
    row = 0
    for b in blocks:
        out[row : row + len(b), : b.shape[1]] = b
        row += len(b)
    return out


def _block(X, inverse, X32, start, stop, want, keep, tolerance, bound, device):
    """One block's lists and tie groups (rows × D_b), each row -1 after the tie group at place ``want``."""
    n = len(X)
    rows = np.arange(start, stop)
    similarity = backend.products(X32[start:stop], X32, device, dtype=np.float32)
    similarity[rows - start, rows] = -np.inf
    if keep < n - 1:
        candidates, excluded = kernels.top_candidates(similarity, keep)
    else:
        candidates = np.argsort(-similarity, axis=1, kind="stable")[:, : n - 1]
        excluded = np.full(stop - start, -np.inf)
    # the true value at place ``want`` is within ``bound`` of the float32 one: where even its lowest possible
    # value minus the tolerance clears the excluded candidates' highest possible one, the cut is sure
    kth = -np.partition(-np.take_along_axis(similarity, candidates, axis=1), want - 1, axis=1)[:, want - 1]
    unsure = kth - bound - tolerance <= excluded + bound
    exact = _rescore(X, inverse, rows, candidates, similarity, 2 * bound + tolerance, unsure)
    order = np.lexsort((candidates, -exact), axis=1)
    candidates = np.take_along_axis(candidates, order, axis=1)
    exact = np.take_along_axis(exact, order, axis=1)
    if unsure.any():  # a (near-)tie across the cut: re-scoring all within reach of it decides
        redone, values = _through_ties(X, inverse, rows, similarity, unsure, want, tolerance, bound)
        width = max(keep, redone.shape[1])
        candidates = _padded([candidates], width, -1)
        exact = np.pad(exact, ((0, 0), (0, width - keep)), constant_values=-np.inf)
        candidates[unsure], exact[unsure] = _padded([redone], width, -1), -np.inf
        exact[unsure, : values.shape[1]] = values
    starts = kernels.tie_starts(exact, tolerance)
    return kernels.cut_after_group(kernels.order_groups(candidates, starts), starts, want)


def tied_samples(starts: np.ndarray, k: int, straddling: bool = False) -> int:
    """How many rows of ``starts`` (N, D) have their k-th neighbour tied with another sample (``straddling``:
    with one outside the k nearest, so that the k-NN set depends on tie-breaking)."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = kernels.group_ends(starts, k)
    return int(np.sum(ends > k) if straddling else np.sum(ends - starts[:, k - 1] > 1))


def has_ties(starts: np.ndarray, places: int | None = None) -> bool:
    """Whether any tie group of ``starts`` (..., D) has two members within its first ``places`` places."""
    starts = starts[..., : places or starts.shape[-1]]
    return bool(np.any(starts != np.arange(starts.shape[-1])))


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
