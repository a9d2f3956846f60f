"""Ties in neighbourhoods: a hand-worked example, the expectations over random orders of the samples against
brute force (every order, and random orders with ties found independently of the library's grouping), the
engine against the reference on tied data (nulls and state stores included), and the tie counts a state job
records."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from prh.metrics import cknna, cycle_knn, kernels, layer_scores, lcs_knn, mutual_knn, permutation_null
from prh.metrics import definitions as d
from prh.metrics.calibration import draw_permutations
from prh.metrics.layerwise import LayerStates, tie_errors

# Sample 0 at (1, 0), samples 1-4 coincide at (0, 1): in X, sample 0's four others tie (2 of 4 are its
# 2 nearest) and each of 1-4 has three tied at similarity 1 (2 of 3). Y: the unit circle at 0, 10, 25, 45
# and 70 degrees, no ties; its 2-NN sets are {1, 2}, {0, 2}, {1, 3}, {2, 4}, {3, 2}.
HAND_X = np.array([[1.0, 0.0]] + [[0.0, 1.0]] * 4)
ANGLES = np.radians([0.0, 10.0, 25.0, 45.0, 70.0])
HAND_Y = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)
HAND_SETS_Y = [{1, 2}, {0, 2}, {1, 3}, {2, 4}, {2, 3}]


def test_hand_worked_ties():
    # P(j ∈ S_x(i)): 1/2 for j in 1-4 from sample 0, 2/3 among 1-4, 0 to sample 0 from them
    weights = d.neighbour_weights(HAND_X, 2)
    np.testing.assert_allclose(weights[0], [0, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(weights[3], [0, 2 / 3, 2 / 3, 0, 2 / 3])
    assert [set(s) for s in d.knn_indices(HAND_Y, 2)] == HAND_SETS_Y
    # mutual: sum_j w_x w_y per sample = 1, 2/3, 4/3, 4/3, 4/3 -> 17/3 over k N = 10 (lower-index lists: 0.7)
    assert mutual_knn(HAND_X, HAND_Y, 2) == pytest.approx(17 / 30, abs=1e-15)
    assert layer_scores("mutual_knn", [HAND_X], [HAND_Y], k=2)[0, 0] == pytest.approx(17 / 30, abs=1e-15)
    # identical representations agree whatever the order: one order breaks both alike
    for name in ("mutual_knn", "cknna", "lcs_knn", "edit_distance_knn"):
        assert layer_scores(name, [HAND_X], [HAND_X], k=2)[0, 0] == pytest.approx(1.0, abs=1e-15)
    assert LayerStates([HAND_X]).tie_counts(2).tolist() == [5]  # every sample's 2nd neighbour is tied
    assert LayerStates([HAND_Y]).tie_counts(2).tolist() == [0]


def _plain_scores(sets_x: list[set], sets_y: list[set], Kb: np.ndarray, Lb: np.ndarray) -> np.ndarray:
    """Mutual k-NN, cycle k-NN both ways and CKNNA (paper) of explicit k-NN sets: the plain definitions."""
    n = len(sets_x)
    k = len(sets_x[0])
    mutual = sum(len(a & b) for a, b in zip(sets_x, sets_y)) / (k * n)
    cycle_xy = np.mean([any(i in sets_x[j] for j in sets_y[i]) for i in range(n)])
    cycle_yx = np.mean([any(i in sets_y[j] for j in sets_x[i]) for i in range(n)])
    align = sum(Kb[i, j] * Lb[i, j] for i in range(n) for j in sets_x[i] & sets_y[i])
    self_x = sum(Kb[i, j] ** 2 for i in range(n) for j in sets_x[i])
    self_y = sum(Lb[i, j] ** 2 for i in range(n) for j in sets_y[i])
    return np.array([mutual, cycle_xy, cycle_yx, align / np.sqrt(self_x * self_y)])


def _ordered_lists(X: np.ndarray, k: int, order: np.ndarray) -> list[list[int]]:
    """k-NN lists with exactly equal similarities (to 12 decimals) ordered by ``order`` (sample j's place in a
    random order of the samples): tie groups found without the library's tolerance or grouping code."""
    similarity = np.round(d.l2_normalize(X) @ d.l2_normalize(X).T, 12)
    np.fill_diagonal(similarity, -np.inf)
    return [list(np.lexsort((order, -row))[:k]) for row in similarity]


def _tie_aware(X: np.ndarray, Y: np.ndarray, k: int) -> np.ndarray:
    return np.array([mutual_knn(X, Y, k), cycle_knn(X, Y, k), cycle_knn(Y, X, k), cknna(X, Y, k)])


def test_expectations_equal_the_average_over_every_order_of_the_samples():
    Kb, Lb = d.row_centred_kernel(HAND_X), d.row_centred_kernel(HAND_Y)
    scores = []
    for order in itertools.permutations(range(5)):  # all 120 orders: the exact expectation
        order = np.array(order)
        sets_x = [set(a) for a in _ordered_lists(HAND_X, 2, order)]
        sets_y = [set(b) for b in _ordered_lists(HAND_Y, 2, order)]
        scores.append(_plain_scores(sets_x, sets_y, Kb, Lb))
    exact = np.mean(scores, axis=0)
    # by hand, X's neighbours through Y's: sample 0 never closes; sample 1 unless it comes after 3 and 4 (2/3);
    # samples 2, 3 and 4 unless each comes last of 1-4 (3/4): 7/12 (rows broken independently would give 0.7)
    assert exact[0] == pytest.approx(17 / 30, abs=1e-15) and exact[1] == pytest.approx(7 / 12, abs=1e-15)
    ours = _tie_aware(HAND_X, HAND_Y, 2)
    np.testing.assert_allclose(ours[[0, 3]], exact[[0, 3]], rtol=0, atol=1e-14)  # mutual k-NN and CKNNA: exact
    for value, target, a, b in ((ours[1], exact[1], HAND_X, HAND_Y), (ours[2], exact[2], HAND_Y, HAND_X)):
        error = d.tie_error(a, b, "cycle_knn", 2)  # cycle k-NN: a seeded average over 32 orders
        assert error > 0 and abs(value - target) < 4 * error


def _codes(rng, n: int, width: int, p: float) -> np.ndarray:
    """Binary codes, many rows alike: exact ties everywhere (a discrete representation, as the world Z)."""
    return (rng.random((n, width)) < p).astype(float)


def test_both_tied_chance_against_every_order():
    # a sample j tied in both groups: X's group j + {a others} + {c − 1 shared}, Y's j + {b others} + shared
    for a, b, c, rx, ry in [(2, 1, 2, 2, 1), (0, 0, 3, 2, 2), (1, 2, 1, 1, 2), (3, 0, 2, 2, 3), (2, 2, 3, 3, 2)]:
        x_only, y_only, shared = list(range(1, a + 1)), list(range(a + 1, a + b + 1)), list(range(a + b + 1, a + b + c))
        group_x, group_y = [0] + x_only + shared, [0] + y_only + shared
        hits = total = 0
        for order in itertools.permutations(range(a + b + c)):
            place = np.argsort(order)
            hits += (sorted(group_x, key=place.__getitem__).index(0) < rx) and (
                sorted(group_y, key=place.__getitem__).index(0) < ry
            )
            total += 1
        assert d.both_tied_chance(a, b, c, rx, ry) == pytest.approx(hits / total, abs=1e-15)
        assert kernels.both_tied_chance(a, b, c, rx, ry) == pytest.approx(hits / total, abs=1e-12)


def test_expectations_against_random_orders_drawn_independently():
    rng = np.random.default_rng(7)
    X, Y, k, draws = _codes(rng, 40, 6, 0.3), _codes(rng, 40, 5, 0.35), 4, 1500  # both sides tied
    Kb, Lb = d.row_centred_kernel(X), d.row_centred_kernel(Y)
    scores, lcs = [], []
    for _ in range(draws):
        order = rng.permutation(40)
        lists_x, lists_y = _ordered_lists(X, k, order), _ordered_lists(Y, k, order)
        scores.append(_plain_scores([set(a) for a in lists_x], [set(b) for b in lists_y], Kb, Lb))
        lcs.append(np.mean([d.longest_common_subsequence(a, b) for a, b in zip(lists_x, lists_y)]) / k)
    scores, lcs = np.array(scores), np.array(lcs)
    error = scores.std(axis=0) / np.sqrt(draws)
    assert np.all(error > 0)  # the order moves every score: the comparison is not trivial
    exact = np.array([mutual_knn(X, Y, k), cknna(X, Y, k)])
    assert np.all(np.abs(scores.mean(axis=0)[[0, 3]] - exact) < 5 * error[[0, 3]]), (scores.mean(axis=0), exact)
    # cycle k-NN and LCS have no closed form: the seeded average over TIE_DRAWS orders, with its standard error
    for value, mc, mc_error, se in (
        (cycle_knn(X, Y, k), scores[:, 1].mean(), error[1], d.tie_error(X, Y, "cycle_knn", k)),
        (lcs_knn(X, Y, k), lcs.mean(), lcs.std() / np.sqrt(draws), d.tie_error(X, Y, "lcs_knn", k)),
    ):
        assert se > 0 and abs(value - mc) < 5 * np.hypot(se, mc_error)
    # identical tied representations: one order breaks both alike
    assert mutual_knn(X, X, k) == pytest.approx(1.0, abs=1e-15) and cknna(X, X, k) == pytest.approx(1.0, abs=1e-14)


def test_engine_equals_the_reference_on_tied_data_nulls_and_state_stores(tmp_path):
    from prh.alignment.states import compute_state, open_state, write_state
    from prh.io.features import FeatureWriter

    rng = np.random.default_rng(3)
    Xs = [d.l2_normalize(_codes(rng, 48, 6, 0.3)), d.l2_normalize(rng.normal(size=(48, 5)))]  # tied; continuous
    Ys = [_codes(rng, 48, 4, 0.4), _codes(rng, 48, 9, 0.2)]
    metrics = {
        "mutual_knn": {"k": 5},
        "cycle_knn": {"k": 5},
        "lcs_knn": {"k": 5},
        "edit_distance_knn": {"k": 5},
        "cknna": {"k": 5},
    }
    sx, sy = LayerStates(Xs), LayerStates(Ys)
    perm = draw_permutations(48, 1, 0)[0]
    null = permutation_null(metrics, sx, sy, perm[None], keep_layers=True)
    for name, params in metrics.items():
        pairwise = getattr(d, name)
        reference = np.array([[pairwise(x, y, **params) for y in Ys] for x in Xs])
        np.testing.assert_allclose(layer_scores(name, sx, sy, **params), reference, rtol=0, atol=1e-14)
        shuffled = np.array([[pairwise(x, y[perm], **params) for y in Ys] for x in Xs])
        np.testing.assert_allclose(null[name][0], shuffled, rtol=0, atol=1e-14)
    assert layer_scores("cknna", Xs, Ys, k=5, variant="authors") == pytest.approx(
        np.array([[d.cknna(x, y, 5, "authors") for y in Ys] for x in Xs]), abs=1e-14
    )
    errors = tie_errors("lcs_knn", sx, sy, k=5)
    assert errors.shape == (2, 2) and np.all(errors > 0) and tie_errors("mutual_knn", sx, sy, k=5).max() == 0
    assert tie_errors("cycle_knn", sx, sy, k=5)[0, 0] == pytest.approx(d.tie_error(Xs[0], Ys[0], "cycle_knn", 5))
    # the state job stores the tie groups and counts the tied samples per layer; the pair reads them back
    store = tmp_path / "x.zarr"
    attrs = {"model": "x", "modality": "vision", "dataset_fingerprint": "synthetic", "layer_names": '["a", "b"]'}
    with FeatureWriter(store, 48, chunk=16, attrs=attrs) as writer:
        writer.write([a.astype(np.float32) for a in Xs])
    state, info = compute_state(store, metrics, quantile=1.0)
    write_state(state, tmp_path / "x.state")
    stored, stored_attrs = open_state(tmp_path / "x.state")
    similarity = [np.round(d.cosine_similarity(a), 12) for a in Xs]
    for s in similarity:
        np.fill_diagonal(s, -np.inf)
    kth = [np.sort(s, axis=1)[:, -5] for s in similarity]
    by_hand = [int(sum(np.sum(row == v) > 1 for row, v in zip(s, t))) for s, t in zip(similarity, kth)]
    assert info["knn_ties"] == stored_attrs["knn_ties"] == by_hand and by_hand[0] > 0 and by_hand[1] == 0
    for name, params in metrics.items():
        expected = layer_scores(name, sx, sy, **params)  # CKNNA's kernel from float32 features: to 1e-6
        np.testing.assert_allclose(layer_scores(name, stored, sy, **params), expected, rtol=0, atol=1e-6)
    assert json.loads(json.dumps(stored_attrs["knn_ties"])) == by_hand


def test_ties_are_judged_on_float64_values_within_the_rounding_bound():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 16))
    # exact duplicates tie; copies nudged by 1e-6 (similarities apart by ~1e-12 · 16, above the 1e-14 tolerance at
    # this width and far below float32's 6e-8) are ordered, not tied
    X = np.concatenate([base, base[:5], base[5:10] + 1e-6 * rng.normal(size=(5, 16))])
    lists, starts = LayerStates([X]).neighbours(1)
    assert d.tie_tolerance(16) < 1e-14
    for i in range(5):  # sample i and its duplicate 30 + i: each the other's only neighbour at similarity 1
        assert lists[0, i, 0] == 30 + i and starts[0, i].tolist()[:2] == [0, 1]
    for i in range(5, 10):  # the nudged copy is the nearest, and no tie
        assert lists[0, i, 0] == 30 + i and starts[0, i, 1] == 1
    # a sample whose nearest is an exact duplicate pair ties at k = 1 (the same float64 product twice); one
    # whose nearest is a nudged pair (apart by ~1e-8) does not
    similarity = d.cosine_similarity(X)
    np.fill_diagonal(similarity, -np.inf)
    top = np.sort(similarity, axis=1)[:, -2:]
    assert LayerStates([X]).tie_counts(1).tolist() == [int(np.sum(top[:, 0] == top[:, 1]))]
    assert 0 < LayerStates([X]).tie_counts(1)[0] < 30
    Z = np.concatenate([base, base[:1], base[:1]])  # sample 0 with two exact duplicates: its 1st neighbour ties
    assert LayerStates([Z]).tie_counts(1)[0] >= 1
    assert d.neighbour_weights(Z, 1)[0, [30, 31]].tolist() == [0.5, 0.5]
