"""Mutual kNN (App. A, eq. 9–11): hand-worked values, a brute-force set implementation, and properties."""

from __future__ import annotations

import numpy as np
import pytest

from prh.metrics import clamp_quantile, knn_indices, layer_scores, mutual_knn, prepare_stack


def _unit(degrees):
    r = np.radians(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def brute_force_mutual_knn(X, Y, k):
    """Independent implementation: Python sets of neighbours, similarities by explicit cosine."""

    def neighbours(F, i):
        sims = []
        for j in range(len(F)):
            if j != i:
                cos = F[i] @ F[j] / (np.linalg.norm(F[i]) * np.linalg.norm(F[j]))
                sims.append((-cos, j))
        return {j for _, j in sorted(sims)[:k]}

    return float(np.mean([len(neighbours(X, i) & neighbours(Y, i)) / k for i in range(len(X))]))


def test_hand_worked_example():
    # X: samples at 0°, 10°, 90°, 100°; Y: the same angles assigned as 0°, 90°, 10°, 100°.
    # k=2 neighbour sets, X: {1,2} {0,2} {3,1} {2,1}; Y: {2,1} {3,2} {0,1} {1,2}
    # intersections 2, 1, 1, 2 -> (2+1+1+2) / (4*2) = 0.75. With k=1 no neighbour is shared: 0.
    X, Y = _unit([0, 10, 90, 100]), _unit([0, 90, 10, 100])
    assert mutual_knn(X, Y, k=2) == pytest.approx(0.75, abs=1e-12)
    assert mutual_knn(X, Y, k=1) == 0.0
    assert [set(row) for row in knn_indices(X, 2)] == [{1, 2}, {0, 2}, {3, 1}, {2, 1}]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_matches_brute_force(seed, k):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(60, 4))
    X = Z @ rng.normal(size=(4, 12)) + 0.5 * rng.normal(size=(60, 12))
    Y = np.tanh(Z @ rng.normal(size=(4, 7))) + 0.5 * rng.normal(size=(60, 7))
    assert mutual_knn(X, Y, k=k) == pytest.approx(brute_force_mutual_knn(X, Y, k), abs=1e-12)


def test_identical_representations_score_one():
    X = np.random.default_rng(0).normal(size=(200, 16))
    assert mutual_knn(X, X, k=10) == 1.0
    assert mutual_knn(X, 3.0 * X, k=10) == 1.0  # cosine neighbourhoods ignore scale


def test_permuted_samples_score_chance():
    # Shuffling which Y goes with which X leaves only chance overlap: expected k / (N - 1).
    rng = np.random.default_rng(0)
    n, k = 600, 10
    X = rng.normal(size=(n, 32))
    Y = X[rng.permutation(n)]
    score = mutual_knn(X, Y, k=k)
    assert score == pytest.approx(k / (n - 1), abs=0.006)  # sd of the mean is about 0.002 here
    assert mutual_knn(X, X, k=k) - score > 0.95


def test_layer_scores_equals_pairwise_loop():
    rng = np.random.default_rng(7)
    Z = rng.normal(size=(80, 5))
    Xs = [Z @ rng.normal(size=(5, d)) + s * rng.normal(size=(80, d)) for d, s in [(8, 0.1), (16, 1.0), (4, 3.0)]]
    Ys = [np.sin(Z @ rng.normal(size=(5, d))) + 0.3 * rng.normal(size=(80, d)) for d in (6, 9)]
    scores = layer_scores("mutual_knn", Xs, Ys, k=7)
    assert scores.shape == (3, 2)
    expected = np.array([[mutual_knn(X, Y, k=7) for Y in Ys] for X in Xs])
    np.testing.assert_array_equal(scores, expected)
    assert scores[0].mean() > scores[2].mean()  # the noisiest layer aligns least


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
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])  # samples 1, 2, 3 coincide
    assert knn_indices(X, 2)[0].tolist() == [1, 2]
    assert knn_indices(X, 2)[3].tolist() == [1, 2]


def test_quantile_clamp_is_global_over_the_stack():
    a = np.arange(1, 101, dtype=float).reshape(10, 10)
    b = -np.arange(1, 51, dtype=float).reshape(10, 5)
    threshold = np.quantile(np.abs(np.concatenate([a.ravel(), b.ravel()])), 0.9)
    ca, cb = clamp_quantile([a, b], q=0.9)
    assert ca.max() == threshold and cb.min() == -50.0 and threshold > 50
    np.testing.assert_array_equal(ca, np.minimum(a, threshold))
    np.testing.assert_array_equal(clamp_quantile([a], q=1.0)[0], a)
    prepared = prepare_stack([a, b], q=0.9)
    np.testing.assert_allclose(np.linalg.norm(prepared[1], axis=1), 1.0)
