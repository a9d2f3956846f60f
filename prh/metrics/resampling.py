"""Half-sample intervals of the best score over layer pairs, with the layer pair chosen again in each
half-sample.

A half-sample is N/2 of the N samples drawn without replacement (seeded, the same for every pair of a run,
``half_samples``). Each is scored as a dataset of its own: every layer pair is scored on it and the best is
taken, so the interval carries the choice of layers, as the full-sample best does (choosing on the same data
inflates it). The interval (``half_sample_interval``) is the observed best plus the quantiles of the
half-sample values' deviations from their mean: half of the samples without replacement vary around the full
sample as much as the full sample varies around the population (σ²(1/m − 1/N) = σ²/N at m = N/2), and the
centring removes the shift of scores that depend on N (neighbourhoods at half the density, CCA fitted on
fewer samples). The bootstrap with replacement it replaces put copies of a sample into neighbour lists and
covered the population best in 36 of 100 replications for edit distance, 0 for CCA (the table in docs/default-run.md).

The engine scores any resample given as counts w (N,), sample i appearing w_i times (a half-sample: 0 or 1).
What each metric recomputes on it:

* neighbour metrics (the k-NN family, CKNNA): each point's k nearest neighbours among the resample's other
  points. Copies of one sample (when w_i > 1) are one point seen twice and never each other's neighbours;
  copies of a neighbour take one place each, in copy order; a cycle (cycle k-NN) closes at any copy of its
  start. They come from the full-sample lists (``kernels.resampled_lists``), which the state job makes long
  enough for every resample of the run. CKNNA's kernel is row-centred on the resample (above
  ``dense_limit``, where no Gram matrix is kept, it keeps the full sample's row means).
* CKA, unbiased CKA and the RV coefficient: the resampled Gram matrices `K[idx][:, idx]`, written with counts.
* Procrustes, CCA and PWCCA: recomputed from the resampled features `X[idx] = U[idx] σ Vᵀ`.
* SVCCA: its directions recomputed on the resample's rows (``LayerStates.svd_on``; the state job computes
  them once per model for the run's half-samples).
* RSA keeps the full sample's ranks (re-ranking costs N² log N per layer and resample) and correlates them
  over the resample's pairs of points.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from prh.metrics import definitions as d
from prh.metrics import kernels
from prh.metrics.dense import DENSE_LIMIT, check_dense_metrics
from prh.metrics.layerwise import METRICS, LayerStates, resolve_params


def half_samples(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n // 2) sorted sample indices, each row half the samples drawn without replacement
    (seeded): the same for every pair of a run."""
    rng = np.random.default_rng(seed)
    return np.sort(np.stack([rng.permutation(n)[: n // 2] for _ in range(resamples)]), axis=1)


def half_sample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) counts, 1 for each sample in each half-sample of ``half_samples`` and 0 otherwise."""
    counts = np.zeros((resamples, n), dtype=np.int64)
    np.put_along_axis(counts, half_samples(n, resamples, seed), 1, axis=1)
    return counts


def half_sample_interval(observed: float, values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` interval of a score from its half-sample values: the observed score plus the quantiles
    of the values' deviations from their mean. Half of N samples drawn without replacement spread around
    the full sample as the full sample spreads around the population (a mean's variance σ²(1/m − 1/N) is
    σ²/N at m = N/2); centring on their mean removes the shift of scores that depend on N (k-NN at half the
    density, CCA over fewer samples)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = np.quantile(values - values.mean(), [(1 - level) / 2, (1 + level) / 2])
    return observed + low, observed + high


def covers(knn: np.ndarray, counts: np.ndarray, k: int) -> bool:
    """Whether full-sample lists (L, N, depth) give every resample in ``counts`` (R, N) k neighbours per point."""
    return max(kernels.needed_depth(knn, w, k) for w in counts) <= knn.shape[2]


def deeper(depth: int, k: int, n: int) -> int:
    """The next depth to search lists at when they fall short: 4k first, then doubled, at most N − 1."""
    return min(max(4 * k, 2 * depth), n - 1)


def covering_depth(states: LayerStates, k: int, counts: np.ndarray) -> int:
    """The depth to search neighbour lists at (``states.neighbours(depth)``) so that they give every resample
    in ``counts`` (R, N) k neighbours per point: the stored lists' depth, or deeper lists (4k, doubled as
    needed) computed from the layers when the states hold them."""
    depth = states.knn_depth()
    while True:
        if depth >= k and covers(states.neighbours(depth)[0][:, :, :depth], counts, k):
            return depth
        if not states.has_layers or depth >= states.n - 1:
            raise ValueError(
                f"{states.source}: neighbour lists of depth {depth} are too short for this run's bootstrap "
                f"resamples at k = {k}; rerun its alignment_state job with the run's bootstrap settings"
            )
        depth = deeper(depth, k, states.n)


def covering_lists(states: LayerStates, k: int, counts: np.ndarray) -> np.ndarray:
    """Full-sample neighbour lists (L, N, depth) deep enough for every resample in ``counts`` (``covering_depth``)."""
    depth = covering_depth(states, k, counts)
    return states.neighbours(depth)[0][:, :, :depth]


class _Side:
    """One model's states on one resample, built once and shared by every metric (and both directions)."""

    def __init__(self, states: LayerStates, counts: np.ndarray, w: np.ndarray, lists: dict):
        self.states, self.counts, self.w, self.lists_of = states, counts, w, lists  # k -> covering lists
        self.n = int(counts.sum())  # the resample's points
        self.sample = np.repeat(np.arange(states.n), counts)  # the sample of each point
        self.first = (np.cumsum(counts) - counts)[self.sample]  # the first copy of each point's sample
        self._cache: dict = {}

    def _memo(self, key, compute: Callable):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _from_arrays(self, **arrays) -> LayerStates:
        return LayerStates.from_arrays(self.n, len(self.states), **arrays, source=f"a resample of {self.states.source}")

    def lists(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The points' k-NN lists and the places in the full lists they came from (``kernels.resampled_lists``)."""
        return self._memo(("lists", k), lambda: kernels.resampled_lists(self.lists_of[k], self.counts, k))

    def neighbours(self, k: int, values: bool) -> LayerStates:
        """The points' k-NN lists (and with ``values`` CKNNA's kernel at them, row-centred on the resample)."""

        def compute():
            lists, places = self.lists(k)
            if not values:
                return self._from_arrays(knn=lists)
            # K̄ at the full lists is K_ij − m_i; on the resample it is K_ij − m^w_i, m^w_i = (K w)_i / N
            shift = np.zeros((len(self.states), self.states.n))  # without Grams (N > dense_limit): m_i kept
            if self.states.has_grams:
                shift = self.states.gram_sums()[1] / self.states.n - self.gram_sums()[0] / self.n
            full = self.states.knn_values(self.lists_of[k].shape[2])
            return self._from_arrays(knn=lists, knn_values=kernels.resampled_values(full, places, self.counts, shift))

        return self._memo(("neighbours", k, values), compute)

    def gram_sums(self, kernel: str = "linear", sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Row sums (K w)_i (L, N) and ⟨K_w, K_w⟩ (L,) of the resampled Grams ``K_w = K[idx][:, idx]``."""
        return self._memo(
            ("gram_sums", kernel, sigma),
            lambda: kernels.weighted_sums(self.states.compact_grams(kernel, sigma), self.w),
        )

    def gram_terms(self, kernel: str = "linear", sigma: float = 1.0) -> tuple:
        """Row sums (K w)_i, totals 1ᵀK_w1, diagonals and ⟨K_w, K_w⟩ of the resampled Grams."""
        rows, squares = self.gram_sums(kernel, sigma)
        return rows, rows @ self.w, self.states.gram_sums(kernel, sigma)[0], squares

    def svd(self, dims: int) -> LayerStates:
        """SVCCA's directions recomputed on the resampled rows (``LayerStates.svd_on``)."""
        return self._memo(("svd", dims), lambda: self._from_arrays(svd=self.states.svd_on(dims, self.sample)))

    def bases(self) -> LayerStates:
        """Thin SVDs of the resampled features: ``X[idx] − mean = C Vᵀ`` with ``C = (U σ)[idx] − mean``, and the SVD
        C = U' σ' V''ᵀ gives U' σ' (V V'')ᵀ."""

        def compute():
            bases = []
            for u, s, v in self.states.bases():
                u2, s2, v2 = d.orthonormal_basis((u * s)[self.sample])
                bases.append((u2, s2, v @ v2))
            return self._from_arrays(bases=bases)

        return self._memo(("bases",), compute)


class Resample:
    """One resample of a model pair, X's and Y's states on it (``_Side``), shared by every metric."""

    def __init__(self, x: _Side, y: _Side, products: dict | None = None, flipped: bool = False):
        self.x, self.y, self.w, self.n = x, y, x.w, x.n
        self._products = {} if products is None else products  # (kernel, sigma) -> (L_first, L_second)
        self._flipped = flipped  # Y against X: the products are held the other way round

    @classmethod
    def of(cls, sx: LayerStates, sy: LayerStates, counts: np.ndarray, lists: dict) -> Resample:
        """``lists``: (side, k) -> full-sample lists that cover this run's resamples (``covering_lists``)."""
        counts, w = counts.astype(np.int64), counts.astype(np.float64)
        sides = [_Side(s, counts, w, {k: v for (side, k), v in lists.items() if side == name})
                 for name, s in (("x", sx), ("y", sy))]  # fmt: skip
        return cls(*sides)

    def reversed(self) -> Resample:
        """The same resample with Y against X (an asymmetric metric's reverse direction), sharing its work."""
        return Resample(self.y, self.x, self._products, not self._flipped)

    def gram_products(self, kernel: str = "linear", sigma: float = 1.0) -> np.ndarray:
        """(Lx, Ly) ⟨K_w, L_w⟩ of every layer pair."""
        if (kernel, sigma) not in self._products:
            first, second = (self.y, self.x) if self._flipped else (self.x, self.y)
            self._products[kernel, sigma] = kernels.weighted_products(
                first.states.compact_grams(kernel, sigma), second.states.compact_grams(kernel, sigma), self.w
            )
        products = self._products[kernel, sigma]
        return products.T if self._flipped else products


# --- each metric on one resample: (Lx, Ly) scores of every layer pair ------------------------------------


def _cycle(pair: Resample, k: int):
    """Cycle k-NN on the resample: the cycle from a point closes when it returns to any copy of its own sample
    (copies are one point), so the lists name each neighbour by its sample's first copy."""

    def by_sample(side):
        return side.first[side.lists(k)[0]]

    scores = kernels.cycle_knn_counts(by_sample(pair.x), by_sample(pair.y), k)
    return scores[:, :, pair.x.first].mean(axis=2)  # every copy closes as its first copy does


def _neighbour(name: str, values: bool = False) -> Callable:
    def score(pair: Resample, **params):
        k = params["k"]
        return METRICS[name].layerwise(pair.x.neighbours(k, values), pair.y.neighbours(k, values), **params)

    return score


def _hsic(pair: Resample, unbiased: bool, kernel: str = "linear", sigma: float = 1.0):
    """HSIC of every resampled layer pair and of each layer with itself, from counts (``_cka`` and
    ``_unbiased_hsic_matrix`` of ``layerwise`` on K_w, with N points)."""
    w, n = pair.w, float(pair.n)
    rx, tx, dx, sx = pair.x.gram_terms(kernel, sigma)
    ry, ty, dy, sy = pair.y.gram_terms(kernel, sigma)
    both = pair.gram_products(kernel, sigma)
    if not unbiased:  # tr(H K H L) = <K, L> − 2/n (K1)·(L1) + (1ᵀK1)(1ᵀL1)/n²
        cross = both - (2.0 / n) * (w * rx) @ ry.T + np.outer(tx, ty) / n**2
        self_x = sx - (2.0 / n) * (w * rx * rx).sum(axis=1) + tx**2 / n**2
        self_y = sy - (2.0 / n) * (w * ry * ry).sum(axis=1) + ty**2 / n**2
        return cross, self_x, self_y

    def unbiased(products, d1, d2, r1, r2, t1, t2):  # K~ = K_w − diag: only a point's own entry is zeroed
        trace = products - (w * d1) @ d2.T
        sums = np.outer(t1 - d1 @ w, t2 - d2 @ w)
        rows = (w * (r1 - d1)) @ (r2 - d2).T
        return d.unbiased_hsic(trace, sums, rows, n)

    def unbiased_self(squares, d1, r1, t1):  # the diagonal of unbiased(⟨K_a, K_b⟩, ...) without the cross terms
        trace = squares - (w * d1 * d1).sum(axis=1)
        rows = (w * (r1 - d1) ** 2).sum(axis=1)
        return d.unbiased_hsic(trace, (t1 - d1 @ w) ** 2, rows, n)

    cross = unbiased(both, dx, dy, rx, ry, tx, ty)
    return cross, unbiased_self(sx, dx, rx, tx), unbiased_self(sy, dy, ry, ty)


def _cka(pair: Resample, kernel: str = "linear", sigma: float = 1.0):
    cross, self_x, self_y = _hsic(pair, False, kernel, sigma)
    return cross / np.sqrt(np.outer(self_x, self_y))


def _unbiased_cka(pair: Resample):
    cross, self_x, self_y = _hsic(pair, True)
    return cross / np.sqrt(np.outer(self_x, self_y))


def _rv(pair: Resample, variant: str = "classic"):
    """⟨K_c, L_c⟩ / (‖K_c‖ ‖L_c‖) of the resampled Grams; the modified RV drops the centred diagonals,
    K_c[p, p] = K_ii − 2 (K_w 1)_i / n + 1ᵀK_w1 / n² at a copy p of sample i."""
    cross, self_x, self_y = _hsic(pair, False)
    if variant == "modified":
        w, n = pair.w, float(pair.n)
        rx, tx, dx, _ = pair.x.gram_terms()
        ry, ty, dy, _ = pair.y.gram_terms()
        cx, cy = dx - 2.0 * rx / n + tx[:, None] / n**2, dy - 2.0 * ry / n + ty[:, None] / n**2
        cross = cross - (w * cx) @ cy.T
        self_x, self_y = self_x - (w * cx * cx).sum(axis=1), self_y - (w * cy * cy).sum(axis=1)
    return cross / np.sqrt(np.outer(self_x, self_y))


def _rsa(pair: Resample):
    """Pearson correlation of the two standardised rank matrices over the resample's pairs of distinct
    points, a pair of samples (i, j) counted w_i w_j times (copies of one sample: a zero entry, as its rank
    matrix's diagonal)."""
    w = pair.w
    rx, ry = pair.x.states.compact_ranks(), pair.y.states.compact_ranks()
    pairs = (w.sum() ** 2 - (w**2).sum()) / 2
    (rows_x, squares_x), (rows_y, squares_y) = kernels.weighted_sums(rx, w), kernels.weighted_sums(ry, w)
    mx, my = rows_x @ w / 2 / pairs, rows_y @ w / 2 / pairs  # sums over i < j of w_i w_j R_ij, as means
    cross = kernels.weighted_products(rx, ry, w) / 2 / pairs - np.outer(mx, my)
    vx, vy = squares_x / 2 / pairs - mx**2, squares_y / 2 / pairs - my**2
    return cross / np.sqrt(np.outer(vx, vy))


def _svcca(pair: Resample, dims: int):
    return METRICS["svcca"].layerwise(pair.x.svd(dims), pair.y.svd(dims), dims=dims)


def _basis(name: str) -> Callable:
    def score(pair: Resample, **params):
        return METRICS[name].layerwise(pair.x.bases(), pair.y.bases(), **params)

    return score


def _authors_cknna(pair: Resample, k: int, variant: str = "paper"):
    """The authors' CKNNA of every layer pair on the resampled Grams, copies kept out of neighbourhoods."""
    sample = pair.x.sample
    copies = sample[:, None] == sample[None, :]
    kx = [g[np.ix_(sample, sample)] for g in pair.x.states.grams()]
    ky = [g[np.ix_(sample, sample)] for g in pair.y.states.grams()]
    return np.array([[_authors_cknna_of_grams(a, b, k, copies) for b in ky] for a in kx])


def _authors_cknna_of_grams(K: np.ndarray, L: np.ndarray, k: int, copies: np.ndarray) -> float:
    """``definitions.cknna(variant="authors")`` from Gram matrices: neighbours by the cosine of the Gram,
    never among the ``copies`` (N, N) of a point."""

    def mask(G):
        norms = np.sqrt(np.maximum(np.diag(G), np.finfo(float).tiny))
        similarity = np.where(copies, -np.inf, G / np.outer(norms, norms))
        return d.neighbour_mask(d.top_k(similarity, k))

    mask_x, mask_y = mask(K), mask(L)
    alpha = mask_x & mask_y
    return d._ratio(
        d.hsic_unbiased(alpha * K, alpha * L),
        d.hsic_unbiased(mask_x * K, mask_x * K),
        d.hsic_unbiased(mask_y * L, mask_y * L),
    )


def _cknna(pair: Resample, k: int, variant: str = "paper"):
    if variant == "authors":
        return _authors_cknna(pair, k)
    return _neighbour("cknna", values=True)(pair, k=k, variant=variant)


RESAMPLED: dict[str, Callable] = {
    "mutual_knn": _neighbour("mutual_knn"),
    "cycle_knn": _cycle,
    "lcs_knn": _neighbour("lcs_knn"),
    "edit_distance_knn": _neighbour("edit_distance_knn"),
    "cknna": _cknna,
    "cka": _cka,
    "unbiased_cka": _unbiased_cka,
    "svcca": _svcca,
    "procrustes": _basis("procrustes"),
    "rsa": _rsa,
    "rv_coefficient": _rv,
    "cca": _basis("cca"),
    "pwcca": _basis("pwcca"),
}


def resampled_scores(metric: str, pair: Resample, **params) -> np.ndarray:
    """(Lx, Ly) scores of every layer pair on one resample."""
    return RESAMPLED[metric](pair, **resolve_params(metric, params))


def half_sample_best(
    metrics: dict[str, dict],
    sx: LayerStates,
    sy: LayerStates,
    resamples: int,
    seed: int,
    reverse: bool = False,
    dense_limit: int = DENSE_LIMIT,
) -> dict[str, np.ndarray]:
    """For each metric, the best score over layer pairs on each of ``resamples`` half-samples (seeded,
    ``half_samples``): ``{metric: (resamples,) array}``, the layer pair chosen again in every half-sample
    (``half_sample_interval`` turns them into an interval). With
    ``reverse``, also ``{(metric, "reverse"): ...}`` of Y against X for each asymmetric metric, from the same
    resamples and the same per-model work. Above ``dense_limit`` samples, a metric whose resamples need N × N
    matrices is refused."""
    metrics = {name: resolve_params(name, params) for name, params in metrics.items()}
    check_dense_metrics(
        metrics, sx.n, dense_limit, resamples=resamples, where="half_sample_best: ", setting="dense_limit"
    )
    counts = half_sample_counts(sx.n, resamples, seed)
    ks = {p["k"] for name, p in metrics.items() if "k" in p and p.get("variant") != "authors"}
    lists = {(side, k): covering_lists(states, k, counts) for side, states in (("x", sx), ("y", sy)) for k in ks}
    asymmetric = [name for name, params in metrics.items() if reverse and not METRICS[name].is_symmetric(params)]
    best = {name: np.empty(resamples) for name in metrics} | {(n, "reverse"): np.empty(resamples) for n in asymmetric}
    for r, w in enumerate(counts):
        pair = Resample.of(sx, sy, w, lists)
        for name, params in metrics.items():
            best[name][r] = np.nanmax(RESAMPLED[name](pair, **params))
        for name in asymmetric:
            best[name, "reverse"][r] = np.nanmax(RESAMPLED[name](pair.reversed(), **metrics[name]))
    return best


def half_sample_values(metric: str, X: np.ndarray, Y: np.ndarray, resamples: int, seed: int, **params) -> np.ndarray:
    """The half-sample values of one layer pair given as (N, D) arrays."""
    return half_sample_best({metric: params}, LayerStates([X]), LayerStates([Y]), resamples, seed)[metric]
