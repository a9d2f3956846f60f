"""Benchmark: what a model-pair job costs once per-model states exist.

Features as in ``metrics_bench.py``: N = 1024 samples, Lx = 13 layers of width 768 and Ly = 25 of width
1024, written as feature stores. Prints

* the state job of each model (neighbour lists, kernel at the neighbours, Grams, SVD directions), done once
  per (dataset, model);
* the wall time of a pair job in a fresh process, start-up and writing its netCDF included: all eight
  metrics, no null, and with the default bootstrap (100 resamples);
* for each metric, the cost of one permutation of the null over all 13 × 25 layer pairs (the mean over
  ``--permutations`` draws, states re-indexed, not recomputed), and of one permutation of all metrics
  together (they share the re-indexed states).

    python benchmarks/pair_bench.py [--permutations 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from metrics_bench import make_stacks  # noqa: E402

from prh.alignment.states import compute_state, open_state, write_state  # noqa: E402
from prh.io.features import FeatureWriter  # noqa: E402
from prh.metrics import METRICS, permutation_null, resolve_params  # noqa: E402
from prh.metrics.calibration import draw_permutations  # noqa: E402

DEFAULTS = {
    "mutual_knn": {"k": 10},
    "cycle_knn": {"k": 10},
    "lcs_knn": {"k": 10},
    "edit_distance_knn": {"k": 10},
    "cka": {"kernel": "linear"},
    "unbiased_cka": {},
    "cknna": {"k": 10, "variant": "paper"},
    "svcca": {"dims": 10},
}

PAIR_JOB = r"""
import json, sys
from prh.alignment.pairs import align_pair
from prh.io.netcdf import write_netcdf
args = json.loads(sys.argv[1])
pair = align_pair(args["x"], args["y"], args["metrics"], bootstrap_resamples=args["resamples"])
write_netcdf(pair, args["out"])
"""


def write_store(path: Path, layers) -> Path:
    attrs = {"model": path.stem, "modality": "vision", "dataset_fingerprint": "bench"}
    attrs["layer_names"] = json.dumps([f"layer{i}" for i in range(len(layers))])
    with FeatureWriter(path, len(layers[0]), chunk=256, attrs=attrs) as writer:
        writer.write([a.astype("float32") for a in layers])
    return path


def pair_job_seconds(args: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", PAIR_JOB, json.dumps(args)], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--permutations", type=int, default=20)
    args = parser.parse_args()
    Xs, Ys = make_stacks()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"N = {Xs[0].shape[0]}, Lx = {len(Xs)} (width {Xs[0].shape[1]}), Ly = {len(Ys)} (width {Ys[0].shape[1]})")
        for name, layers in (("x", Xs), ("y", Ys)):
            write_store(tmp / f"{name}.zarr", layers)
            start = time.perf_counter()
            state, _ = compute_state(tmp / f"{name}.zarr", DEFAULTS)
            write_state(state, tmp / f"{name}.state")
            print(f"state job of {name} ({len(layers)} layers): {time.perf_counter() - start:.1f} s (once per model)")
        job = {"x": str(tmp / "x.state"), "y": str(tmp / "y.state"), "metrics": DEFAULTS, "out": str(tmp / "p.nc")}
        pair_job_seconds(job | {"resamples": 0})  # numba's first compile, cached beside the module
        for resamples in (0, 100):
            seconds = min(pair_job_seconds(job | {"resamples": resamples}) for _ in range(2))
            print(f"pair job, all 8 metrics, no null, {resamples} bootstrap resamples: {seconds:.2f} s wall")
        sx, _ = open_state(tmp / "x.state")
        sy, _ = open_state(tmp / "y.state")
        print(f"\none null permutation over all {len(sx)} x {len(sy)} layer pairs ({args.permutations} draws):")
        total = 0.0
        for name in METRICS:
            params = {name: resolve_params(name, DEFAULTS[name])}
            start = time.perf_counter()
            permutation_null(params, sx, sy, draw_permutations(sx.n, args.permutations, 0))
            seconds = (time.perf_counter() - start) / args.permutations
            total += seconds
            print(f"  {name:<19}{seconds * 1000:8.1f} ms")
        start = time.perf_counter()
        permutation_null(DEFAULTS, sx, sy, draw_permutations(sx.n, args.permutations, 0))
        together = (time.perf_counter() - start) / args.permutations
        print(f"  {'all 8 together':<19}{together * 1000:8.1f} ms (sum of the above: {total * 1000:.1f} ms)")
        print(f"  so 200 permutations of all metrics: {200 * together:.0f} s per pair")


if __name__ == "__main__":
    main()
