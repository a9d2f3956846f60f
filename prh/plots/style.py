"""What every figure shares: saving without timestamps, titles and footnotes that fit, significance marks."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

matplotlib.use("Agg")


# No software/date metadata: PNG bytes stay identical from run to run.
PNG_METADATA = {"Software": None}


Q_LEVEL = 0.05  # pairs whose Benjamini–Hochberg q-value is not below this are marked "not significant"


def not_significant(ds: xr.Dataset) -> xr.DataArray:
    """True where a pair's q-value is at least ``Q_LEVEL`` (False where there is no test, e.g. no null)."""
    return ds["q_value"] >= Q_LEVEL


def p_floor_note(ds: xr.Dataset) -> str:
    """A line saying so when every pair's permutation p-value sits at its floor 1/(K + 1): the test then cannot
    tell the pairs apart at this K (every q-value is equal too); empty otherwise."""
    permutations = int(ds.attrs.get("permutations", 0) or 0)
    p = ds["p_value"].values[np.isfinite(ds["p_value"].values)] if "p_value" in ds else np.array([])
    floor = 1.0 / (permutations + 1)
    if not permutations or not p.size or not np.allclose(p, floor, rtol=0, atol=1e-12):
        return ""
    return (
        f"Every p-value is at its floor 1/(K + 1) = {floor:.3f} (K = {permutations} permutations): the test "
        "cannot tell the pairs apart at this K; alignment.null_distribution.permutations sets K."
    )


def footnote(fig, *lines: str) -> None:
    """Lines under the figure (empty ones skipped), wrapped to its width."""
    text = "\n".join(textwrap.fill(line, _characters(fig.get_figwidth(), 7)) for line in lines if line)
    if text:
        fig.text(0.5, 0.0, text, ha="center", va="top", fontsize=7)


def _characters(inches: float, fontsize: float) -> int:
    """About how many characters of ``fontsize`` points fit in ``inches`` (an average glyph is 0.55 em)."""
    return max(20, int(inches * 72 / (0.55 * fontsize)))


def title(ax, text: str, fontsize: float = 8) -> None:
    """An axes title wrapped to the axes' width, so neighbouring panels' titles and labels never meet."""
    inches = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(textwrap.fill(text, _characters(inches, fontsize)), fontsize=fontsize)


def ylabel(ax, text: str, fontsize: float = 9) -> None:
    """A y label wrapped to the axes' height."""
    inches = ax.get_position().height * ax.figure.get_figheight()
    ax.set_ylabel(textwrap.fill(text, _characters(inches, fontsize)), fontsize=fontsize)


def text_overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of the figure's titles, axis labels and suptitle whose drawn boxes intersect (drawing it)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text() and t.get_visible()]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1 :] if box_a.overlaps(box_b)]


def save(fig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(fig)


def grid(n: int, width: float, height: float):
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def note(path: str | Path, text: str) -> None:
    """A figure that says why there is nothing to plot (e.g. a config with a single metric)."""
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    save(fig, path)


def metric_params(ds: xr.Dataset) -> dict:
    return json.loads(ds.attrs["metric_params"])


def tie_note(ds: xr.Dataset) -> str:
    """A line naming the models whose k-th neighbours tie (in the layer with most ties), from the aggregate's
    ``knn_ties``; empty when none do."""
    if "knn_ties" not in ds:
        return ""
    tied = [f"{m} {int(c)} of {ds.attrs['n_samples']}" for m, c in zip(ds["model"].values, ds["knn_ties"].values) if c]
    if not tied:
        return ""
    return (
        f"Samples whose k-th neighbour ties with another: {', '.join(tied)}; the neighbour metrics are their "
        "expectations over random tie orders (cycle k-NN, LCS, edit distance: a seeded average of 32)"
    )
