"""The workflow end to end on a tiny config: outputs, values, and what a rerun plans to do."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import xarray as xr
from conftest import planned_jobs, snakemake, tiny_config, write_config
from test_metrics import brute_force_mutual_knn

from prh.features import open_features

pytestmark = pytest.mark.workflow

LAYERS = {"vit-test": 6, "resnet-test": 4, "minilm": 7}
PAIRS = [("minilm", "resnet-test"), ("minilm", "vit-test"), ("resnet-test", "vit-test")]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny-run")
    write_config(workdir, tiny_config())
    snakemake(workdir)
    return workdir


def _with_config(workdir, mutate):
    """Dry-run plan after ``mutate`` is applied to the config; the config is restored afterwards."""
    config = tiny_config()
    mutate(config)
    write_config(workdir, config)
    try:
        return sorted(planned_jobs(workdir))
    finally:
        write_config(workdir, tiny_config())


def test_feature_stores(run):
    record = json.loads((run / "data/tiny/dataset.json").read_text())
    for model, n_layers in LAYERS.items():
        ds = open_features(run / f"results/features/tiny/{model}.zarr")
        assert ds["features"].dims == ("layer", "sample", "dim")
        assert ds.sizes["layer"] == n_layers and ds.sizes["sample"] == 64
        assert ds["features"].encoding["chunks"][1] == 24  # chunked along samples
        assert ds.attrs["dataset_fingerprint"] == record["fingerprint"]
        assert ds.attrs["model_source"] in ("timm", "huggingface") and ds.attrs["model_parameters"] > 0
        assert json.loads(ds.attrs["versions"])["torch"] == "2.14.1"
        widths = ds["width"].values
        values = ds["features"].values
        for layer, width in enumerate(widths):  # padding beyond a layer's width is zero
            assert not values[layer, :, width:].any()
            assert np.isfinite(values[layer, :, :width]).all() and values[layer, :, :width].std() > 0
    assert json.loads(open_features(run / "results/features/tiny/minilm.zarr").attrs["layer_names"])[0] == "embeddings"


def _prepared(run, model, q=0.95):
    """Independent preprocessing: read the raw store, clamp at the stack's quantile, normalise."""
    ds = open_features(run / f"results/features/tiny/{model}.zarr")
    layers = [ds["features"].values[i, :, :w].astype(np.float64) for i, w in enumerate(ds["width"].values)]
    t = np.quantile(np.abs(np.concatenate([a.ravel() for a in layers])), q)
    clipped = [np.clip(a, -t, t) for a in layers]
    return [a / np.linalg.norm(a, axis=1, keepdims=True) for a in clipped]


def test_alignment_dataset_matches_brute_force(run):
    ds = xr.open_dataset(run / "results/alignment/tiny/mutual_knn.nc", engine="scipy").load()
    assert ds["score"].dims == ("model_x", "model_y", "layer_x", "layer_y")
    assert list(ds["model_x"].values) == ["vit-test", "resnet-test", "minilm"]
    assert ds.sizes["layer_x"] == 7
    vision = _prepared(run, "vit-test")
    language = _prepared(run, "minilm")
    block = ds["score"].sel(model_x="vit-test", model_y="minilm").values
    expected = np.array([[brute_force_mutual_knn(X, Y, 5) for Y in language] for X in vision])
    np.testing.assert_allclose(block[:6, :7], expected, atol=1e-12)
    assert np.isnan(block[6]).all()  # vit-test has 6 layers: row 7 is padding
    transposed = ds["score"].sel(model_x="minilm", model_y="vit-test").values[:7, :6]
    np.testing.assert_array_equal(transposed, block[:6, :7].T)
    i, j = np.unravel_index(expected.argmax(), expected.shape)
    assert ds["best"].sel(model_x="vit-test", model_y="minilm") == expected.max()
    assert (
        ds["best_layer_x"].sel(model_x="vit-test", model_y="minilm"),
        ds["best_layer_y"].sel(model_x="vit-test", model_y="minilm"),
    ) == (i, j)
    assert np.isnan(ds["best"].values.diagonal()).all()
    assert (ds["best_layer_x"].values.diagonal() == -1).all()


def test_figures_exist(run):
    figures = run / "results/figures/tiny/mutual_knn"
    assert (figures / "best_alignment.png").stat().st_size > 10_000
    for x, y in PAIRS[:2]:  # the two cross-modal pairs
        assert (figures / f"layers/{x}/{y}.png").stat().st_size > 10_000
    assert not (figures / "layers/resnet-test").exists()  # vision-vision pairs get no layer figure


def test_complete_run_has_nothing_to_do(run):
    assert planned_jobs(run) == []
    assert "Nothing to be done" in snakemake(run, "--dry-run").stdout


def test_adding_a_model_plans_only_its_jobs(run):
    new = {
        "name": "effnet-test",
        "modality": "vision",
        "source": "timm",
        "id": "test_efficientnet",
        "pretrained": False,
        "batch_size": 16,
    }
    jobs = _with_config(run, lambda c: c["models"].append(new))
    assert jobs == sorted(
        [
            ("embed", "results/features/tiny/effnet-test.zarr"),
            ("align_pair", "results/alignment/tiny/pairs/effnet-test/minilm.nc"),
            ("align_pair", "results/alignment/tiny/pairs/effnet-test/resnet-test.nc"),
            ("align_pair", "results/alignment/tiny/pairs/effnet-test/vit-test.nc"),
            ("aggregate_alignment", "results/alignment/tiny/mutual_knn.nc"),
            ("plot_best_alignment", "results/figures/tiny/mutual_knn/best_alignment.png"),
            ("plot_layer_matrix", "results/figures/tiny/mutual_knn/layers/effnet-test/minilm.png"),
            ("all", ""),
        ]
    )


def test_changing_the_dataset_size_reruns_everything_downstream(run):
    jobs = _with_config(run, lambda c: c["datasets"][0].update(size=48))
    rules = sorted(rule for rule, _ in jobs)
    assert rules == sorted(
        [
            "shapes_world",
            "embed",
            "embed",
            "embed",
            "align_pair",
            "align_pair",
            "align_pair",
            "aggregate_alignment",
            "plot_best_alignment",
            "plot_layer_matrix",
            "plot_layer_matrix",
            "all",
        ]
    )


def test_changing_k_reruns_alignment_but_not_embeddings(run):
    jobs = _with_config(run, lambda c: c["alignment"]["metrics"]["mutual_knn"].update(k=3))
    rules = sorted(rule for rule, _ in jobs)
    assert "embed" not in rules and "shapes_world" not in rules
    assert rules.count("align_pair") == 3 and "aggregate_alignment" in rules


def _digests(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_from_scratch_rerun_is_bit_identical(run, tmp_path):
    write_config(tmp_path, tiny_config())
    snakemake(tmp_path)
    for folder in ("data", "results/features", "results/alignment"):
        assert _digests(run / folder) == _digests(tmp_path / folder), folder
    shutil.rmtree(tmp_path / "results")
