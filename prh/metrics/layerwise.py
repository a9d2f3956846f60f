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

from prh.metrics import backend, kernels
from prh.metrics import definitions as d


class LayerStates:
    """Per-layer work for one model's prepared layer stack, computed lazily and cached.

    Built from the layers (``LayerStates(layers)``), or from the arrays of a per-model state store
    (``LayerStates.from_arrays``, see ``prh.states``): then the pair's scores need only the cross terms.
    """

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
        if layers is None:  # filled by from_arrays
            self._layers = None
            return
        self._layers = [np.asarray(a, dtype=np.float64) for a in layers]
        self.n, self._count = self._layers[0].shape[0], len(self._layers)
        for a in self._layers:
            if a.ndim != 2 or a.shape[0] != self.n:
                raise ValueError(f"every layer must be (N={self.n}, D); got {a.shape}")

    @classmethod
    def from_arrays(
        cls,
        n: int,
        count: int,
        *,
        knn: np.ndarray | None = None,
        knn_values: np.ndarray | None = None,
        grams: np.ndarray | None = None,
        svd: np.ndarray | None = None,
        centred_norms: np.ndarray | None = None,
        unbiased_self: np.ndarray | None = None,
        rsa_ranks: np.ndarray | None = None,
        bases: list | None = None,
        device: str = "cpu",
        source: str = "state store",
    ) -> LayerStates:
        """States computed elsewhere: ``knn`` (L, N, k) neighbour lists, ``knn_values`` (L, N, k) the row-centred
        kernel at them, ``grams`` (L, N, N) linear Grams, ``svd`` (L, N, dims) directions, the (L,) Gram
        invariants ``centred_norms`` and ``unbiased_self``, RSA's ``rsa_ranks`` (L, N, N) and the per-layer
        ``bases`` (U, σ, V). What is absent cannot be asked for (the error names ``source``)."""
        states = cls(None, device)
        states.n, states._count, states._source = n, count, source
        if knn is not None:
            states._cache[("knn", knn.shape[2])] = knn
        if knn_values is not None:
            states._cache[("knn_values", knn_values.shape[2])] = knn_values
        if grams is not None:
            states._put_stored(("grams", "linear", 1.0), grams)
        if svd is not None:
            states._cache[("svd", svd.shape[2])] = svd
        if centred_norms is not None:
            states._cache[("centred_norms", "linear", 1.0)] = centred_norms
        if unbiased_self is not None:
            states._cache[("unbiased_self",)] = unbiased_self
        if rsa_ranks is not None:
            states._put_stored(("rsa_ranks",), rsa_ranks)
        if bases is not None:
            states._cache[("bases",)] = bases
        return states

    def _put_stored(self, key: tuple, values: np.ndarray) -> None:
        """A stored (L, N, N) state: the scores read a float64 copy, the null's products the stored values
        (float32 in a state store: their products are exact in float64, at half the memory traffic)."""
        self._cache[key] = values.astype(np.float64)
        self._cache[("stored",) + key] = values

    def _compact(self, key: tuple, full: Callable) -> np.ndarray:
        """The stored values of a state when there are any, else ``full()`` (float64)."""
        stored = self._cache.get(("stored",) + key)
        return stored if stored is not None else full()

    @property
    def layers(self) -> list[np.ndarray]:
        if self._layers is None:
            if self._parent is None:
                raise ValueError(f"{self._source} holds no layers: this state cannot be computed from it")
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

    def _memo(self, key, compute: Callable, derive: Callable):
        if key not in self._cache:
            self._cache[key] = compute() if self._parent is None else derive(self._parent._memo_get(key))
        return self._cache[key]

    def _memo_get(self, key):
        method, *args = key
        return getattr(self, method)(*args)

    def _longer(self, name: str, k: int):
        """A cached (L, N, k') state with k' > k: its first k columns are the k-state (lists are sorted)."""
        longer = [key[1] for key in self._cache if key[0] == name and key[1] > k]
        return self._cache[(name, min(longer))][:, :, :k] if longer else None

    def _square(self, stacked: np.ndarray) -> np.ndarray:
        """Re-index (L, N, N) matrices by the permutation on both sample axes."""
        out = np.empty_like(stacked)
        for layer, matrix in zip(out, stacked):
            matrix.take(self._perm, axis=0).take(self._perm, axis=1, out=layer)
        return out

    def _invariant(self, key, compute: Callable):
        """A state that a permutation of the samples leaves unchanged: the parent's value is reused."""
        return self._memo(key, compute, lambda parent: parent)

    def knn(self, k: int) -> np.ndarray:
        """(L, N, k) neighbour lists, most similar first."""

        def compute():
            longer = self._longer("knn", k)
            return longer if longer is not None else np.stack([self._knn(a, k) for a in self.layers])

        return self._memo(("knn", k), compute, lambda parent: self._inverse[parent[:, self._perm]])

    def knn_values(self, k: int) -> np.ndarray:
        """(L, N, k) the row-centred kernel K̄ (eq. 12) at each sample's k neighbours, in list order."""

        def compute():
            longer = self._longer("knn_values", k)
            if longer is not None:
                return longer
            grams = self.grams()
            centred = grams - grams.mean(axis=2, keepdims=True)
            return np.take_along_axis(centred, self.knn(k), axis=2)

        return self._memo(("knn_values", k), compute, lambda parent: parent[:, self._perm])

    def masks(self, k: int) -> np.ndarray:
        """(L, N, N) boolean neighbour masks."""
        return self._memo(
            ("masks", k),
            lambda: np.stack([d.neighbour_mask(n) for n in self.knn(k)]),
            lambda parent: self._square(parent),
        )

    def grams(self, kernel: str = "linear", sigma: float = 1.0) -> np.ndarray:
        """(L, N, N) Gram matrices K; other kernels derive from the linear Gram."""

        def compute():
            if kernel == "linear":
                return np.stack([backend.gram(a, self.device) for a in self.layers])
            return np.stack([d.kernel(None, kernel, sigma, gram=g) for g in self.grams()])

        return self._memo(("grams", kernel, sigma), compute, self._square)

    def gram_products(self, other: LayerStates, kernel: str = "linear", sigma: float = 1.0) -> np.ndarray:
        """(L, L_other) <K_a, L_b> of every layer pair, the one O(L · L' · N²) product that CKA and unbiased
        CKA share; kept for the last ``other`` (held here, so the identity check is sound)."""
        return self._square_products(
            other,
            ("products", kernel, sigma),
            lambda s: s.grams(kernel, sigma),
            lambda s: s._compact(("grams", kernel, sigma), lambda: s.grams(kernel, sigma)),
        )

    def _square_products(self, other: LayerStates, key, full: Callable, compact: Callable) -> np.ndarray:
        """(L, L_other) Frobenius products of two (L, N, N) states (``full(states)``; ``compact``: the same
        values in the narrowest stored dtype). A permuted view against an unpermuted stack (a null draw)
        reorders inside the products instead of re-indexing its matrices."""
        if key in self._cache and self._cache[key][0] is other:
            return self._cache[key][1]
        if self.device == "cpu" and (self._parent is None) != (other._parent is None):
            view, fixed = (self, other) if self._parent is not None else (other, self)
            value = kernels.permuted_products(compact(view._parent), compact(fixed), view._perm)
            value = value if view is self else value.T
        else:
            mx, my = full(self), full(other)
            value = backend.products(mx.reshape(len(self), -1), my.reshape(len(other), -1), self.device)
        self._cache[key] = (other, value)
        return value

    def rsa_ranks(self) -> np.ndarray:
        """(L, N, N) standardised ranks (average ranks for ties; mean 0, variance 1 over the N(N − 1)/2 pairs
        i < j) of each layer's cosine similarities, symmetric with a zero diagonal: RSA's Spearman ρ between
        two layers is then ⟨R_x, R_y⟩ / (N (N − 1)). (Distance ranks are the similarity ranks reversed on both
        sides, which leaves ρ unchanged.)"""
        return self._memo(("rsa_ranks",), lambda: np.stack([_standard_ranks(g) for g in self.grams()]), self._square)

    def rsa_products(self, other: LayerStates) -> np.ndarray:
        return self._square_products(
            other, ("rsa_products",), lambda s: s.rsa_ranks(), lambda s: s._compact(("rsa_ranks",), s.rsa_ranks)
        )

    def bases(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per layer, the thin SVD (U, σ, V) of the centred features at their numerical rank
        (``definitions.orthonormal_basis``): what Procrustes, CCA and PWCCA need."""
        return self._memo(
            ("bases",),
            lambda: [d.orthonormal_basis(a) for a in self.layers],
            lambda parent: [(u[self._perm], s, v) for u, s, v in parent],
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

    def gram_sums(self, kernel: str = "linear", sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Diagonals (L, N), row sums (L, N) and totals (L,) of the Gram matrices."""

        def compute():
            grams = self.grams(kernel, sigma)
            return np.diagonal(grams, axis1=1, axis2=2).copy(), grams.sum(axis=2), grams.sum(axis=(1, 2))

        def derive(parent):
            diagonal, rows, totals = parent
            return diagonal[:, self._perm], rows[:, self._perm], totals

        return self._memo(("gram_sums", kernel, sigma), compute, derive)

    def unbiased_self(self) -> np.ndarray:
        """(L,) HSIC_1(K, K) of each layer; permutation-invariant."""
        return self._invariant(("unbiased_self",), lambda: np.diagonal(_unbiased_hsic_matrix(self, self)).copy())

    def cknna_self(self, k: int) -> np.ndarray:
        """(L, N) per-sample sums of K̄_ij² over the k neighbours j of i (CKNNA's Align(K, K), eq. 16)."""
        return self._memo(
            ("cknna_self", k), lambda: (self.knn_values(k) ** 2).sum(axis=2), lambda parent: parent[:, self._perm]
        )

    def masked_kernels(self, k: int) -> list:
        """Per layer, the uncentred linear kernel kept at each sample's k neighbours, sparse (N, N) (scipy's
        csr_matrix, imported when asked for: only the authors' CKNNA uses it)."""
        from scipy import sparse

        return self._memo(
            ("masked_kernels", k),
            lambda: [sparse.csr_matrix(g * m) for g, m in zip(self.grams(), self.masks(k))],
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
# The neighbour metrics come from per-sample integer counts (Lx, Ly, N) (``kernels``): scores and bootstrap
# resamples both derive from them, in the reference definitions' arithmetic.


class _Counts:
    """A neighbour metric as per-sample counts: ``score`` = f(sum of counts), ``terms`` = per-sample terms."""

    def __init__(self, counts: Callable, score: Callable, terms: Callable):
        self.counts, self.score, self.terms = counts, score, terms

    def layerwise(self, sx: LayerStates, sy: LayerStates, k: int) -> np.ndarray:
        return self.score(self.counts(sx.knn(k), sy.knn(k), k).sum(axis=2), sx.n, k)

    def bootstrap(self, sx, sy, bx, by, indices, k):
        counts = self.counts(sx.knn(k)[bx : bx + 1], sy.knn(k)[by : by + 1], k)[0, 0]
        return self.terms(counts, k)[indices].mean(axis=1)


_MUTUAL = _Counts(kernels.mutual_knn_counts, lambda s, n, k: s / (k * n), lambda c, k: c / k)
_CYCLE = _Counts(kernels.cycle_knn_counts, lambda s, n, k: s / n, lambda c, k: c.astype(float))
_LCS = _Counts(lambda x, y, k: kernels.ordinal_counts(x, y, k, True), lambda s, n, k: s / n / k, lambda c, k: c / k)
_EDIT = _Counts(
    lambda x, y, k: kernels.ordinal_counts(x, y, k, False),
    lambda s, n, k: 1.0 - s / n / k,
    lambda c, k: 1.0 - c / k,
)


def _cka(sx: LayerStates, sy: LayerStates, kernel: str = "linear", sigma: float = 1.0) -> np.ndarray:
    """<HKH, HLH> = <K, L> - 2/n (K1)·(L1) + (1'K1)(1'L1)/n²: one product of the uncentred Grams, which a
    permuted view shares with unbiased CKA (one re-indexing of its Grams per permutation)."""
    n = sx.n
    _, rx, tx = sx.gram_sums(kernel, sigma)
    _, ry, ty = sy.gram_sums(kernel, sigma)
    cross = sx.gram_products(sy, kernel, sigma) - (2.0 / n) * (rx @ ry.T) + np.outer(tx, ty) / n**2
    return cross / np.outer(sx.centred_norms(kernel, sigma), sy.centred_norms(kernel, sigma))


def _unbiased_hsic_matrix(sx: LayerStates, sy: LayerStates) -> np.ndarray:
    """HSIC_1 (Song et al. 2012) of every layer pair, in O(N^2) each. With K~ = K - diag(K):
    tr(K~L~) = <K, L> - diag(K)·diag(L), 1'K~1 = 1'K1 - tr K, 1'K~L~1 = (K~1)·(L~1)."""
    n = sx.n
    dx, rx, tx = sx.gram_sums()
    dy, ry, ty = sy.gram_sums()
    trace = sx.gram_products(sy) - dx @ dy.T
    sums = np.outer(tx - dx.sum(axis=1), ty - dy.sum(axis=1))
    rows = (rx - dx) @ (ry - dy).T
    return (trace + sums / ((n - 1) * (n - 2)) - 2.0 * rows / (n - 2)) / (n * (n - 3))


def _unbiased_cka(sx: LayerStates, sy: LayerStates) -> np.ndarray:
    return _unbiased_hsic_matrix(sx, sy) / np.sqrt(np.outer(sx.unbiased_self(), sy.unbiased_self()))


def _sparse_hsic_unbiased(A, B) -> float:
    """``definitions.hsic_unbiased`` for sparse kernels with zero diagonals, in O(nnz)."""
    n = A.shape[0]
    trace = A.multiply(B.T).sum()
    ones = np.asarray(A.sum(axis=0)).ravel() @ np.asarray(B.sum(axis=1)).ravel()
    value = trace + A.sum() * B.sum() / ((n - 1) * (n - 2)) - 2.0 * ones / (n - 2)
    return float(value / (n * (n - 3)))


def _cknna_terms(sx: LayerStates, sy: LayerStates, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample sums of eq. 16 for (K, L) (Lx, Ly, N), (K, K) (Lx, N) and (L, L) (Ly, N)."""
    cross = kernels.mutual_kernel_terms(sx.knn(k), sx.knn_values(k), sy.knn(k), sy.knn_values(k), k)
    return cross, sx.cknna_self(k), sy.cknna_self(k)


def _cknna(sx: LayerStates, sy: LayerStates, k: int, variant: str = "paper") -> np.ndarray:
    if variant == "paper":
        cross, self_x, self_y = _cknna_terms(sx, sy, k)
        return cross.sum(axis=2) / np.sqrt(np.outer(self_x.sum(axis=1), self_y.sum(axis=1)))
    if variant == "authors":
        kx, ky = sx.masked_kernels(k), sy.masked_kernels(k)
        from scipy import sparse

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
    """Canonical correlations are the singular values of U_xᵀ U_y: all layer pairs' products in one GEMM."""
    ux, uy = sx.svd(dims), sy.svd(dims)
    flat_x = np.moveaxis(ux, 1, 0).reshape(sx.n, -1)  # (N, Lx * dims)
    flat_y = np.moveaxis(uy, 1, 0).reshape(sy.n, -1)
    cross = (flat_x.T @ flat_y).reshape(len(sx), dims, len(sy), dims).transpose(0, 2, 1, 3)
    return np.linalg.svd(cross, compute_uv=False).mean(axis=-1)


def _standard_ranks(gram: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    n = len(gram)
    upper = np.triu_indices(n, k=1)
    norms = np.sqrt(np.maximum(np.diag(gram), np.finfo(float).tiny))
    ranks = rankdata((gram / np.outer(norms, norms))[upper])  # cosine similarities, whatever the scaling
    z = np.zeros((n, n))
    z[upper] = (ranks - ranks.mean()) / ranks.std()
    return z + z.T


def _rsa(sx: LayerStates, sy: LayerStates) -> np.ndarray:
    return sx.rsa_products(sy) / (sx.n * (sx.n - 1))


def _rv(sx: LayerStates, sy: LayerStates, variant: str = "classic") -> np.ndarray:
    """⟨K_c, L_c⟩ / (‖K_c‖ ‖L_c‖) from the uncentred Grams' products and sums (as ``_cka``); the modified RV
    drops the centred diagonals, K_c[i, i] = K[i, i] − 2 (K1)_i / n + 1ᵀK1 / n²."""
    if variant not in ("classic", "modified"):
        raise ValueError(f"rv_coefficient variant '{variant}' is not one of classic, modified")
    n = sx.n
    dx, rx, tx = sx.gram_sums()
    dy, ry, ty = sy.gram_sums()
    cross = sx.gram_products(sy) - (2.0 / n) * (rx @ ry.T) + np.outer(tx, ty) / n**2
    self_x, self_y = sx.centred_norms() ** 2, sy.centred_norms() ** 2
    if variant == "modified":
        cx, cy = dx - 2.0 * rx / n + tx[:, None] / n**2, dy - 2.0 * ry / n + ty[:, None] / n**2
        cross = cross - cx @ cy.T
        self_x, self_y = self_x - (cx**2).sum(axis=1), self_y - (cy**2).sum(axis=1)
    return cross / np.sqrt(np.outer(self_x, self_y))


def _procrustes_of(ux, sx_, uy, sy_) -> float:
    return float(
        np.linalg.svd((ux * sx_).T @ (uy * sy_), compute_uv=False).sum() / np.sqrt((sx_**2).sum() * (sy_**2).sum())
    )


def _cca_of(ux, uy) -> float:
    return float(np.clip(np.linalg.svd(ux.T @ uy, compute_uv=False), 0.0, 1.0).mean())


def _basis_scores(score: Callable) -> Callable:
    """A measure of the per-layer thin SVDs, for every layer pair: one small SVD per pair."""

    def layerwise(sx: LayerStates, sy: LayerStates) -> np.ndarray:
        out = np.empty((len(sx), len(sy)))
        for a, bx in enumerate(sx.bases()):
            for b, by in enumerate(sy.bases()):
                out[a, b] = score(bx, by)
        return out

    return layerwise


_PROCRUSTES = _basis_scores(lambda bx, by: _procrustes_of(bx[0], bx[1], by[0], by[1]))
_CCA = _basis_scores(lambda bx, by: _cca_of(bx[0], by[0]))
_PWCCA = _basis_scores(lambda bx, by: d.pwcca_of_bases(*bx, by[0]))


# --- bootstrap: the metric at one layer pair on resampled samples, from the same states ------------------
# Each takes (sx, sy, bx, by, indices, **params), indices (R, N) rows of resampled sample indices, and
# returns (R,) values. States (neighbourhoods, SVD directions) stay those of the full sample.


def _cknna_bootstrap(sx, sy, bx, by, indices, k, variant="paper"):
    if variant == "paper":
        cross, self_x, self_y = _cknna_terms(sx, sy, k)
        kl, kk, ll = cross[bx, by], self_x[bx], self_y[by]
        return kl[indices].sum(1) / np.sqrt(kk[indices].sum(1) * ll[indices].sum(1))
    K, L = sx.grams()[bx], sy.grams()[by]
    return np.array([_authors_cknna_of_grams(K[np.ix_(i, i)], L[np.ix_(i, i)], k) for i in indices])


def _authors_cknna_of_grams(K: np.ndarray, L: np.ndarray, k: int) -> float:
    """``definitions.cknna(variant="authors")`` from Gram matrices: neighbours by the cosine of the Gram."""

    def mask(G):
        norms = np.sqrt(np.maximum(np.diag(G), np.finfo(float).tiny))
        similarity = G / np.outer(norms, norms)
        np.fill_diagonal(similarity, -np.inf)
        return d.neighbour_mask(d.top_k(similarity, k))

    mask_x, mask_y = mask(K), mask(L)
    alpha = mask_x & mask_y
    return d._ratio(
        d.hsic_unbiased(alpha * K, alpha * L),
        d.hsic_unbiased(mask_x * K, mask_x * K),
        d.hsic_unbiased(mask_y * L, mask_y * L),
    )


def _weighted_gram_terms(K: np.ndarray, L: np.ndarray, weights: np.ndarray):
    """For resamples given as sample counts ``weights`` (R, N) (the resampled Gram is K[idx][:, idx]):
    sum_ab K_b L_b = wᵀ(K∘L)w, row sums (K_b 1)_a = (Kw)_idx_a, totals wᵀKw, all in O(R N²) products."""
    KL = ((K * L) @ weights.T).T  # (R, N)
    Kw, Lw = weights @ K, weights @ L  # K, L symmetric
    return (KL * weights).sum(1), Kw, Lw


def _gram_bootstrap(unbiased: bool) -> Callable:
    """Kernel metrics on resampled samples, written with sample counts instead of re-indexed Grams."""

    def hsic(K, L, w):
        n = float(K.shape[0])
        both, Kw, Lw = _weighted_gram_terms(K, L, w)
        if not unbiased:  # tr(H K_b H L_b) = <K_b, L_b> - 2/n (K_b 1)·(L_b 1) + (1'K_b 1)(1'L_b 1) / n²
            return both - 2.0 / n * (w * Kw * Lw).sum(1) + (w * Kw).sum(1) * (w * Lw).sum(1) / n**2
        dK, dL = np.diag(K), np.diag(L)  # resampled diagonals: only a = b is zeroed, not repeated samples
        trace = both - w @ (dK * dL)
        totals = ((w * Kw).sum(1) - w @ dK) * ((w * Lw).sum(1) - w @ dL)
        rows = (w * (Kw - dK) * (Lw - dL)).sum(1)
        return (trace + totals / ((n - 1) * (n - 2)) - 2.0 * rows / (n - 2)) / (n * (n - 3))

    def bootstrap(sx, sy, bx, by, indices, kernel="linear", sigma=1.0):
        grams = {"kernel": kernel, "sigma": sigma} if not unbiased else {}
        K, L = sx.grams(**grams)[bx], sy.grams(**grams)[by]
        w = np.stack([np.bincount(i, minlength=sx.n) for i in indices]).astype(np.float64)
        return hsic(K, L, w) / np.sqrt(hsic(K, K, w) * hsic(L, L, w))

    return bootstrap


def _svcca_bootstrap(sx, sy, bx, by, indices, dims):
    """SVCCA on resampled rows with the full sample's SVD directions held fixed (as the neighbour metrics
    hold their neighbourhoods): canonical correlations of the resampled, re-centred direction sets."""
    ux, uy = sx.svd(dims)[bx], sy.svd(dims)[by]
    values = np.empty(len(indices))
    for r, i in enumerate(indices):
        qx = np.linalg.qr(ux[i] - ux[i].mean(axis=0))[0]
        qy = np.linalg.qr(uy[i] - uy[i].mean(axis=0))[0]
        values[r] = np.linalg.svd(qx.T @ qy, compute_uv=False).mean()
    return values


def _rsa_bootstrap(sx, sy, bx, by, indices):
    """RSA on resampled samples with the full sample's ranks held fixed (as the neighbour metrics hold their
    neighbourhoods): the Pearson correlation of the two standardised rank matrices over the resample's pairs
    of distinct samples, a pair counted w_i w_j times for sample counts w."""
    Rx, Ry = sx.rsa_ranks()[bx], sy.rsa_ranks()[by]
    w = np.stack([np.bincount(i, minlength=sx.n) for i in indices]).astype(np.float64)
    pairs = (w.sum(1) ** 2 - (w**2).sum(1)) / 2  # the zero diagonal drops copies of one sample

    def total(M):  # sum over i < j of w_i w_j M_ij, M symmetric with a zero diagonal
        return ((M @ w.T).T * w).sum(1) / 2

    mx, my = total(Rx) / pairs, total(Ry) / pairs
    cov = total(Rx * Ry) / pairs - mx * my
    return cov / np.sqrt((total(Rx * Rx) / pairs - mx**2) * (total(Ry * Ry) / pairs - my**2))


def _rv_bootstrap(sx, sy, bx, by, indices, variant="classic"):
    """The RV coefficient of the resampled Grams K[idx][:, idx] (column centring re-done on the resample)."""
    K, L = sx.grams()[bx], sy.grams()[by]
    values = np.empty(len(indices))
    for r, i in enumerate(indices):
        Kb, Lb = K[np.ix_(i, i)], L[np.ix_(i, i)]
        Kc = Kb - Kb.mean(0) - Kb.mean(1)[:, None] + Kb.mean()
        Lc = Lb - Lb.mean(0) - Lb.mean(1)[:, None] + Lb.mean()
        if variant == "modified":
            np.fill_diagonal(Kc, 0.0)
            np.fill_diagonal(Lc, 0.0)
        values[r] = (Kc * Lc).sum() / np.sqrt((Kc * Kc).sum() * (Lc * Lc).sum())
    return values


def _basis_bootstrap(measure: Callable, full_x: bool = False) -> Callable:
    """A measure of the features recomputed on resampled rows: X[idx] = U[idx] σ Vᵀ. Procrustes and CCA do not
    see the rotation V, so the (N, r) coordinates U σ stand in for the features; PWCCA weights by the features
    themselves (``full_x``)."""

    def bootstrap(sx, sy, bx, by, indices):
        ux, s1, v1 = sx.bases()[bx]
        uy, s2, _ = sy.bases()[by]
        X, Y = ux * s1, uy * s2
        X = X @ v1.T if full_x else X
        return np.array([measure(X[i], Y[i]) for i in indices])

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
        Metric("mutual_knn", d.mutual_knn, _MUTUAL.layerwise, _MUTUAL.bootstrap, {"k": 10}),
        Metric("cycle_knn", d.cycle_knn, _CYCLE.layerwise, _CYCLE.bootstrap, {"k": 10}, symmetric=False),
        Metric("lcs_knn", d.lcs_knn, _LCS.layerwise, _LCS.bootstrap, {"k": 10}),
        Metric("edit_distance_knn", d.edit_distance_knn, _EDIT.layerwise, _EDIT.bootstrap, {"k": 10}),
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
        Metric("svcca", d.svcca, _svcca, _svcca_bootstrap, {"dims": 10}, uses_neighbours=False),
        # the measures of the 2026 re-analysis (Gröger, Wen & Brbić) that App. B does not have
        Metric("procrustes", d.procrustes, _PROCRUSTES, _basis_bootstrap(d.procrustes), {}, uses_neighbours=False),
        Metric("rsa", d.rsa, _rsa, _rsa_bootstrap, {}, uses_neighbours=False),
        Metric(
            "rv_coefficient",
            d.rv_coefficient,
            _rv,
            _rv_bootstrap,
            {"variant": "classic"},
            uses_neighbours=False,
        ),
        Metric("cca", d.cca, _CCA, _basis_bootstrap(d.cca), {}, uses_neighbours=False),
        Metric(
            "pwcca", d.pwcca, _PWCCA, _basis_bootstrap(d.pwcca, full_x=True), {}, symmetric=False, uses_neighbours=False
        ),
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


def permutation_null(
    metrics: dict[str, dict], sx: LayerStates, sy: LayerStates, permutations: np.ndarray, keep_layers: bool = False
) -> dict:
    """For each metric, the best-over-layer-pairs score with Y's samples reordered by each row of
    ``permutations`` ((K, N) integers; row r gives Y[perm[r]]), the same permutation for every layer of Y
    (Algorithm 2 of Gröger et al. 2026): the max over layer pairs inflates chance scores, so the null takes the
    same max. Returns ``{metric: (K,) array}``, or with ``keep_layers`` every layer pair's null draws
    ``{metric: (K, Lx, Ly) array}`` (the null of a fixed layer pair, and the max of each draw).

    A symmetric metric does not change when both sides' samples are relabelled alike, so shuffling Y by
    ``perm`` scores the same as shuffling X by its inverse: the side with fewer layers is re-indexed.
    """
    null = {name: np.empty((len(permutations), len(sx), len(sy))) for name in metrics}
    for r, perm in enumerate(permutations):
        shuffled_y = sy.permuted(perm)
        shuffled_x = sx.permuted(np.argsort(perm)) if len(sx) < len(sy) else None
        for name, params in metrics.items():
            if shuffled_x is not None and get_metric(name).symmetric:
                null[name][r] = layer_scores(name, shuffled_x, sy, **params)
            else:
                null[name][r] = layer_scores(name, sx, shuffled_y, **params)
    return null if keep_layers else {name: np.nanmax(draws, axis=(1, 2)) for name, draws in null.items()}


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) sample indices drawn with replacement (seeded): the same for every pair of a run."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_states(
    metric: str, sx: LayerStates, sy: LayerStates, layer_x: int, layer_y: int, resamples: int, seed: int, **params
) -> np.ndarray:
    """The metric of layer pair (``layer_x``, ``layer_y``) on ``resamples`` bootstrap resamples (seeded).

    Metrics that are means of per-sample terms (the k-NN family, CKNNA's row sums) resample those terms,
    neighbourhoods staying those of the full sample; kernel metrics are the metric of the resampled Gram
    K[idx][:, idx], computed from sample counts; SVCCA keeps the full sample's SVD directions and recomputes
    the canonical correlations of their resampled rows; the authors' CKNNA is recomputed from the resampled
    Grams."""
    params = resolve_params(metric, params)
    indices = bootstrap_indices(sx.n, resamples, seed)
    return get_metric(metric).bootstrap(sx, sy, layer_x, layer_y, indices, **params)


def bootstrap_values(metric: str, X: np.ndarray, Y: np.ndarray, resamples: int, seed: int, **params) -> np.ndarray:
    """``bootstrap_states`` of a single layer pair given as (N, D) arrays."""
    return bootstrap_states(metric, LayerStates([X]), LayerStates([Y]), 0, 0, resamples, seed, **params)
