"""Calibrated alignment (prh.metrics.calibration) against the reference implementation of Gröger, Wen &
Brbić (ICML 2026), PyPI ``calibrated-similarity`` 0.1.1: the same permutations give the same τ, calibrated
score and p-value. The reference recomputes every metric from scratch on Y[pi] for every layer pair and
draw, through our single-pair definitions, so the layer-wise engine's re-indexed states are checked too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from calibrated_similarity import calibrate_layers as reference_calibrate_layers
from scipy.stats import false_discovery_control

from prh.metrics import definitions as d
from prh.metrics import prepare_stack
from prh.metrics.calibration import (
    benjamini_hochberg,
    calibrate,
    calibrate_layers,
    check_permutations,
    draw_permutations,
)

N = 96
CASES = {  # metric -> parameters: the five of the issue, with CKNNA as the authors' code computes it
    "mutual_knn": {"k": 5},
    "cka": {},
    "unbiased_cka": {},
    "cknna": {"k": 5, "variant": "authors"},
    "svcca": {"dims": 4},
}
PAIRWISE = {
    "mutual_knn": lambda X, Y, k: d.mutual_knn(X, Y, k),
    "cka": lambda X, Y: d.cka(X, Y),
    "unbiased_cka": d.unbiased_cka,
    "cknna": lambda X, Y, k, variant: d.cknna(X, Y, k, variant),
    "svcca": lambda X, Y, dims: d.svcca(X, Y, dims),
}


def _stacks(shared: float, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Three X layers and two Y layers: noisy linear views of a latent that X and Y share to ``shared``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, 6))
    zy = shared * z + (1 - shared) * rng.normal(size=(N, 6))
    xs = [z @ rng.normal(size=(6, w)) + s * rng.normal(size=(N, w)) for w, s in ((8, 0.3), (12, 1.0), (6, 2.0))]
    ys = [zy @ rng.normal(size=(6, w)) + s * rng.normal(size=(N, w)) for w, s in ((10, 0.5), (7, 1.5))]
    return prepare_stack(xs), prepare_stack(ys)


def _reference(metric: str, xs, ys, perms: np.ndarray, alpha: float, params: dict):
    draws = iter(torch.as_tensor(perms))

    def sim(X: torch.Tensor, Y: torch.Tensor) -> float:
        return PAIRWISE[metric](X.numpy(), Y.numpy(), **params)

    score, p, tau = reference_calibrate_layers(
        [torch.as_tensor(x) for x in xs],
        [torch.as_tensor(y) for y in ys],
        sim,
        agg="max",
        K=len(perms),
        alpha=alpha,
        perm_fn=lambda n, device: next(draws),
    )
    return float(score), float(p), float(tau)


@pytest.mark.parametrize("shared", [0.9, 0.25, 0.0], ids=["aligned", "weak", "unrelated"])
@pytest.mark.parametrize("metric", list(CASES))
def test_calibrate_layers_equals_the_reference(metric, shared):
    xs, ys = _stacks(shared)
    perms = draw_permutations(N, 40, seed=7)
    ours = calibrate_layers(metric, xs, ys, perms, alpha=0.1, **CASES[metric])
    calibrated, p, tau = _reference(metric, xs, ys, perms, 0.1, CASES[metric])
    assert ours.tau == pytest.approx(tau, abs=1e-6)
    assert ours.calibrated == pytest.approx(calibrated, abs=1e-6)
    assert ours.p_value == pytest.approx(p, rel=1e-6)  # the same count of draws ≥ observed, over K + 1 = 41
    assert round(ours.p_value * 41) == round(p * 41)
    if shared == 0.9:  # a real alignment beats every draw: the smallest p-value, a positive calibrated score
        assert ours.p_value == 1 / 41 and ours.calibrated > 0
    if shared == 0.25:  # a weak one: strictly between the clamps, so the comparison above is not 0 == 0
        assert 0 < ours.calibrated < 0.2
    # each null draw is the max over all layer pairs of the metric recomputed on Y[perm]
    first = max(PAIRWISE[metric](x, y[perms[0]], **CASES[metric]) for x in xs for y in ys)
    assert ours.null[0] == pytest.approx(first, abs=1e-9)


def test_calibration_by_hand():
    """K = 9 draws, α = 0.2: τ is the ⌈0.8 · 10⌉ = 8th smallest of the 10 values."""
    null = np.array([0.10, 0.30, 0.20, 0.50, 0.40, 0.05, 0.25, 0.35, 0.45])
    result = calibrate(0.42, null, alpha=0.2)
    assert result.tau == 0.42  # sorted: .05 .10 .20 .25 .30 .35 .40 [.42] .45 .50
    assert result.p_value == (1 + 2) / 10  # 0.45 and 0.50 reach 0.42
    assert result.calibrated == 0.0
    high = calibrate(0.8, null, alpha=0.2)
    assert high.tau == 0.45 and high.p_value == 0.1
    assert high.calibrated == pytest.approx((0.8 - 0.45) / (1 - 0.45))
    assert np.isnan(calibrate(float("nan"), null).calibrated)


def test_benjamini_hochberg_equals_scipy():
    p = np.random.default_rng(0).uniform(size=200) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p), rtol=1e-12)
    with_gaps = np.array([0.01, np.nan, 0.04, 0.03])
    np.testing.assert_allclose(benjamini_hochberg(with_gaps), [0.03, np.nan, 0.04, 0.04])


def test_bad_calibration_input_names_the_parameter():
    xs, ys = _stacks(0.5)
    with pytest.raises(ValueError, match="permutations: expected a \\(K, N\\) integer array with K >= 1"):
        calibrate_layers("cka", xs, ys, np.empty((0, N), dtype=int))
    with pytest.raises(ValueError, match="alpha = 1.5 must lie in \\(0, 1\\)"):
        calibrate_layers("cka", xs, ys, draw_permutations(N, 3, 0), alpha=1.5)
    with pytest.raises(ValueError, match="alpha = 0 must lie"):
        calibrate(0.5, [0.1], alpha=0)
    repeated = draw_permutations(N, 3, 0)
    repeated[1, 0] = repeated[1, 1]
    with pytest.raises(ValueError, match="permutations: row\\(s\\) \\[1\\] are not permutations of 0..95"):
        calibrate_layers("cka", xs, ys, repeated)
    with pytest.raises(ValueError, match="rows of 10 entries, but there are N = 96"):
        check_permutations(np.tile(np.arange(10), (2, 1)), N)
    with pytest.raises(ValueError, match="permutations = 0 must be at least 1"):
        draw_permutations(N, 0, 0)


def test_config_refuses_a_null_too_small_to_calibrate():
    """With K < 19 at α = 0.05 the critical value is always the largest score: refused before any job."""
    from conftest import tiny_config

    from prh.config import ConfigError, fewest_permutations, validate_config

    assert [fewest_permutations(a) for a in (0.05, 0.1, 0.01)] == [19, 9, 99]
    config = tiny_config()
    config["alignment"]["null_distribution"] = {"permutations": 5, "alpha": 0.05}
    with pytest.raises(ConfigError, match="permutations: 5 permutations cannot calibrate at alpha = 0.05.*at least 19"):
        validate_config(config)
    config["alignment"]["null_distribution"] = {"permutations": 19, "alpha": 1.0}
    with pytest.raises(ConfigError, match="alpha: 1.0 is greater than or equal to the maximum of 1"):
        validate_config(config)
    config["alignment"]["null_distribution"] = {"permutations": 0}  # no null at all is allowed
    validate_config(config)
    assert calibrate(0.9, np.linspace(0, 0.5, 18), alpha=0.05).calibrated == 0.0  # K = 18: τ = 0.9 itself
    assert calibrate(0.9, np.linspace(0, 0.5, 19), alpha=0.05).calibrated > 0.0
