"""The idealised world (Section 4, App. F): PMI of a hand-worked chain, Proposition F.1's check, and
contrastive learners whose kernels approach K_PMI."""

import numpy as np
import pytest

from prh.experiments.idealised import experiment as w


def test_pmi_of_a_three_state_cycle_by_hand():
    """A cycle 0 → 1 → 2 → 0 that stays with probability 1/2: π is uniform, and with window 1
    P_coor ∝ diag(π)(I + P + Pᵀ), which has 2 on the diagonal and 1/2 elsewhere (total 9): P_coor(a, a) = 2/9,
    P_coor(a, b) = 1/18, each marginal 1/3. So K_PMI is log 2 on the diagonal and −log 2 off it."""
    P = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
    np.testing.assert_allclose(w.stationary(P), np.full(3, 1 / 3))
    coor = w.cooccurrence(P, window=1)
    np.testing.assert_allclose(coor, np.where(np.eye(3, dtype=bool), 2 / 9, 1 / 18))
    np.testing.assert_allclose(w.pmi_kernel(coor), np.where(np.eye(3, dtype=bool), np.log(2), -np.log(2)))
    check = w.psd_check(w.pmi_kernel(coor))  # off-diagonals all −log 2 (δ = 0): Proposition F.1 applies
    assert check["off_diagonal_nonpositive"] and check["eq33"] and check["eq38"]
    assert check["C"] == pytest.approx(np.log(2) / 3)  # eq. 36: −min_i mean_j K = −(log 2 − 2 log 2) / 3
    assert check["min_eigenvalue"] >= -1e-12  # K + C = 2 log 2 I − (2/3) log 2 J: eigenvalues 2 log 2, 2 log 2, 0


def test_cooccurrence_matches_a_simulated_trajectory():
    P = w.ring_chain(8, 2, seed=3)
    rng, z = np.random.default_rng(0), np.zeros(200_001, dtype=np.int64)
    cumulative, u = np.cumsum(P, axis=1), rng.random(200_000)
    for t in range(200_000):  # inverse-CDF sampling of each step
        z[t + 1] = min(np.searchsorted(cumulative[z[t]], u[t], side="right"), 7)
    counts = np.zeros((8, 8))
    for lag in (-2, -1, 0, 1, 2):
        a, b = z[max(0, -lag) : len(z) - max(0, lag)], z[max(0, lag) : len(z) - max(0, -lag)]
        np.add.at(counts, (a, b), 1)
    np.testing.assert_allclose(w.cooccurrence(P, 2), counts / counts.sum(), atol=2e-3)


def test_a_bijective_code_keeps_the_kernel_and_a_lossy_one_caps_the_alignment():
    coor = w.cooccurrence(w.ring_chain(12, 2, seed=0), 2)
    K = w.pmi_kernel(coor)
    code = np.random.default_rng(0).permutation(12)
    np.testing.assert_allclose(w.lifted(w.pmi_kernel(w.observed_cooccurrence(coor, code)), code), K, atol=1e-12)
    assert w.attainable_alignment(coor, code) == pytest.approx(1.0)
    assert w.attainable_alignment(coor, w.merged_code(12, 2)) < 0.95
    with pytest.raises(ValueError, match="idealised.merge = 5 must divide states = 12"):
        w.merged_code(12, 5)


def test_learned_kernels_approach_k_pmi_on_a_small_world():
    coor = w.cooccurrence(w.ring_chain(12, 2, seed=0), 2)
    K = w.pmi_kernel(coor)
    found = w.train_contrastive(coor, 12, 300, [0, 300], batch=64, lr=0.05, seed=0)
    start, end = (w.kernel_alignment(found[s] @ found[s].T, K) for s in (0, 300))
    assert end > 0.97 and end > start + 0.3, (start, end)  # measured: 0.50 at the start, 0.98 at the end
    again = w.train_contrastive(coor, 12, 300, [300], batch=64, lr=0.05, seed=0)
    np.testing.assert_array_equal(again[300], found[300])  # seeded: the same embeddings every run
