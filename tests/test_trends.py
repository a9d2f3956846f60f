"""The trend statistics (Fig. 2, Fig. 3, the world trends) against scipy: Spearman's ρ against
``scipy.stats.spearmanr``, the exact permutation p-value against ``scipy.stats.permutation_test`` over every
pairing, the bootstrap interval against ``scipy.stats.bootstrap`` (percentile) on the same seeded draws."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from prh.analysis.trends import spearman_trend


@pytest.mark.parametrize("n, seed", [(5, 0), (7, 3), (8, 11)])
def test_spearman_trend_equals_scipy(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.6 * x + rng.normal(size=n)
    y[1] = y[2]  # a tie in y: average ranks
    ours = spearman_trend(x, y, seed=seed)
    assert ours["n"] == n and ours["rho"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    centred = stats.rankdata(x) - stats.rankdata(x).mean()

    def rho(v, axis=-1):  # Spearman's ρ of x against each permutation of v, vectorised for scipy
        ranks = stats.rankdata(v, axis=axis)
        ranks = ranks - ranks.mean(axis=axis, keepdims=True)
        return (ranks @ centred) / (np.linalg.norm(ranks, axis=axis) * np.linalg.norm(centred))

    exact = stats.permutation_test((y,), rho, permutation_type="pairings", n_resamples=np.inf, vectorized=True)
    assert exact.null_distribution.size == np.prod(np.arange(1, n + 1))  # every pairing
    assert ours["p_value"] == pytest.approx(exact.pvalue, abs=1e-12)

    def paired_rho(a, b, axis=-1):  # Spearman's ρ of each resample, vectorised; NaN where a side is constant
        ra, rb = stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis)
        ra, rb = ra - ra.mean(axis=axis, keepdims=True), rb - rb.mean(axis=axis, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (ra * rb).sum(axis) / np.sqrt((ra * ra).sum(axis) * (rb * rb).sum(axis))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's notes on degenerate resamples
        boot = stats.bootstrap(
            (x, y), paired_rho, paired=True, vectorized=True, n_resamples=2000, method="percentile",
            rng=np.random.default_rng(seed),
        ).bootstrap_distribution  # fmt: skip
    defined = boot[np.isfinite(boot)]  # resamples with a constant side have no ρ: dropped, as ours does
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx(tuple(np.quantile(defined, [0.025, 0.975])), abs=1e-12)


def test_spearman_trend_needs_three_models():
    out = spearman_trend([1.0, 2.0, np.nan], [2.0, 1.0, 3.0])
    assert out["n"] == 2 and np.isnan(out["rho"]) and np.isnan(out["p_value"])
