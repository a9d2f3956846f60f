"""Figures of competence: alignment against competence (Fig. 2) and the models' UMAP (Fig. 2, right)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
from prh.plots.style import save, title, ylabel


def plot_competence_alignment(
    binned: dict,
    path: str | Path,
    metric: str,
    n_tasks: int,
    trends=None,
    layers: str = "last",
    competence=None,
) -> None:
    """Fig. 2 (left): mean alignment of the model pairs inside each competence bin, with standard errors, one
    panel per score in ``binned`` (``raw`` and ``calibrated`` -> ``prh.analysis.probes.binned_alignment`` table); bins
    that hold a single model (no pair) are marked on the axis. ``trends``: the run's trends table, whose
    ``fig2`` rows title the panels and give each model's point (its mean alignment to the other trained
    models), drawn with its competence interval from ``competence`` (``prh.analysis.probes.competence``)."""
    from prh.analysis.trends import describe, trend_row

    fig, axes = plt.subplots(1, len(binned), figsize=(5.5 * len(binned), 4), squeeze=False, layout="constrained")
    for ax, (score, table) in zip(axes[0], binned.items()):
        centres = 100 * (table["low"].to_numpy() + table["high"].to_numpy()) / 2
        paired = table["pairs"].to_numpy() > 0
        means, errors = table["mean_alignment"].to_numpy(), np.nan_to_num(table["stderr"].to_numpy())
        ax.errorbar(centres[paired], means[paired], yerr=errors[paired], marker="o", capsize=4, color="tab:blue")
        for x, y, n in zip(centres[paired], means[paired], table["models"].to_numpy()[paired]):
            ax.annotate(f"{n} models", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
        for x in centres[~paired]:
            ax.annotate("1 model\n(no pair)", (x, 0), xycoords=("data", "axes fraction"), xytext=(0, 4),
                        textcoords="offset points", ha="center", fontsize=7, color="gray")  # fmt: skip
        if not paired.any():
            ax.text(0.5, 0.5, "no bin holds two models", transform=ax.transAxes, ha="center", color="gray")
        ax.set_xticks(100 * np.linspace(0, 1, int(round(1 / (table["high"][0] - table["low"][0]))) + 1))
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"percentage of probe tasks solved (total = {n_tasks})")
        layer_text = f"{layers} layer{'s' if layers == 'best' else ''}"
        ylabel(ax, f"intra-bin alignment ({metric}, {layer_text}{', calibrated' if score != 'raw' else ''})")
        trend = trend_row(trends, "fig2", metric, score) if trends is not None else None
        if trend is not None and competence is not None:
            bounds = {r["model"]: r for r in competence.to_dicts()}
            x, y = 100 * np.array(trend["x_values"]), np.array(trend["y_values"])
            low = np.array([100 * bounds[m]["competence_low"] for m in trend["models"]])
            high = np.array([100 * bounds[m]["competence_high"] for m in trend["models"]])
            drawn = np.isfinite(y)  # a control's y is its mean alignment to the trained models: none, none
            if drawn.any():
                ax.errorbar(x[drawn], y[drawn], xerr=[(x - low)[drawn], (high - x)[drawn]], fmt="s", ms=4,
                            color="gray", alpha=0.6, capsize=2,
                            label="each model: competence, 95% interval over test items")  # fmt: skip
                ax.legend(fontsize=7, loc="lower right")
        title(ax, f"{score} scores: {describe(trend)}")
    fig.suptitle("Fig. 2; mean alignment within competence bins, and the trend of each model's mean alignment")
    save(fig, path)


def plot_model_umap(coords: np.ndarray, names, competence, path: str | Path, metric: str) -> None:
    """Fig. 2 (right): the models in UMAP coordinates, coloured by competence."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    points = ax.scatter(coords[:, 0], coords[:, 1], c=competence, cmap="coolwarm_r", vmin=0, vmax=1, s=60)
    for (x, y), name in zip(coords, names):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    fig.colorbar(points, ax=ax, label="competence (fraction of tasks solved)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"UMAP of models, distance = −log({metric}) (Fig. 2 right)", fontsize=10)
    save(fig, path)
