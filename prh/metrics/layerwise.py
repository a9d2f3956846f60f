"""All layer pairs at once: per-layer work done once, then every (layer_x, layer_y) score by batched
array operations; plus permutation nulls built on the same per-layer work (half-sample intervals:
``prh.metrics.resampling``).

``LayerStates`` holds one model's prepared layers and computes, on first use and once per layer, what
the metrics need: neighbour lists, neighbour masks, centred Gram matrices, SVD directions. A permuted
view (``states.permuted(perm)``, the features of the samples reordered) derives its states from the
unpermuted ones by re-indexing instead of recomputing them; this is exact for the Gram and SVD states
and for the neighbour lists' tie groups (within a group the order is the unpermuted index's, which no
tie-aware score depends on).

Neighbour lists carry their tie groups (``neighbours``): mutual k-NN and CKNNA take their exact expectation
over random orders of the samples, cycle k-NN, LCS and edit distance average ``definitions.TIE_DRAWS`` seeded
orders (``definitions``). Without ties they run the integer-count loops unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from prh.metrics import backend, kernels, neighbours
from prh.metrics import definitions as d
from prh.metrics import dense as limits


class LayerStates:
    """Per-layer work for one model's prepared layer stack, computed lazily and cached.

    Built from the layers (``LayerStates(layers)``), or from the arrays of a per-model state store
    (``LayerStates.from_arrays``, see ``prh.alignment.states``): then the pair's scores need only the cross terms.
    """

    def __init__(
        self,
        layers,
        device: str = "cpu",
        _parent: LayerStates | None = None,
        _perm: np.ndarray | None = None,
        precision=None,
    ):
        self.device = backend.resolve_device(device) if _parent is None else _parent.device
        self._parent, self._perm = _parent, _perm
        self._inverse = None if _perm is None else np.argsort(_perm)
        self._cache: dict = {}
        self.source = "layers" if _parent is None else f"a permuted view of {_parent.source}"
        if _parent is not None:  # a permuted view: its layers are only materialised if asked for
            self._layers, self.n, self._count = None, _parent.n, len(_parent)
            self.precision = _parent.precision
            return
        if layers is None:  # filled by from_arrays (a state store's bases are cut already)
            self._layers, self.precision = None, np.dtype(np.float64)
            return
        # the coarsest float the layers came in (or ``precision``, the stored dtype): where SVD ranks are cut
        self.precision = (
            np.dtype(precision)
            if precision is not None
            else max((d.stored_precision(a) for a in layers), key=lambda t: np.finfo(t).eps)
        )
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
        knn_starts: np.ndarray | None = None,
        knn_values: np.ndarray | None = None,
        grams: np.ndarray | None = None,
        svd: np.ndarray | None = None,
        centred_norms: np.ndarray | None = None,
        unbiased_self: np.ndarray | None = None,
        rsa_ranks: np.ndarray | None = None,
        bases: list | None = None,
        half_svd: tuple[np.ndarray, np.ndarray] | None = None,
        device: str = "cpu",
        source: str = "state store",
    ) -> LayerStates:
        """States computed elsewhere: ``knn`` (L, N, k) neighbour lists and ``knn_starts`` their tie groups
        (absent: no ties), ``knn_values`` (L, N, k) the row-centred
        kernel at them, ``grams`` (L, N, N) linear Grams, ``svd`` (L, N, dims) directions, the (L,) Gram
        invariants ``centred_norms`` and ``unbiased_self``, RSA's ``rsa_ranks`` (L, N, N) and the per-layer
        ``bases`` (U, σ, V); ``half_svd``, (samples (R, m), directions (R, L, m, dims)): SVCCA's directions
        recomputed on each half-sample of a run (``svd_on``). What is absent cannot be asked for (the error
        names ``source``)."""
        states = cls(None, device)
        states.n, states._count, states.source = n, count, source
        if knn is not None:
            starts = knn_starts if knn_starts is not None else np.broadcast_to(np.arange(knn.shape[2]), knn.shape)
            depth = int(np.all(knn >= 0, axis=(0, 1)).sum())  # rows past their tie groups end in -1
            states._cache[("neighbours", depth)] = (knn, starts)
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
        if half_svd is not None:
            states._cache[("half_svd", half_svd[1].shape[3])] = half_svd
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
                raise ValueError(f"{self.source} holds no layers: this state cannot be computed from it")
            self._layers = [a[self._perm] for a in self._parent.layers]
        return self._layers

    def __len__(self) -> int:
        return self._count

    @property
    def has_layers(self) -> bool:
        """Whether states not held can be computed (from the layers, or a parent's)."""
        return self._layers is not None or self._parent is not None

    @property
    def has_grams(self) -> bool:
        """Whether the linear Grams are held or can be computed."""
        return self.has_layers or ("grams", "linear", 1.0) in self._cache

    def knn_depth(self) -> int:
        """How deep the longest neighbour lists held are in every row (0 for none)."""
        return max((key[1] for key in self._cache if key[0] == "neighbours"), default=0)

    def compact_grams(self, kernel: str = "linear", sigma: float = 1.0) -> np.ndarray:
        """The Gram matrices as stored (float32 from a state store), else float64."""
        return self._compact(("grams", kernel, sigma), lambda: self.grams(kernel, sigma))

    def compact_ranks(self) -> np.ndarray:
        """RSA's ranks as stored (float32 from a state store), else float64."""
        return self._compact(("rsa_ranks",), self.rsa_ranks)

    def permuted(self, perm: np.ndarray) -> LayerStates:
        """The states of the same layers with samples reordered: sample i of the view is ``perm[i]``."""
        return LayerStates(None, _parent=self, _perm=np.asarray(perm))

    def _memo(self, key, compute: Callable, derive: Callable):
        if key not in self._cache:
            self._cache[key] = compute() if self._parent is None else derive(self._parent._memo_get(key))
        return self._cache[key]

    def _memo_get(self, key):
        method, *args = key
        return getattr(self, method)(*args)

    def _square(self, stacked: np.ndarray) -> np.ndarray:
        """Re-index (L, N, N) matrices by the permutation on both sample axes."""
        out = np.empty_like(stacked)
        for layer, matrix in zip(out, stacked):
            matrix.take(self._perm, axis=0).take(self._perm, axis=1, out=layer)
        return out

    def _invariant(self, key, compute: Callable):
        """A state that a permutation of the samples leaves unchanged: the parent's value is reused."""
        return self._memo(key, compute, lambda parent: parent)

    def neighbours(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(L, N, D) neighbour lists, most similar first, and the place each place's tie group starts
        (``prh.metrics.neighbours.search``): exact to place k and on past the tie group there, -1 after."""

        def compute():
            held = [key[1] for key in self._cache if key[0] == "neighbours" and key[1] >= k]
            if held:
                return self._cache[("neighbours", min(held))]
            if not 1 <= k <= self.n - 1:
                raise ValueError(f"k = {k} must be between 1 and N - 1 = {self.n - 1}")
            return neighbours.stacked([neighbours.search(a, k, device=self.device) for a in self.layers])

        def derive(parent):
            lists, starts = parent
            lists = lists[:, self._perm]
            return np.where(lists < 0, -1, self._inverse[lists]), starts[:, self._perm]

        return self._memo(("neighbours", k), compute, derive)

    def knn(self, k: int) -> np.ndarray:
        """(L, N, k) neighbour lists, most similar first, tied neighbours by index."""
        return self.neighbours(k)[0][:, :, :k]

    def weights(self, k: int) -> np.ndarray:
        """(L, N, D) the probability that each place of ``neighbours(k)`` is among the k nearest under random
        tie-breaking (``kernels.place_weights``)."""

        def compute():
            starts = self.neighbours(k)[1]
            flat = np.ascontiguousarray(starts).reshape(-1, starts.shape[2])
            return kernels.place_weights(flat, k).reshape(starts.shape)

        return self._memo(("weights", k), compute, lambda parent: parent[:, self._perm])

    def ties(self, k: int) -> bool:
        """Whether a tie group straddles the k-th place anywhere (the k-NN sets depend on tie-breaking)."""
        return self._invariant(("ties", k), lambda: bool(self.tie_counts(k, straddling=True).any()))

    def ordered_ties(self, k: int) -> bool:
        """Whether any tie reaches into the first k places (the ordered k-NN lists depend on tie-breaking)."""

        return self._invariant(("ordered_ties", k), lambda: neighbours.has_ties(self.neighbours(k)[1], k + 1))

    def tie_counts(self, k: int, straddling: bool = False) -> np.ndarray:
        """(L,) how many samples have their k-th neighbour tied with another sample (``straddling``: tied
        with one outside the k nearest, so the k-NN set itself depends on tie-breaking)."""
        starts = self.neighbours(k)[1]
        return self._invariant(
            ("tie_counts", k, straddling),
            lambda: np.array([neighbours.tied_samples(s, k, straddling) for s in starts]),
        )

    def broken_ties(self, k: int, draw: int) -> np.ndarray:
        """(L, N, k) lists in tie order ``draw`` (``kernels.broken_ties``), held for the other drawn metrics."""

        key = ("broken_ties", k, draw)  # a view's own: its tie keys follow its sample labels
        if key not in self._cache:
            lists, starts = self.neighbours(k)
            if ("starts", k) not in self._cache:
                self._cache[("starts", k)] = np.ascontiguousarray(starts)
            self._cache[key] = kernels.broken_ties(lists, self._cache[("starts", k)], k, draw)
        return self._cache[key]

    def tied_rows(self, k: int) -> np.ndarray:
        """(N,) the samples whose ordered k-NN list, in some layer, depends on tie-breaking."""
        places = min(k + 1, self.neighbours(k)[1].shape[2])

        def compute():
            return np.any(self.neighbours(k)[1][:, :, :places] != np.arange(places), axis=(0, 2))

        return self._memo(("tied_rows", k), compute, lambda parent: parent[self._perm])

    def knn_values(self, k: int) -> np.ndarray:
        """(L, N, D) the row-centred kernel K̄ (eq. 12) at each place of ``neighbours(k)``."""

        def compute():
            lists = self.neighbours(k)[0]
            held = [v for key, v in self._cache.items() if key[0] == "knn_values" and v.shape[2] >= lists.shape[2]]
            if held:
                return held[0][:, :, : lists.shape[2]]
            if not self.has_layers:  # a state store: from its Grams
                grams = self.grams()
                centred = grams - grams.mean(axis=2, keepdims=True)
                return np.where(lists < 0, 0.0, np.take_along_axis(centred, np.maximum(lists, 0), axis=2))
            # K̄_ij = x_i · x_j − x_i · mean(x), from the layers: no N × N matrix at any N
            return np.stack(
                [
                    np.where(at < 0, 0.0, kernels.neighbour_products(a, at) - (a @ a.mean(axis=0))[:, None])
                    for a, at in zip(self.layers, lists)
                ]
            )

        return self._memo(("knn_values", k), compute, lambda parent: parent[:, self._perm])

    def masks(self, k: int) -> np.ndarray:
        """(L, N, N) neighbour masks: boolean, or with ties the probabilities ``weights`` of membership."""

        def compute():
            if not self.ties(k):
                return np.stack([d.neighbour_mask(n) for n in self.knn(k)])
            lists, weights = self.neighbours(k)[0], self.weights(k)
            out = np.zeros((len(self), self.n, self.n))
            for layer, (at, w) in enumerate(zip(lists, weights)):
                rows, places = np.nonzero(at >= 0)
                out[layer, rows, at[rows, places]] = w[rows, places]
            return out

        return self._memo(("masks", k), compute, lambda parent: self._square(parent))

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
            lambda s: s.compact_grams(kernel, sigma),
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
        return self._square_products(other, ("rsa_products",), lambda s: s.rsa_ranks(), lambda s: s.compact_ranks())

    def bases(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per layer, the thin SVD (U, σ, V) of the centred features at their numerical rank
        (``definitions.orthonormal_basis``): what Procrustes, CCA and PWCCA need."""
        return self._memo(
            ("bases",),
            lambda: [d.orthonormal_basis(a, self.precision) for a in self.layers],
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
            ("cknna_self", k), lambda: self._weighted(k, self.knn_values(k) ** 2), lambda parent: parent[:, self._perm]
        )

    def _weighted(self, k: int, values: np.ndarray) -> np.ndarray:
        """(L, N) per-sample sums of ``values`` (L, N, D) over the k-NN sets (in expectation under ties)."""
        return (self.weights(k) * values).sum(axis=2) if self.ties(k) else values[:, :, :k].sum(axis=2)

    def masked_kernels(self, k: int) -> list:
        """Per layer, the uncentred linear kernel kept at each sample's k neighbours, sparse (N, N) (scipy's
        csr_matrix, imported when asked for: only the authors' CKNNA uses it)."""
        from scipy import sparse

        return self._memo(
            ("masked_kernels", k),
            lambda: [sparse.csr_matrix(g * m) for g, m in zip(self.grams(), self.masks(k))],
            lambda parent: [m[self._perm][:, self._perm] for m in parent],
        )

    def svd_on(self, dims: int, sample: np.ndarray) -> np.ndarray:
        """(L, m, dims) SVCCA's directions recomputed on the rows ``sample`` (sorted sample indices, repeats
        allowed): looked up among the half-samples the state job stored, else computed from the layers."""
        stored = self._cache.get(("half_svd", dims))
        if stored is not None and stored[0].shape[1] == len(sample):
            match = np.flatnonzero((stored[0] == sample).all(axis=1))
            if match.size:
                return stored[1][match[0]].astype(np.float64)
        if not self.has_layers:
            raise ValueError(
                f"{self.source}: SVCCA's directions on this run's half-samples are not stored; rerun its "
                "alignment_state job with the run's bootstrap settings"
            )
        return np.stack([d.svd_directions(a[sample], dims, self.precision) for a in self.layers])

    def svd(self, dims: int) -> np.ndarray:
        """(L, N, dims) top singular directions of the standardised features (zero past a layer's rank)."""
        return self._memo(
            ("svd", dims),
            lambda: np.stack([d.svd_directions(a, dims, self.precision) for a in self.layers]),
            lambda parent: parent[:, self._perm],
        )


# --- batched scores: (Lx, Ly) from two LayerStates ----------------------------------------------------
# The neighbour metrics come from per-sample integer counts (Lx, Ly, N) (``kernels``), in the reference
# definitions' arithmetic.


class _Counts:
    """A neighbour metric as per-sample terms: ``score`` = f(sum of terms, N, k). Without ties the terms are
    integer ``counts`` of the two (L, N, k) list stacks; with ties (``ordered``: any in the first k places,
    else one straddling the k-th) ``expected`` gives their exact expectation over random orders of the
    samples, or (``expected`` None) the counts are averaged over ``definitions.TIE_DRAWS`` seeded orders:
    ``rows(sx, sy, k)`` names the samples whose term can change with the order, and ``row_counts`` recounts
    only those."""

    def __init__(self, counts: Callable, score: Callable, expected: Callable | None = None, ordered: bool = False,
                 rows: Callable | None = None, row_counts: Callable | None = None):  # fmt: skip
        self.counts, self.score, self.expected, self.ordered = counts, score, expected, ordered
        self.rows, self.row_counts = rows, row_counts

    def draws(self, sx: LayerStates, sy: LayerStates, k: int) -> np.ndarray:
        """(draws, Lx, Ly) scores: one without ties (or for an exact expectation), else one per tie order."""
        tied = sx.ordered_ties(k) or sy.ordered_ties(k) if self.ordered else sx.ties(k) or sy.ties(k)
        if tied and self.expected is not None:
            return self.score(self.expected(sx, sy, k).sum(axis=2), sx.n, k)[None]
        if tied:
            rows = np.flatnonzero(self.rows(sx, sy, k))
            fixed = self.counts(sx.knn(k), sy.knn(k), k)
            fixed = fixed.sum(axis=2) - fixed[:, :, rows].sum(axis=2)
            orders = ((sx.broken_ties(k, r), sy.broken_ties(k, r)) for r in range(d.TIE_DRAWS))
            sums = (fixed + self.row_counts(x, y, k, rows).sum(axis=2) for x, y in orders)
            return np.stack([self.score(total, sx.n, k) for total in sums])
        return self.score(self.counts(sx.knn(k), sy.knn(k), k).sum(axis=2), sx.n, k)[None]

    def layerwise(self, sx: LayerStates, sy: LayerStates, k: int) -> np.ndarray:
        return self.draws(sx, sy, k).mean(axis=0)


def _joint_terms(sx: LayerStates, sy: LayerStates, k: int, values: bool = False) -> np.ndarray:
    """(Lx, Ly, N) sum_j P(j in both k-NN sets) (times K̄_ij L̄_ij with ``values``): ``kernels.joint_terms``."""
    (lx, _), (ly, _) = sx.neighbours(k), sy.neighbours(k)
    wx, wy = sx.weights(k), sy.weights(k)
    vx, vy = (sx.knn_values(k), sy.knn_values(k)) if values else (np.ones_like(wx), np.ones_like(wy))
    return kernels.joint_terms(lx, wx, vx, ly, wy, vy, k)


def _either_tied(sx: LayerStates, sy: LayerStates, k: int) -> np.ndarray:
    """Rows whose ordered lists depend on the tie order on either side (LCS, edit distance: row-local)."""
    return sx.tied_rows(k) | sy.tied_rows(k)


def _cycle_tied(sx: LayerStates, sy: LayerStates, k: int) -> np.ndarray:
    """Rows whose cycle depends on the tie order: tied in Y, or with a Y-candidate whose X-set is tied."""
    lists = sy.neighbours(k)[0]
    reach = np.where(lists < 0, False, sx.tied_rows(k)[np.maximum(lists, 0)])
    return sy.tied_rows(k) | reach.any(axis=(0, 2))


def _ordinal(lcs: bool) -> _Counts:
    return _Counts(
        lambda x, y, k: kernels.ordinal_counts(x, y, k, lcs),
        (lambda s, n, k: s / n / k) if lcs else (lambda s, n, k: 1.0 - s / n / k),
        None,
        True,
        _either_tied,
        lambda x, y, k, rows: kernels.ordinal_counts(x[:, rows], y[:, rows], k, lcs),
    )


_DRAWN = {
    "cycle_knn": _Counts(
        kernels.cycle_knn_counts, lambda s, n, k: s / n, None, False, _cycle_tied, kernels.cycle_knn_rows
    ),
    "lcs_knn": _ordinal(True),
    "edit_distance_knn": _ordinal(False),
}
_MUTUAL = _Counts(kernels.mutual_knn_counts, lambda s, n, k: s / (k * n), _joint_terms)


def tie_errors(metric: str, Xs, Ys, *, device: str = "cpu", **params) -> np.ndarray:
    """(Lx, Ly) the standard error that averaging over tie orders leaves in ``layer_scores`` (cycle k-NN, LCS
    and edit distance, whose expectation over random tie orders has no closed form): the per-draw scores'
    standard deviation over sqrt(draws). 0 for every other metric, and without ties."""
    params = resolve_params(metric, params)
    sx, sy = _states(Xs, device), _states(Ys, device)
    if metric not in _DRAWN:
        return np.zeros((len(sx), len(sy)))
    draws = _DRAWN[metric].draws(sx, sy, params["k"])
    return draws.std(axis=0, ddof=1) / np.sqrt(len(draws)) if len(draws) > 1 else np.zeros(draws.shape[1:])


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
    return d.unbiased_hsic(trace, sums, rows, n)


def _unbiased_cka(sx: LayerStates, sy: LayerStates) -> np.ndarray:
    return _unbiased_hsic_matrix(sx, sy) / np.sqrt(np.outer(sx.unbiased_self(), sy.unbiased_self()))


def _sparse_hsic_unbiased(A, B) -> float:
    """``definitions.hsic_unbiased`` for sparse kernels with zero diagonals, in O(nnz)."""
    n = A.shape[0]
    trace = A.multiply(B.T).sum()
    ones = np.asarray(A.sum(axis=0)).ravel() @ np.asarray(B.sum(axis=1)).ravel()
    return float(d.unbiased_hsic(trace, A.sum() * B.sum(), ones, n))


def _cknna_terms(sx: LayerStates, sy: LayerStates, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample sums of eq. 16 for (K, L) (Lx, Ly, N), (K, K) (Lx, N) and (L, L) (Ly, N)."""
    if sx.ties(k) or sy.ties(k):
        cross = _joint_terms(sx, sy, k, values=True)
    else:
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
    values = np.linalg.svd(cross, compute_uv=False).sum(axis=-1)
    count = np.minimum.outer(d.direction_rank(ux), d.direction_rank(uy))  # the directions both have
    return np.where(count > 0, values / np.maximum(count, 1), 0.0)


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


def _procrustes_of(ux, sx_, uy, sy_, variant: str = "paper") -> float:
    nuclear = np.linalg.svd((ux * sx_).T @ (uy * sy_), compute_uv=False).sum()
    if variant == "aristotelian":
        return d._procrustes_distance_score((sx_**2).sum(), (sy_**2).sum(), nuclear)
    if variant != "paper":
        raise ValueError(f"procrustes variant '{variant}' is not one of paper, aristotelian")
    return float(nuclear / np.sqrt((sx_**2).sum() * (sy_**2).sum()))


def _cca_of(ux, uy) -> float:
    return float(np.clip(np.linalg.svd(ux.T @ uy, compute_uv=False), 0.0, 1.0).mean())


def _basis_scores(score: Callable) -> Callable:
    """A measure of the per-layer thin SVDs, for every layer pair: one small SVD per pair."""

    def layerwise(sx: LayerStates, sy: LayerStates, **params) -> np.ndarray:
        out = np.empty((len(sx), len(sy)))
        for a, bx in enumerate(sx.bases()):
            for b, by in enumerate(sy.bases()):
                out[a, b] = score(bx, by, **params)
        return out

    return layerwise


_PROCRUSTES = _basis_scores(lambda bx, by, variant="paper": _procrustes_of(bx[0], bx[1], by[0], by[1], variant))
_CCA = _basis_scores(lambda bx, by: _cca_of(bx[0], by[0]))
_PWCCA = _basis_scores(lambda bx, by: d.pwcca_of_bases(*bx, by[0]))


# --- registry ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A metric: its reference definition, defaults and batched all-layer-pairs version (its bootstrap on a
    resample is in ``prh.metrics.resampling``)."""

    name: str
    pairwise: Callable[..., float]
    layerwise: Callable[..., np.ndarray]
    defaults: dict = field(default_factory=dict)
    symmetric: bool = True
    uses_neighbours: bool = True
    asymmetric_variants: tuple[str, ...] = ()  # variants that score X against Y differently from Y against X

    def is_symmetric(self, params: dict | None = None) -> bool:
        """Whether (X, Y) and (Y, X) score alike with these parameters."""
        return self.symmetric and (params or {}).get("variant") not in self.asymmetric_variants


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("mutual_knn", d.mutual_knn, _MUTUAL.layerwise, {"k": 10}),
        Metric("cycle_knn", d.cycle_knn, _DRAWN["cycle_knn"].layerwise, {"k": 10}, symmetric=False),
        Metric("lcs_knn", d.lcs_knn, _DRAWN["lcs_knn"].layerwise, {"k": 10}),
        Metric("edit_distance_knn", d.edit_distance_knn, _DRAWN["edit_distance_knn"].layerwise, {"k": 10}),
        Metric(
            "cka",
            lambda X, Y, kernel="linear", sigma=1.0: d.cka(X, Y, kernel, sigma),
            _cka,
            {"kernel": "linear", "sigma": 1.0},
            uses_neighbours=False,
        ),
        Metric("unbiased_cka", d.unbiased_cka, _unbiased_cka, {}, uses_neighbours=False),
        Metric("cknna", d.cknna, _cknna, {"k": 10, "variant": "paper"}),
        Metric("svcca", d.svcca, _svcca, {"dims": 10}, uses_neighbours=False),
        # the measures of the 2026 re-analysis (Gröger, Wen & Brbić) that App. B does not have
        Metric(
            "procrustes",
            d.procrustes,
            _PROCRUSTES,
            {"variant": "paper"},
            uses_neighbours=False,
            asymmetric_variants=("aristotelian",),
        ),
        Metric("rsa", d.rsa, _rsa, {}, uses_neighbours=False),
        Metric("rv_coefficient", d.rv_coefficient, _rv, {"variant": "classic"}, uses_neighbours=False),
        Metric("cca", d.cca, _CCA, {}, uses_neighbours=False),
        Metric("pwcca", d.pwcca, _PWCCA, {}, symmetric=False, uses_neighbours=False),
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


def layer_scores(
    metric: str, Xs, Ys, *, device: str = "cpu", dense_limit: int = limits.DENSE_LIMIT, **params
) -> np.ndarray:
    """Score every layer of ``Xs`` against every layer of ``Ys`` -> (Lx, Ly).

    ``Xs``, ``Ys``: layer stacks ((L, N, D) arrays or lists of (N, D_l) arrays) or ``LayerStates``. Each
    layer's neighbours, Gram matrix or SVD is computed once, then all pairs are scored in batch. ``device``
    (for stacks given as arrays): where the matrix products run, see ``prh.metrics.backend``.

    Above ``dense_limit`` samples no N × N matrix is formed: the neighbour metrics use the blocked search and
    CKNNA's kernel at the neighbours only, linear CKA and unbiased CKA stream feature-space products
    (``prh.metrics.streaming``), the SVD-based measures work on N × D; a metric that needs N × N matrices
    (RSA, RV, CKA with an RBF kernel, the authors' CKNNA) is refused with one error naming it, N and the limit.
    """
    params = resolve_params(metric, params)
    sx, sy = _states(Xs, device), _states(Ys, device)
    if sx.n != sy.n:
        raise ValueError(f"X and Y must describe the same samples: {sx.n} rows vs {sy.n}")
    if sx.n > dense_limit:
        limits.check_dense_metrics({metric: params}, sx.n, dense_limit, where=f"layer_scores('{metric}'): ",
                                   setting="dense_limit")  # fmt: skip
        if metric in ("cka", "unbiased_cka"):
            return _streamed_cka(metric, sx, sy)
    return get_metric(metric).layerwise(sx, sy, **params)


def _streamed_cka(metric: str, sx: LayerStates, sy: LayerStates) -> np.ndarray:
    """Linear CKA or unbiased CKA of every layer pair from feature-space products, O(D_x · D_y) memory."""
    from prh.metrics import streaming

    if not (sx.has_layers and sy.has_layers):
        raise ValueError(f"streamed {metric} above the dense limit needs the layers, not a state store")
    read_x, read_y = streaming.array_reader(sx.layers), streaming.array_reader(sy.layers)
    return streaming.cka_from_readers(read_x, len(sx), read_y, len(sy), sx.n)[metric]


def _states(stack, device: str) -> LayerStates:
    return stack if isinstance(stack, LayerStates) else LayerStates(list(stack), device)


def best_of(scores: np.ndarray) -> tuple[float, int, int]:
    """The best score of a (Lx, Ly) matrix and its (layer_x, layer_y); ties to the first in row-major order."""
    i, j = np.unravel_index(np.argmax(np.where(np.isnan(scores), -np.inf, scores)), scores.shape)
    return float(scores[i, j]), int(i), int(j)


def permutation_null(
    metrics: dict[str, dict],
    sx: LayerStates,
    sy: LayerStates,
    permutations: np.ndarray,
    keep_layers: bool = False,
    dense_limit: int = limits.DENSE_LIMIT,
) -> dict:
    """For each metric, the best-over-layer-pairs score with Y's samples reordered by each row of
    ``permutations`` ((K, N) integers; row r gives Y[perm[r]]), the same permutation for every layer of Y
    (Algorithm 2 of Gröger et al. 2026): the max over layer pairs inflates chance scores, so the null takes the
    same max (above ``dense_limit`` samples, a metric whose null needs N × N matrices is refused). Returns
    ``{metric: (K,) array}``, or with ``keep_layers`` every layer pair's null draws
    ``{metric: (K, Lx, Ly) array}`` (the null of a fixed layer pair, and the max of each draw).

    A symmetric metric does not change when both sides' samples are relabelled alike, so shuffling Y by
    ``perm`` scores the same as shuffling X by its inverse: the side with fewer layers is re-indexed.
    """
    limits.check_dense_metrics(metrics, sx.n, dense_limit, permutations=len(permutations),
                               where="permutation_null: ", setting="dense_limit")  # fmt: skip
    null = {name: np.empty((len(permutations), len(sx), len(sy))) for name in metrics}
    for r, perm in enumerate(permutations):
        shuffled_y = sy.permuted(perm)
        shuffled_x = sx.permuted(np.argsort(perm)) if len(sx) < len(sy) else None
        for name, params in metrics.items():
            if shuffled_x is not None and get_metric(name).is_symmetric(params):
                null[name][r] = layer_scores(name, shuffled_x, sy, **params)
            else:
                null[name][r] = layer_scores(name, sx, shuffled_y, **params)
    return null if keep_layers else {name: np.nanmax(draws, axis=(1, 2)) for name, draws in null.items()}
