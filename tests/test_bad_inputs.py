"""Bad and broken inputs each stop with one clear error that names the file, model, layer or sample, and
leave every other finished output in place. (An image that fails to decode: test_data.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, REPRODUCIBLE, digests, snakemake, tiny_config, write_config

from prh.alignment.states import open_state
from prh.io.features import FeatureStoreError, FeatureWriter, check_store, layer_reader, read_layers

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
    damaged = f"{store}: array 'features' cannot be read .*damaged.* delete it and rerun the job that writes it"
    with pytest.raises(FeatureStoreError, match=damaged):
        read_layers(store)
    read, widths, n = layer_reader(store)  # the pair jobs' reader above the dense limit: the same one error
    with pytest.raises(FeatureStoreError, match=damaged) as error:
        [read(i) for i in range(len(widths))]
    assert error.value.__cause__ is None and error.value.__suppress_context__  # one error, no chained traceback
    state = shutil.copytree(tiny_run / "results/states/tiny/vit-test.zarr", tmp_path / "state.zarr")
    chunk = max((p for p in state.rglob("*") if p.is_file() and p.name != "zarr.json"), key=lambda p: p.stat().st_size)
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    with pytest.raises(FeatureStoreError, match=f"{state}: array '{chunk.relative_to(state).parts[0]}' cannot be read"):
        open_state(state)


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
            "results/features/tiny/vit-test.zarr: array 'width' cannot be read",
        ),
        (
            "results/states/tiny/minilm.zarr",
            "results/alignment/tiny/pairs/minilm/resnet-test.nc",
            "logs/align/tiny/minilm/resnet-test.log",
            "results/states/tiny/minilm.zarr: array '",
        ),
    ]:
        for chunk in (p for p in (run / store).rglob("*") if p.is_file() and p.name != "zarr.json"):
            chunk.write_bytes(b"garbage")
        before = {path: digests(run / path) for path in REPRODUCIBLE}
        result = snakemake(run, target, "--force", "--show-failed-logs", check=False)
        assert result.returncode != 0
        assert (run / log).read_text().count(message) == 1  # once in the log, which Snakemake shows once
        assert (result.stdout + result.stderr).count(message) == 1, result.stderr[-3000:]
        after = {path: digests(run / path) for path in REPRODUCIBLE if (run / path).exists()}
        if target.startswith("results/alignment"):
            before["results/alignment"].pop(target.removeprefix("results/"))
        else:  # Snakemake removes the output of a failed job
            before["results/states"] = {k: v for k, v in before["results/states"].items() if "vit-test" not in k}
        assert after == before


def test_the_store_check_names_each_damaged_store_and_the_jobs_that_remake_it(tmp_path, tiny_run):
    """``python -m prh.io.integrity`` reads every store of a run end to end: a sound run passes; with one chunk
    of a features store and one of a state store truncated (which no dry run notices), it exits 1 naming
    both stores and their arrays, and lists the jobs that write them and what reads them."""
    shutil.copytree(tiny_run, tmp_path / "run", symlinks=True)
    run = tmp_path / "run"
    write_config(run, tiny_config())
    check = [sys.executable, "-m", "prh.io.integrity", str(run), "--snakefile", str(REPO / "Snakefile")]
    sound = subprocess.run(check, capture_output=True, text=True)
    assert sound.returncode == 0 and "no damaged store" in sound.stdout, sound.stdout + sound.stderr
    for store in ("results/features/tiny/vit-test.zarr", "results/states/tiny/minilm.zarr"):
        chunk = max((p for p in (run / store).rglob("*") if p.is_file() and "zarr.json" not in p.name),
                    key=lambda p: p.stat().st_size)  # fmt: skip
        chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    assert "Nothing to be done" in snakemake(run, "--dry-run").stdout  # Snakemake compares times, not contents
    damaged = subprocess.run(check, capture_output=True, text=True)
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    out = damaged.stdout
    assert f"{run}/results/features/tiny/vit-test.zarr: array 'features' cannot be read" in out
    assert re.search(rf"{run}/results/states/tiny/minilm.zarr: array '\w+' cannot be read", out)
    assert "2 of " in out and "  embed: results/features/tiny/vit-test.zarr" in out
    assert "  alignment_state: results/states/tiny/minilm.zarr" in out
    assert "  align_pair: results/alignment/tiny/pairs/minilm/resnet-test.nc" in out
    assert "  embed: results/features/tiny/minilm.zarr" not in out  # a sound store's job is not remade
