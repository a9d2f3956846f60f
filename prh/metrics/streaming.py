"""Linear CKA and unbiased CKA at any N from feature-space statistics, streamed over chunks of samples:
O(N · Dx · Dy) time per layer pair and O(Dx · Dy + chunk · D) memory, no N × N Gram matrix.

With K = X Xᵀ, L = Y Yᵀ, C = Xᵀ Y, column sums s_x = Xᵀ1 and squared row norms d_x = diag K:

* <HKH, HLH> = ‖C − s_x s_yᵀ / n‖²_F (biased HSIC up to (n−1)², eq. 13);
* for the unbiased HSIC (Song et al. 2012), with K̃ = K − diag K: tr(K̃L̃) = ‖C‖²_F − d_x·d_y,
  1ᵀK̃1 = ‖s_x‖² − Σd_x, and (K̃1)·(L̃1) = s_xᵀ C s_y − s_x·(Xᵀd_y) − s_y·(Yᵀd_x) + d_x·d_y.

Every term is a sum over samples, accumulated chunk by chunk in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from prh.metrics import definitions as d

Reader = Callable[[int, int, int], np.ndarray]  # (layer, start, stop) -> prepared rows, float64


def _pair_statistics(read_x: Reader, a: int, read_y: Reader, b: int, n: int, chunk: int) -> dict:
    C = sx = sy = vx = vy = None
    dd = dx_sum = dy_sum = 0.0
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        x, y = read_x(a, start, stop), read_y(b, start, stop)
        dx, dy = (x * x).sum(axis=1), (y * y).sum(axis=1)
        if C is None:
            C, sx, sy = np.zeros((x.shape[1], y.shape[1])), np.zeros(x.shape[1]), np.zeros(y.shape[1])
            vx, vy = np.zeros(x.shape[1]), np.zeros(y.shape[1])
        C += x.T @ y
        sx += x.sum(axis=0)
        sy += y.sum(axis=0)
        vx += dy @ x
        vy += dx @ y
        dd += dx @ dy
        dx_sum += dx.sum()
        dy_sum += dy.sum()
    return {"C": C, "sx": sx, "sy": sy, "vx": vx, "vy": vy, "dd": dd, "dx": dx_sum, "dy": dy_sum}


def _hsic_pair(s: dict, n: int) -> tuple[float, float]:
    """(<HKH, HLH>, HSIC_1(K, L)) from the pair's statistics."""
    C, sx, sy = s["C"], s["sx"], s["sy"]
    centred = C - np.outer(sx, sy) / n
    biased = float((centred * centred).sum())
    trace = float((C * C).sum()) - s["dd"]
    totals = (sx @ sx - s["dx"]) * (sy @ sy - s["dy"])
    rows = float(sx @ C @ sy) - sx @ s["vx"] - sy @ s["vy"] + s["dd"]
    return biased, float(d.unbiased_hsic(trace, totals, rows, n))


def cka_from_readers(read_x: Reader, lx: int, read_y: Reader, ly: int, n: int, chunk: int = 4096) -> dict:
    """``{"cka": (lx, ly), "unbiased_cka": (lx, ly)}`` for every layer pair of two stacks given as readers."""
    self_x = [_hsic_pair(_pair_statistics(read_x, a, read_x, a, n, chunk), n) for a in range(lx)]
    self_y = [_hsic_pair(_pair_statistics(read_y, b, read_y, b, n, chunk), n) for b in range(ly)]
    cka, unbiased = np.empty((lx, ly)), np.empty((lx, ly))
    for a in range(lx):
        for b in range(ly):
            biased_ab, unbiased_ab = _hsic_pair(_pair_statistics(read_x, a, read_y, b, n, chunk), n)
            cka[a, b] = biased_ab / np.sqrt(self_x[a][0] * self_y[b][0])
            unbiased[a, b] = unbiased_ab / np.sqrt(self_x[a][1] * self_y[b][1])
    return {"cka": cka, "unbiased_cka": unbiased}


def array_reader(layers) -> Reader:
    """A reader over prepared in-memory layers."""
    return lambda i, start, stop: np.asarray(layers[i][start:stop], dtype=np.float64)
