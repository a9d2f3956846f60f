"""Linear probes and model competence (section 2.2, App. C.1; Fig. 2).

A model's competence is the fraction of probe tasks it "solves": its linear-probe test accuracy on a task
is at least 80% of the best model's accuracy on that task (App. C.1). Probes are multinomial logistic
regressions on standardised features; the inverse regularisation ``C`` (and optionally the layer) is chosen
on the validation split, then the probe is refit on train + validation and scored once on test.

Figure 2 relates competence to alignment: models are binned by competence and the mutual-kNN alignment of
every pair inside a bin is averaged (left), and the models are embedded with UMAP under the distance
``-log(alignment)`` (right).
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
import polars as pl
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

SOLVED_FRACTION = 0.8


def _fit(X: np.ndarray, y: np.ndarray, C: float, max_iter: int, seed: int):
    scaler = StandardScaler().fit(X)
    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the validation score judges every C alike
        model.fit(scaler.transform(X), y)
    return scaler, model


def _correct(fitted, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether the fitted probe labels each sample right."""
    scaler, model = fitted
    return model.predict(scaler.transform(X)) == y


def _accuracy(fitted, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(_correct(fitted, X, y)))


def select_c(train, val, Cs, *, max_iter: int = 1000, seed: int = 0) -> tuple[float, float, list[float]]:
    """Validation accuracy of a probe fit on ``train = (X, y)`` for every C of ``Cs``; returns the best C
    (the smallest, i.e. most regularised, among ties), its accuracy and all accuracies in the order of Cs."""
    scores = [_accuracy(_fit(*train, C, max_iter, seed), *val) for C in Cs]
    best = max(range(len(Cs)), key=lambda i: (scores[i], -Cs[i]))
    return float(Cs[best]), scores[best], scores


def probe_layers(layers, labels, splits, Cs, *, layer: str = "last", max_iter: int = 1000, seed: int = 0) -> dict:
    """The probe of one model on one task. ``layers`` is a list of (N, D) feature arrays (the model's layers
    in order), ``labels`` and ``splits`` ("train"/"val"/"test") are per sample. ``layer="last"`` probes the
    last layer; ``"best"`` picks the (layer, C) with the best validation accuracy (earliest layer on ties)."""
    labels, splits = np.asarray(labels), np.asarray(splits)
    parts = {name: splits == name for name in ("train", "val", "test")}
    for name, mask in parts.items():
        if not mask.any():
            raise ValueError(f"the {name} split is empty")
    candidates = range(len(layers)) if layer == "best" else [len(layers) - 1]
    best = None
    for index in candidates:
        X = np.asarray(layers[index], dtype=np.float64)
        C, val_accuracy, _ = select_c(
            (X[parts["train"]], labels[parts["train"]]),
            (X[parts["val"]], labels[parts["val"]]),
            Cs,
            max_iter=max_iter,
            seed=seed,
        )
        if best is None or val_accuracy > best[2]:
            best = (index, C, val_accuracy)
    index, C, val_accuracy = best
    X = np.asarray(layers[index], dtype=np.float64)
    fit = parts["train"] | parts["val"]
    fitted = _fit(X[fit], labels[fit], C, max_iter, seed)
    correct = _correct(fitted, X[parts["test"]], labels[parts["test"]])
    return {
        "layer": index,
        "C": C,
        "val_accuracy": val_accuracy,
        "test_accuracy": float(np.mean(correct)),
        "test_correct": [bool(c) for c in correct],  # per test item, in the task's order: for intervals
        "n_train": int(parts["train"].sum()),
        "n_val": int(parts["val"].sum()),
        "n_test": int(parts["test"].sum()),
        "n_classes": int(len(np.unique(labels))),
    }


def solved(accuracy: pl.DataFrame, fraction: float = SOLVED_FRACTION) -> pl.DataFrame:
    """Add ``best_test_accuracy`` (over models, per task) and ``solved``: test accuracy ≥ ``fraction`` × best
    (App. C.1: a representation solves a task at ≥ 80% of the best performance on it). Accuracies are
    fractions k/n, so a score exactly at the threshold is common; a 1e-12 slack keeps 0.72 ≥ 0.8 × 0.9 true
    in floating point."""
    best = pl.col("test_accuracy").max().over("task")
    return accuracy.with_columns(best_test_accuracy=best).with_columns(
        solved=pl.col("test_accuracy") >= fraction * pl.col("best_test_accuracy") - 1e-12
    )


def competence(
    accuracy: pl.DataFrame,
    solved_fraction: float = SOLVED_FRACTION,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pl.DataFrame:
    """Per model: tasks solved (``solved`` at ``solved_fraction``), tasks probed, competence (the fraction
    solved), mean test accuracy, and competence's ``level`` interval (``competence_low``, ``competence_high``)
    over ``resamples`` bootstrap resamples of each task's test items (the same items for every model, so
    the best model of a task, and which models solve it, are found again in each resample)."""
    table = (
        solved(accuracy, solved_fraction)
        .group_by("model", maintain_order=True)
        .agg(
            tasks_solved=pl.col("solved").sum().cast(pl.Int64),
            tasks=pl.len().cast(pl.Int64),
            mean_test_accuracy=pl.col("test_accuracy").mean(),
        )
        .with_columns(competence=pl.col("tasks_solved") / pl.col("tasks"))
    )
    models = table["model"].to_list()
    solved_counts = np.zeros((resamples, len(models)))
    for t, task in enumerate(accuracy["task"].unique(maintain_order=True).to_list()):
        rows = accuracy.filter(pl.col("task") == task)
        order = [models.index(m) for m in rows["model"].to_list()]
        correct = np.array(rows["test_correct"].to_list(), dtype=np.float64)  # (models of the task, test items)
        draws = np.random.default_rng([seed, t]).integers(0, correct.shape[1], (resamples, correct.shape[1]))
        scores = correct[:, draws].mean(axis=2).T  # (resamples, models)
        solved_counts[:, order] += scores >= solved_fraction * scores.max(axis=1, keepdims=True) - 1e-12
    values = solved_counts / table["tasks"].to_numpy()
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return table.with_columns(competence_low=pl.Series(low), competence_high=pl.Series(high))


def competence_bins(competence_values, bins: int) -> np.ndarray:
    """Bin index of each competence in ``bins`` equal-width bins of [0, 1] (1.0 falls in the last bin)."""
    values = np.asarray(competence_values, dtype=np.float64)
    return np.minimum((values * bins).astype(int), bins - 1)


def binned_alignment(alignment: np.ndarray, competence_values, bins: int = 5) -> pl.DataFrame:
    """Fig. 2 (left): models binned by competence; per bin, the mean alignment over all pairs of models
    inside it and its standard error (sample standard deviation / sqrt(pairs)). ``alignment`` is a square
    model × model matrix (made symmetric by averaging both directions). A bin holding one model has no
    pair (mean and error NaN); empty bins are left out."""
    alignment = np.asarray(alignment, dtype=np.float64)
    alignment = (alignment + alignment.T) / 2
    which = competence_bins(competence_values, bins)
    rows = []
    for b in range(bins):
        members = np.flatnonzero(which == b)
        if len(members) == 0:
            continue
        values = np.array([alignment[i, j] for i, j in combinations(members, 2)])
        mean = float(values.mean()) if len(values) else float("nan")
        stderr = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
        rows.append(
            {
                "bin": b,
                "low": b / bins,
                "high": (b + 1) / bins,
                "models": len(members),
                "pairs": len(values),
                "mean_alignment": mean,
                "stderr": stderr,
            }
        )
    return pl.DataFrame(rows)


def alignment_distance(alignment: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Fig. 2 (right): distance = -log(alignment), symmetric, zero on the diagonal; alignments below
    ``floor`` (chance-level or negative scores) are clipped to it so the distance stays finite."""
    alignment = np.asarray(alignment, dtype=np.float64)
    distance = -np.log(np.clip((alignment + alignment.T) / 2, floor, None))
    np.fill_diagonal(distance, 0.0)
    return distance


def umap_models(distance: np.ndarray, *, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0) -> np.ndarray:
    """2-D UMAP (McInnes et al., 2018) of the models from a precomputed distance matrix; seeded, so
    deterministic. Needs at least three models."""
    import umap

    n = len(distance)
    if n < 3:
        raise ValueError(f"a UMAP of models needs at least 3 models, got {n}")
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(n_neighbors, n - 1)),
        min_dist=min_dist,
        metric="precomputed",
        init="random" if n < 10 else "spectral",
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # precomputed-metric and random_state notices
        return reducer.fit_transform(np.asarray(distance, dtype=np.float64))


def probe_store(features_path, task_dir, *, task: str, layer: str, Cs, max_iter: int, seed: int) -> pl.DataFrame:
    """The probe stage of one (task, model) job: one row with the accuracies and their provenance (the task's
    fingerprint, the model's id and revision from the features store, the probe parameters)."""
    import json
    from pathlib import Path

    from prh.data.store import read_record
    from prh.io.features import read_layers, store_attrs
    from prh.io.provenance import package_versions

    record = read_record(task_dir)
    attrs = store_attrs(features_path)
    if attrs["dataset_fingerprint"] != record["fingerprint"]:
        raise ValueError(f"{features_path}: features were computed on another version of probe task '{task}'")
    samples = pl.read_parquet(Path(task_dir) / "samples.parquet", columns=["label", "split"])
    layers = read_layers(features_path)
    if len(layers[0]) != len(samples):
        raise ValueError(f"{features_path}: {len(layers[0])} samples, but probe task '{task}' has {len(samples)}")
    result = probe_layers(
        layers,
        samples["label"].to_numpy(),
        samples["split"].to_numpy(),
        Cs,
        **dict(layer=layer, max_iter=max_iter, seed=seed),
    )
    layer_names = json.loads(attrs["layer_names"])
    return pl.DataFrame(
        [
            {"task": task, "model": attrs["model"]}
            | result
            | {
                "layer_name": layer_names[result["layer"]],
                "layer_choice": layer,
                "Cs": json.dumps(list(Cs)),
                "seed": seed,
                "task_fingerprint": record["fingerprint"],
                "model_id": attrs.get("model_id", ""),
                "model_revision": str(attrs.get("model_revision", "")),
                "versions": json.dumps(package_versions(), sort_keys=True),
            }
        ]
    )


def probe_model(
    features_paths,
    task_dirs,
    tasks,
    *,
    layer: str = "last",
    C=(1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0),
    max_iter: int = 1000,
    seed: int = 0,
) -> pl.DataFrame:
    """The probe stage of one vision model: ``probe_store`` on every task (one row each). One job per model,
    as its probe-task features come from one job: a job's start-up costs more than these small fits.

    Parameters
    ----------
    features_paths, task_dirs, tasks : sequence
        The model's features store of each task, the task's dataset folder and its name.
    layer : str
        Which layer is probed (``last``, or ``best`` on the validation split).
    C : sequence of float
        The inverse regularisation strengths tried on the validation split.
    max_iter, seed : int
        Of the logistic regression.

    Returns
    -------
    polars.DataFrame
        One row per task.
    """
    params = {"layer": layer, "Cs": C, "max_iter": max_iter, "seed": seed}
    rows = [probe_store(f, d, task=t, **params) for f, d, t in zip(features_paths, task_dirs, tasks, strict=True)]
    return pl.concat(rows)
