"""Compiled loops of the neighbour metrics: per-sample terms of every (layer_x, layer_y) pair from two
stacks of neighbour lists.

Inputs are (L, N, k) integer neighbour lists, most similar first (``LayerStates.knn``), so no N × N mask
is built: each call costs O(Lx · Ly · N · k), O(k²) per sample for the ordinal metrics. Each returns
(Lx, Ly, N) per-sample values, the form the half-samples reweight; the neighbour-list metrics return integer
counts (shared neighbours, closed cycles, LCS lengths, edit distances), so their sums are exact.
numba compiles each loop once and caches the machine code beside this file, so later processes load it
in milliseconds. Each loop is its reference definition in ``prh.metrics.definitions``; tests hold them equal.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def mutual_knn_counts(knn_x: np.ndarray, knn_y: np.ndarray, k: int) -> np.ndarray:
    """|S_x(i) ∩ S_y(i)| (eq. 11 without the 1 / k)."""
    lx, n, ly = knn_x.shape[0], knn_x.shape[1], knn_y.shape[0]
    out = np.zeros((lx, ly, n), np.int64)
    stamp = np.full(n, -1, np.int64)  # stamp[j] == tag: j is an X-neighbour of the current (layer, sample)
    for a in range(lx):
        for i in range(n):
            tag = a * n + i
            for p in range(k):
                stamp[knn_x[a, i, p]] = tag
            for b in range(ly):
                hits = 0
                for q in range(k):
                    if stamp[knn_y[b, i, q]] == tag:
                        hits += 1
                out[a, b, i] = hits
    return out


@njit(cache=True)
def cycle_knn_counts(knn_x: np.ndarray, knn_y: np.ndarray, k: int) -> np.ndarray:
    """1 when sample i is an X-neighbour of one of its own Y-neighbours (Y then X), else 0."""
    return cycle_knn_rows(knn_x, knn_y, k, np.arange(knn_x.shape[1]))


@njit(cache=True)
def cycle_knn_rows(knn_x: np.ndarray, knn_y: np.ndarray, k: int, rows: np.ndarray) -> np.ndarray:
    """(Lx, Ly, len(rows)) ``cycle_knn_counts`` of the samples ``rows`` only (every row of X is read)."""
    lx, n, ly = knn_x.shape[0], knn_x.shape[1], knn_y.shape[0]
    out = np.zeros((lx, ly, len(rows)), np.int64)
    # members[i] holds the samples j with i among the X-neighbours of j, as stamps: stamp[j] == i + 1
    for a in range(lx):
        reverse_count = np.zeros(n + 1, np.int64)
        for j in range(n):
            for p in range(k):
                reverse_count[knn_x[a, j, p] + 1] += 1
        start = np.cumsum(reverse_count)
        fill = start[:-1].copy()
        members = np.empty(n * k, np.int64)
        for j in range(n):
            for p in range(k):
                i = knn_x[a, j, p]
                members[fill[i]] = j
                fill[i] += 1
        stamp = np.full(n, -1, np.int64)
        for r in range(len(rows)):
            i = rows[r]
            for m in range(start[i], start[i + 1]):
                stamp[members[m]] = i
            for b in range(ly):
                for q in range(k):
                    if stamp[knn_y[b, i, q]] == i:
                        out[a, b, r] = 1
                        break
    return out


@njit(cache=True)
def ordinal_counts(knn_x: np.ndarray, knn_y: np.ndarray, k: int, lcs: bool) -> np.ndarray:
    """LCS length (``lcs``) or edit distance of every sample's two ordered lists. Lists with no element in
    common are settled without the dynamic programme (LCS 0, edit distance k), as most are under the null."""
    lx, n, ly = knn_x.shape[0], knn_x.shape[1], knn_y.shape[0]
    out = np.zeros((lx, ly, n), np.int64)
    previous = np.empty(k + 1, np.int64)
    current = np.empty(k + 1, np.int64)
    # rows may be a subset of the samples (the tied rows of ``layerwise``): stamps span every sample index
    stamp = np.full(max(n, knn_x.max() + 1, knn_y.max() + 1) if n else 0, -1, np.int64)
    for a in range(lx):
        for i in range(n):
            tag = a * n + i
            for p in range(k):
                stamp[knn_x[a, i, p]] = tag
            for b in range(ly):
                shared = False
                for q in range(k):
                    if stamp[knn_y[b, i, q]] == tag:
                        shared = True
                        break
                if not shared:
                    out[a, b, i] = 0 if lcs else k
                    continue
                for j in range(k + 1):
                    previous[j] = 0 if lcs else j
                for p in range(k):
                    current[0] = 0 if lcs else p + 1
                    x = knn_x[a, i, p]
                    for q in range(k):
                        same = 1 if x == knn_y[b, i, q] else 0
                        if lcs:
                            current[q + 1] = max(previous[q + 1], current[q], previous[q] + same)
                        else:
                            current[q + 1] = min(previous[q + 1] + 1, current[q] + 1, previous[q] + 1 - same)
                    previous, current = current, previous
                out[a, b, i] = previous[k]
    return out


@njit(cache=True)
def mutual_kernel_terms(
    knn_x: np.ndarray, values_x: np.ndarray, knn_y: np.ndarray, values_y: np.ndarray, k: int
) -> np.ndarray:
    """sum over j in S_x(i) ∩ S_y(i) of K̄_ij L̄_ij (CKNNA's numerator, eq. 16–17), where
    ``values[l, i, p]`` is the row-centred kernel at (i, knn[l, i, p])."""
    lx, n, ly = knn_x.shape[0], knn_x.shape[1], knn_y.shape[0]
    out = np.zeros((lx, ly, n))
    stamp = np.full(n, -1, np.int64)
    position = np.zeros(n, np.int64)
    for a in range(lx):
        for i in range(n):
            tag = a * n + i
            for p in range(k):
                stamp[knn_x[a, i, p]] = tag
                position[knn_x[a, i, p]] = p
            for b in range(ly):
                total = 0.0
                for q in range(k):
                    j = knn_y[b, i, q]
                    if stamp[j] == tag:
                        total += values_x[a, i, position[j]] * values_y[b, i, q]
                out[a, b, i] = total
    return out


@njit(cache=True)
def top_candidates(similarity: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the columns of the ``keep`` largest values (in no particular order) and the largest value
    left out (-inf when nothing is): one pass with a small sorted buffer, O(columns) per row, where a full
    partition costs several times more."""
    rows, cols = similarity.shape
    chosen = np.empty((rows, keep), np.int64)
    excluded = np.full(rows, -np.inf)
    for r in range(rows):  # serial: after a GEMM, OpenBLAS's spinning threads slow a parallel loop down
        values = np.full(keep, -np.inf)  # descending
        index = np.full(keep, -1, np.int64)
        left_out = -np.inf
        for c in range(cols):
            v = similarity[r, c]
            if index[keep - 1] >= 0 and v <= values[keep - 1]:
                if v > left_out:
                    left_out = v
                continue
            if index[keep - 1] >= 0 and values[keep - 1] > left_out:
                left_out = values[keep - 1]
            p = keep - 1
            while p > 0 and (index[p - 1] < 0 or values[p - 1] < v):
                values[p] = values[p - 1]
                index[p] = index[p - 1]
                p -= 1
            values[p] = v
            index[p] = c
        chosen[r] = index
        excluded[r] = left_out
    return chosen, excluded


@njit(cache=True, fastmath=True)
def permuted_products(A: np.ndarray, B: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """out[a, b] = sum_ij A[a, perm[i], perm[j]] · B[b, i, j]: the Frobenius products of every matrix of ``A``
    with its samples reordered by ``perm`` against every matrix of ``B``, without forming the reordered
    matrices. For each sample i the rows A[·, perm[i]] are gathered once into a small buffer and B[·, i] is
    read once, so memory traffic is one pass over each stack. Accumulates in float64 (float32 inputs give
    exact products); the summation order differs from a GEMM's, so the values agree to rounding."""
    la, n, lb = A.shape[0], A.shape[1], B.shape[0]
    out = np.zeros((la, lb))
    gathered = np.empty((la, n), A.dtype)
    for i in range(n):
        source = perm[i]
        for a in range(la):
            for j in range(n):
                gathered[a, j] = A[a, source, perm[j]]
        for b in range(lb):
            for a in range(la):
                total = 0.0
                for j in range(n):
                    total += gathered[a, j] * B[b, i, j]
                out[a, b] += total
    return out


# --- resamples (half-samples) ---------------------------------------------------------------------------------
# A resample is given by counts (N,): sample j appears counts[j] times. Its points are numbered by sample,
# copies of sample j being points first[j] .. first[j] + counts[j] - 1 (first = exclusive cumulative sum).


@njit(cache=True)
def needed_depth(knn: np.ndarray, counts: np.ndarray, k: int) -> int:
    """How far down the full-sample lists (L, N, depth) a resample's k-NN lists reach: the largest number of
    entries any present sample reads to fill k places, each present neighbour j taking counts[j] of them.
    ``depth + 1`` when some list runs out first."""
    layers, n, depth = knn.shape
    deepest = 0
    for a in range(layers):
        for i in range(n):
            if counts[i] == 0:
                continue
            filled, p = 0, 0
            while filled < k and p < depth:
                filled += counts[knn[a, i, p]]
                p += 1
            if filled < k:
                return depth + 1
            deepest = max(deepest, p)
    return deepest


@njit(cache=True)
def resampled_lists(knn: np.ndarray, counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k-NN lists of a resample's points from the full-sample lists (L, N, depth), most similar first:
    (L, N_points, k) point numbers and (L, N_points, k) the place in the full list each came from. A sample's
    copies share its list and are not in it (they are one point seen twice); copies of a neighbour take one
    place each, in copy order. ``needed_depth`` must not exceed the lists' depth."""
    layers, n, depth = knn.shape
    first = np.zeros(n + 1, np.int64)
    for j in range(n):
        first[j + 1] = first[j] + counts[j]
    points = first[n]
    lists = np.empty((layers, points, k), np.int64)
    places = np.empty((layers, points, k), np.int64)
    for a in range(layers):
        for i in range(n):
            if counts[i] == 0:
                continue
            row = first[i]
            filled, p = 0, 0
            while filled < k:
                j = knn[a, i, p]
                for c in range(min(counts[j], k - filled)):
                    lists[a, row, filled] = first[j] + c
                    places[a, row, filled] = p
                    filled += 1
                p += 1
            for c in range(1, counts[i]):
                lists[a, row + c] = lists[a, row]
                places[a, row + c] = places[a, row]
    return lists, places


@njit(cache=True, fastmath=True)
def weighted_products(A: np.ndarray, B: np.ndarray, w: np.ndarray) -> np.ndarray:
    """out[a, b] = sum_ij w_i w_j A[a, i, j] B[b, i, j]: the Frobenius products of the resampled matrices
    ``A[a][idx][:, idx]`` and ``B[b][idx][:, idx]`` for sample counts ``w``, without forming them. Accumulates in
    float64, as ``permuted_products``."""
    la, n, lb = A.shape[0], A.shape[1], B.shape[0]
    out = np.zeros((la, lb))
    scaled = np.empty((la, n))
    for i in range(n):
        if w[i] == 0:
            continue
        for a in range(la):
            for j in range(n):
                scaled[a, j] = w[j] * A[a, i, j]
        for b in range(lb):
            for a in range(la):
                total = 0.0
                for j in range(n):
                    total += scaled[a, j] * B[b, i, j]
                out[a, b] += w[i] * total
    return out


@njit(cache=True, fastmath=True)
def weighted_sums(A: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of each resampled matrix ``A[a][idx][:, idx]`` (sample counts ``w``), in one pass over A: the row sums at
    each sample, (A[a] w)_i (L, N), and sum_ij w_i w_j A[a, i, j]², ``weighted_products(A, A, w)``'s diagonal
    (L,)."""
    la, n = A.shape[0], A.shape[1]
    rows = np.zeros((la, n))
    squares = np.zeros(la)
    for a in range(la):
        for i in range(n):
            total, square = 0.0, 0.0
            for j in range(n):
                v = float(A[a, i, j])
                total += w[j] * v
                square += w[j] * v * v
            rows[a, i] = total
            squares[a] += w[i] * square
    return rows, squares


@njit(cache=True)
def resampled_values(values: np.ndarray, places: np.ndarray, counts: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """CKNNA's kernel at a resample's lists (``resampled_lists``' places): ``values`` (L, N, depth) is K̄ at
    the full lists, ``shift`` (L, N) the change of each sample's row mean, so the resample's K̄ at point p, a
    copy of sample i, is values[·, i, place] + shift[·, i]."""
    layers, points, k = places.shape
    out = np.empty((layers, points, k))
    for a in range(layers):
        p = 0
        for i in range(counts.shape[0]):
            for _ in range(counts[i]):
                for s in range(k):
                    out[a, p, s] = values[a, i, places[a, p, s]] + shift[a, i]
                p += 1
    return out


# --- ties -------------------------------------------------------------------------------------------------------
# A row's neighbours sorted by similarity fall into tie groups (similarities within ``tie_tolerance`` of the
# group's first); ``starts[.., p]`` is the place where place p's group starts. Ties broken by a uniformly random
# order of the samples put each member of the group at the k-th place into the k nearest with the same
# probability, (k − start) / (end − start); the order is one for all rows and both representations.


@njit(cache=True)
def tie_starts(values: np.ndarray, tolerance: float) -> np.ndarray:
    """(rows, m) descending similarities -> (rows, m) the place each place's tie group starts at."""
    rows, m = values.shape
    out = np.empty((rows, m), np.int64)
    for r in range(rows):
        first = 0
        for p in range(m):
            if values[r, p] < values[r, first] - tolerance:
                first = p
            out[r, p] = first
    return out


@njit(cache=True)
def order_groups(lists: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The lists with each tie group's members in index order (insertion sort: groups are short)."""
    out = lists.copy()
    rows, m = lists.shape
    for r in range(rows):
        for p in range(1, m):
            j = out[r, p]
            q = p
            while q > starts[r, p] and out[r, q - 1] > j:
                out[r, q] = out[r, q - 1]
                q -= 1
            out[r, q] = j
    return out


@njit(cache=True)
def group_ends(starts: np.ndarray, k: int) -> np.ndarray:
    """(rows,) the place after the last member of each row's tie group at place k − 1."""
    rows, m = starts.shape
    out = np.empty(rows, np.int64)
    for r in range(rows):
        end = k
        while end < m and starts[r, end] == starts[r, k - 1]:
            end += 1
        out[r] = end
    return out


@njit(cache=True)
def place_weights(starts: np.ndarray, k: int) -> np.ndarray:
    """(rows, m) the probability that each place's sample is among the k nearest under random tie-breaking:
    1 before the tie group at place k − 1, (k − start) / (end − start) in it, 0 after."""
    rows, m = starts.shape
    out = np.zeros((rows, m))
    ends = group_ends(starts, k)
    for r in range(rows):
        first = starts[r, k - 1]
        for p in range(first):
            out[r, p] = 1.0
        share = (k - first) / (ends[r] - first)
        for p in range(first, ends[r]):
            out[r, p] = share
    return out


@njit(cache=True)
def _log_comb(n: int, r: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)


@njit(cache=True)
def both_tied_chance(a: int, b: int, c: int, rx: int, ry: int) -> float:
    """P(a sample tied in both k-NN sets is in both) under one uniformly random order of the samples: X's
    tie group holds it, a others and c − 1 shared with Y's, of which rx fill X's set; Y's holds it, b others
    and the same c − 1, of which ry fill. With the M = a + b + c − 1 others in uniformly random order, the
    samples before it are a uniformly random subset (of uniformly random size): α of X's own, β of Y's own and
    γ shared, each set of them with probability 1 / ((M + 1) C(M, α + β + γ)); it is in both when
    α + γ < rx and β + γ < ry."""
    m = a + b + c - 1
    total = 0.0
    for g in range(min(c - 1, rx - 1, ry - 1) + 1):
        for x in range(min(a, rx - 1 - g) + 1):
            for y in range(min(b, ry - 1 - g) + 1):
                log = _log_comb(a, x) + _log_comb(b, y) + _log_comb(c - 1, g) - _log_comb(m, x + y + g)
                total += math.exp(log)
    return total / (m + 1)


@njit(cache=True)
def joint_terms(
    knn_x: np.ndarray,
    w_x: np.ndarray,
    values_x: np.ndarray,
    knn_y: np.ndarray,
    w_y: np.ndarray,
    values_y: np.ndarray,
    k: int,
) -> np.ndarray:
    """sum_j P(j ∈ S_x(i) and j ∈ S_y(i)) · values_x · values_y (values of ones: E|S_x(i) ∩ S_y(i)|, the
    mutual k-NN count; K̄ and L̄ at the neighbours: CKNNA's numerator), ties broken by one uniformly random
    order of the samples shared by both representations: the place weights' product, except for a sample tied
    in both sets (``both_tied_chance``)."""
    lx, n, ly = knn_x.shape[0], knn_x.shape[1], knn_y.shape[0]
    out = np.zeros((lx, ly, n))
    stamp = np.full(n, -1, np.int64)
    weight = np.zeros(n)
    value = np.zeros(n)
    for a in range(lx):
        for i in range(n):
            tag = a * n + i
            tied_x, sure_x = 0, 0
            for p in range(knn_x.shape[2]):
                w = w_x[a, i, p]
                if w > 0:
                    j = knn_x[a, i, p]
                    stamp[j], weight[j], value[j] = tag, w, values_x[a, i, p]
                    if w < 1:
                        tied_x += 1
                    else:
                        sure_x += 1
            for b in range(ly):
                tied_y, sure_y, shared = 0, 0, 0
                for q in range(knn_y.shape[2]):
                    w = w_y[b, i, q]
                    if w > 0:
                        if w < 1:
                            tied_y += 1
                            j = knn_y[b, i, q]
                            if stamp[j] == tag and weight[j] < 1:
                                shared += 1
                        else:
                            sure_y += 1
                both = 0.0
                if shared:
                    rx, ry = k - sure_x, k - sure_y
                    both = both_tied_chance(tied_x - shared, tied_y - shared, shared, rx, ry)
                total = 0.0
                for q in range(knn_y.shape[2]):
                    w = w_y[b, i, q]
                    j = knn_y[b, i, q]
                    if w > 0 and stamp[j] == tag:
                        chance = both if (w < 1 and weight[j] < 1) else weight[j] * w
                        total += chance * value[j] * values_y[b, i, q]
                out[a, b, i] = total
    return out


@njit(cache=True)
def tie_key(draw: int, j: int) -> np.uint64:
    """Sample j's place in the random order of the samples of tie draw ``draw``: a reproducible key
    (splitmix64's finaliser), the same for every row and every representation."""
    z = np.uint64(draw) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(j) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


@njit(cache=True)
def _untied(starts: np.ndarray, k: int) -> bool:
    for p in range(k):
        if starts[p] != p:
            return False
    return True


@njit(cache=True)
def broken_ties(knn: np.ndarray, starts: np.ndarray, k: int, draw: int) -> np.ndarray:
    """(L, N, k) lists with every tie group ordered by ``tie_key(draw, j)``: ties broken by one uniformly
    random order of the samples (the group at the k-th place then also decides which of its members are in)."""
    layers, n, depth = knn.shape
    out = np.empty((layers, n, k), np.int64)
    row = np.empty(depth, np.int64)
    keys = np.empty(depth, np.uint64)
    for a in range(layers):
        for i in range(n):
            end = k
            while end < depth and starts[a, i, end] == starts[a, i, k - 1]:
                end += 1
            if end == k and _untied(starts[a, i], k):
                out[a, i] = knn[a, i, :k]  # no tie in the first k places: nothing to reorder
                continue
            for p in range(end):
                j = knn[a, i, p]
                key = tie_key(draw, j)
                q = p
                while q > starts[a, i, p] and keys[q - 1] > key:
                    row[q], keys[q] = row[q - 1], keys[q - 1]
                    q -= 1
                row[q], keys[q] = j, key
            out[a, i] = row[:k]
    return out


@njit(cache=True)
def tie_keys(draw: int, lists: np.ndarray) -> np.ndarray:
    """(rows, m) ``tie_key(draw, lists[i, p])``."""
    rows, m = lists.shape
    out = np.empty((rows, m), np.uint64)
    for i in range(rows):
        for p in range(m):
            out[i, p] = tie_key(draw, lists[i, p])
    return out


@njit(cache=True)
def cut_after_group(lists: np.ndarray, starts: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
    """The lists and starts cut after the tie group at place ``want`` (-1 and the place itself beyond, in each
    row), to the deepest row's length."""
    ends = group_ends(starts, want)
    depth = ends.max()
    out_lists = np.full((lists.shape[0], depth), -1, np.int64)
    out_starts = np.empty((lists.shape[0], depth), np.int64)
    for r in range(lists.shape[0]):
        for p in range(depth):
            if p < ends[r]:
                out_lists[r, p] = lists[r, p]
                out_starts[r, p] = starts[r, p]
            else:
                out_starts[r, p] = p
    return out_lists, out_starts


@njit(cache=True, fastmath=True)
def neighbour_products(X: np.ndarray, lists: np.ndarray) -> np.ndarray:
    """(N, D) x_i · x_j at each place of the lists (N, D); 0 at the -1 places. No N × N matrix."""
    n, depth = lists.shape
    out = np.zeros((n, depth))
    for i in range(n):
        for p in range(depth):
            j = lists[i, p]
            if j >= 0:
                total = 0.0
                for c in range(X.shape[1]):
                    total += X[i, c] * X[j, c]
                out[i, p] = total
    return out
