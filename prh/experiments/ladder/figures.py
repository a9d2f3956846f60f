"""Figures of the ladder: training curves and each family's alignment per level of its factor."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
from prh.plots.style import save


def plot_training_curves(curves, path: str | Path) -> None:
    """The ladder's training runs: the training loss per step (left; a running mean over 10 steps) and the
    validation measure at each checkpoint (right: mean head accuracy for vision, bits-per-byte for language)."""
    import polars as pl

    modalities = [
        m for m in ("vision", "language") if (curves["run"].str.starts_with("cnn" if m == "vision" else "gpt")).any()
    ]
    fig, axes = plt.subplots(
        len(modalities), 2, figsize=(11, 3.6 * len(modalities)), squeeze=False, layout="constrained"
    )
    for row, modality in zip(axes, modalities):
        mine = curves.filter(pl.col("run").str.starts_with("cnn" if modality == "vision" else "gpt"))
        for run in sorted(set(mine["run"])):
            train = mine.filter((pl.col("run") == run) & (pl.col("split") == "train")).sort("step")
            smooth = (
                np.convolve(train["value"].to_numpy(), np.ones(10) / 10, mode="valid")
                if len(train) >= 10
                else train["value"].to_numpy()
            )
            row[0].plot(train["step"].to_numpy()[len(train) - len(smooth) :], smooth, label=run, linewidth=1)
            val = mine.filter((pl.col("run") == run) & (pl.col("split") == "validation"))
            if modality == "vision":
                val = (
                    val.filter(pl.col("quantity").str.starts_with("accuracy/"))
                    .group_by("step")
                    .agg(pl.col("value").mean())
                )
            val = val.sort("step")
            row[1].plot(val["step"].to_numpy(), val["value"].to_numpy(), marker="o", label=run, linewidth=1)
        row[0].set(xlabel="step", ylabel="training loss", title=f"{modality}: training loss", yscale="log")
        measure = "mean validation accuracy over heads" if modality == "vision" else "validation bits per byte"
        row[1].set(xlabel="step", ylabel=measure, title=f"{modality}: {measure} at checkpoints", xscale="symlog")
        row[1].legend(fontsize=6, ncol=2)
    save(fig, path)


def plot_family(table, path: str | Path, family: str, factors: list[str], metric: str) -> None:
    """One panel per measure of ``prh.experiments.ladder.families.family_table``: mean alignment per level
    of the family's varied factor, with the pairs' half-sample interval."""
    from prh.experiments.ladder.families import FACTOR_WORDS

    label = " / ".join(FACTOR_WORDS.get(f, f) for f in factors) or "level"
    measures = ["within", "world", "other modality"]
    titles = {
        "within": "among the family's models at a level (seeds)",
        "world": "to the world Z",
        "other modality": "to the other modality's models",
    }
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    levels = list(dict.fromkeys(table["level"].to_list()))
    x = np.arange(len(levels))
    for ax, measure in zip(axes, measures):
        rows = table.filter(table["measure"] == measure)
        by_level = {r["level"]: r for r in rows.iter_rows(named=True)}
        mean = np.array([by_level[lv]["mean"] if lv in by_level else np.nan for lv in levels])
        low = np.array([by_level[lv]["ci_low"] if lv in by_level else np.nan for lv in levels])
        high = np.array([by_level[lv]["ci_high"] if lv in by_level else np.nan for lv in levels])
        if np.isfinite(mean).any():
            ax.plot(x, mean, marker="o")
            ax.vlines(x, low, high, colors="k", linewidth=1)
        else:
            ax.text(0.5, 0.5, "no pairs", transform=ax.transAxes, ha="center", color="gray")
        for xi, lv in zip(x, levels):
            pairs = by_level[lv]["pairs"] if lv in by_level else 0
            ax.annotate(f"{pairs} pairs", (xi, 0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=7, color="gray")  # fmt: skip
        ax.set_xticks(x, levels, rotation=20, fontsize=8)
        ax.set_title(titles[measure], fontsize=9)
        ax.set_xlabel(label)
    axes[0].set_ylabel(f"{metric} (best over layer pairs)")
    fig.suptitle(f"Family '{family}': alignment by {label}")
    save(fig, path)
