"""Half-sample intervals of the best score over layer pairs (``prh.metrics.resampling``): each resample
scored as a dataset of its own, against a brute force that materialises it, and the coverage of the
intervals."""

import numpy as np
import pytest

from prh.metrics import LayerStates, half_sample_best, half_sample_interval, half_samples, layer_scores
from prh.metrics import definitions as d
from prh.metrics.resampling import Resample, covering_lists, half_sample_counts, resampled_scores

K = 5
NEIGHBOUR = ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna")
EXACT = NEIGHBOUR + ("cka", "unbiased_cka", "rv_coefficient", "procrustes", "cca", "pwcca", "svcca")


def _stacks(n=60, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    xs = [d.l2_normalize(z @ rng.normal(size=(3, 8)) + s * rng.normal(size=(n, 8))) for s in (0.3, 1.0)]
    ys = [d.l2_normalize(z @ rng.normal(size=(3, 6)) + s * rng.normal(size=(n, 6))) for s in (0.5, 2.0, 0.1)]
    return xs, ys


def _brute(name: str, X: np.ndarray, Y: np.ndarray, idx: np.ndarray) -> float:
    """The metric on the materialised resample X[idx], Y[idx] (idx sorted: points numbered by sample), with
    copies of one sample kept out of each other's neighbourhoods, ties (copies of a neighbour) to the lower
    point."""
    Xr, Yr = X[idx], Y[idx]
    copies = idx[:, None] == idx[None, :]

    def lists(A):  # the resample's similarities: the full sample's at (idx, idx), so copies tie exactly
        similarity = d.cosine_similarity(A)[np.ix_(idx, idx)]
        similarity[copies] = -np.inf
        return d.top_k(similarity, K)

    if name in NEIGHBOUR:
        kx, ky = lists(X), lists(Y)
        if name == "mutual_knn":
            return np.take_along_axis(d.neighbour_mask(ky), kx, axis=1).sum(axis=1).mean() / K
        if name == "cycle_knn":  # back at any copy of the start
            return np.mean([any(idx[p] in idx[kx[q]] for q in ky[p]) for p in range(len(idx))])
        if name == "lcs_knn":
            return np.mean([d.longest_common_subsequence(a, b) for a, b in zip(kx, ky)]) / K
        if name == "edit_distance_knn":
            return 1 - np.mean([d.edit_distance(a, b) for a, b in zip(kx, ky)]) / K
        Kc, Lc = d.row_centred_kernel(Xr), d.row_centred_kernel(Yr)
        mx, my = d.neighbour_mask(kx), d.neighbour_mask(ky)
        return (Kc * Lc * (mx & my)).sum() / np.sqrt((Kc * Kc * mx).sum() * (Lc * Lc * my).sum())
    return getattr(d, name)(Xr, Yr, **({"dims": 3} if name == "svcca" else {}))


def _params(name):
    return {"k": K} if name in NEIGHBOUR else {"dims": 3} if name == "svcca" else {}


def test_a_resample_scores_as_the_materialised_resample():
    """Half-samples (what the run draws) and, since the engine takes any counts, resamples with copies."""
    xs, ys = _stacks()
    sx, sy = LayerStates(xs), LayerStates(ys)
    with_copies = np.sort(np.random.default_rng(1).integers(0, 60, size=60))
    for idx in (half_samples(60, 2, 0)[1], with_copies):
        counts = np.bincount(idx, minlength=60)
        lists = {(side, K): covering_lists(s, K, counts[None]) for side, s in (("x", sx), ("y", sy))}
        pair = Resample.of(sx, sy, counts, lists)
        for name in EXACT + ("rsa",):
            ours = resampled_scores(name, pair, **_params(name))
            expected = np.array([[_brute(name, X, Y, idx) for Y in ys] for X in xs])
            if name in EXACT:
                np.testing.assert_allclose(ours, expected, atol=1e-12, rtol=0, err_msg=name)
            else:  # RSA keeps the full sample's ranks: near a re-ranked resample
                np.testing.assert_allclose(ours, expected, atol=0.06, err_msg=name)
                assert np.abs(ours - expected).max() > 1e-6, name  # (and not the same computation)
        reverse = pair.reversed()
        for name in ("cycle_knn", "pwcca"):  # the asymmetric metrics, Y against X
            expected = np.array([[_brute(name, Y, X, idx) for X in xs] for Y in ys])
            np.testing.assert_allclose(resampled_scores(name, reverse, **_params(name)), expected, atol=1e-12)


def test_half_samples_are_seeded_halves_without_replacement():
    samples = half_samples(61, 50, 7)
    assert samples.shape == (50, 30) and np.array_equal(samples, half_samples(61, 50, 7))
    assert all(len(set(row)) == 30 and np.array_equal(row, np.sort(row)) for row in samples)
    assert np.array_equal(half_sample_counts(61, 50, 7).sum(axis=1), np.full(50, 30))
    # deviations from the mean 0.3: −0.2, −0.1, 0, 0.1, 0.2; their quartiles −0.1 and 0.1, around 0.5
    low, high = half_sample_interval(0.5, np.array([0.1, 0.2, 0.3, 0.4, 0.5]), level=0.5)
    assert (low, high) == pytest.approx((0.4, 0.6))


def test_half_sample_best_takes_the_best_layer_pair_of_each_half_sample():
    xs, ys = _stacks()
    values = half_sample_best({"mutual_knn": {"k": K}, "cka": {}}, LayerStates(xs), LayerStates(ys), 4, 3)
    for r, idx in enumerate(half_samples(60, 4, 3)):
        for name in ("mutual_knn", "cka"):
            best = max(_brute(name, X, Y, idx) for X in xs for Y in ys)
            assert values[name][r] == pytest.approx(best, abs=1e-12), name
    # the best layer pair of the full sample is not the best of every resample
    cka = {(a, b): [_brute("cka", xs[a], ys[b], i) for i in half_samples(60, 4, 3)] for a in (0, 1)
           for b in (0, 1, 2)}  # fmt: skip
    assert not np.allclose(values["cka"], cka[np.unravel_index(np.argmax(layer_scores("cka", xs, ys)), (2, 3))])


def test_stored_lists_too_short_for_the_resamples_are_an_error():
    xs, _ = _stacks()
    states = LayerStates(xs)
    stored = LayerStates.from_arrays(60, 2, knn=states.knn(K), source="x.state")
    counts = half_sample_counts(60, 10, 0)
    with pytest.raises(ValueError, match="x.state: neighbour lists of depth 5 are too short"):
        covering_lists(stored, K, counts)
    deep = covering_lists(states, K, counts)  # from the layers: searched as deep as the resamples need
    assert deep.shape[2] >= 4 * K and np.array_equal(deep[:, :, :K], states.knn(K))


def _world(rng, n, mixing):
    """Two 'models' of one latent scene, two layers each, with layer-specific noise."""
    z = rng.normal(size=(n, 4))
    xs = [d.l2_normalize(z @ a + s * rng.normal(size=(n, 12))) for a, s in zip(mixing[0], (0.8, 1.2))]
    ys = [d.l2_normalize(z @ a + s * rng.normal(size=(n, 10))) for a, s in zip(mixing[1], (1.0, 1.5))]
    return LayerStates(xs), LayerStates(ys)


def test_intervals_cover_the_population_best_score():
    """Coverage: on pairs drawn from a known generative model, the 95% half-sample interval of the best score
    over layer pairs covers its population value (its mean at this N, by Monte Carlo over 400 fresh datasets)
    in at least 90 of 100 replications, for every metric (measured counts in docs/default-run.md)."""
    g = np.random.default_rng(123)
    mixing = ([g.normal(size=(4, 12)) for _ in range(2)], [g.normal(size=(4, 10)) for _ in range(2)])
    metrics = {name: _params(name) for name in EXACT + ("rsa",)}
    n, rng = 100, np.random.default_rng(0)
    population = {name: [] for name in metrics}
    for _ in range(400):
        sx, sy = _world(rng, n, mixing)
        for name, params in metrics.items():
            population[name].append(np.nanmax(layer_scores(name, sx, sy, **params)))
    covered = {name: 0 for name in metrics}
    for replication in range(100):
        sx, sy = _world(rng, n, mixing)
        values = half_sample_best(metrics, sx, sy, 100, replication)
        for name, params in metrics.items():
            low, high = half_sample_interval(np.nanmax(layer_scores(name, sx, sy, **params)), values[name])
            covered[name] += low <= np.mean(population[name]) <= high
    print(covered)
    assert all(count >= 90 for count in covered.values()), covered
