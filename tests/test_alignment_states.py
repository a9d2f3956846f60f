"""Per-model states and large N: state stores against the in-memory engine, the blocked and approximate
neighbour searches, the streamed quantile and CKA, the dense-matrix limit, and N = 20,000 in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from prh.alignment.pairs import align_pair
from prh.alignment.states import (
    DenseLimitError,
    check_dense_metrics,
    compute_state,
    open_state,
    streamed_quantile,
    write_state,
)
from prh.config import ConfigError, load_schema, validate_config
from prh.io.features import FeatureWriter, read_layers
from prh.metrics import (
    LayerStates,
    half_sample_best,
    half_sample_interval,
    knn_indices,
    layer_scores,
    permutation_null,
    prepare_stack,
)
from prh.metrics.calibration import draw_permutations
from prh.metrics.neighbours import blocked_knn, faiss_knn, knn_recall
from prh.metrics.streaming import array_reader, cka_from_readers

METRICS = {
    "mutual_knn": {"k": 5},
    "cycle_knn": {"k": 5},
    "lcs_knn": {"k": 4},
    "edit_distance_knn": {"k": 4},
    "cka": {},
    "unbiased_cka": {},
    "cknna": {"k": 6},
    "svcca": {"dims": 4},
}


def write_store(path, layers, model="m"):
    """A features store holding ``layers`` (float32), as the embedding stage writes it."""
    attrs = {"model": model, "modality": "vision", "dataset_fingerprint": "synthetic"}
    attrs["layer_names"] = json.dumps([f"l{i}" for i in range(len(layers))])
    with FeatureWriter(path, len(layers[0]), chunk=64, attrs=attrs) as writer:
        writer.write([np.asarray(a, dtype=np.float32) for a in layers])
    return path


def _shared_latent(n, widths, seed, positive=False):
    rng = np.random.default_rng(seed)
    z = np.random.default_rng(0).normal(size=(n, 4))
    layers = [np.tanh(z @ rng.normal(size=(4, w))) + s * rng.normal(size=(n, w)) for w, s in widths]
    return [np.maximum(a, 0) if positive else a for a in layers]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stores")
    x = write_store(folder / "x.zarr", _shared_latent(150, [(6, 0.2), (20, 1.0), (9, 2.0)], 1, positive=True), "x")
    y = write_store(folder / "y.zarr", _shared_latent(150, [(7, 0.5), (12, 0.1)], 2), "y")
    return folder, x, y


def test_pair_from_state_stores_equals_the_in_memory_engine(stores):
    folder, x, y = stores
    for name, store in (("x", x), ("y", y)):
        state, _ = compute_state(store, METRICS, bootstrap_resamples=30)  # lists deep enough for the run's resamples
        write_state(state, folder / f"{name}.state")
    pair = align_pair(
        folder / "x.state", folder / "y.state", METRICS, null_distribution_permutations=4, bootstrap_resamples=30
    )
    sx = LayerStates(prepare_stack(read_layers(x)))
    sy = LayerStates(prepare_stack(read_layers(y)))
    boot = half_sample_best(METRICS, sx, sy, 30, 0)
    null = permutation_null(METRICS, sx, sy, draw_permutations(150, 4, 0))
    for name, params in METRICS.items():
        forward = pair.sel(metric=name, direction="forward")
        expected = layer_scores(name, sx, sy, **params)
        np.testing.assert_allclose(forward["score"].values, expected, atol=1e-6, rtol=0)  # float32 Grams
        assert forward["null_mean"] == pytest.approx(null[name].mean(), abs=1e-6)
        # the layer pair chosen again in each resample, from the stored (deeper) lists as from the layers
        low = half_sample_interval(float(forward["best"]), boot[name])[0]
        assert forward["ci_low"] == pytest.approx(low, abs=1e-6)
    # cycle-kNN is asymmetric: the reverse direction is Y against X
    reverse = pair.sel(metric="cycle_knn", direction="reverse")["score"].values
    np.testing.assert_array_equal(reverse, layer_scores("cycle_knn", sy, sx, k=5).T)
    states, attrs = open_state(folder / "x.state")
    parts = {"k": 6, "values": True, "grams": True, "dims": 4, "rsa": False, "bases": False}
    assert attrs["parts"] == parts and len(states) == 3
    assert attrs["threshold"] == pytest.approx(
        np.quantile(np.abs(np.concatenate([a.ravel() for a in read_layers(x)])), 0.95)
    )


def test_large_n_path_equals_the_dense_path(stores):
    """Above dense_limit: layers one at a time, blocked k-NN, CKNNA's kernel without a Gram, streamed CKA."""
    folder, x, y = stores
    light = {m: p for m, p in METRICS.items()}
    for name, store in (("x", x), ("y", y)):
        dense, _ = compute_state(store, light, dense_limit=10_000, bootstrap_resamples=5)
        streamed, _ = compute_state(store, {m: p for m, p in light.items() if "cka" not in m}, dense_limit=10,
                                    bootstrap_resamples=5)  # fmt: skip
        np.testing.assert_array_equal(dense["knn"].values, streamed["knn"].values)
        np.testing.assert_allclose(dense["knn_values"].values, streamed["knn_values"].values, atol=1e-12)
        np.testing.assert_allclose(np.abs(dense["svd"].values), np.abs(streamed["svd"].values), atol=1e-8)
        np.testing.assert_array_equal(dense["half_samples"].values, streamed["half_samples"].values)
        np.testing.assert_allclose(np.abs(dense["half_svd"].values), np.abs(streamed["half_svd"].values), atol=1e-5)
        assert "gram" not in streamed and dense.attrs["threshold"] == streamed.attrs["threshold"]
        write_state(dense, folder / f"{name}.dense")
        write_state(streamed, folder / f"{name}.streamed")
    params = {m: p for m, p in light.items() if m != "svcca"}
    a = align_pair(
        folder / "x.dense", folder / "y.dense", params, null_distribution_permutations=3, bootstrap_resamples=5
    )
    knn_only = {m: p for m, p in params.items() if "cka" not in m}
    b = align_pair(folder / "x.streamed", folder / "y.streamed", knn_only, null_distribution_permutations=3)
    lists_only = {m: p for m, p in knn_only.items() if m != "cknna"}  # CKNNA's bootstrap reads the Grams
    boot = align_pair(folder / "x.streamed", folder / "y.streamed", lists_only, bootstrap_resamples=5)
    for name in knn_only:
        for v in ("score", "null_mean") + (("ci_low", "ci_high") if name in lists_only else ()):
            np.testing.assert_allclose(a[v].sel(metric=name).values, (b if v[:2] != "ci" else boot)[v].sel(
                metric=name).values, atol=1e-12)  # fmt: skip
    c = align_pair(folder / "x.streamed", folder / "y.streamed", params, x_features=x, y_features=y)
    for name in ("cka", "unbiased_cka"):
        np.testing.assert_allclose(c["score"].sel(metric=name).values, a["score"].sel(metric=name).values, atol=1e-6)
    with pytest.raises(DenseLimitError, match="unbiased_cka with a permutation null"):
        align_pair(
            folder / "x.streamed",
            folder / "y.streamed",
            params,
            null_distribution_permutations=2,
            x_features=x,
            y_features=y,
        )


def test_blocked_knn_equals_the_float64_search_and_rechecks_near_ties():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 24))
    np.testing.assert_array_equal(blocked_knn(X, 10, block=128), knn_indices(X, 10))
    # near-ties below float32 resolution: copies of rows nudged by 1e-4 (similarities 1 - 1e-8), which only the
    # float64 re-check orders
    Y = np.repeat(rng.normal(size=(100, 8)), 3, axis=0) + 1e-4 * rng.normal(size=(300, 8))
    np.testing.assert_array_equal(blocked_knn(Y, 4, block=64), knn_indices(Y, 4))


def test_faiss_knn_reports_its_recall():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 16))
    X = centres[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 16))
    approximate = faiss_knn(X, 10, nprobe=8)
    recall = knn_recall(X, approximate, 10)
    assert 0.8 < recall <= 1.0
    assert knn_recall(X, knn_indices(X, 10), 10) == 1.0
    assert knn_recall(X, np.roll(knn_indices(X, 10), 1, axis=0), 10) < 0.05  # wrong lists score near 0


def test_streamed_quantile_equals_numpy():
    rng = np.random.default_rng(1)
    layers = [rng.normal(size=(300, w)).astype(np.float32) for w in (7, 13)]
    layers[0][:, :3] = 0  # many equal values, as after a ReLU
    everything = np.abs(np.concatenate([a.astype(np.float64).ravel() for a in layers]))
    for q in (0.0, 0.5, 0.9137, 0.95, 1.0):
        assert streamed_quantile(lambda: iter(layers), q) == np.quantile(everything, q)


def test_streamed_cka_equals_the_gram_computation():
    Xs = prepare_stack(_shared_latent(400, [(8, 0.3), (30, 1.0)], 4, positive=True))
    Ys = prepare_stack(_shared_latent(400, [(5, 0.2), (12, 0.5), (40, 2.0)], 5))
    streamed = cka_from_readers(array_reader(Xs), 2, array_reader(Ys), 3, 400, chunk=96)
    for name in ("cka", "unbiased_cka"):
        np.testing.assert_allclose(streamed[name], layer_scores(name, Xs, Ys), atol=1e-12, rtol=0)


def test_dense_metrics_above_the_limit_are_refused_before_any_work(workdir):
    with pytest.raises(DenseLimitError, match=r"N = 100 samples is above alignment.dense_limit = 50.*cknna"):
        check_dense_metrics({"cknna": {"k": 5, "variant": "authors"}}, 100, 50)
    check_dense_metrics({"cka": {"kernel": "linear"}}, 100, 50)  # linear CKA streams; no null, no interval
    config = {
        "datasets": [{"name": "big", "kind": "shapes", "size": 64}],
        "models": [{"name": "r", "modality": "vision", "source": "timm", "id": "test_resnet", "pretrained": False}],
        "alignment": {
            "dense_limit": 32,
            "metrics": {"mutual_knn": {"k": 5}, "cka": {"kernel": "rbf"}, "unbiased_cka": {}},
        },
    }
    with pytest.raises(ConfigError) as error:
        validate_config(config, load_schema())
    text = str(error.value)
    assert "datasets 'big': N = 64 samples is above alignment.dense_limit = 32" in text
    assert "cka with kernel 'rbf'" in text and "unbiased_cka with a permutation null" in text
    assert "mutual_knn" not in text  # neighbour lists come from the blocked search at any N
    assert "figures.cknna_k: CKNNA against k ranks all N = 64 samples" in text


LARGE_N = r"""
import json, resource, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_alignment_states import write_store
from prh.alignment.pairs import align_pair
from prh.alignment.states import compute_state, write_state
folder, n = sys.argv[1], 20_000
z = np.random.default_rng(0).normal(size=(n, 4))
metrics = {"mutual_knn": {"k": 10}, "cknna": {"k": 10}, "cka": {}, "unbiased_cka": {}}
for name, seed in (("x", 1), ("y", 2)):
    rng = np.random.default_rng(seed)
    layers = [np.tanh(z @ rng.normal(size=(4, 24))) + rng.normal(size=(n, 24)) for _ in range(2)]
    write_store(f"{folder}/{name}.zarr", layers, name)
    del layers
# The ceiling: one dense N x N float64 matrix (3.2 GB) could not even be allocated.
resource.setrlimit(resource.RLIMIT_AS, (3_200_000_000, resource.RLIM_INFINITY))
import tracemalloc  # numpy reports its allocations to tracemalloc: the peak of every array held at once
tracemalloc.start()
for name in ("x", "y"):
    state, _ = compute_state(f"{folder}/{name}.zarr", metrics, dense_limit=8192, bootstrap_resamples=10)
    write_state(state, f"{folder}/{name}.state")
pair = align_pair(f"{folder}/x.state", f"{folder}/y.state", {"mutual_knn": {"k": 10}, "cknna": {"k": 10}},
                  null_distribution_permutations=2, bootstrap_resamples=10)
cka = align_pair(f"{folder}/x.state", f"{folder}/y.state", {"cka": {}, "unbiased_cka": {}},
                 x_features=f"{folder}/x.zarr", y_features=f"{folder}/y.zarr")
peak = tracemalloc.get_traced_memory()[1]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak": peak, "rss": rss, "best": pair["best"].sel(direction="forward").values.tolist(),
                  "null": pair["null_mean"].sel(direction="forward").values.tolist(),
                  "cka": cka["best"].sel(direction="forward").values.tolist()}))
"""


def test_large_n_runs_in_bounded_memory(tmp_path):
    """N = 20,000: states and pair without any N × N matrix, under an address-space ceiling of 3.2 GB (one
    float64 N × N matrix could not be allocated) and with numpy's peak (tracemalloc) below a float32 one."""
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-c", LARGE_N, str(tmp_path), str(Path(__file__).parent)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # Arrays held at once stay below one N × N float32 matrix (1.6 GB), half a float64 one; the process's RSS
    # is not asserted: it varied from 0.5 to 3.0 GB between runs here with the same allocations (huge pages).
    assert out["peak"] < 1.6e9
    chance = 10 / 19_999
    assert all(best > 5 * chance for best in out["best"][:1]) and out["null"][0] < 3 * chance
    assert 0 < out["cka"][0] <= 1 and 0 < out["cka"][1] <= 1


LARGE_N_API = r"""
import json, resource, sys
import numpy as np
from prh.metrics.dense import DenseLimitError
from prh.metrics import LayerStates, layer_scores, mutual_knn, permutation_null
n = 20_000
z = np.random.default_rng(0).normal(size=(n, 4))
def stack(seed):
    rng = np.random.default_rng(seed)
    return [np.tanh(z @ rng.normal(size=(4, 24))) + rng.normal(size=(n, 24)) for _ in range(2)]
Xs, Ys = stack(1), stack(2)
resource.setrlimit(resource.RLIMIT_AS, (3_200_000_000, resource.RLIM_INFINITY))  # no N x N float64 fits
import tracemalloc
tracemalloc.start()
sx, sy = LayerStates(Xs), LayerStates(Ys)
scores = {m: layer_scores(m, sx, sy, k=10).tolist() for m in ("mutual_knn", "cycle_knn", "cknna")}
scores["cka"] = layer_scores("cka", Xs, Ys).tolist()
null = permutation_null({"mutual_knn": {"k": 10}}, sx, sy, np.random.default_rng(0).permuted(
    np.tile(np.arange(n), (2, 1)), axis=1))["mutual_knn"].tolist()
peak = tracemalloc.get_traced_memory()[1]
errors = []
for call in (lambda: layer_scores("rsa", sx, sy), lambda: layer_scores("cknna", sx, sy, variant="authors"),
             lambda: mutual_knn(Xs[0], Ys[0]),
             lambda: permutation_null({"cka": {}}, sx, sy, np.arange(n)[None])):
    try:
        call()
        errors.append(None)
    except DenseLimitError as err:
        errors.append(str(err))
print(json.dumps({"peak": peak, "scores": scores, "null": null, "errors": errors}))
"""


def test_public_metric_functions_are_bounded_at_large_n():
    """N = 20,000 through the Python API: layer_scores and permutation_null score the neighbour metrics and
    CKA under a 3.2 GB address-space ceiling with numpy's peak below one N × N float32 matrix; what needs N × N
    matrices (RSA, the authors' CKNNA, CKA's null, the dense reference definitions) is refused by name."""
    result = subprocess.run([sys.executable, "-c", LARGE_N_API], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["peak"] < 1.6e9
    chance = 10 / 19_999
    assert np.max(out["scores"]["mutual_knn"]) > 5 * chance and max(out["null"]) < 3 * chance
    assert 0 < np.max(out["scores"]["cknna"]) <= 1 and 0 < np.max(out["scores"]["cka"]) <= 1
    assert 0 < np.max(out["scores"]["cycle_knn"]) <= 1
    rsa, authors, reference, cka_null = out["errors"]
    assert rsa.startswith("layer_scores('rsa'): N = 20000 samples is above dense_limit = 8192") and "rsa" in rsa
    assert "cknna with variant 'authors'" in authors
    assert reference.startswith("mutual_knn: N = 20000 samples is above the dense limit of 8192")
    assert cka_null.startswith("permutation_null: N = 20000") and "cka with a permutation null" in cka_null


def test_pair_file_written_without_xarray_is_the_file_xarray_writes(stores, tmp_path):
    """The pair job writes its netCDF with scipy alone (no xarray or pandas start-up): the bytes equal
    xarray's own ``to_netcdf`` of the same Dataset, so every reader sees the same file."""
    from prh.alignment.pairs import pair_scores, write_pair

    folder, x, y = stores
    for name, store in (("x", x), ("y", y)):
        if not (folder / f"{name}.state").exists():
            state, _ = compute_state(store, METRICS, bootstrap_resamples=30)  # as the module's first test writes it
            write_state(state, folder / f"{name}.state")
    parts = pair_scores(
        folder / "x.state", folder / "y.state", METRICS, null_distribution_permutations=2, bootstrap_resamples=5
    )
    provenance = {"rule": "align_pair", "git_dirty": "false", "n": 3, "level": 0.95}
    write_pair(parts, tmp_path / "scipy.nc", provenance)
    data, coords, attrs = parts
    expected = xr.Dataset(data, coords=coords, attrs=attrs | provenance)
    expected.to_netcdf(tmp_path / "xarray.nc", engine="scipy")
    assert (tmp_path / "scipy.nc").read_bytes() == (tmp_path / "xarray.nc").read_bytes()
    assert xr.open_dataset(tmp_path / "scipy.nc", engine="scipy").load().identical(expected)
