"""All layer pairs at once: per-layer work done once, then every (layer_x, layer_y) score by batched
array operations; plus permutation nulls and bootstrap intervals built on the same per-layer work.

``LayerStates`` holds one model's prepared layers and computes, on first use and once per layer, what
the metrics need: neighbour lists, neighbour masks, centred Gram matrices, SVD directions. A permuted
view (``states.permuted(perm)``, the features of the samples reordered) derives its states from the
unpermuted ones by re-indexing instead of recomputing them; this is exact for the Gram and SVD states
and for neighbour lists without exactly tied similarities (ties then break by the permuted index).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from prh.metrics import backend
from prh.metrics import definitions as d


class LayerStates:
    """Per-layer work for one model's prepared layer stack, computed lazily and cached."""

    def __init__(
        self, layers, device: str = "cpu", _parent: LayerStates | None = None, _perm: np.ndarray | None = None
    ):
        self.device = backend.resolve_device(device) if _parent is None else _parent.device
        self._parent, self._perm = _parent, _perm
        self._inverse = None if _perm is None else np.argsort(_perm)
        self._cache: dict = {}
        if _parent is not None:  # a permuted view: its layers are only materialised if asked for
            self._layers, self.n, self._count = None, _parent.n, len(_parent)
            return
        self._layers = [np.asarray(a, dtype=np.float64) for a in layers]
        self.n, self._count = self._layers[0].shape[0], len(self._layers)
        for a in self._layers:
            if a.ndim != 2 or a.shape[0] != self.n:
                raise ValueError(f"every layer must be (N={self.n}, D); got {a.shape}")

    @property
    def layers(self) -> list[np.ndarray]:
        if self._layers is None:
            self._layers = [a[self._perm] for a in self._parent.layers]
        return self._layers

    def __len__(self) -> int:
        return self._count

    def permuted(self, perm: np.ndarray) -> LayerStates:
        """The states of the same layers with samples reordered: sample i of the view is ``perm[i]``."""
        return LayerStates(None, _parent=self, _perm=np.asarray(perm))

    def _knn(self, a: np.ndarray, k: int) -> np.ndarray:
        """``definitions.knn_indices`` with the similarity matrix computed on this stack's device."""
        if not 1 <= k <= self.n - 1:
            raise ValueError(f"k = {k} must be between 1 and N - 1 = {self.n - 1}")
        similarity = backend.gram(d.l2_normalize(a), self.device)
        np.fill_diagonal(similarity, -np.inf)
        return d.top_k(similarity, k)

    def _kernel(self, a: np.ndarray, kind: str = "linear", sigma: float = 1.0) -> np.ndarray:
        return d.kernel(a, kind, sigma, gram=backend.gram(a, self.device))

    def _memo(self, key, compute: Callable, derive: Callable):
        if key not in self._cache:
            self._cache[key] = compute() if self._parent is None else derive(self._parent._memo_get(key))
        return self._cache[key]

    def _memo_get(self, key):
        method, *args = key
        return getattr(self, method)(*args)

    def _square(self, stacked: np.ndarray) -> np.ndarray:
        """Re-index (L, N, N) matrices by the permutation on both sample axes (one gather)."""
        flat = (self._perm[:, None] * self.n + self._perm[None, :]).ravel()
        return np.take(stacked.reshape(len(stacked), -1), flat, axis=1).reshape(stacked.shape)

    def _invariant(self, key, compute: Callable):
        """A state that a permutation of the samples leaves unchanged: the parent's value is reused."""
        return self._memo(key, compute, lambda parent: parent)

    def knn(self, k: int) -> np.ndarray:
        """(L, N, k) neighbour lists."""
        return self._memo(
            ("knn", k),
            lambda: np.stack([self._knn(a, k) for a in self.layers]),
            lambda parent: self._inverse[parent[:, self._perm]],
        )

    def masks(self, k: int) -> np.ndarray:
        """(L, N, N) boolean neighbour masks."""
        return self._memo(
            ("masks", k),
            lambda: np.stack([d.neighbour_mask(n) for n in self.knn(k)]),
            lambda parent: self._square(parent),
        )

    def grams(self, kernel: str = "linear", sigma: float = 1.0) -> np.ndarray:
        """(L, N, N) Gram matrices K."""
        return self._memo(
            ("grams", kernel, sigma),
            lambda: np.stack([self._kernel(a, kernel, sigma) for a in self.layers]),
            self._square,
        )

    def centred_grams(self, kernel: str = "linear", sigma: float = 1.0) -> np.ndarray:
        """(L, N, N) doubly centred Gram matrices H K H."""

        def compute():
            grams = self.grams(kernel, sigma).copy()
            grams -= grams.mean(axis=2, keepdims=True)
            grams -= grams.mean(axis=1, keepdims=True)
            return grams

        return self._memo(("centred_grams", kernel, sigma), compute, self._square)

    def centred_norms(self, kernel: str = "linear", sigma: float = 1.0) -> np.ndarray:
        """(L,) Frobenius norms of H K H (sqrt of (n-1)^2 HSIC(K, K)); permutation-invariant."""
        return self._invariant(
            ("centred_norms", kernel, sigma),
            lambda: np.linalg.norm(self.centred_grams(kernel, sigma).reshape(len(self), -1), axis=1),
        )

    def gram_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Diagonals (L, N), row sums (L, N) and totals (L,) of the linear Grams."""

        def compute():
            grams = self.grams()
            return np.diagonal(grams, axis1=1, axis2=2).copy(), grams.sum(axis=2), grams.sum(axis=(1, 2))

        def derive(parent):
            diagonal, rows, totals = parent
            return diagonal[:, self._perm], rows[:, self._perm], totals

        return self._memo(("gram_sums",), compute, derive)

    def unbiased_self(self) -> np.ndarray:
        """(L,) HSIC_1(K, K) of each layer; permutation-invariant."""
        return self._invariant(("unbiased_self",), lambda: np.diagonal(_unbiased_hsic_matrix(self, self)).copy())

    def knn_centred(self, k: int) -> sparse.csr_matrix:
        """(L, N*N) sparse rows: the row-centred kernel K̄ (eq. 12) kept at each sample's k neighbours."""

        def compute():
            rows = []
            for a, mask in zip(self.layers, self.masks(k)):
                gram = self._kernel(a)
                rows.append(sparse.csr_matrix(((gram - gram.mean(axis=1, keepdims=True)) * mask).reshape(1, -1)))
            return sparse.vstack(rows, format="csr")

        def derive(parent):
            flat_perm = (self._perm[:, None] * self.n + self._perm[None, :]).ravel()
            return parent[:, flat_perm]

        return self._memo(("knn_centred", k), compute, derive)

    def masked_kernels(self, k: int) -> list[sparse.csr_matrix]:
        """Per layer, the uncentred linear kernel kept at each sample's k neighbours, sparse (N, N)."""
        return self._memo(
            ("masked_kernels", k),
            lambda: [sparse.csr_matrix(self._kernel(a) * m) for a, m in zip(self.layers, self.masks(k))],
            lambda parent: [m[self._perm][:, self._perm] for m in parent],
        )

    def svd(self, dims: int) -> np.ndarray:
        """(L, N, dims) top singular directions of the standardised features."""
        return self._memo(
            ("svd", dims),
            lambda: np.stack([d.svd_directions(a, dims) for a in self.layers]),
            lambda parent: parent[:, self._perm],
        )


# --- batched scores: (Lx, Ly) from two LayerStates ----------------------------------------------------


def _mutual_knn(sx: LayerStates, sy: LayerStates, k: int) -> np.ndarray:
    knn_x, masks_y = sx.knn(k), sy.masks(k)
    rows = np.arange(sx.n)[:, None]
    hits = np.stack([masks_y[:, rows, knn].sum(axis=(1, 2)) for knn in knn_x])
    return hits / (k * sx.n)


def _cycle_knn(sx: LayerStates, sy: LayerStates, k: int) -> np.ndarray:
    masks_x, knn_y = sx.masks(k), sy.knn(k)
    rows = np.arange(sx.n)[None, :, None]
    # closes[l, i]: i is an X-neighbour of one of its Y-neighbours j, i.e. mask_x[j, i] for some j.
    return np.stack([mask.T[rows, knn_y].any(axis=2).mean(axis=1) for mask in masks_x])


def _ordinal_dp(sx: LayerStates, sy: LayerStates, k: int, lcs: bool) -> np.ndarray:
    """LCS length (``lcs``) or edit distance of every sample's two ordered lists, all layer pairs at once:
    the textbook dynamic programme over (i, j), each step vectorised over (layer_x, layer_y, sample).

    Written without branches: LCS[i][j] = max(LCS[i-1][j], LCS[i][j-1], LCS[i-1][j-1] + same(i, j)) is the
    usual recurrence because neighbouring LCS values differ by at most one; small integer types keep the
    arrays in cache (values never exceed k)."""
    knn_x, knn_y = sx.knn(k), sy.knn(k)
    dtype = np.int8 if k < 127 else np.int32
    # same[i, j, lx, ly, n]: the i-th X-neighbour equals the j-th Y-neighbour (contiguous per (i, j))
    same = (np.moveaxis(knn_x, 2, 0)[:, None, :, None, :] == np.moveaxis(knn_y, 2, 0)[None, :, None, :, :]).astype(
        dtype
    )
    shape = same.shape[2:]
    previous = [np.full(shape, 0 if lcs else j, dtype=dtype) for j in range(k + 1)]
    for i in range(k):
        current = [np.full(shape, 0 if lcs else i + 1, dtype=dtype)]
        for j in range(k):
            if lcs:
                value = np.maximum(np.maximum(previous[j + 1], current[j]), previous[j] + same[i, j])
            else:
                value = np.minimum(np.minimum(previous[j + 1], current[j]) + 1, previous[j] + 1 - same[i, j])
            current.append(value)
        previous = current
    out = previous[k].mean(axis=2, dtype=np.float64)  # over samples
    return out / k if lcs else 1.0 - out / k


def _cka(sx: LayerStates, sy: LayerStates, kernel: str = "linear", sigma: float = 1.0) -> np.ndarray:
    """<HKH, HLH> = <HKH, L> (H is idempotent), so only X's Grams are centred; Y's are used as they are,
    which keeps a permuted Y to one re-indexing of its Grams."""
    gx = sx.centred_grams(kernel, sigma).reshape(len(sx), -1)
    gy = sy.grams(kernel, sigma).reshape(len(sy), -1)
    cross = backend.products(gx, gy, sx.device)
    return cross / np.outer(sx.centred_norms(kernel, sigma), sy.centred_norms(kernel, sigma))


def _unbiased_hsic_matrix(sx: LayerStates, sy: LayerStates) -> np.ndarray:
    """HSIC_1 (Song et al. 2012) of every layer pair, in O(N^2) each. With K~ = K - diag(K):
    tr(K~L~) = <K, L> - diag(K)·diag(L), 1'K~1 = 1'K1 - tr K, 1'K~L~1 = (K~1)·(L~1)."""
    n = sx.n
    dx, rx, tx = sx.gram_sums()
    dy, ry, ty = sy.gram_sums()
    trace = backend.products(sx.grams().reshape(len(sx), -1), sy.grams().reshape(len(sy), -1), sx.device) - dx @ dy.T
    sums = np.outer(tx - dx.sum(axis=1), ty - dy.sum(axis=1))
    rows = (rx - dx) @ (ry - dy).T
    return (trace + sums / ((n - 1) * (n - 2)) - 2.0 * rows / (n - 2)) / (n * (n - 3))


def _unbiased_cka(sx: LayerStates, sy: LayerStates) -> np.ndarray:
    return _unbiased_hsic_matrix(sx, sy) / np.sqrt(np.outer(sx.unbiased_self(), sy.unbiased_self()))


def _sparse_hsic_unbiased(A: sparse.csr_matrix, B: sparse.csr_matrix) -> float:
    """``definitions.hsic_unbiased`` for sparse kernels with zero diagonals, in O(nnz)."""
    n = A.shape[0]
    trace = A.multiply(B.T).sum()
    ones = np.asarray(A.sum(axis=0)).ravel() @ np.asarray(B.sum(axis=1)).ravel()
    value = trace + A.sum() * B.sum() / ((n - 1) * (n - 2)) - 2.0 * ones / (n - 2)
    return float(value / (n * (n - 3)))


def _cknna(sx: LayerStates, sy: LayerStates, k: int, variant: str = "paper") -> np.ndarray:
    if variant == "paper":
        mx, my = sx.knn_centred(k), sy.knn_centred(k)
        cross = (mx @ my.T).toarray()
        self_x = np.asarray(mx.multiply(mx).sum(axis=1)).ravel()
        self_y = np.asarray(my.multiply(my).sum(axis=1)).ravel()
        return cross / np.sqrt(np.outer(self_x, self_y))
    if variant == "authors":
        kx, ky = sx.masked_kernels(k), sy.masked_kernels(k)
        masks_x = [sparse.csr_matrix(m) for m in sx.masks(k)]
        masks_y = [sparse.csr_matrix(m) for m in sy.masks(k)]
        self_x = [_sparse_hsic_unbiased(a, a) for a in kx]
        self_y = [_sparse_hsic_unbiased(b, b) for b in ky]
        out = np.empty((len(sx), len(sy)))
        for i, (a, ma) in enumerate(zip(kx, masks_x)):
            for j, (b, mb) in enumerate(zip(ky, masks_y)):
                cross = _sparse_hsic_unbiased(a.multiply(mb).tocsr(), b.multiply(ma).tocsr())
                out[i, j] = cross / np.sqrt(self_x[i] * self_y[j])
        return out
    raise ValueError(f"cknna variant '{variant}' is not one of paper, authors")


def _svcca(sx: LayerStates, sy: LayerStates, dims: int) -> np.ndarray:
    cross = np.einsum("anp,bnq->abpq", sx.svd(dims), sy.svd(dims))
    return np.linalg.svd(cross, compute_uv=False).mean(axis=-1)


# --- bootstrap: the metric on resampled samples, at one layer pair ------------------------------------


def _terms_bootstrap(terms: Callable) -> Callable:
    """Metrics that are a mean of per-sample terms: resample the terms (neighbourhoods from all samples)."""

    def bootstrap(X, Y, indices, **params):
        values = terms(X, Y, **params)
        return values[indices].mean(axis=1)

    return bootstrap


def _cknna_bootstrap(X, Y, indices, k, variant="paper"):
    if variant != "paper":
        return _recompute_bootstrap(d.cknna)(X, Y, indices, k=k, variant=variant)
    kl, kk, ll = d.cknna_row_terms(X, Y, k)
    return kl[indices].sum(1) / np.sqrt(kk[indices].sum(1) * ll[indices].sum(1))


def _gram_bootstrap(unbiased: bool) -> Callable:
    """Kernel metrics on resampled samples: the resampled Gram is the full Gram re-indexed."""

    def bootstrap(X, Y, indices, kernel="linear", sigma=1.0):
        K, L = d.kernel(X, kernel, sigma), d.kernel(Y, kernel, sigma)
        values = []
        for idx in indices:
            Kb, Lb = K[np.ix_(idx, idx)], L[np.ix_(idx, idx)]
            if unbiased:
                values.append(
                    d.hsic_unbiased_fast(Kb, Lb) / np.sqrt(d.hsic_unbiased_fast(Kb, Kb) * d.hsic_unbiased_fast(Lb, Lb))
                )
            else:
                Kb = Kb - Kb.mean(0) - Kb.mean(1)[:, None] + Kb.mean()
                Lb = Lb - Lb.mean(0) - Lb.mean(1)[:, None] + Lb.mean()
                values.append((Kb * Lb).sum() / np.sqrt((Kb * Kb).sum() * (Lb * Lb).sum()))
        return np.array(values)

    return bootstrap


def _recompute_bootstrap(pairwise: Callable) -> Callable:
    def bootstrap(X, Y, indices, **params):
        return np.array([pairwise(X[idx], Y[idx], **params) for idx in indices])

    return bootstrap


# --- registry ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A metric: its reference definition, defaults, batched all-layer-pairs version, and bootstrap."""

    name: str
    pairwise: Callable[..., float]
    layerwise: Callable[..., np.ndarray]
    bootstrap: Callable[..., np.ndarray]
    defaults: dict = field(default_factory=dict)
    symmetric: bool = True
    uses_neighbours: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("mutual_knn", d.mutual_knn, _mutual_knn, _terms_bootstrap(d.mutual_knn_terms), {"k": 10}),
        Metric("cycle_knn", d.cycle_knn, _cycle_knn, _terms_bootstrap(d.cycle_knn_terms), {"k": 10}, symmetric=False),
        Metric(
            "lcs_knn",
            d.lcs_knn,
            lambda x, y, k: _ordinal_dp(x, y, k, True),
            _terms_bootstrap(d.lcs_knn_terms),
            {"k": 10},
        ),
        Metric(
            "edit_distance_knn",
            d.edit_distance_knn,
            lambda x, y, k: _ordinal_dp(x, y, k, False),
            _terms_bootstrap(d.edit_distance_knn_terms),
            {"k": 10},
        ),
        Metric(
            "cka",
            lambda X, Y, kernel="linear", sigma=1.0: d.cka(X, Y, kernel, sigma),
            _cka,
            _gram_bootstrap(unbiased=False),
            {"kernel": "linear", "sigma": 1.0},
            uses_neighbours=False,
        ),
        Metric(
            "unbiased_cka", d.unbiased_cka, _unbiased_cka, _gram_bootstrap(unbiased=True), {}, uses_neighbours=False
        ),
        Metric("cknna", d.cknna, _cknna, _cknna_bootstrap, {"k": 10, "variant": "paper"}),
        Metric("svcca", d.svcca, _svcca, _recompute_bootstrap(d.svcca), {"dims": 10}, uses_neighbours=False),
    ]
}


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        raise KeyError(f"unknown metric '{name}'; known: {', '.join(sorted(METRICS))}")
    return METRICS[name]


def resolve_params(name: str, params: dict) -> dict:
    """The metric's defaults updated with ``params``; unknown parameter names are an error."""
    metric = get_metric(name)
    unknown = set(params) - set(metric.defaults)
    if unknown:
        raise TypeError(f"metric '{name}' takes no parameter(s) {sorted(unknown)}; it takes {sorted(metric.defaults)}")
    return metric.defaults | params


def layer_scores(metric: str, Xs, Ys, *, device: str = "cpu", **params) -> np.ndarray:
    """Score every layer of ``Xs`` against every layer of ``Ys`` -> (Lx, Ly).

    ``Xs``, ``Ys``: layer stacks ((L, N, D) arrays or lists of (N, D_l) arrays) or ``LayerStates``. Each
    layer's neighbours, Gram matrix or SVD is computed once, then all pairs are scored in batch. ``device``
    (for stacks given as arrays): where the matrix products run, see ``prh.metrics.backend``.
    """
    params = resolve_params(metric, params)
    sx = Xs if isinstance(Xs, LayerStates) else LayerStates(list(Xs), device)
    sy = Ys if isinstance(Ys, LayerStates) else LayerStates(list(Ys), device)
    if sx.n != sy.n:
        raise ValueError(f"X and Y must describe the same samples: {sx.n} rows vs {sy.n}")
    return get_metric(metric).layerwise(sx, sy, **params)


def best_of(scores: np.ndarray) -> tuple[float, int, int]:
    """The best score of a (Lx, Ly) matrix and its (layer_x, layer_y); ties to the first in row-major order."""
    i, j = np.unravel_index(np.argmax(np.where(np.isnan(scores), -np.inf, scores)), scores.shape)
    return float(scores[i, j]), int(i), int(j)


def permutation_null(metrics: dict[str, dict], sx: LayerStates, sy: LayerStates, permutations: int, seed: int) -> dict:
    """For each metric, the best-over-layer-pairs score with Y's samples shuffled, ``permutations`` times.

    The max over layer pairs inflates chance scores, so the null takes the same max. Permutations are drawn
    from ``seed`` and shared by all metrics. Returns ``{metric: (permutations,) array}``.
    """
    rng = np.random.default_rng(seed)
    null = {name: np.empty(permutations) for name in metrics}
    for r in range(permutations):
        shuffled = sy.permuted(rng.permutation(sy.n))
        for name, params in metrics.items():
            null[name][r] = np.nanmax(layer_scores(name, sx, shuffled, **params))
    return null


def bootstrap_values(metric: str, X: np.ndarray, Y: np.ndarray, resamples: int, seed: int, **params) -> np.ndarray:
    """The metric of one layer pair on ``resamples`` bootstrap resamples of the samples (seeded).

    Metrics that are means of per-sample terms (the k-NN family, CKNNA's row sums) resample those terms,
    neighbourhoods staying those of the full sample; kernel metrics re-index the full Gram matrix; SVCCA and
    the authors' CKNNA are recomputed on the resampled rows."""
    params = resolve_params(metric, params)
    indices = np.random.default_rng(seed).integers(0, len(X), size=(resamples, len(X)))
    return get_metric(metric).bootstrap(X, Y, indices, **params)
