"""Colour (Fig. 8): CIELAB against scikit-image, Kabsch–Umeyama on a known similarity with reflection,
disparity against scipy's Procrustes, co-occurrence and PMI of hand-made images, MDS against scikit-learn's,
and unknown colour names named."""

import numpy as np
import pytest

from prh.experiments.colour.analysis import (
    TEMPLATES,
    colour_scores,
    cooccurrence,
    disc_offsets,
    euclidean,
    kabsch_umeyama,
    language_dissimilarity,
    mds,
    pmi,
    procrustes_disparity,
    quantise,
    srgb_to_lab,
    stress,
    vision_dissimilarity,
    write_sentences,
    xkcd_rgb,
)


def test_cielab_of_known_colours_and_against_scikit_image():
    from skimage.color import rgb2lab

    np.testing.assert_allclose(srgb_to_lab([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]), [[100, 0, 0], [0, 0, 0]], atol=1e-3)
    # sRGB red (1, 0, 0): L* 53.24, a* 80.09, b* 67.20 (CIE 1976, D65)
    np.testing.assert_allclose(srgb_to_lab([1.0, 0.0, 0.0]), [53.24, 80.09, 67.20], atol=0.01)
    rgb = np.random.default_rng(0).random((200, 3))
    # scikit-image rounds the sRGB matrix to 6 digits: agreement to 0.01 of a unit
    np.testing.assert_allclose(srgb_to_lab(rgb), rgb2lab(rgb[None])[0], atol=0.01)


def test_kabsch_umeyama_recovers_rotation_scale_reflection_and_translation():
    from scipy.stats import special_ortho_group

    x = np.random.default_rng(1).normal(size=(20, 3))
    reflection = special_ortho_group.rvs(3, random_state=2) @ np.diag([1.0, 1.0, -1.0])
    assert np.linalg.det(reflection) == pytest.approx(-1)
    y = 2.5 * x @ reflection.T + np.array([1.0, -2.0, 3.0])
    scale, rotation, translation = kabsch_umeyama(x, y)
    assert scale == pytest.approx(2.5)
    np.testing.assert_allclose(rotation, reflection, atol=1e-12)
    np.testing.assert_allclose(translation, [1, -2, 3], atol=1e-12)
    assert procrustes_disparity(x, y) == pytest.approx(0, abs=1e-20)
    # without reflection the best proper rotation cannot reach the mirror image
    _, proper, _ = kabsch_umeyama(x, y, reflection=False)
    assert np.linalg.det(proper) == pytest.approx(1)


def test_disparity_equals_scipys_procrustes():
    from scipy.spatial import procrustes

    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
        assert procrustes_disparity(a, b) == pytest.approx(procrustes(b, a)[2], rel=1e-10)


def test_cooccurrence_and_pmi_of_hand_made_images():
    red, blue = (230, 0, 0), (3, 67, 223)
    two = np.array([[red, blue]], dtype=np.uint8)  # 1 x 2: every pair joins the two pixels
    counts = cooccurrence([two], bins=4, radius=1, pairs=500, seed=0)
    r, b = quantise(np.array([red, blue]), 4)
    assert counts[r, b] == counts[b, r] == 500 and counts.sum() == 1000
    assert len(disc_offsets(4)) == 48  # integer offsets within distance 4, the pixel itself excluded
    # PMI of a 2-cell table by hand: p(a, b) = [[.4, .1], [.1, .4]], p(a) = p(b) = .5
    k = pmi(np.array([[4, 1], [1, 4]]))
    np.testing.assert_allclose(k, np.log([[0.4 / 0.25, 0.1 / 0.25], [0.1 / 0.25, 0.4 / 0.25]]))
    # App. D's dissimilarity: c - K_PMI with c the largest K_PMI among the colours, 0 on the diagonal
    table = np.zeros((64, 64))
    table[r, r], table[b, b], table[r, b], table[b, r] = 4, 4, 1, 1
    rgb = np.array([red, blue]) / 255
    np.testing.assert_allclose(vision_dissimilarity(table, rgb, 4, 0.0), [[0, np.log(4)], [np.log(4), 0]])


def test_mds_recovers_a_euclidean_configuration_and_matches_scikit_learn():
    from sklearn.manifold import MDS

    rng = np.random.default_rng(0)
    points = rng.normal(size=(12, 3))
    z = mds(euclidean(points), fits=8, seed=0)
    assert stress(z, euclidean(points)) < 1e-8 and procrustes_disparity(z, points) < 1e-8
    noisy = euclidean(points) + rng.uniform(0, 0.5, (12, 12))
    noisy = (noisy + noisy.T) / 2
    np.fill_diagonal(noisy, 0)
    theirs = MDS(n_components=3, metric="precomputed", n_init=8, init="random", random_state=0, eps=1e-9,
                 normalized_stress=False).fit(noisy)  # fmt: skip
    assert stress(mds(noisy, fits=8, seed=0), noisy) <= theirs.stress_ + 1e-6


def test_language_dissimilarity_concatenates_the_last_layers_and_averages_the_sentences():
    rng = np.random.default_rng(0)
    layers = [rng.normal(size=(6, 4)) for _ in range(5)]
    colour_of_row = np.array([0, 0, 0, 1, 1, 1])
    d = language_dissimilarity(layers, colour_of_row, 2, last=4)
    x = np.concatenate(layers[1:], axis=1)
    assert d[0, 1] == pytest.approx(np.linalg.norm(x[:3].mean(0) - x[3:].mean(0))) and d[0, 0] == 0


def test_scores_and_permutation_p_values():
    lab = srgb_to_lab(xkcd_rgb(["red", "green", "blue", "yellow", "black", "white", "grey", "pink"]))
    scores = colour_scores(lab.copy(), euclidean(lab), lab, permutations=99, seed=0)
    assert scores["disparity"] == pytest.approx(0, abs=1e-12) and scores["rsa"] == pytest.approx(1)
    assert scores["disparity_p"] == scores["rsa_p"] == pytest.approx(1 / 100)  # no permutation does as well
    noise = np.random.default_rng(0).normal(size=lab.shape)
    assert colour_scores(noise, euclidean(noise), lab, permutations=99, seed=0)["rsa_p"] > 0.05


def test_sentences_follow_the_templates_and_unknown_names_are_named(tmp_path):
    import polars as pl

    record = write_sentences(["red", "navy"], tmp_path / "set")
    table = pl.read_parquet(tmp_path / "set" / "samples.parquet")
    assert table["caption"].to_list() == [t.format(c) for c in ("red", "navy") for t in TEMPLATES]
    assert record["size"] == 6 and record["colours"] == ["red", "navy"]
    with pytest.raises(ValueError, match="not XKCD colour names: 'reddish-ish', 'bleu'"):
        write_sentences(["red", "reddish-ish", "bleu"], tmp_path / "bad")


def test_hub_images_on_a_local_fixture(tmp_path):
    """The paper preset's CIFAR-10 (column ``img``) read from a save_to_disk folder, its first ``size`` rows."""
    import datasets
    from PIL import Image

    from prh.experiments.colour.analysis import colour_images

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 255, size=(32, 32, 3), dtype=np.uint8) for _ in range(5)]
    datasets.Dataset.from_dict({"img": [Image.fromarray(a) for a in arrays], "label": list(range(5))}).save_to_disk(
        str(tmp_path / "cifar")
    )
    spec = {"kind": "huggingface", "path": str(tmp_path / "cifar"), "split": "train", "image_column": "img", "size": 3}
    images = colour_images(spec)
    assert len(images) == 3 and all(np.array_equal(a, b) for a, b in zip(images, arrays))
