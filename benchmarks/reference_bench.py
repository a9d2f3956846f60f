"""Benchmark: ``prh.Reference.score`` of a new model against a finished run's references, against scoring the
same features against the same references one pair at a time.

The run is the size of ``configs/published.yaml``: N = 1,024 samples and 26 reference models of 12 to 48
layers (widths 64, synthetic features sharing a latent), mutual k-NN (k = 10) with K = 29 permutations and 30
half-samples. Their features stores and state stores are written once (as the run's jobs would), with the
run's ``alignment.nc`` attributes and resolved config beside them. The new model has 33 layers. Prints

* one pair at a time: the new model's state, then each reference's pair in turn in one process
  (``workers=1``);
* ``Reference.score`` as it runs by default: the state once, the pairs shared by one process per CPU;

and their ratio, measured in this one run.

    python benchmarks/reference_bench.py [--references 26] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from prh import Reference
from prh.alignment.states import compute_state, write_state
from prh.io.features import FeatureWriter
from prh.io.provenance import as_attrs

N, WIDTH, DATASET = 1024, 64, "bench"
METRICS = {"mutual_knn": {"k": 10}}
ALIGNMENT = {"quantile": 0.95, "null_distribution": {"permutations": 29, "seed": 0},
             "bootstrap": {"resamples": 30, "level": 0.95, "seed": 0}, "metrics": METRICS, "device": "cpu"}  # fmt: skip


def layers_of(n_layers: int, seed: int) -> list[np.ndarray]:
    latent = np.random.default_rng(0).normal(size=(N, 16))
    rng = np.random.default_rng(seed)
    maps = [latent @ rng.normal(size=(16, WIDTH)) * (i + 1) / n_layers for i in range(n_layers)]
    return [(m + rng.normal(size=(N, WIDTH))).astype(np.float32) for m in maps]


def write_run(root: Path, references: int) -> list[str]:
    """A finished run's files that ``Reference`` reads: features and state stores, alignment.nc's attributes,
    the resolved config and the dataset record."""
    from prh.config import validate_config

    config = validate_config({"datasets": [{"name": DATASET, "kind": "shapes", "size": N}], "models": [
        {"name": "x", "modality": "vision", "source": "timm", "id": "x"}], "alignment": ALIGNMENT,
        "training": None, "probes": None, "idealised": {"enabled": False}, "colour": {"sets": {}}})  # fmt: skip
    (root / "results").mkdir(parents=True)
    (root / "results" / "config.yaml").write_text(yaml.safe_dump(config))
    (root / "data" / DATASET).mkdir(parents=True)
    (root / "data" / DATASET / "dataset.json").write_text(json.dumps({"size": N, "fingerprint": "sha256:bench"}))
    names = [f"ref{i:02d}" for i in range(references)]
    depths = np.linspace(12, 48, references).round().astype(int)
    settings = {"quantile": 0.95, "bootstrap_resamples": 30, "bootstrap_seed": 0}
    for i, (name, depth) in enumerate(zip(names, depths)):
        store = root / "results" / "features" / DATASET / f"{name}.zarr"
        attrs = {"model": name, "modality": "vision", "layer_names": [str(j) for j in range(depth)],
                 "dataset_fingerprint": "sha256:bench"}  # fmt: skip
        with FeatureWriter(store, N, attrs=as_attrs(attrs)) as writer:
            writer.write(layers_of(int(depth), seed=i + 1))
        state, _ = compute_state(store, METRICS, **settings)
        write_state(state, root / "results" / "states" / DATASET / f"{name}.zarr")
    aggregate = root / "results" / "alignment" / DATASET / "alignment.nc"
    aggregate.parent.mkdir(parents=True)
    coords = {"model_x": names, "modality_x": ("model_x", ["vision"] * len(names))}
    attrs = as_attrs({"metric_params": METRICS, "n_samples": N})
    xr.Dataset(coords=coords, attrs=attrs).to_netcdf(aggregate, engine="scipy")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--references", type=int, default=26)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_run(Path(tmp), args.references)
        print(
            f"the run: {args.references} references' stores and states written in {time.perf_counter() - start:.1f} s"
        )
        reference, new = Reference(tmp, DATASET), layers_of(33, seed=100)
        timings = {}
        for label, workers in (("one pair at a time", 1), (f"Reference.score ({args.workers} workers)", args.workers)):
            start = time.perf_counter()
            table = reference.score(new, "mutual_knn", name="new", workers=workers)
            timings[label] = time.perf_counter() - start
            print(f"{label}: {timings[label]:.1f} s ({len(table)} rows)")
        one, many = timings.values()
        print(f"ratio: {one / many:.2f}x faster (N = {N}, 33 layers against 12-48, K = 29, 30 half-samples)")


if __name__ == "__main__":
    main()
