"""Figures of a dataset's alignment: best-layer scores, layer × layer matrices, agreement between metrics (Fig. 12),
cross-modal alignment per metric (Fig. 13–14) and CKNNA against k (Fig. 10)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
import xarray as xr  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

matplotlib.use("Agg")
from prh.analysis.agreement import MODALITY_GROUPS, group_pairs, metric_agreement
from prh.plots.style import Q_LEVEL, footnote, grid, metric_params, not_significant, note, p_floor_note, save, tie_note


def plot_best_alignment(ds: xr.Dataset, path: str | Path) -> None:
    """One heatmap per metric: the best score over layer pairs for every model pair (diagonal blank); pairs
    whose q-value is not below ``Q_LEVEL`` are crossed."""
    labels = [f"{m} ({v})" for m, v in zip(ds["model_x"].values, ds["modality_x"].values)]
    n = len(labels)
    metrics = list(ds["metric"].values)
    fig, axes = grid(len(metrics), 0.3 * n + 2.5, 0.3 * n + 2)  # labels at 6 pt: 0.3 in per model is room enough
    for ax, metric in zip(axes, metrics):
        best = ds["best"].sel(metric=metric).values
        sns.heatmap(best, annot=n <= 8, fmt=".2f", cmap="viridis", square=True, ax=ax, cbar=False,
                    xticklabels=labels, yticklabels=labels)  # fmt: skip
        rows, cols = np.nonzero(not_significant(ds.sel(metric=metric)).values)
        ax.scatter(cols + 0.5, rows + 0.5, marker="x", s=12, color="red", linewidths=0.8)
        ax.set_title(f"{metric} {metric_params(ds)[metric] or ''}", fontsize=9)
        ax.tick_params(labelsize=6)
    fig.suptitle(
        "Best alignment over layer pairs (rows: model x, columns: model y); "
        f"×: not significant, Benjamini–Hochberg q ≥ {Q_LEVEL}"
    )
    footnote(fig, tie_note(ds), p_floor_note(ds))
    save(fig, path)


def plot_layer_matrices(pair: xr.Dataset, path: str | Path, rows: str = "x") -> None:
    """The (layer, layer) score matrix of one pair, one panel per metric; ``rows`` picks which model ("x" or
    "y") is on the rows. The best cell is outlined."""
    cols = "y" if rows == "x" else "x"
    names = {side: json.loads(pair.attrs[f"layer_names_{side}"]) for side in ("x", "y")}
    metrics = list(pair["metric"].values)
    fig, axes = grid(len(metrics), 0.25 * len(names[cols]) + 3, 0.22 * len(names[rows]) + 1.5)
    for ax, metric in zip(axes, metrics):
        direction = "forward" if rows == "x" else "reverse"
        scores = pair["score"].sel(metric=metric, direction=direction).values
        scores = scores if rows == "x" else scores.T
        image = ax.imshow(scores, cmap="magma", aspect="auto", interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.05)
        ax.set_xticks(range(len(names[cols])), names[cols], rotation=90)
        ax.set_yticks(range(len(names[rows])), names[rows])
        i, j = np.unravel_index(np.nanargmax(scores), scores.shape)
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="cyan", linewidth=2))
        ax.set_title(f"{metric}: best {scores[i, j]:.3f}", fontsize=9)
        ax.tick_params(labelsize=6)
    fig.supxlabel(f"{pair.attrs[f'model_{cols}']} layer")
    fig.supylabel(f"{pair.attrs[f'model_{rows}']} layer")
    save(fig, path)


def _agreement_heatmap(ax, rho: np.ndarray, labels: list[str], title: str) -> None:
    sns.heatmap(rho, annot=len(labels) <= 12, fmt=".2f", vmin=-1, vmax=1, cmap="RdBu_r", square=True, ax=ax,
                xticklabels=labels, yticklabels=labels, cbar_kws={"label": "Spearman ρ"})  # fmt: skip
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=9)


def plot_metric_agreement(ds: xr.Dataset, path: str | Path) -> None:
    """Fig. 12 within modality groups: one heatmap per group (vision–vision as the paper, cross-modal and
    language–language separately) that has at least three model pairs."""
    metrics = list(ds["metric"].values)
    groups = {g: len(group_pairs(ds, g)[0]) for g in MODALITY_GROUPS}
    groups = {g: n for g, n in groups.items() if n >= 3}
    if len(metrics) < 2 or not groups:
        note(path, "Metric agreement needs at least two metrics and three model pairs of one modality group.")
        return
    side = 0.7 * len(metrics) + 2.5
    fig, axes = plt.subplots(1, len(groups), figsize=(side * len(groups), side), squeeze=False, layout="constrained")
    for ax, (group, n) in zip(axes.flat, groups.items()):
        _agreement_heatmap(ax, metric_agreement(ds, group), metrics, f"{group}: {n} model pairs")
    save(fig, path)


def plot_metric_variants(ds: xr.Dataset, path: str | Path) -> None:
    """Fig. 12 over hyperparameters: the Spearman rank correlation over vision–vision model pairs between
    every (metric, k, bsz) variant, each scored on the models' last layers."""
    if ds.sizes["pair"] < 3 or ds.sizes["variant"] < 2:
        note(path, "Fig. 12 needs at least three vision models (three pairs) and two metric variants.")
        return
    rho = np.atleast_2d(spearmanr(ds["score"].values, axis=1).statistic)
    labels = list(ds["variant"].values)
    side = 0.32 * len(labels) + 3
    fig, ax = plt.subplots(figsize=(side + 1, side), layout="constrained")
    _agreement_heatmap(ax, rho, labels, f"vision–vision, last layers: {ds.sizes['pair']} model pairs; "
                       f"lowest ρ {np.nanmin(rho):.2f}")  # fmt: skip
    save(fig, path)


def plot_cross_modal_metrics(ds: xr.Dataset, path: str | Path) -> None:
    """One panel per metric: the best score of each vision model against each language model, with the
    half-sample interval as error bars and the null's critical value τ as a dashed line (Fig. 13–14); pairs
    that are not significant after the Benjamini–Hochberg correction are hatched."""
    vision = [m for m, v in zip(ds["model_x"].values, ds["modality_x"].values) if v == "vision"]
    language = [m for m, v in zip(ds["model_x"].values, ds["modality_x"].values) if v == "language"]
    if not vision or not language:
        note(path, "Cross-modal alignment needs at least one vision and one language model.")
        return
    metrics = list(ds["metric"].values)
    fig, axes = grid(len(metrics), 0.6 * len(vision) + 2.5, 3.0)
    x = np.arange(len(vision))
    width = 0.8 / len(language)
    for ax, metric in zip(axes, metrics):
        sub = ds.sel(metric=metric)
        for j, lang in enumerate(language):
            sel = sub.sel(model_x=vision, model_y=lang)
            best, low, high = sel["best"].values, sel["ci_low"].values, sel["ci_high"].values
            offset = x + (j - (len(language) - 1) / 2) * width
            bars = ax.bar(offset, best, width, label=lang)
            for bar, weak in zip(bars, not_significant(sel).values):
                if weak:
                    bar.set(hatch="///", alpha=0.45)
            ax.vlines(offset, low, high, colors="k", linewidth=1)
            ax.hlines(sel["tau"].values, offset - width / 2, offset + width / 2, colors="k", linestyles="--")
        ax.set_xticks(x, vision, rotation=45, ha="right", fontsize=7)
        ax.set_title(metric, fontsize=9)
    axes[0].legend(title="language model", fontsize=7)
    fig.suptitle(
        "Vision–language alignment per metric (bars: best over layers; dashes: the null's critical value τ; "
        f"hatched: not significant, q ≥ {Q_LEVEL})"
    )
    footnote(fig, p_floor_note(ds))
    save(fig, path)


def plot_cknna_versus_k(ds: xr.Dataset, path: str | Path) -> None:
    """Left: best CKNNA (mean over language models) of each vision model for each k, the models in order of
    size. Right: the same, centred on the smallest vision model and divided by the standard deviation over
    vision models, as Fig. 10."""
    if "parameters" in ds:  # smallest first: the paper centres the curves on the smallest model
        ds = ds.isel(vision=np.argsort(ds["parameters"].values, kind="stable"))
    vision = list(ds["vision"].values)
    mean = ds["cknna"].mean("language").values  # (k, vision)
    fig, (raw, normalised) = plt.subplots(1, 2, figsize=(11, 4))
    palette = sns.color_palette("viridis", len(ds["k"]))
    x = np.arange(len(vision))
    for a, (k, colour) in enumerate(zip(ds["k"].values, palette)):
        raw.plot(x, mean[a], marker="o", color=colour, label=f"k={k}")
        spread = mean[a].std()
        if spread > 0:
            normalised.plot(x, (mean[a] - mean[a][0]) / spread, marker="o", color=colour, label=f"k={k}")
    for ax, title in ((raw, "best CKNNA"), (normalised, f"centred on the smallest model ({vision[0]}), / sd")):
        ax.set_xticks(x, vision, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
    raw.legend(fontsize=7)
    fig.suptitle("Cross-modal CKNNA against neighbourhood size k (mean over language models)")
    save(fig, path)
