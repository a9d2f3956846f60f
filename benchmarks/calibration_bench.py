"""Benchmark: calibrated scores (Algorithm 2, max over layer pairs) by ``prh.metrics.calibration`` against
the reference implementation, ``calibrated_similarity.calibrate_layers(..., agg="max")`` (PyPI
``calibrated-similarity`` 0.1.1, Gröger, Wen & Brbić 2026), on the same inputs and the same permutations.

Inputs: the features of ``metrics_bench.py`` (N = 1024; 13 layers of width 768 against 25 of width 1024, so
325 layer pairs) and K = 200 permutations of the samples. The reference calls the metric once per layer pair
and permutation, recomputing it from scratch (through this package's single-pair definitions,
``prh.metrics.definitions``, as its ``sim``); ours computes each layer's states once and re-indexes them.

The reference at K = 200 over 325 layer pairs would take hours, so it is timed on a subset, ``--layers``
layers of each stack and ``--reference-permutations`` permutations, and scaled linearly to the full
problem: its work is one ``sim`` call per (layer pair, draw), (K + 1) · Lx · Ly calls. Ours runs the full
problem. On the subset the two are also compared: τ, calibrated score and p-value.

    python benchmarks/calibration_bench.py [--metrics mutual_knn cka] [--permutations 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from calibrated_similarity import calibrate_layers as reference_calibrate_layers
from metrics_bench import PARAMS, make_stacks

from prh.metrics import METRICS
from prh.metrics.calibration import calibrate_layers, draw_permutations

KNN_METRICS = ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna")


def reference(name: str, xs, ys, perms: np.ndarray, params: dict):
    """The reference's calibrated score, p-value and τ, and its wall time."""
    draws = iter(torch.as_tensor(perms))
    pairwise = METRICS[name].pairwise

    def sim(X, Y):
        return pairwise(X.numpy(), Y.numpy(), **params)

    start = time.perf_counter()
    result = reference_calibrate_layers(
        [torch.as_tensor(x) for x in xs],
        [torch.as_tensor(y) for y in ys],
        sim,
        agg="max",
        K=len(perms),
        perm_fn=lambda n, device: next(draws),
    )
    return [float(v) for v in result], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS))
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--layers", type=int, default=2, help="layers of each stack in the reference's subset")
    parser.add_argument("--reference-permutations", type=int, default=2)
    args = parser.parse_args()
    Xs, Ys = make_stacks()
    n, lx, ly, K = Xs[0].shape[0], len(Xs), len(Ys), args.permutations
    perms = draw_permutations(n, K, seed=0)
    sub_x, sub_y = Xs[lx // 2 - 1 : lx // 2 - 1 + args.layers], Ys[ly // 2 - 1 : ly // 2 - 1 + args.layers]
    sub_k = args.reference_permutations
    scale = (K + 1) * lx * ly / ((sub_k + 1) * len(sub_x) * len(sub_y))
    print(f"N = {n}, {lx} x {ly} layer pairs, K = {K} permutations")
    print(f"reference timed on {len(sub_x)} x {len(sub_y)} layer pairs and K = {sub_k}, scaled by {scale:.0f}\n")
    print(f"{'metric':<19}{'reference s':>13}{'ours s':>9}{'ratio':>9}{'target':>8}   subset: |Δτ|, |Δcal|, p equal")
    for name in args.metrics:
        params = METRICS[name].defaults | PARAMS.get(name, {})
        (ref_cal, ref_p, ref_tau), ref_s = reference(name, sub_x, sub_y, perms[:sub_k], params)
        check = calibrate_layers(name, sub_x, sub_y, perms[:sub_k], **params)
        start = time.perf_counter()
        calibrate_layers(name, Xs, Ys, perms, **params)
        ours_s = time.perf_counter() - start
        target = 1000 if name in KNN_METRICS else 100
        ratio = ref_s * scale / ours_s
        same_p = round(check.p_value * (sub_k + 1)) == round(ref_p * (sub_k + 1))  # theirs is float32
        agreement = f"{abs(check.tau - ref_tau):.1e}, {abs(check.calibrated - ref_cal):.1e}, {same_p}"
        print(f"{name:<19}{ref_s * scale:>13.0f}{ours_s:>9.1f}{ratio:>8.0f}x{target:>7}x   {agreement}")


if __name__ == "__main__":
    main()
