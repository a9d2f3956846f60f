"""The five measures of the 2026 re-analysis that App. B lacks: orthogonal Procrustes, RSA, the RV
coefficient, CCA and PWCCA. Each definition is checked against an independent computation (rsatoolbox for
RSA; scipy's orthogonal Procrustes; covariance eigenproblems for CCA and PWCCA; explicit traces for RV),
then the layer-wise engine against the definitions, in memory and through a state store, with its null and
bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes

from prh.metrics import LayerStates, half_sample_values, half_samples, layer_scores, prepare_stack
from prh.metrics import definitions as d
from prh.metrics.calibration import calibrate_layers, draw_permutations

NEW = {"procrustes": {}, "rsa": {}, "rv_coefficient": {}, "cca": {}, "pwcca": {}}


def _pair(n=120, seed=0, dx=9, dy=6):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    X = z @ rng.normal(size=(4, dx)) + 0.5 * rng.normal(size=(n, dx))
    Y = np.tanh(z @ rng.normal(size=(4, dy))) + 0.5 * rng.normal(size=(n, dy))
    return X, Y


def _centred_unit(A):
    A = A - A.mean(axis=0)
    return A / np.linalg.norm(A)


def test_procrustes_equals_scipys_orthogonal_procrustes():
    X, Y = _pair()
    Xc, Yc = _centred_unit(X), np.pad(_centred_unit(Y), ((0, 0), (0, 3)))  # widths padded to 9
    R, _ = orthogonal_procrustes(Yc, Xc)
    distance = np.linalg.norm(Xc - Yc @ R) ** 2
    assert d.procrustes(X, Y) == pytest.approx(1 - distance / 2, abs=1e-10)
    Q = np.linalg.qr(np.random.default_rng(1).normal(size=(9, 9)))[0]
    assert d.procrustes(X, 3 * X @ Q + 5) == pytest.approx(1.0, abs=1e-12)  # rotation, scale, shift


def test_rsa_equals_rsatoolbox():
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm, compare

    X, Y = (d.l2_normalize(a) for a in _pair())
    rdms = [calc_rdm(Dataset(a), method="euclidean") for a in (X, Y)]
    expected = float(compare(rdms[0], rdms[1], method="spearman")[0, 0])
    assert d.rsa(X, Y) == pytest.approx(expected, abs=1e-10)


def test_rv_coefficient_by_its_traces():
    X, Y = _pair()
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Sxy, Sxx, Syy = Xc.T @ Yc, Xc.T @ Xc, Yc.T @ Yc
    classic = np.trace(Sxy @ Sxy.T) / np.sqrt(np.trace(Sxx @ Sxx) * np.trace(Syy @ Syy))
    assert d.rv_coefficient(X, Y) == pytest.approx(classic, abs=1e-12)
    assert d.rv_coefficient(X, Y) == pytest.approx(d.cka(X, Y), abs=1e-12)  # RV is linear CKA
    K, L = Xc @ Xc.T, Yc @ Yc.T
    K0, L0 = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    modified = (K0 * L0).sum() / np.sqrt((K0 * K0).sum() * (L0 * L0).sum())
    assert d.rv_coefficient(X, Y, "modified") == pytest.approx(modified, abs=1e-12)


def _cca_by_covariances(X, Y):
    """Canonical correlations and X's canonical directions from Σxx⁻¹ Σxy Σyy⁻¹ Σyx (full-rank covariances)."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Sxx, Syy, Sxy = Xc.T @ Xc, Yc.T @ Yc, Xc.T @ Yc
    values, vectors = np.linalg.eig(np.linalg.solve(Sxx, Sxy) @ np.linalg.solve(Syy, Sxy.T))
    order = np.argsort(-values.real)[: min(X.shape[1], Y.shape[1])]
    return np.sqrt(np.clip(values.real[order], 0, 1)), vectors.real[:, order], Xc


def test_cca_and_pwcca_equal_the_covariance_eigenproblem():
    X, Y = _pair()
    rho, directions, Xc = _cca_by_covariances(X, Y)
    np.testing.assert_allclose(d.canonical_correlations(X, Y), rho, atol=1e-10)
    assert d.cca(X, Y) == pytest.approx(rho.mean(), abs=1e-10)
    h = Xc @ directions
    h /= np.linalg.norm(h, axis=0)  # unit canonical variates
    alpha = np.abs(h.T @ Xc).sum(axis=1)
    assert d.pwcca(X, Y) == pytest.approx((alpha * rho).sum() / alpha.sum(), abs=1e-9)
    assert d.pwcca(X, Y) != pytest.approx(d.pwcca(Y, X), abs=1e-3)  # weighted by X's side


def test_layerwise_engine_equals_the_definitions_with_null_and_bootstrap(tmp_path):
    from test_alignment_states import write_store

    from prh.alignment.states import compute_state, open_state, write_state

    xs_raw = [_pair(seed=s, dx=w)[0].astype(np.float32) for s, w in ((0, 5), (1, 9), (2, 14))]
    ys_raw = [_pair(seed=s, dy=w)[1].astype(np.float32) for s, w in ((0, 6), (4, 11))]
    xs, ys = prepare_stack(xs_raw), prepare_stack(ys_raw)
    for name, params in NEW.items():
        expected = np.array([[getattr(d, name)(x, y, **params) for y in ys] for x in xs])
        np.testing.assert_allclose(layer_scores(name, xs, ys, **params), expected, atol=1e-9, err_msg=name)
    assert layer_scores("rv_coefficient", xs, ys, variant="modified")[1, 0] == pytest.approx(
        d.rv_coefficient(xs[1], ys[0], "modified"), abs=1e-12
    )
    # through state stores (float32 RSA ranks, stored bases), as a pair job reads them
    stores = {}
    for side, layers in (("x", xs_raw), ("y", ys_raw)):
        write_store(tmp_path / f"{side}.zarr", layers, side)
        state, _ = compute_state(tmp_path / f"{side}.zarr", NEW)
        write_state(state, tmp_path / f"{side}.state")
        stores[side] = open_state(tmp_path / f"{side}.state")[0]
    sx, sy = LayerStates(xs), LayerStates(ys)
    perms = draw_permutations(sx.n, 25, seed=1)
    idx = half_samples(sx.n, 5, 0)
    for name in NEW:
        np.testing.assert_allclose(layer_scores(name, stores["x"], stores["y"]), layer_scores(name, sx, sy),
                                   atol=1e-6, err_msg=name)  # fmt: skip
        ours = calibrate_layers(name, stores["x"], stores["y"], perms)
        # null draw 0: the definition recomputed on Y[perm] for every layer pair, the max taken
        first = max(getattr(d, name)(x, y[perms[0]]) for x in xs for y in ys)
        assert ours.null[0] == pytest.approx(first, abs=1e-6), name
        assert ours.p_value == 1 / 26 and ours.calibrated > 0, name  # the shared latent is found
        values = half_sample_values(name, xs[1], ys[0], 5, 0)
        direct = getattr(d, name)(xs[1][idx[0]], ys[0][idx[0]])
        if name == "rsa":  # ranks held at the full sample's: close to, not equal to, a re-ranked resample
            assert values[0] == pytest.approx(direct, abs=0.05)
        else:
            assert values[0] == pytest.approx(direct, abs=1e-9), name


def test_svd_ranks_are_cut_at_the_stored_precision(tmp_path):
    """A rank-5 layer 400 wide stored as float32 holds 5 directions of signal; its rounding fills the rest.
    Cut at float64 precision, that rounding spans every direction and CCA against independent noise is 1;
    cut at float32's (the dtype it came in, or the stored dtype given), CCA sees the 5 directions only."""
    rng = np.random.default_rng(0)
    n = 300
    X32 = (rng.normal(size=(n, 5)) @ rng.normal(size=(5, 400))).astype(np.float32)
    noise = rng.normal(size=(n, 20))
    as_float64 = X32.astype(np.float64)
    assert len(d.orthonormal_basis(as_float64)[1]) > 250  # float64's tolerance keeps the rounding
    assert d.cca(as_float64, noise) == pytest.approx(1.0, abs=1e-6)
    assert len(d.orthonormal_basis(X32)[1]) == len(d.orthonormal_basis(as_float64, np.float32)[1]) == 5
    assert d.cca(X32, noise) < 0.3 and d.pwcca(X32, noise) < 0.3
    assert layer_scores("cca", [X32], [noise])[0, 0] == pytest.approx(d.cca(X32, noise), abs=1e-12)
    assert layer_scores("cca", LayerStates([as_float64], precision=np.float32), [noise])[0, 0] < 0.3
    assert d.cca(rng.normal(size=(n, 30)).astype(np.float32), noise) < 0.3  # full rank: nothing is cut
    # a state job reads the store as float64 and cuts at the store's dtype (no clamp here: it would add rank)
    from test_alignment_states import write_store

    from prh.alignment.states import compute_state

    write_store(tmp_path / "x.zarr", [X32], "x")
    for limit in (8192, 100):  # with the Grams, and streamed layer by layer above dense_limit
        state, _ = compute_state(tmp_path / "x.zarr", {"cca": {}}, quantile=1.0, dense_limit=limit)
        assert int(state["basis_rank"].values[0]) == 5
