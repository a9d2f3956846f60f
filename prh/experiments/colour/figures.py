"""Figure of the colour experiment (Fig. 8): each representation's colours in 3-D beside CIELAB."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

matplotlib.use("Agg")
from prh.plots.style import save


def _span(values: np.ndarray, margin: float = 0.1) -> tuple[float, float]:
    low, high = float(np.min(values)), float(np.max(values))
    return low - margin * (high - low), high + margin * (high - low)


def plot_colours(table, points: xr.Dataset, path) -> None:
    """Fig. 8: one 3-D panel per representation, its colours (drawn in their own sRGB) at their MDS
    coordinates after the Kabsch–Umeyama fit onto CIELAB; each title states this run's Procrustes disparity to
    CIELAB and RSA ρ, each with its permutation p-value."""
    names = list(points["representation"].values)
    cols = min(len(names), 4)
    rows = math.ceil(len(names) / cols)
    fig = plt.figure(figsize=(3.6 * cols, 3.6 * rows), layout="constrained")
    scores = {r["representation"]: r for r in table.to_dicts()}
    rgb = np.clip(points["rgb"].values, 0, 1)
    every = points["points"].values.reshape(-1, 3)  # one set of axes for all panels, CIELAB's units
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        xyz = points["points"].sel(representation=name).values
        # CIELAB's axes: a* (green-red) and b* (blue-yellow) across, L* (lightness) up
        ax.scatter(xyz[:, 1], xyz[:, 2], xyz[:, 0], c=rgb, s=60, edgecolors="k", depthshade=False)
        for (lightness, a, b), colour in zip(xyz, points["colour"].values):
            ax.text(a, b, lightness, f" {colour}", fontsize=5)
        ax.set(xlabel="a*", ylabel="b*", zlabel="L*", xlim=_span(every[:, 1]), ylim=_span(every[:, 2]),
               zlim=_span(every[:, 0]))  # fmt: skip
        ax.view_init(elev=20, azim=-60)
        s = scores[name]
        ax.set_title(f"{name}\ndisparity {s['disparity']:.2f} (p = {s['disparity_p']:.3g}), "
                     f"RSA ρ = {s['rsa']:.2f} (p = {s['rsa_p']:.3g})", fontsize=7)  # fmt: skip
    save(fig, path)
