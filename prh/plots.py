"""Figures: best-layer alignment across all models, and the layer × layer matrix of one model pair."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
import xarray as xr  # noqa: E402

# Fixed metadata keep PNG bytes identical from run to run.
PNG_METADATA = {"Software": None}


def _save(fig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(fig)


def plot_best_alignment(ds: xr.Dataset, path: str | Path) -> None:
    """Heatmap of the best score over layer pairs for every model pair (diagonal left blank)."""
    metric = ds.attrs["metric"]
    labels = [f"{m} ({v})" for m, v in zip(ds["model_x"].values, ds["modality_x"].values)]
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 * n + 3, 1.0 * n + 2))
    sns.heatmap(
        ds["best"].values,
        annot=True,
        fmt=".3f",
        cmap="viridis",
        square=True,
        ax=ax,
        xticklabels=labels,
        yticklabels=labels,
        cbar_kws={"label": f"best {metric}"},
    )
    ax.set_title(f"{metric} ({json.loads(ds.attrs['params'])}): best over layer pairs")
    _save(fig, path)


def plot_layer_matrix(pair: xr.Dataset, metric: str, path: str | Path, rows: str = "x") -> None:
    """The (layer, layer) score matrix of one pair; ``rows`` picks which model ("x" or "y") is on the rows.
    The best cell is outlined."""
    cols = "y" if rows == "x" else "x"
    scores = pair[metric].values if rows == "x" else pair[metric].values.T
    names = {side: json.loads(pair.attrs[f"layer_names_{side}"]) for side in ("x", "y")}
    fig, ax = plt.subplots(figsize=(0.35 * scores.shape[1] + 3, 0.3 * scores.shape[0] + 2))
    sns.heatmap(
        scores, cmap="magma", ax=ax, xticklabels=names[cols], yticklabels=names[rows], cbar_kws={"label": metric}
    )
    i, j = np.unravel_index(np.nanargmax(scores), scores.shape)
    ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, edgecolor="cyan", linewidth=2))
    ax.set_xlabel(f"{pair.attrs[f'model_{cols}']} layer")
    ax.set_ylabel(f"{pair.attrs[f'model_{rows}']} layer")
    ax.set_title(f"{metric}: best {scores[i, j]:.3f} at ({names[rows][i]}, {names[cols][j]})")
    _save(fig, path)
