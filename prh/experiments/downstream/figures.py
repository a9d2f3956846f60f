"""Figure of downstream performance against alignment (Fig. 4)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

matplotlib.use("Agg")
from prh.plots.style import note, save


def plot_downstream(
    scores, alignment: xr.Dataset, lm_scores, reference: str, metric: str, path, accuracy: str = "acc_norm"
) -> None:
    """Fig. 4: each causal language model's alignment to the ``reference`` vision model (best over layer
    pairs, ``metric``) against its ``accuracy`` on the task (``acc`` or the length-normalised ``acc_norm``, or
    ``accuracy`` from a table of published scores); point size shows parameters, colour the rank of
    1 − bits-per-byte (1 = best). The title carries this run's Spearman ρ; a published table is named by its
    SHA-256."""
    rows = [r for r in scores.to_dicts() if r["applicable"]]
    models = [r["model"] for r in rows if r["model"] in alignment["model_x"].values]
    if len(models) < 2 or reference not in alignment["model_x"].values:
        what = "published scores" if "table_sha256" in scores.columns else "scores"
        note(path, f"Fig. 4 needs the reference {reference} and at least two causal language models aligned to "
                    f"it with {what}; {len(models)} of {len(scores)} language models have them.")  # fmt: skip
        return
    by_model = {r["model"]: r for r in rows}
    x = [float(alignment["best"].sel(metric=metric, model_x=reference, model_y=m)) for m in models]
    y = [by_model[m][accuracy] for m in models]
    bpb = {r["model"]: r["bits_per_byte"] for r in lm_scores.to_dicts() if r["applicable"]}
    order = sorted(models, key=lambda m: bpb.get(m, np.inf))  # rank 1: the lowest bits-per-byte
    rank = [order.index(m) + 1 for m in models]
    size = np.array([by_model[m]["parameters"] for m in models], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    points = ax.scatter(x, y, s=30 + 270 * np.sqrt(size / size.max()), c=rank, cmap="viridis_r", edgecolors="k")
    for xi, yi, m in zip(x, y, models):
        ax.annotate(m, (xi, yi), fontsize=6, xytext=(4, 4), textcoords="offset points")
    task, chance = rows[0]["task"], rows[0]["chance"]
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", label=f"chance ({chance:.2f})")
        ax.legend(fontsize=7)
    counted = f"{len(models)} language models"
    if "table_sha256" in scores.columns:  # a table of published scores: how many models it covers
        accuracy = f"published accuracy (table sha256 {rows[0]['table_sha256'][:12]})"
        counted = f"{len(models)} of {len(scores)} language models with a published score"
    rho, p = spearmanr(x, y) if len(set(x)) > 1 and len(set(y)) > 1 else (np.nan, np.nan)
    ax.set(xlabel=f"alignment to {reference} ({metric}, best over layers)",
           ylabel=f"{task}: {accuracy}",
           title=f"{counted}: Spearman ρ = {rho:.2f} (p = {p:.2g})")  # fmt: skip
    ax.title.set_fontsize(9)
    fig.colorbar(points, ax=ax, label="rank of 1 − bits-per-byte (1 = best)")
    save(fig, path)
