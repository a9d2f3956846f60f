"""Figure of alignment against caption density (Fig. 9)."""

from __future__ import annotations

import matplotlib
import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

matplotlib.use("Agg")
from prh.plots.style import grid, save


def plot_caption_density(summary, path) -> None:
    """Fig. 9: for each metric, the mean alignment over vision × language pairs against the mean caption
    length of each density level, ± the standard deviation over language models. Each panel's title states
    this run's Spearman ρ between length and mean alignment, and the change from the sparsest level."""
    metrics = list(dict.fromkeys(summary["metric"].to_list()))
    fig, axes = grid(len(metrics), 4.2, 3.4)
    for ax, metric in zip(axes, metrics):
        rows = summary.filter(summary["metric"] == metric).sort("words")
        words, mean, std = (rows[c].to_numpy() for c in ("words", "mean", "std"))
        ax.errorbar(words, mean, yerr=np.nan_to_num(std), marker="o", capsize=3)
        for x, y, level in zip(words, mean, rows["level"]):
            ax.annotate(level, (x, y), fontsize=6, xytext=(3, -9), textcoords="offset points")
        rho = spearmanr(words, mean)[0] if len(set(mean)) > 1 else np.nan
        ax.set(xlabel="caption length (mean words)", ylabel=f"{metric}: mean over pairs",
               title=f"{metric}: ρ = {rho:.2f}; {mean[0]:.3f} → {mean[-1]:.3f}")  # fmt: skip
        ax.title.set_fontsize(8)
    first = summary.row(0, named=True)
    fig.suptitle(f"{first['vision_models']} vision × {first['language_models']} language models; "
                 "bars: ± s.d. over language models", fontsize=8)  # fmt: skip
    save(fig, path)


def density_summary(levels: list) -> list[dict]:
    """Fig. 9's numbers from the levels' ``level_alignment`` Datasets, in level order: per metric and level,
    the mean caption length, the mean score over vision × language pairs and its standard deviation over
    language models (of each language model's mean over the vision models)."""
    rows = []
    for ds in levels:
        for metric in ds["metric"].values:
            per_language = ds["score"].sel(metric=metric).mean("vision").values
            rows.append({
                "metric": str(metric),
                "level": ds.attrs["level"],
                "words": float(ds["words"]),
                "mean": float(ds["score"].sel(metric=metric).mean()),
                "std": float(per_language.std(ddof=1)) if len(per_language) > 1 else float("nan"),
                "language_models": len(per_language),
                "vision_models": int(ds.sizes["vision"]),
            })  # fmt: skip
    return rows
