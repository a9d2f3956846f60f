"""Feature stores: streamed writes of ragged layers, storage dtype, and no partial store left behind."""

from __future__ import annotations

import numpy as np
import pytest

from prh.io.features import FeatureWriter, open_features, read_layers


def _batches(rng, n, widths, batch):
    full = [rng.normal(size=(n, w)).astype(np.float32) for w in widths]
    return full, [[a[s : s + batch] for a in full] for s in range(0, n, batch)]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_streamed_ragged_layers_round_trip(tmp_path, dtype):
    full, batches = _batches(np.random.default_rng(0), n=50, widths=[3, 8, 5], batch=7)  # batches straddle chunks
    path = tmp_path / "m.zarr"
    with FeatureWriter(path, 50, dtype=dtype, chunk=16, attrs={"model": "m"}) as writer:
        for batch in batches:
            writer.write(batch)
    ds = open_features(path)
    assert ds["features"].dtype == np.dtype(dtype) and ds.attrs["model"] == "m"
    assert ds["features"].encoding["chunks"] == (1, 16, 8)
    assert ds["width"].values.tolist() == [3, 8, 5]
    for got, want in zip(read_layers(path), full):
        np.testing.assert_array_equal(got, want.astype(dtype).astype(np.float64))
    assert not path.with_name("m.zarr.partial").exists()


def test_failure_leaves_no_store(tmp_path):
    path = tmp_path / "m.zarr"
    _, batches = _batches(np.random.default_rng(0), n=40, widths=[4], batch=10)
    with pytest.raises(RuntimeError, match="model crashed"):
        with FeatureWriter(path, 40, chunk=8) as writer:
            writer.write(batches[0])
            writer.write(batches[1])  # two chunks already flushed to the partial store
            raise RuntimeError("model crashed")
    assert not path.exists() and not path.with_name("m.zarr.partial").exists()


def test_wrong_sample_count_is_an_error(tmp_path):
    _, batches = _batches(np.random.default_rng(0), n=20, widths=[4], batch=10)
    with pytest.raises(ValueError, match="wrote 10 samples, expected 20"):
        with FeatureWriter(tmp_path / "m.zarr", 20, chunk=8) as writer:
            writer.write(batches[0])
    assert not (tmp_path / "m.zarr").exists() and not (tmp_path / "m.zarr.partial").exists()
