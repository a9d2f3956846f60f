"""Figures of the trends: alignment against language-model score (Fig. 3), to the world Z, and calibrated against
raw."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

matplotlib.use("Agg")
from prh.plots.style import footnote, grid, note, p_floor_note, save, title, ylabel

CONTROL_STYLE = {"random": ("0.45", "--", "random init"), "positive": ("tab:green", ":", "positive control")}


def plot_alignment_versus_lm_score(
    ds: xr.Dataset, trends, path: str | Path, metric: str = "mutual_knn", families=(), checks=None, corpus: str = ""
) -> None:
    """Fig. 3 from the run's trends table: each causal LM's mean alignment (best over layer pairs) to the
    trained vision models against its 1 − bits-per-byte on ``corpus``, raw (left) and calibrated (right, when
    the run has a null). Lines join the models of one family only (``families``: (label, members in order)
    pairs, e.g. one seed of the ladder across widths); a model of no family is a lone point. Controls are
    horizontal reference lines, not points; ``checks`` (``trends.control_checks``) says under the figure
    whether the positive controls aligned."""
    from prh.analysis.trends import TREND, describe, describe_control, trend_row

    metric = metric if metric in ds["metric"].values else str(ds["metric"].values[0])
    panels = [s for s in ("raw", "calibrated") if trend_row(trends, "fig3", metric, s) is not None]
    if not panels:
        note(path, "Figure 3 needs at least one vision model and one causal language model (with bits-per-byte).")
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5), squeeze=False, layout="constrained")
    for ax, score in zip(axes[0], panels):
        row = trend_row(trends, "fig3", metric, score)
        points = {m: (x, y) for m, role, x, y in zip(row["models"], row["roles"], row["x_values"], row["y_values"])
                  if role == TREND}  # fmt: skip
        grouped = set()
        for label, members in families:
            line = [m for m in members if m in points]
            if len(line) > 1:  # a one-member family is a lone point, drawn once below
                grouped.update(line)
                ax.plot(*zip(*(points[m] for m in line)), marker="o", linewidth=1.2, markersize=4, label=label)
        for m in points.keys() - grouped:
            ax.plot(*points[m], marker="s", linestyle="none", markersize=5, label=m)
        for m, (x, y) in points.items():
            ax.annotate(m, (x, y), fontsize=5, xytext=(3, 3), textcoords="offset points")
        for m, role, y in zip(row["models"], row["roles"], row["y_values"]):
            if role != TREND and np.isfinite(y):
                colour, style, kind = CONTROL_STYLE[role]
                ax.axhline(y, color=colour, linestyle=style, linewidth=1, label=f"{kind}: {m}")
        ax.set_xlabel(f"language model score: 1 − bits-per-byte{f' on {corpus}' if corpus else ''}")
        calibrated = ", calibrated" * (score != "raw")
        ylabel(ax, f"mean alignment to the trained vision models ({metric}, best layers{calibrated})")
        title(ax, f"{score} scores, trained causal LMs only: {describe(row)}")
        ax.legend(fontsize=6, loc="best")
    fig.suptitle("Fig. 3: alignment to the vision models against language-model score")
    controls = [describe_control(r) for r in checks.to_dicts()] if checks is not None else []
    footnote(fig, *controls, p_floor_note(ds))
    save(fig, path)


def plot_world_alignment(trends, path: str | Path, metric: str) -> None:
    """Alignment to the world Z against competence (vision models) and against 1 − bits-per-byte (causal
    language models), raw scores of ``metric``, each panel titled with its Spearman trend."""
    from prh.analysis.trends import describe, trend_row

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    for ax, trend, modality in zip(axes, ("world_vision", "world_language"), ("vision", "language")):
        row = trend_row(trends, trend, metric)
        if row is None:
            ax.text(0.5, 0.5, f"no {modality} models with a competence score", transform=ax.transAxes, ha="center")
            ax.axis("off")
            continue
        ax.scatter(row["x_values"], row["y_values"])
        for xv, yv, name in zip(row["x_values"], row["y_values"], row["models"]):
            ax.annotate(name, (xv, yv), textcoords="offset points", xytext=(4, 3), fontsize=6)
        ax.set(xlabel=row["x"], ylabel=row["y"])
        ax.set_title(f"{modality} models: {describe(row)}", fontsize=8)
    fig.suptitle("Alignment to the latent scenes Z of the shapes world")
    save(fig, path)


def plot_trend_calibration(trends, path: str | Path) -> None:
    """Does calibration change the story? For each trend (Fig. 2, Fig. 3, alignment to Z, scale) and metric, Spearman's
    ρ on the raw scores against ρ on the calibrated scores, with their bootstrap intervals."""
    import seaborn as sns  # here, not at the top: it brings scipy.stats, 0.6 s of every job importing this module

    kinds = ("fig2", "fig3", "world_vision", "world_language", "size_vision", "size_language")
    kinds = [t for t in kinds if t in set(trends["trend"])]
    if "calibrated" not in set(trends["score"]) or not kinds:
        note(path, "Raw against calibrated trends needs the permutation null (alignment.null_distribution).")
        return
    fig, axes = grid(len(kinds), 4.2, 4.0)
    for ax, kind in zip(axes, kinds):
        rows = trends.filter(trends["trend"] == kind)
        raw = {r["metric"]: r for r in rows.filter(rows["score"] == "raw").to_dicts()}
        cal = {r["metric"]: r for r in rows.filter(rows["score"] == "calibrated").to_dicts()}
        for i, metric in enumerate(m for m in raw if m in cal):
            a, b = raw[metric], cal[metric]
            colour = sns.color_palette("tab20", 20)[i % 20]
            # percentile intervals need not contain ρ: drawn as they are, not as ± errors
            ax.hlines(b["rho"], a["ci_low"], a["ci_high"], color=colour, linewidth=0.6)
            ax.vlines(a["rho"], b["ci_low"], b["ci_high"], color=colour, linewidth=0.6)
            ax.plot(a["rho"], b["rho"], "o", color=colour, markersize=4, label=metric)
        undefined = [m for m in raw if m in cal and not (np.isfinite(raw[m]["rho"]) and np.isfinite(cal[m]["rho"]))]
        if undefined:  # a constant score (e.g. every calibrated score 0) has no rank correlation
            ax.text(0.02, 0.02, "no ρ (constant scores): " + ", ".join(undefined), transform=ax.transAxes,
                    fontsize=6, color="gray", wrap=True)  # fmt: skip
        ax.axline((0, 0), slope=1, color="gray", linewidth=0.8, linestyle=":")
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.axvline(0, color="gray", linewidth=0.5)
        ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), xlabel="ρ, raw scores", ylabel="ρ, calibrated scores")
        ax.set_title(f"{kind}: {rows['x'][0]} (n = {rows['n'][0]} models)", fontsize=8)
    axes[0].legend(fontsize=6)
    fig.suptitle("Trend of alignment over models, raw against calibrated (each point a metric)")
    save(fig, path)
