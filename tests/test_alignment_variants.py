"""Fig. 12 over k and bsz: each variant's score equals the metric computed directly on the seeded subset of
the two models' last layers; sample sizes above N are dropped and N itself is always scored."""

import numpy as np
import pytest

from prh.alignment.variants import metric_variants
from prh.metrics import cka, mutual_knn, prepare_stack


def _store(path, layers):
    from prh.io.features import FeatureWriter
    from prh.io.provenance import as_attrs

    attrs = as_attrs({"model": path.stem, "layer_names": [f"l{i}" for i in range(len(layers))]})
    with FeatureWriter(path, len(layers[0]), dtype="float32", chunk=len(layers[0]), attrs=attrs) as writer:
        writer.write([a.astype(np.float32) for a in layers])
    return path


def test_each_variant_is_the_metric_on_its_subset_of_the_last_layers(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(60, 5))
    models = ["a", "b", "c"]
    paths = [_store(tmp_path / f"{m}.zarr", [rng.normal(size=(60, 4)), base + rng.normal(scale=s, size=(60, 5))])
             for m, s in zip(models, (0.3, 1.0, 3.0))]  # fmt: skip
    ds = metric_variants(paths, models, {"mutual_knn": {"k": 10}, "cka": {}}, [3, 8], [30, 500], 0, 0.95, "global")
    assert list(ds["variant"].values) == ["mutual_knn k=3 bsz=30", "mutual_knn k=3 bsz=60", "mutual_knn k=8 bsz=30",
                                          "mutual_knn k=8 bsz=60", "cka bsz=30", "cka bsz=60"]  # fmt: skip
    subset = np.sort(np.random.default_rng(0).choice(60, 30, replace=False))
    from prh.io.features import read_layers

    last = {m: prepare_stack(read_layers(p)[-1:])[0] for m, p in zip(models, paths)}
    for p, (x, y) in enumerate([("a", "b"), ("a", "c"), ("b", "c")]):
        assert ds["model_x"].values[p] == x and ds["model_y"].values[p] == y
        score = ds["score"].isel(pair=p)
        expected = mutual_knn(last[x][subset], last[y][subset], k=8)
        assert float(score.sel(variant="mutual_knn k=8 bsz=30")) == pytest.approx(expected)
        assert float(score.sel(variant="cka bsz=60")) == pytest.approx(cka(last[x], last[y]))
