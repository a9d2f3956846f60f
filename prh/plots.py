"""Figures: best-layer alignment across models, layer × layer matrices, agreement between metrics
(Fig. 12), cross-modal alignment per metric (Fig. 13–14) and CKNNA against k (Fig. 10)."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
import xarray as xr  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

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


def _footnote(fig, *lines: str) -> None:
    """Lines under the figure (empty ones skipped), wrapped to its width."""
    text = "\n".join(textwrap.fill(line, _characters(fig.get_figwidth(), 7)) for line in lines if line)
    if text:
        fig.text(0.5, 0.0, text, ha="center", va="top", fontsize=7)


def _characters(inches: float, fontsize: float) -> int:
    """About how many characters of ``fontsize`` points fit in ``inches`` (an average glyph is 0.55 em)."""
    return max(20, int(inches * 72 / (0.55 * fontsize)))


def _title(ax, text: str, fontsize: float = 8) -> None:
    """An axes title wrapped to the axes' width, so neighbouring panels' titles and labels never meet."""
    inches = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(textwrap.fill(text, _characters(inches, fontsize)), fontsize=fontsize)


def _ylabel(ax, text: str, fontsize: float = 9) -> None:
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


def _save(fig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(fig)


def _grid(n: int, width: float, height: float):
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def _note(path: str | Path, text: str) -> None:
    """A figure that says why there is nothing to plot (e.g. a config with a single metric)."""
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    _save(fig, path)


def _params(ds: xr.Dataset) -> dict:
    return json.loads(ds.attrs["metric_params"])


def plot_best_alignment(ds: xr.Dataset, path: str | Path) -> None:
    """One heatmap per metric: the best score over layer pairs for every model pair (diagonal blank); pairs
    whose q-value is not below ``Q_LEVEL`` are crossed."""
    labels = [f"{m} ({v})" for m, v in zip(ds["model_x"].values, ds["modality_x"].values)]
    n = len(labels)
    metrics = list(ds["metric"].values)
    fig, axes = _grid(len(metrics), 0.3 * n + 2.5, 0.3 * n + 2)  # labels at 6 pt: 0.3 in per model is room enough
    for ax, metric in zip(axes, metrics):
        best = ds["best"].sel(metric=metric).values
        sns.heatmap(best, annot=n <= 8, fmt=".2f", cmap="viridis", square=True, ax=ax, cbar=False,
                    xticklabels=labels, yticklabels=labels)  # fmt: skip
        rows, cols = np.nonzero(not_significant(ds.sel(metric=metric)).values)
        ax.scatter(cols + 0.5, rows + 0.5, marker="x", s=12, color="red", linewidths=0.8)
        ax.set_title(f"{metric} {_params(ds)[metric] or ''}", fontsize=9)
        ax.tick_params(labelsize=6)
    fig.suptitle(
        "Best alignment over layer pairs (rows: model x, columns: model y); "
        f"×: not significant, Benjamini–Hochberg q ≥ {Q_LEVEL}"
    )
    _footnote(fig, tie_note(ds), p_floor_note(ds))
    _save(fig, path)


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


def plot_layer_matrices(pair: xr.Dataset, path: str | Path, rows: str = "x") -> None:
    """The (layer, layer) score matrix of one pair, one panel per metric; ``rows`` picks which model ("x" or
    "y") is on the rows. The best cell is outlined."""
    cols = "y" if rows == "x" else "x"
    names = {side: json.loads(pair.attrs[f"layer_names_{side}"]) for side in ("x", "y")}
    metrics = list(pair["metric"].values)
    fig, axes = _grid(len(metrics), 0.25 * len(names[cols]) + 3, 0.22 * len(names[rows]) + 1.5)
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
    _save(fig, path)


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
        _note(path, "Metric agreement needs at least two metrics and three model pairs of one modality group.")
        return
    side = 0.7 * len(metrics) + 2.5
    fig, axes = plt.subplots(1, len(groups), figsize=(side * len(groups), side), squeeze=False, layout="constrained")
    for ax, (group, n) in zip(axes.flat, groups.items()):
        _agreement_heatmap(ax, metric_agreement(ds, group), metrics, f"{group}: {n} model pairs")
    _save(fig, path)


def plot_metric_variants(ds: xr.Dataset, path: str | Path) -> None:
    """Fig. 12 over hyperparameters: the Spearman rank correlation over vision–vision model pairs between
    every (metric, k, bsz) variant, each scored on the models' last layers."""
    if ds.sizes["pair"] < 3 or ds.sizes["variant"] < 2:
        _note(path, "Fig. 12 needs at least three vision models (three pairs) and two metric variants.")
        return
    rho = np.atleast_2d(spearmanr(ds["score"].values, axis=1).statistic)
    labels = list(ds["variant"].values)
    side = 0.32 * len(labels) + 3
    fig, ax = plt.subplots(figsize=(side + 1, side), layout="constrained")
    _agreement_heatmap(ax, rho, labels, f"vision–vision, last layers: {ds.sizes['pair']} model pairs; "
                       f"lowest ρ {np.nanmin(rho):.2f}")  # fmt: skip
    _save(fig, path)


def plot_cross_modal_metrics(ds: xr.Dataset, path: str | Path) -> None:
    """One panel per metric: the best score of each vision model against each language model, with the
    half-sample interval as error bars and the null's critical value τ as a dashed line (Fig. 13–14); pairs
    that are not significant after the Benjamini–Hochberg correction are hatched."""
    vision = [m for m, v in zip(ds["model_x"].values, ds["modality_x"].values) if v == "vision"]
    language = [m for m, v in zip(ds["model_x"].values, ds["modality_x"].values) if v == "language"]
    if not vision or not language:
        _note(path, "Cross-modal alignment needs at least one vision and one language model.")
        return
    metrics = list(ds["metric"].values)
    fig, axes = _grid(len(metrics), 0.6 * len(vision) + 2.5, 3.0)
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
    _footnote(fig, p_floor_note(ds))
    _save(fig, path)


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
    _save(fig, path)


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
    from prh.trends import TREND, describe, describe_control, trend_row

    metric = metric if metric in ds["metric"].values else str(ds["metric"].values[0])
    panels = [s for s in ("raw", "calibrated") if trend_row(trends, "fig3", metric, s) is not None]
    if not panels:
        _note(path, "Figure 3 needs at least one vision model and one causal language model (with bits-per-byte).")
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
        _ylabel(ax, f"mean alignment to the trained vision models ({metric}, best layers{calibrated})")
        _title(ax, f"{score} scores, trained causal LMs only: {describe(row)}")
        ax.legend(fontsize=6, loc="best")
    fig.suptitle("Fig. 3: alignment to the vision models against language-model score")
    controls = [describe_control(r) for r in checks.to_dicts()] if checks is not None else []
    _footnote(fig, *controls, p_floor_note(ds))
    _save(fig, path)


def vision_alignment(
    ds: xr.Dataset, competence, metric: str, models, layers: str = "best", score: str = "raw"
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The vision models that have both a competence and an alignment, their alignment matrix for ``metric``
    (``layers``: best over layer pairs, or last layer against last layer; ``score``: raw or calibrated) and
    their competences (Fig. 2)."""
    from prh.trends import pair_matrix

    known = set(ds["model_x"].values) & set(competence["model"].to_list())
    names = [m for m in models if m in known]
    alignment = pair_matrix(ds, metric, layers, names, score)
    by_model = dict(zip(competence["model"].to_list(), competence["competence"].to_list()))
    return names, alignment, np.array([by_model[m] for m in names])


def plot_competence_alignment(
    binned: dict, path: str | Path, metric: str, n_tasks: int, trends=None, layers: str = "last"
) -> None:
    """Fig. 2 (left): mean alignment of the model pairs inside each competence bin, with standard errors, one
    panel per score in ``binned`` (``raw`` and ``calibrated`` -> ``prh.probes.binned_alignment`` table); bins
    that hold a single model (no pair) are marked on the axis. ``trends``: the run's trends table, whose
    ``fig2`` rows title the panels."""
    from prh.trends import describe, trend_row

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
        _ylabel(ax, f"intra-bin alignment ({metric}, {layer_text}{', calibrated' if score != 'raw' else ''})")
        trend = trend_row(trends, "fig2", metric, score) if trends is not None else None
        _title(ax, f"{score} scores: {describe(trend)}")
    fig.suptitle("Fig. 2; mean alignment within competence bins, and the trend of each model's mean alignment")
    _save(fig, path)


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
    _save(fig, path)


def plot_job_costs(summary, path: str | Path) -> None:
    """Where the run's time goes (``prh.job_costs.by_rule``): total job wall time and peak memory by rule."""
    rules = summary["rule"].to_list()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.35 * len(rules) + 1.5), sharey=True, layout="constrained")
    y = np.arange(len(rules))
    left.barh(y, summary["total_wall_s"].to_numpy() / 60, color="tab:blue")
    for i, (jobs, mean) in enumerate(zip(summary["jobs"], summary["mean_wall_s"])):
        left.text(0, i, f" {jobs} × {mean:.1f} s", va="center", fontsize=8, color="white" if i == 0 else "black")
    left.set_yticks(y, rules)
    left.invert_yaxis()
    left.set_xlabel("job minutes (sum of wall time)")
    right.barh(y, summary["max_rss_mb"].to_numpy() / 1024, color="tab:orange")
    right.set_xlabel("largest peak memory of a job (GiB)")
    jobs, minutes = int(summary["jobs"].sum()), summary["total_wall_s"].sum() / 60
    fig.suptitle(f"{jobs} jobs, {minutes:.1f} job-minutes in all")
    _save(fig, path)


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
    _save(fig, path)


def plot_family(table, path: str | Path, family: str, factors: list[str], metric: str) -> None:
    """One panel per measure of ``prh.families.family_table``: mean alignment per level of the family's
    varied factor, with the pairs' half-sample interval."""
    from prh.families import FACTOR_WORDS

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
    _save(fig, path)


def plot_world_alignment(trends, path: str | Path, metric: str) -> None:
    """Alignment to the world Z against competence (vision models) and against 1 − bits-per-byte (causal
    language models), raw scores of ``metric``, each panel titled with its Spearman trend."""
    from prh.trends import describe, trend_row

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
    _save(fig, path)


def plot_trend_calibration(trends, path: str | Path) -> None:
    """Does calibration change the story? For each trend (Fig. 2, Fig. 3, alignment to Z) and metric, Spearman's
    ρ on the raw scores against ρ on the calibrated scores, with their bootstrap intervals."""
    kinds = [t for t in ("fig2", "fig3", "world_vision", "world_language") if t in set(trends["trend"])]
    if "calibrated" not in set(trends["score"]) or not kinds:
        _note(path, "Raw against calibrated trends needs the permutation null (alignment.null_distribution).")
        return
    fig, axes = _grid(len(kinds), 4.2, 4.0)
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
    _save(fig, path)


def plot_idealised_world(table, facts: dict, path: str | Path) -> None:
    """The idealised world (Section 4, App. F): contrastive learners' kernel alignment to K_PMI of Z against
    training steps (per embedding dimension), the cross-modal mutual k-NN between the X and Y learners, and the
    final alignment per dimension beside what a lossy Y can attain. Titles carry this run's numbers."""
    rows = table.to_dicts()
    dims = sorted({r["dim"] for r in rows})
    last = max(r["step"] for r in rows)
    colours = dict(zip(dims, sns.color_palette("viridis", len(dims))))

    def series(representation, measure, dim):
        points = sorted((r["step"], r["value"]) for r in rows
                        if (r["representation"], r["measure"], r["dim"]) == (representation, measure, dim))  # fmt: skip
        return [p[0] for p in points], [p[1] for p in points]

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for dim in dims:
        axes[0].plot(*series("X", "alignment to K_PMI", dim), marker="o", color=colours[dim], label=f"d = {dim}")
        axes[1].plot(*series("Y", "mutual k-NN with X", dim), marker="o", color=colours[dim], label=f"Y, d = {dim}")
        axes[1].plot(*series("Y merged", "mutual k-NN with X", dim), marker="x", ls="--", color=colours[dim])
    final = {name: [series(name, "alignment to K_PMI", dim)[1][-1] for dim in dims] for name in ("X", "Y", "Y merged")}
    for name, marker in zip(final, "os^"):
        axes[2].plot(dims, final[name], marker=marker, label=name)
    cap = facts["attainable"]["Y merged"]
    axes[2].axhline(cap, color="k", ls=":", label=f"attainable by merged Y: {cap:.3f}")
    for ax in axes[:2]:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("training step")
    axes[0].set(ylabel="kernel alignment to K_PMI of Z", title=f"X learners: {min(final['X']):.3f}–"
                f"{max(final['X']):.3f} at step {last}")  # fmt: skip
    k = facts["world"]["k"]
    axes[1].set(ylabel=f"mutual k-NN with X (k = {k})", title="Y (solid) and merged Y (dashed) against X")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xticks(dims, [str(d) for d in dims])
    axes[2].set(xlabel="embedding dimension d", ylabel=f"alignment to K_PMI at step {last}",
                title="final alignment per dimension")  # fmt: skip
    for ax in axes:
        ax.legend(fontsize=7)
    psd = facts["psd"]
    world = facts["world"]
    premise = "holds" if psd["off_diagonal_nonpositive"] and psd["eq33"] and psd["eq38"] else "does not hold"
    fig.suptitle(
        f"{world['states']}-state ring world, window {world['window']}: K_PMI + C with C = {psd['C']:.3f} (eq. 36) "
        f"has smallest eigenvalue {psd['min_eigenvalue']:.3g}; Proposition F.1's premise {premise}",
        fontsize=9,
    )
    _save(fig, path)


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
        _note(path, f"Fig. 4 needs the reference {reference} and at least two causal language models aligned to "
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
    _save(fig, path)


def plot_caption_density(summary, path) -> None:
    """Fig. 9: for each metric, the mean alignment over vision × language pairs against the mean caption
    length of each density level, ± the standard deviation over language models. Each panel's title states
    this run's Spearman ρ between length and mean alignment, and the change from the sparsest level."""
    metrics = list(dict.fromkeys(summary["metric"].to_list()))
    fig, axes = _grid(len(metrics), 4.2, 3.4)
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
    _save(fig, path)


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
    _save(fig, path)
