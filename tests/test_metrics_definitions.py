"""The eight metrics of App. B: hand-worked values, independent brute-force implementations, properties,
and the batched all-layer-pairs engine against the reference definitions."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest

from prh.metrics import (
    METRICS,
    LayerStates,
    cka,
    cknna,
    clamp_quantile,
    cycle_knn,
    edit_distance_knn,
    half_sample_interval,
    half_sample_values,
    half_samples,
    knn_indices,
    layer_scores,
    lcs_knn,
    mutual_knn,
    permutation_null,
    prepare_stack,
    svcca,
    unbiased_cka,
)
from prh.metrics.calibration import draw_permutations


def _unit(degrees):
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


# X: samples at 0°, 10°, 90°, 100°; Y: the same angles assigned as 0°, 90°, 10°, 100°.
# Ordered k=2 neighbour lists, X: [1,2] [0,2] [3,1] [2,1]; Y: [2,1] [3,2] [0,1] [1,2].
HAND_X, HAND_Y = _unit([0, 10, 90, 100]), _unit([0, 90, 10, 100])


def test_hand_worked_knn_metrics():
    assert [list(r) for r in knn_indices(HAND_X, 2)] == [[1, 2], [0, 2], [3, 1], [2, 1]]
    assert [list(r) for r in knn_indices(HAND_Y, 2)] == [[2, 1], [3, 2], [0, 1], [1, 2]]
    # intersections 2, 1, 1, 2 -> 6 / (4 * 2); with k = 1 no neighbour is shared
    assert mutual_knn(HAND_X, HAND_Y, k=2) == 0.75 and mutual_knn(HAND_X, HAND_Y, k=1) == 0.0
    # every sample is an X-neighbour of one of its Y-neighbours (e.g. 0 -> Y 1 -> X {0, 2}); none with k = 1
    assert cycle_knn(HAND_X, HAND_Y, k=2) == 1.0 and cycle_knn(HAND_X, HAND_Y, k=1) == 0.0
    # LCS of each pair of lists is 1 -> 1 / 2; edit distances 2, 1, 1, 2 -> 1 - 1.5 / 2
    assert lcs_knn(HAND_X, HAND_Y, k=2) == 0.5
    assert edit_distance_knn(HAND_X, HAND_Y, k=2) == 0.25


def test_hand_worked_kernel_metrics():
    x = np.array([[1.0], [2.0], [3.0], [4.0]])
    y = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    # 1-D linear CKA is the squared correlation: centred x = (-1.5, -.5, .5, 1.5), x'y = -2 -> 4 / (5 * 4)
    assert cka(x, y) == pytest.approx(0.2, abs=1e-12)
    assert cka(x, 3 * x + 1) == pytest.approx(1.0, abs=1e-12)
    rotation = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    X = np.random.default_rng(0).normal(size=(30, 2))
    assert svcca(X, X @ rotation, dims=2) == pytest.approx(1.0, abs=1e-12)


# --- independent brute-force implementations ----------------------------------------------------------


def brute_neighbours(F, i, k):
    sims = sorted((-(F[i] @ F[j]) / (np.linalg.norm(F[i]) * np.linalg.norm(F[j])), j) for j in range(len(F)) if j != i)
    return [j for _, j in sims[:k]]


def brute_mutual_knn(X, Y, k):
    return float(
        np.mean([len(set(brute_neighbours(X, i, k)) & set(brute_neighbours(Y, i, k))) / k for i in range(len(X))])
    )


def brute_cycle_knn(X, Y, k):
    return float(
        np.mean([any(i in brute_neighbours(X, j, k) for j in brute_neighbours(Y, i, k)) for i in range(len(X))])
    )


def brute_lcs(a, b):
    """By enumeration: the longest subsequence of ``a`` that is also a subsequence of ``b``."""

    def is_subsequence(s, t):
        it = iter(t)
        return all(c in it for c in s)

    return max(r for r in range(len(a) + 1) for s in itertools.combinations(a, r) if is_subsequence(s, b))


def brute_edit(a, b):
    @cache
    def dist(i, j):
        if i == 0 or j == 0:
            return i + j
        return min(dist(i - 1, j) + 1, dist(i, j - 1) + 1, dist(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return dist(len(a), len(b))


def brute_ordinal(X, Y, k, fn):
    return float(
        np.mean([fn(tuple(brute_neighbours(X, i, k)), tuple(brute_neighbours(Y, i, k))) for i in range(len(X))])
    )


def brute_cka(X, Y):
    n = len(X)
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = X @ X.T, Y @ Y.T
    return np.trace(K @ H @ L @ H) / np.sqrt(np.trace(K @ H @ K @ H) * np.trace(L @ H @ L @ H))


def brute_hsic_u_statistic(K, L):
    """HSIC_1 as the U-statistic over distinct index quadruples (Song et al. 2012, Theorem 2)."""
    n, total = len(K), 0.0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += K[i, j] * L[i, j] + K[i, j] * L[q, r] - 2 * K[i, j] * L[i, q]
    return total / (n * (n - 1) * (n - 2) * (n - 3))


def brute_cknna(X, Y, k):
    n = len(X)
    K, L = X @ X.T, Y @ Y.T

    def align(A, B, nx, ny):
        total = 0.0
        for i in range(n):
            for j in range(n):
                if i != j and j in nx[i] and j in ny[i]:
                    total += (A[i, j] - A[i].mean()) * (B[i, j] - B[i].mean())
        return total

    nx = [set(brute_neighbours(X, i, k)) for i in range(n)]
    ny = [set(brute_neighbours(Y, i, k)) for i in range(n)]
    return align(K, L, nx, ny) / np.sqrt(align(K, K, nx, nx) * align(L, L, ny, ny))


def brute_svcca(X, Y, dims):
    """Canonical correlations from the covariance matrices of the reduced representations."""

    def reduce(F):
        F = (F - F.mean(0)) / (F.std(0) + 1e-8)
        U, _, _ = np.linalg.svd(F, full_matrices=False)
        return U[:, :dims]

    A, B = reduce(X), reduce(Y)
    Saa, Sbb, Sab = A.T @ A, B.T @ B, A.T @ B
    eig = np.linalg.eigvals(np.linalg.solve(Saa, Sab) @ np.linalg.solve(Sbb, Sab.T))
    return float(np.sqrt(np.clip(np.sort(eig.real)[::-1][:dims], 0, 1)).mean())


def _related(seed, n=40):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 4))
    X = Z @ rng.normal(size=(4, 12)) + 0.5 * rng.normal(size=(n, 12))
    Y = np.tanh(Z @ rng.normal(size=(4, 7))) + 0.5 * rng.normal(size=(n, 7))
    return X, Y


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_knn_metrics_match_brute_force(seed, k):
    X, Y = _related(seed)
    assert mutual_knn(X, Y, k) == pytest.approx(brute_mutual_knn(X, Y, k), abs=1e-12)
    assert cycle_knn(X, Y, k) == pytest.approx(brute_cycle_knn(X, Y, k), abs=1e-12)
    if k <= 3:  # the enumeration LCS is exponential in k
        assert lcs_knn(X, Y, k) == pytest.approx(brute_ordinal(X, Y, k, brute_lcs) / k, abs=1e-12)
    assert edit_distance_knn(X, Y, k) == pytest.approx(1 - brute_ordinal(X, Y, k, brute_edit) / k, abs=1e-12)
    assert cknna(X, Y, k) == pytest.approx(brute_cknna(X, Y, k), abs=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_metrics_match_brute_force(seed):
    X, Y = _related(seed)
    assert cka(X, Y) == pytest.approx(brute_cka(X, Y), abs=1e-12)
    assert svcca(X, Y, dims=5) == pytest.approx(brute_svcca(X, Y, 5), abs=1e-8)
    Xs, Ys = X[:9], Y[:9]  # the U-statistic enumerates n^4 quadruples
    K, L = Xs @ Xs.T, Ys @ Ys.T
    expected = brute_hsic_u_statistic(K, L) / np.sqrt(brute_hsic_u_statistic(K, K) * brute_hsic_u_statistic(L, L))
    assert unbiased_cka(Xs, Ys) == pytest.approx(expected, abs=1e-10)


def test_cknna_at_every_neighbour_is_unbiased_cka_only_in_the_authors_variant():
    """Fig. 10's caption: at k = N - 1 the authors' variant is unbiased CKA; the paper's is not CKA."""
    X, Y = _related(0)
    n = len(X)
    assert cknna(X, Y, n - 1, variant="authors") == pytest.approx(unbiased_cka(X, Y), abs=1e-10)
    assert abs(cknna(X, Y, n - 1) - cka(X, Y)) > 1e-3 and abs(cknna(X, Y, n - 1) - unbiased_cka(X, Y)) > 1e-3


def brute_hsic_1(K, L):
    """HSIC_1 (Song et al. 2012, eq. 5) term by term with loops, as the authors' ``hsic_unbiased`` evaluates
    it for matrices that need not be symmetric (neighbour masks are not): the trace term pairs K_ij with L_ji."""
    n = len(K)
    Kt = [[0.0 if i == j else K[i][j] for j in range(n)] for i in range(n)]
    Lt = [[0.0 if i == j else L[i][j] for j in range(n)] for i in range(n)]
    trace = sum(Kt[i][j] * Lt[j][i] for i in range(n) for j in range(n))
    sums = sum(map(sum, Kt)) * sum(map(sum, Lt)) / ((n - 1) * (n - 2))
    chain = sum(Kt[i][j] * Lt[j][q] for i in range(n) for j in range(n) for q in range(n))
    return (trace + sums - 2 * chain / (n - 2)) / (n * (n - 3))


def test_authors_cknna_at_k_5_is_the_masked_hsic_1():
    """The authors' CKNNA at k = 5 of 12 samples against HSIC_1 of the neighbour-masked kernels written out
    with loops. At k = N - 1 every mask is 1, so only a k below N - 1 tells a version that applies the masks
    from one that ignores them."""
    X, Y = _related(3, n=12)
    n, k = len(X), 5
    K, L = X @ X.T, Y @ Y.T
    nx, ny = [set(brute_neighbours(X, i, k)) for i in range(n)], [set(brute_neighbours(Y, i, k)) for i in range(n)]
    mask_x = np.array([[j in nx[i] for j in range(n)] for i in range(n)], dtype=float)
    mask_y = np.array([[j in ny[i] for j in range(n)] for i in range(n)], dtype=float)
    both = mask_x * mask_y
    expected = brute_hsic_1(both * K, both * L) / np.sqrt(
        brute_hsic_1(mask_x * K, mask_x * K) * brute_hsic_1(mask_y * L, mask_y * L)
    )
    assert cknna(X, Y, k, variant="authors") == pytest.approx(expected, abs=1e-10)
    unmasked = brute_hsic_1(K, L) / np.sqrt(brute_hsic_1(K, K) * brute_hsic_1(L, L))
    assert unmasked == pytest.approx(cknna(X, Y, n - 1, variant="authors"), abs=1e-10)
    assert abs(expected - unmasked) > 1e-2  # the masks change the value


def aristotelian_procrustes(X, Y):
    """The 2026 re-analysis's registered Procrustes metric (``Procrustes._compute_raw`` in
    aristotelian/metrics/other_metrics.py), written out: the nuclear norm from the eigenvalues of M Mᵀ,
    M = XcᵀYc, then 1 − sqrt(‖Xc‖² + ‖Yc‖² − 2‖M‖_*) / ‖Yc‖ (without their 1e-8)."""
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    M = Xc.T @ Yc
    nuclear = np.sqrt(np.clip(np.linalg.eigvalsh(M @ M.T), 0, None)).sum()
    return 1.0 - np.sqrt(max((Xc**2).sum() + (Yc**2).sum() - 2 * nuclear, 0)) / np.linalg.norm(Yc)


def procrustes_residual(X, Y):
    """Their numpy ``procrustes_score``: 1 − ‖XcR − Yc‖ / ‖Yc‖ with R the orthogonal Procrustes fit."""
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    U, _, Vt = np.linalg.svd(Xc.T @ Yc, full_matrices=False)
    return 1.0 - np.linalg.norm(Xc @ (U @ Vt) - Yc) / np.linalg.norm(Yc)


def test_the_2026_codes_procrustes_is_an_option():
    """``procrustes: {variant: aristotelian}``: their score, asymmetric and scale-dependent (ours is neither),
    the same through the all-layer-pairs engine, and a metric the pipeline scores in both directions."""
    from prh.metrics.definitions import procrustes
    from prh.metrics.layerwise import get_metric

    X, Y = _related(0)  # widths 12 and 7
    theirs = procrustes(X, Y, variant="aristotelian")
    # their eigvalsh of M Mᵀ squares M's small singular values: agreement to 1e-8, not to rounding
    assert theirs == pytest.approx(aristotelian_procrustes(X, Y), abs=1e-8)
    assert procrustes(Y, X, variant="aristotelian") == pytest.approx(aristotelian_procrustes(Y, X), abs=1e-8)
    # the residual form agrees when X is no wider than Y; a wider X loses its directions outside Y's in XcR
    assert procrustes(Y, X, variant="aristotelian") == pytest.approx(procrustes_residual(Y, X), abs=1e-12)
    assert abs(theirs - procrustes_residual(X, Y)) > 1e-3
    assert abs(procrustes(Y, X, variant="aristotelian") - theirs) > 1e-3
    assert abs(procrustes(2 * X, Y, variant="aristotelian") - theirs) > 1e-3
    assert procrustes(2 * X, Y) == pytest.approx(procrustes(X, Y), abs=1e-12) == procrustes(Y, X)
    xs, ys = [X, X[:, :5]], [Y, Y[:, :4]]
    expected = [[aristotelian_procrustes(x, y) for y in ys] for x in xs]
    np.testing.assert_allclose(layer_scores("procrustes", xs, ys, variant="aristotelian"), expected, atol=1e-8)
    metric = get_metric("procrustes")
    assert metric.is_symmetric({"variant": "paper"}) and not metric.is_symmetric({"variant": "aristotelian"})
    from prh.metrics import half_sample_best

    boot = half_sample_best({"procrustes": {"variant": "aristotelian"}}, LayerStates(xs), LayerStates(ys), 3, 0, True)
    assert ("procrustes", "reverse") in boot  # the pipeline's half-samples score Y against X too
    with pytest.raises(ValueError, match="procrustes variant 'other'"):
        procrustes(X, Y, variant="other")


# --- properties --------------------------------------------------------------------------------------

ALL = {
    "mutual_knn": {"k": 5},
    "cycle_knn": {"k": 5},
    "lcs_knn": {"k": 5},
    "edit_distance_knn": {"k": 5},
    "cka": {},
    "unbiased_cka": {},
    "cknna": {"k": 5},
    "svcca": {"dims": 5},
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_metric_of_x_with_itself_is_one(name):
    X = np.random.default_rng(3).normal(size=(60, 8))  # generic data: every neighbourhood is reciprocated
    assert METRICS[name].pairwise(X, X, **ALL[name]) == pytest.approx(1.0, abs=1e-12)


def test_cka_invariances():
    X, Y = _related(4)
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(12, 12)))
    assert cka(X @ Q * 7.5, Y) == pytest.approx(cka(X, Y), abs=1e-12)
    assert unbiased_cka(X @ Q * 0.2, Y) == pytest.approx(unbiased_cka(X, Y), abs=1e-12)
    assert cka(X, Y, kernel_kind="rbf", sigma=2.0) == pytest.approx(
        cka(X @ Q, Y, kernel_kind="rbf", sigma=2.0), abs=1e-12
    )


@pytest.mark.parametrize("name", sorted(ALL))
def test_symmetry(name):
    X, Y = _related(5)
    metric = METRICS[name]
    forward, backward = metric.pairwise(X, Y, **ALL[name]), metric.pairwise(Y, X, **ALL[name])
    if metric.symmetric:
        assert forward == pytest.approx(backward, abs=1e-12)
    else:
        assert name == "cycle_knn" and forward != backward


@pytest.mark.parametrize("name", ["mutual_knn", "lcs_knn", "edit_distance_knn", "cknna"])
def test_knn_metrics_against_permuted_samples_are_near_chance(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 16))
    shuffled = X[rng.permutation(500)]
    score = METRICS[name].pairwise(X, shuffled, k=10)
    assert abs(score) < 0.05 and METRICS[name].pairwise(X, X, k=10) == pytest.approx(1.0)


# --- the batched engine ------------------------------------------------------------------------------


def _stacks(seed=7, n=80):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 5))
    Xs = [Z @ rng.normal(size=(5, d)) + s * rng.normal(size=(n, d)) for d, s in [(8, 0.1), (16, 1.0), (6, 3.0)]]
    Ys = [np.sin(Z @ rng.normal(size=(5, d))) + 0.3 * rng.normal(size=(n, d)) for d in (6, 9)]
    return prepare_stack(Xs), prepare_stack(Ys)


VARIANTS = {"cknna-authors": {"variant": "authors"}, "cka-rbf": {"kernel": "rbf", "sigma": 0.8}}


def _case(name):
    """A metric name, optionally with a variant suffix, and its parameters."""
    metric = name.split("-")[0]
    return metric, ALL[metric] | VARIANTS.get(name, {})


@pytest.mark.parametrize("name", sorted(ALL) + list(VARIANTS))
def test_layer_scores_equal_the_reference_loop(name):
    Xs, Ys = _stacks()
    metric, params = _case(name)
    scores = layer_scores(metric, Xs, Ys, **params)
    reference = np.array([[METRICS[metric].pairwise(X, Y, **params) for Y in Ys] for X in Xs])
    assert scores.shape == (3, 2)
    np.testing.assert_allclose(scores, reference, atol=1e-10, rtol=0)


def test_permuted_states_equal_recomputed_states():
    Xs, Ys = _stacks()
    perm = np.random.default_rng(1).permutation(80)
    view, fresh = LayerStates(Ys).permuted(perm), LayerStates([y[perm] for y in Ys])
    for name, params in ALL.items():
        np.testing.assert_allclose(
            layer_scores(name, Xs, view, **params), layer_scores(name, Xs, fresh, **params), atol=1e-12, rtol=0
        )


def test_null_and_bootstrap():
    Xs, Ys = _stacks()
    sx, sy = LayerStates(Xs), LayerStates(Ys)
    null = permutation_null({"mutual_knn": {"k": 5}, "cka": {}}, sx, sy, draw_permutations(80, 15, seed=0))
    again = permutation_null({"mutual_knn": {"k": 5}, "cka": {}}, sx, sy, draw_permutations(80, 15, seed=0))
    np.testing.assert_array_equal(null["mutual_knn"], again["mutual_knn"])  # seeded
    chance = 5 / 79
    assert chance < null["mutual_knn"].mean() < 4 * chance  # the max over 6 layer pairs sits above chance
    assert null["mutual_knn"].max() < layer_scores("mutual_knn", sx, sy, k=5).max()
    values = half_sample_values("mutual_knn", Xs[0], Ys[0], resamples=200, seed=0, k=5)
    point = mutual_knn(Xs[0], Ys[0], k=5)
    low, high = half_sample_interval(point, values)
    assert low < point < high and high - low < 0.3
    cka_values = half_sample_values("cka", Xs[0], Ys[0], resamples=50, seed=0)
    idx = half_samples(80, 50, 0)[0]
    assert cka_values[0] == pytest.approx(cka(Xs[0][idx], Ys[0][idx]), abs=1e-12)  # the Gram shortcut is exact


def test_layer_scores_accepts_a_3d_array_and_rejects_bad_input():
    stack = np.random.default_rng(0).normal(size=(2, 30, 4))
    assert layer_scores("mutual_knn", stack, stack, k=3).diagonal().tolist() == [1.0, 1.0]
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        layer_scores("nope", stack, stack)
    with pytest.raises(TypeError, match="no parameter"):
        layer_scores("mutual_knn", stack, stack, kk=3)
    with pytest.raises(ValueError, match="k = 30"):
        mutual_knn(stack[0], stack[1], k=30)
    with pytest.raises(ValueError, match="same samples"):
        mutual_knn(stack[0], stack[1][:20], k=3)


def test_ties_are_broken_towards_the_lower_index():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])  # samples 1-4 coincide
    assert knn_indices(X, 2)[0].tolist() == [1, 2]
    assert knn_indices(X, 2)[4].tolist() == [1, 2]


def test_quantile_clamp():
    a = np.arange(1, 101, dtype=float).reshape(10, 10)
    b = -np.arange(1, 51, dtype=float).reshape(10, 5)
    threshold = np.quantile(np.abs(np.concatenate([a.ravel(), b.ravel()])), 0.9)
    ca, cb = clamp_quantile([a, b], q=0.9)
    assert ca.max() == threshold and cb.min() == -50.0 and threshold > 50
    np.testing.assert_array_equal(ca, np.minimum(a, threshold))
    np.testing.assert_array_equal(clamp_quantile([a], q=1.0)[0], a)
    pa, pb = clamp_quantile([a, b], q=0.9, mode="per_layer")
    assert pa.max() == np.quantile(a, 0.9) and pb.min() == -np.quantile(-b, 0.9)
    raw = prepare_stack([a, b], q=0.9, normalize=False)
    np.testing.assert_array_equal(raw[0], ca)
    prepared = prepare_stack([a, b], q=0.9, concat=True)
    assert len(prepared) == 3 and prepared[2].shape == (10, 15)
    np.testing.assert_allclose(np.linalg.norm(prepared[2], axis=1), 1.0)


@pytest.mark.parametrize("name", sorted(ALL) + list(VARIANTS))
def test_torch_path_equals_numpy_path(name):
    """The device path (here torch on the CPU; a GPU where present) matches numpy to rounding."""
    Xs, Ys = _stacks()
    metric, params = _case(name)
    numpy_scores = layer_scores(metric, Xs, Ys, device="cpu", **params)
    torch_scores = layer_scores(metric, Xs, Ys, device="torch-cpu", **params)
    np.testing.assert_allclose(torch_scores, numpy_scores, atol=1e-10, rtol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_measure_gives_one_for_a_rank_deficient_layer_against_itself(dtype):
    """A layer of rank 3, 5 or 8 (N = 512, D = 64) against itself: 1 for every measure, by its definition
    and by the batched path the pair jobs run. SVCCA with dims = 10 keeps the directions the layer has (before,
    the ones past its rank were rounding divided by near-zero eigenvalues: 0.42, 0.56, 0.83)."""
    from prh.metrics.definitions import svcca
    from prh.metrics.layerwise import METRICS, LayerStates

    rng = np.random.default_rng(0)
    for rank in (3, 5, 8):
        X = (rng.standard_normal((512, rank)) @ rng.standard_normal((rank, 64))).astype(dtype)
        states = LayerStates([X])
        for name, metric in METRICS.items():
            assert metric.pairwise(X, X, **metric.defaults) == pytest.approx(1.0, abs=1e-6), (name, rank)
            batched = metric.layerwise(states, states, **metric.defaults)[0, 0]
            assert batched == pytest.approx(1.0, abs=1e-6), (name, rank)
    assert svcca(X, X[:, ::-1].copy(), dims=10) == pytest.approx(1.0)  # the same space, columns reordered


def test_the_unbiased_hsic_is_written_once():
    """Every path reaches HSIC_1 through definitions.unbiased_hsic: its normalisation appears once in prh/, and
    the function equals Song et al.'s eq. 5 computed by hand on a 5 × 5 example."""
    import re
    from pathlib import Path

    from prh.metrics.definitions import unbiased_hsic

    source = "".join(p.read_text() for p in (Path(__file__).parents[1] / "prh").rglob("*.py"))
    assert len(re.findall(r"\(n - 1\) \* \(n - 2\)", source)) == 1
    K = np.array([[9, 1, 2, 0, 1], [1, 9, 3, 1, 0], [2, 3, 9, 2, 2], [0, 1, 2, 9, 1], [1, 0, 2, 1, 9]], float)
    L = np.array([[5, 2, 0, 1, 1], [2, 5, 1, 0, 2], [0, 1, 5, 3, 1], [1, 0, 3, 5, 0], [1, 2, 1, 0, 5]], float)
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    by_hand = (np.trace(Kt @ Lt) + Kt.sum() * Lt.sum() / (4 * 3) - 2 * np.ones(5) @ Kt @ Lt @ np.ones(5) / 3) / (5 * 2)
    trace, sums, rows = float((Kt * Lt).sum()), float(Kt.sum() * Lt.sum()), float(Kt.sum(1) @ Lt.sum(1))
    assert unbiased_hsic(trace, sums, rows, 5) == pytest.approx(by_hand, abs=1e-12)
    # by hand: row sums of K~ (4, 5, 9, 4, 4) and of L~ (4, 5, 5, 4, 4); tr(K~L~) = 2 · 14 over the upper pairs
    assert (trace, sums, rows) == (28.0, 26.0 * 22.0, 118.0)
    assert by_hand == pytest.approx((28 + 572 / 12 - 2 * 118 / 3) / 10) == pytest.approx(-0.3)
