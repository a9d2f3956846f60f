"""Bad and broken inputs each stop with one clear error that names the file, model, layer or sample, and
leave every other finished output in place. (An image that fails to decode: test_data.)"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPRODUCIBLE, digests, snakemake, tiny_config, write_config

from prh.io.features import FeatureStoreError, FeatureWriter, check_store, read_layers

pytestmark = pytest.mark.workflow


def _store(path, layers, attrs=None):
    with FeatureWriter(path, len(layers[0]), chunk=8, attrs={"model": "m"} | (attrs or {})) as writer:
        writer.write(layers)
    return path


def test_truncated_store_names_the_file(tmp_path, tiny_run):
    store = shutil.copytree(tiny_run / "results/features/tiny/vit-test.zarr", tmp_path / "vit-test.zarr")
    chunk = max((p for p in (store / "features").rglob("*") if p.is_file() and p.name != "zarr.json"),
                key=lambda p: p.stat().st_size)  # fmt: skip
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    with pytest.raises(FeatureStoreError, match=f"{store}: cannot be read .*corrupt or truncated"):
        read_layers(store)


def test_store_without_its_final_attributes_is_incomplete(tmp_path):
    layers = [np.ones((10, 4))]
    store = _store(tmp_path / "a.zarr", layers)
    (store / "zarr.json").write_text((store / "zarr.json").read_text().replace('"model"', '"other"'))
    with pytest.raises(FeatureStoreError, match="a.zarr: incomplete features store"):
        read_layers(store)


def test_store_that_does_not_match_its_dataset_names_both(tmp_path):
    store = _store(tmp_path / "m.zarr", [np.ones((10, 4))], {"dataset_fingerprint": "sha256:aaa"})
    with pytest.raises(FeatureStoreError, match=r"m.zarr: 10 samples, but dataset 'tiny' has 12"):
        check_store(store, {"size": 12, "fingerprint": "sha256:aaa"}, "tiny")
    with pytest.raises(FeatureStoreError, match=r"m.zarr: computed on another version of dataset 'tiny'"):
        check_store(store, {"size": 10, "fingerprint": "sha256:bbb"}, "tiny")


def test_non_finite_features_name_the_layer_and_sample(tmp_path):
    bad = np.ones((10, 4))
    bad[7, 2] = np.inf
    store = _store(tmp_path / "m.zarr", [np.ones((10, 3)), bad], {"layer_names": '["a", "b"]'})
    with pytest.raises(FeatureStoreError, match=r"m.zarr: layer 1 \(b\) has NaN or Inf at sample 7"):
        read_layers(store)


def test_float16_overflow_while_embedding_names_model_layer_and_sample(tmp_path):
    """A real overflow: a random ViT whose weights are scaled up produces activations beyond float16's
    range (65504); storing them as float16 stops the job with the model, layer and sample named."""
    import torch

    from prh.config import validate_config
    from prh.data.shapes import generate_shapes_world
    from prh.models.embed import write_embeddings
    from prh.models.loading import load_backbone

    generate_shapes_world(tmp_path / "data", 8, seed=0)
    spec = {"name": "hot-vit", "modality": "vision", "source": "timm", "id": "test_vit", "pretrained": False}
    config = {"datasets": [{"name": "d", "kind": "shapes", "size": 8}], "models": [spec | {"dtype": "float16"}]}
    spec = validate_config(config | {"alignment": {"metrics": {"cka": {}}}})["models"][0]
    backbone = load_backbone(spec, "cpu")
    with torch.no_grad():
        for parameter in backbone.module.parameters():
            parameter.mul_(1000.0)
    with pytest.raises(FloatingPointError, match=r"model 'hot-vit': layer \d+ \(.+\) overflows float16 at sample \d"):
        write_embeddings(backbone, spec, tmp_path / "data", tmp_path / "out.zarr", dataset_name="d")
    assert not (tmp_path / "out.zarr").exists() and not (tmp_path / "out.zarr.partial").exists()


def test_out_of_memory_names_the_model_and_what_to_change(tmp_path):
    """A real out-of-memory: the embedding runs under an address-space limit that leaves room for the
    model but not for a batch of 256 images."""
    from prh.data.shapes import generate_shapes_world

    generate_shapes_world(tmp_path / "data", 256, seed=0)
    code = f"""
import resource, sys
from prh.config import validate_config
from prh.models.embed import write_embeddings
from prh.models.loading import load_backbone
spec = {{"name": "big-batch", "modality": "vision", "source": "timm", "id": "resnet18", "pretrained": False,
        "batch_size": 256}}
config = {{"datasets": [{{"name": "d", "kind": "shapes", "size": 256}}], "models": [spec],
          "alignment": {{"metrics": {{"cka": {{}}}}}}}}
spec = validate_config(config)["models"][0]
backbone = load_backbone(spec, "cpu")
used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 1_500_000_000, resource.RLIM_INFINITY))
write_embeddings(backbone, spec, {str(tmp_path / "data")!r}, {str(tmp_path / "out.zarr")!r}, dataset_name="d")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "MemoryError: model 'big-batch' ran out of memory on cpu at batch size 256" in result.stderr
    assert "lower `batch_size`" in result.stderr
    assert not (tmp_path / "out.zarr").exists()


def test_a_broken_store_fails_its_jobs_and_leaves_every_other_output(tmp_path, tiny_run):
    """Through Snakemake: with a corrupt feature store, the state job that reads it fails naming the store;
    with a corrupt state store, the pair job that reads it fails naming that one; every other finished
    output stays as it was."""
    shutil.copytree(tiny_run, tmp_path / "run", symlinks=True)
    run = tmp_path / "run"
    write_config(run, tiny_config())  # the run's own config, not one a dry-run test elsewhere has swapped in
    for store, target, log, message in [
        (
            "results/features/tiny/vit-test.zarr",
            "results/states/tiny/vit-test.zarr",
            "logs/states/tiny/vit-test.log",
            "results/features/tiny/vit-test.zarr: cannot be read",
        ),
        (
            "results/states/tiny/minilm.zarr",
            "results/alignment/tiny/pairs/minilm/resnet-test.nc",
            "logs/align/tiny/minilm/resnet-test.log",
            "results/states/tiny/minilm.zarr: cannot be read as a state store",
        ),
    ]:
        for chunk in (p for p in (run / store).rglob("*") if p.is_file() and p.name != "zarr.json"):
            chunk.write_bytes(b"garbage")
        before = {path: digests(run / path) for path in REPRODUCIBLE}
        result = snakemake(run, target, "--force", check=False)
        assert result.returncode != 0
        assert message in (run / log).read_text()
        after = {path: digests(run / path) for path in REPRODUCIBLE if (run / path).exists()}
        if target.startswith("results/alignment"):
            before["results/alignment"].pop(target.removeprefix("results/"))
        else:  # Snakemake removes the output of a failed job
            before["results/states"] = {k: v for k, v in before["results/states"].items() if "vit-test" not in k}
        assert after == before
