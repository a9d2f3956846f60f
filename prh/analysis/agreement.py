"""Agreement between metrics: Spearman's ρ between two metrics' best-layer scores over model pairs (Fig. 12)."""

from __future__ import annotations

import matplotlib
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

matplotlib.use("Agg")


MODALITY_GROUPS = {"vision–vision": {"vision"}, "language–language": {"language"},
                   "vision–language": {"vision", "language"}}  # fmt: skip


def group_pairs(ds: xr.Dataset, group: str) -> tuple[np.ndarray, np.ndarray]:
    """The unordered model pairs (i < j) of a modality group of ``MODALITY_GROUPS``."""
    i, j = np.triu_indices(ds.sizes["model_x"], k=1)
    modality = ds["modality_x"].values
    keep = np.array([{modality[a], modality[b]} == MODALITY_GROUPS[group] for a, b in zip(i, j)], dtype=bool)
    return i[keep], j[keep]


def metric_agreement(ds: xr.Dataset, group: str | None = None) -> np.ndarray:
    """Spearman rank correlation between metrics of the best scores over model pairs (Fig. 12): all pairs,
    or those of one modality ``group``. Each unordered pair counts once (its x-against-y direction)."""
    i, j = np.triu_indices(ds.sizes["model_x"], k=1) if group is None else group_pairs(ds, group)
    best = ds["best"].values[:, i, j]  # (metric, pair)
    if best.shape[1] < 3:
        raise ValueError("rank correlations between metrics need at least 3 model pairs")
    rho = spearmanr(best, axis=1).statistic
    return np.atleast_2d(rho)
