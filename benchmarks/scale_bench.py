"""Benchmark: alignment at large N. For each N, two feature stores (Lx = 13 and Ly = 25 layers sharing a
latent, as in ``metrics_bench.py``) are written to Zarr; then, in a fresh process each, the per-model states
(exact blocked k-NN, no N × N matrix) and the pair's mutual k-NN and streamed linear CKA over all 13 × 25
layer pairs. Prints wall time and peak RSS per step, and the time ratio to the previous N with the N² (and
N) growth for comparison. Nothing is timed in the tests; this prints what one run measured.

    python benchmarks/scale_bench.py [--sizes 1024 4096 16384 65536] [--widths 64 96] [--metrics mutual_knn cka]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEP = r"""
import json, sys
from prh.alignment.pairs import align_pair
from prh.alignment.states import compute_state, write_state
args = json.loads(sys.argv[1])
metrics = {m: ({"k": 10} if m == "mutual_knn" else {}) for m in args["metrics"]}
if args["step"] == "state":
    ds, info = compute_state(args["features"], metrics, dense_limit=args["dense_limit"], knn_method=args["method"])
    write_state(ds, args["state"])
    print(json.dumps(info))
else:
    features = {"x_features": args["x_features"], "y_features": args["y_features"]}
    pair = align_pair(args["x_state"], args["y_state"], metrics, **features)
    print(json.dumps({m: float(pair["best"].sel(metric=m, direction="forward")) for m in args["metrics"]}))
"""


def write_store(path: Path, n: int, layers: int, width: int, z: np.ndarray, seed: int, chunk: int = 4096) -> None:
    """A features store of ``layers`` random nonlinear readouts of the latent ``z`` plus noise."""
    from prh.io.features import FeatureWriter

    rng = np.random.default_rng(seed)
    readouts = [rng.normal(size=(z.shape[1], width)) / np.sqrt(z.shape[1]) for _ in range(layers)]
    noise = [0.5 + 2.0 * abs(layer - layers / 2) / layers for layer in range(layers)]
    attrs = {"model": path.stem, "modality": "vision", "dataset_fingerprint": f"synthetic-{n}"}
    attrs["layer_names"] = json.dumps([f"layer{i}" for i in range(layers)])
    with FeatureWriter(path, n, chunk=chunk, attrs=attrs) as writer:
        for start in range(0, n, chunk):
            rows = z[start : start + chunk]
            writer.write(
                [
                    (np.tanh(rows @ r) + s * rng.normal(size=(len(rows), width))).astype(np.float32)
                    for r, s in zip(readouts, noise)
                ]
            )


def run_step(args: dict) -> tuple[float, float, str]:
    """Run one step in a fresh process: (wall seconds, peak RSS in MB, its output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", STEP, json.dumps(args)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024, result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--widths", type=int, nargs=2, default=[64, 96], help="layer widths of X and Y")
    parser.add_argument("--metrics", nargs="+", default=["mutual_knn", "cka"], choices=["mutual_knn", "cka"])
    parser.add_argument("--method", default="exact", choices=["exact", "faiss"])
    args = parser.parse_args()
    dx, dy = args.widths
    print(f"Lx = 13 (width {dx}), Ly = 25 (width {dy}); metrics {args.metrics}; k-NN {args.method}; no N x N matrix")
    print(f"{'N':>7}{'states s':>10}{'pair s':>9}{'total s':>9}{'ratio':>7}{'N^2':>6}{'peak RSS MB':>13}  scores")
    previous = None
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            z = np.random.default_rng(n).normal(size=(n, 16))
            write_store(tmp / "x.zarr", n, 13, dx, z, seed=1)
            write_store(tmp / "y.zarr", n, 25, dy, z, seed=2)
            common = {"metrics": args.metrics, "dense_limit": 0, "method": args.method}
            peak, state_s = 0.0, 0.0
            for side in ("x", "y"):
                wall, rss, _ = run_step(
                    common | {"step": "state", "features": str(tmp / f"{side}.zarr"), "state": str(tmp / f"{side}.s")}
                )
                state_s, peak = state_s + wall, max(peak, rss)
            pair_args = {"step": "pair", "x_state": str(tmp / "x.s"), "y_state": str(tmp / "y.s")}
            pair_args |= {"x_features": str(tmp / "x.zarr"), "y_features": str(tmp / "y.zarr")}
            pair_s, rss, scores = run_step(common | pair_args)
            peak = max(peak, rss)
        total = state_s + pair_s
        ratio = f"{total / previous[1]:6.1f}x" if previous else " " * 7
        growth = f"{(n / previous[0]) ** 2:5.0f}x" if previous else " " * 6
        print(f"{n:>7}{state_s:>10.1f}{pair_s:>9.1f}{total:>9.1f}{ratio}{growth}{peak:>13.0f}  {scores}", flush=True)
        previous = (n, total)


if __name__ == "__main__":
    main()
