"""Benchmark: all-layer-pairs ``layer_scores`` against a reference loop that recomputes every pair.

Features: N = 1024 samples, Lx = 13 layers of width 768 and Ly = 25 layers of width 1024, generated from a
shared latent (so scores are far from trivial), preprocessed as in the pipeline. For each metric the
reference calls the metric's reference definition (``prh.metrics.<name>``) once per layer pair, recomputing
neighbours, Gram matrices and SVDs from scratch; ``layer_scores`` does the per-layer work once.

Prints, per metric, both wall times, their ratio and the largest absolute difference of the two (Lx, Ly)
matrices, all measured in this one run. With ``--pairs P`` the reference is timed on P random layer pairs
and its time scaled to all Lx * Ly pairs (the difference is then over those P pairs).

    python benchmarks/metrics_bench.py [--pairs 40] [--metrics mutual_knn cka] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from prh.metrics import METRICS, layer_scores, prepare_stack

PARAMS = {"svcca": {"dims": 10}, "cknna": {"k": 10}}


def make_stacks(n=1024, lx=13, dx=768, ly=25, dy=1024, latent=32, seed=0):
    """Two layer stacks that share a latent: each layer is a random nonlinear readout of it plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, latent))

    def stack(layers, width):
        out = []
        for layer in range(layers):
            noise = 0.5 + 2.0 * abs(layer - layers / 2) / layers  # middle layers carry the latent best
            out.append(
                np.tanh(z @ rng.normal(size=(latent, width)) / np.sqrt(latent)) + noise * rng.normal(size=(n, width))
            )
        return out

    return prepare_stack(stack(lx, dx)), prepare_stack(stack(ly, dy))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS))
    parser.add_argument("--pairs", type=int, default=0, help="time the reference on this many pairs (0: all)")
    parser.add_argument("--device", default="cpu", help="where layer_scores runs its products (cpu, cuda, auto)")
    args = parser.parse_args()
    Xs, Ys = make_stacks()
    lx, ly = len(Xs), len(Ys)
    all_pairs = [(i, j) for i in range(lx) for j in range(ly)]
    if args.pairs:
        rng = np.random.default_rng(1)
        pairs = [all_pairs[p] for p in sorted(rng.choice(len(all_pairs), args.pairs, replace=False))]
    else:
        pairs = all_pairs
    print(f"N = {Xs[0].shape[0]}, Lx = {lx} (width {Xs[0].shape[1]}), Ly = {ly} (width {Ys[0].shape[1]})")
    print(f"reference timed on {len(pairs)} of {len(all_pairs)} layer pairs\n")
    print(f"{'metric':<19}{'reference s':>12}{'layer_scores s':>16}{'ratio':>9}{'max |diff|':>13}")
    for name in args.metrics:
        metric = METRICS[name]
        params = metric.defaults | PARAMS.get(name, {})
        start = time.perf_counter()
        batched = layer_scores(name, Xs, Ys, device=args.device, **params)
        batched_s = time.perf_counter() - start
        start = time.perf_counter()
        reference = {(i, j): metric.pairwise(Xs[i], Ys[j], **params) for i, j in pairs}
        reference_s = (time.perf_counter() - start) * len(all_pairs) / len(pairs)
        diff = max(abs(batched[i, j] - value) for (i, j), value in reference.items())
        print(f"{name:<19}{reference_s:>12.1f}{batched_s:>16.2f}{reference_s / batched_s:>8.0f}x{diff:>13.1e}")


if __name__ == "__main__":
    main()
