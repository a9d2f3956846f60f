"""Benchmark: the all-layer neighbour search against its float32 floor, with and without ties.

Stacks as ``metrics_bench.py`` (N = 1024, Lx = 13 layers of width 768, Ly = 25 of width 1024, sharing a
latent), k = 10. For every layer of both stacks, in this one run:

* floor: the float32 similarity GEMM and a float32 top-k (numba's one-pass ``top_candidates`` at k), the least
  any exact search does;
* engine: ``prh.metrics.neighbours.search``, what ``LayerStates`` runs: float32 candidates, float64 rescoring
  of the boundary, tie groups;
* float64: the search before the tie-aware engine (a float64 GEMM and ``definitions.top_k``).

Printed: seconds and engine / floor, engine / float64; then the same on the stacks made discrete codes (89 %
zeros, as the world Z; a tenth to all of a layer's rows have their k-th neighbour tied); and mutual k-NN over
all 13 × 25 layer pairs, tie-aware against the integer counts on the float64 lists, on the data without ties.
Each time is the best of ``--repeat`` runs.

    python benchmarks/knn_bench.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from metrics_bench import make_stacks

from prh.metrics import definitions as d
from prh.metrics import kernels
from prh.metrics.layerwise import LayerStates, layer_scores
from prh.metrics.neighbours import search

K = 10


def floor(layers) -> None:
    for a in layers:
        a32 = a.astype(np.float32)
        similarity = a32 @ a32.T
        np.fill_diagonal(similarity, -np.inf)
        kernels.top_candidates(similarity, K)


def float64_search(layers) -> list[np.ndarray]:
    out = []
    for a in layers:
        similarity = d.l2_normalize(a) @ d.l2_normalize(a).T
        np.fill_diagonal(similarity, -np.inf)
        out.append(d.top_k(similarity, K))
    return out


def engine(layers) -> None:
    for a in layers:
        search(a, K)


def codes(a: np.ndarray, kept: float = 0.11) -> np.ndarray:
    """Discrete codes with 89 % zeros, as the world Z: the sign of each row's largest 11 % of entries."""
    threshold = np.quantile(np.abs(a), 1 - kept, axis=1, keepdims=True)
    return d.l2_normalize(np.sign(a) * (np.abs(a) >= threshold))


def best(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    Xs, Ys = make_stacks()
    layers = Xs + Ys
    engine(layers[:2])  # compile the numba kernels outside the timings
    floor(layers[:2])
    quantised = [codes(a) for a in layers]
    tied = sum(LayerStates([a]).tie_counts(K)[0] for a in quantised)
    print(f"N = {len(layers[0])}, {len(Xs)} + {len(Ys)} layers, k = {K}")
    print(f"{'data':<28}{'floor s':>9}{'engine s':>10}{'float64 s':>11}{'engine/floor':>14}{'engine/float64':>16}")
    for name, data in (("no ties", layers), (f"codes ({tied} tied rows)", quantised)):
        f = best(lambda data=data: floor(data), args.repeat)
        e = best(lambda data=data: engine(data), args.repeat)
        old = best(lambda data=data: float64_search(data), args.repeat)
        print(f"{name:<28}{f:>9.2f}{e:>10.2f}{old:>11.2f}{e / f:>14.2f}{e / old:>16.2f}")

    def integer_counts():
        lx, ly = np.stack(float64_search(Xs)), np.stack(float64_search(Ys))
        return kernels.mutual_knn_counts(lx, ly, K).sum(axis=2) / (K * len(Xs[0]))

    tie_aware = best(lambda: layer_scores("mutual_knn", LayerStates(Xs), LayerStates(Ys), k=K), args.repeat)
    counts = best(integer_counts, args.repeat)
    same = np.abs(layer_scores("mutual_knn", Xs, Ys, k=K) - integer_counts()).max()
    print(f"\nmutual k-NN, all 13 x 25 layer pairs, no ties: tie-aware {tie_aware:.2f} s, float64 lists and integer "
          f"counts {counts:.2f} s, ratio {tie_aware / counts:.2f}; max |difference| {same:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
