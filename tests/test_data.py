"""Datasets: the shapes world (deterministic, size-independent scenes, captions that describe the latent
scene) and the importers of WIT-1024 and Places-365 on local fixtures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
from conftest import PLACES_CLASSES, places365_fixture

from prh.data.shapes import (
    COLOURS,
    Scene,
    SceneObject,
    caption_scene,
    generate_shapes_world,
    render_scene,
    sample_scene,
)
from prh.data.store import open_images, read_captions


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = generate_shapes_world(tmp_path / "a", size=40, seed=5)
    b = generate_shapes_world(tmp_path / "b", size=40, seed=5)
    c = generate_shapes_world(tmp_path / "c", size=40, seed=6)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert len(_digest(tmp_path / "a")) >= 4  # zarr metadata + chunks, parquet, json
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]


def test_layout_and_scene_independence_from_size(tmp_path):
    generate_shapes_world(tmp_path / "small", size=10, seed=1)
    generate_shapes_world(tmp_path / "large", size=70, seed=1)
    images = open_images(tmp_path / "large")
    assert images.shape == (70, 224, 224, 3) and images.dtype == np.uint8
    assert images.chunks[0] < 70  # chunked along samples
    np.testing.assert_array_equal(open_images(tmp_path / "small")[:], images[:10])
    assert read_captions(tmp_path / "small") == read_captions(tmp_path / "large")[:10]
    table = pl.read_parquet(tmp_path / "large" / "samples.parquet")
    assert table["n_objects"].to_list() == [len(o) for o in table["objects"].to_list()]
    assert set(table["n_objects"].to_list()) <= {1, 2, 3, 4}


def test_caption_from_latent_scene():
    big = SceneObject("square", "blue", "large", x=112, y=150, radius=40, rotation=0)
    c1 = SceneObject("circle", "red", "small", x=80, y=40, radius=15, rotation=0)
    c2 = SceneObject("circle", "red", "small", x=140, y=45, radius=15, rotation=0)
    scene = Scene("white", "plain", (c1, big, c2))
    assert caption_scene(scene) == "Two small red circles above a large blue square on a plain white background."
    star = SceneObject("star", "green", "medium", x=30, y=150, radius=25, rotation=10)
    scene3 = Scene("beige", "striped", (big, c1, star))
    assert caption_scene(scene3) == (
        "A medium green star to the left of a large blue square and a small red "
        "circle above the square, on a striped beige background."
    )
    assert (
        caption_scene(Scene("pale blue", "dotted", (star,))) == "A medium green star on a dotted pale blue background."
    )


def test_rendering_draws_the_objects_where_the_scene_says():
    for index in range(20):
        scene = sample_scene(0, index)
        image = render_scene(scene).astype(int)
        for obj in scene.objects:
            centre = image[int(round(obj.y)), int(round(obj.x))]
            if obj.shape in ("circle", "square", "hexagon", "pentagon", "diamond"):  # convex: centre is inside
                assert np.abs(centre - np.array(COLOURS[obj.colour])).max() <= 2, (index, obj)
    # anti-aliased: edge pixels take intermediate values, not only the palette
    scene = Scene("white", "plain", (SceneObject("triangle", "black", "large", 112, 112, 40, 17),))
    assert len(np.unique(render_scene(scene).reshape(-1, 3), axis=0)) > 10


def _wit_fixture(folder):
    """A tiny dataset in the layout of the authors' WIT-1024 (image column; text column of caption lists),
    saved with ``save_to_disk`` as a user without network would."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8))
        for h, w in [(40, 60), (64, 32), (50, 50), (33, 70), (80, 45), (45, 45), (60, 90), (30, 30)]
    ]
    texts = [[f"caption {i}", f"reference description {i}"] for i in range(len(images))]
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Sequence(datasets.Value("string"))})
    datasets.Dataset.from_dict({"image": images, "text": texts}, features=features).save_to_disk(str(folder))
    return images


def test_wit_loader_on_a_local_fixture(tmp_path):
    from prh.config import validate_config
    from prh.data.build import build_dataset
    from prh.data.hub import square_image

    images = _wit_fixture(tmp_path / "wit")
    config = {
        "datasets": [{"name": "wit", "kind": "wit", "path": str(tmp_path / "wit"), "size": 5, "seed": 1}],
        "models": [{"name": "m", "modality": "language", "source": "wordllama"}],
        "alignment": {"metrics": {"mutual_knn": {"k": 2}}},
    }
    spec = validate_config(config)["datasets"][0] | {"caption_index": 1, "image_size": 32}
    assert spec["id"] == "minhuh/prh" and spec["revision"] == "wit_1024" and spec["text_column"] == "text"
    record = build_dataset(tmp_path / "out", spec)
    chosen = np.sort(np.random.default_rng(1).choice(8, 5, replace=False))
    assert read_captions(tmp_path / "out") == [f"reference description {i}" for i in chosen]
    stored = open_images(tmp_path / "out")
    assert stored.shape == (5, 32, 32, 3) and record["size"] == 5
    for row, i in enumerate(chosen):
        np.testing.assert_array_equal(stored[row], square_image(images[i], 32))
    assert build_dataset(tmp_path / "again", spec)["fingerprint"] == record["fingerprint"]


def test_square_image_by_hand():
    from PIL import Image

    from prh.data.hub import square_image

    wide = np.zeros((10, 30, 3), dtype=np.uint8)
    wide[:, 10:20] = 255  # a white band in the middle third
    out = square_image(Image.fromarray(wide), 10)
    assert out.shape == (10, 10, 3) and out.min() >= 250  # the centre crop keeps only the band


def test_unreachable_hub_dataset_names_the_dataset_and_the_fix():
    import os
    import subprocess
    import sys

    code = (
        "from prh.data.build import build_dataset\n"
        "build_dataset('/tmp/never', {'name': 'wit', 'kind': 'wit', 'id': 'minhuh/prh', 'revision': 'wit_1024',"
        " 'split': 'train', 'seed': 0, 'image_column': 'image', 'text_column': 'text', 'caption_index': 0,"
        " 'image_size': 32})\n"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert (
        "dataset 'wit': cannot load split 'train' of minhuh/prh@wit_1024" in result.stderr
        and "save_to_disk" in result.stderr
    )


def test_places365_loader_on_a_local_fixture(tmp_path):
    from PIL import Image

    from prh.config import validate_config
    from prh.data.build import build_dataset
    from prh.data.hub import square_image
    from prh.data.store import has_captions

    entries = places365_fixture(tmp_path / "places")
    config = {
        "datasets": [{"name": "places", "kind": "places365", "root": str(tmp_path / "places"), "size": 12, "seed": 4}],
        "models": [{"name": "m", "modality": "vision", "source": "timm", "id": "test_vit"}],
        "alignment": {"metrics": {"mutual_knn": {"k": 2}}},
    }
    spec = validate_config(config)["datasets"][0] | {"image_size": 32}
    assert spec["split"] == "val" and spec["small"] and not has_captions(spec["kind"])
    record = build_dataset(tmp_path / "out", spec)
    chosen = np.sort(np.random.default_rng(4).choice(len(entries), 12, replace=False))
    table = pl.read_parquet(tmp_path / "out" / "samples.parquet")
    assert table["file"].to_list() == [entries[i][0] for i in chosen]
    assert table["label"].to_list() == [entries[i][1] for i in chosen]
    assert table["class"].to_list() == [PLACES_CLASSES[entries[i][1]][3:] for i in chosen]
    assert "bakery/shop" in PLACES_CLASSES[1][3:] and "caption" not in table.columns
    stored = open_images(tmp_path / "out")
    assert stored.shape == (12, 32, 32, 3) and record["size"] == 12 and record["split"] == "val"
    for row, i in enumerate(chosen):
        with Image.open(tmp_path / "places" / "val_256" / entries[i][0]) as image:
            np.testing.assert_array_equal(stored[row], square_image(image, 32))
    assert build_dataset(tmp_path / "again", spec)["fingerprint"] == record["fingerprint"]


def test_missing_places365_names_the_dataset_and_how_to_get_it(tmp_path):
    import pytest

    from prh.data.build import build_dataset

    spec = {"name": "places", "kind": "places365", "root": str(tmp_path / "nowhere"), "split": "val", "small": True}
    with pytest.raises(RuntimeError) as error:
        build_dataset(tmp_path / "out", spec | {"download": False, "size": 4, "seed": 0, "image_size": 32})
    message = str(error.value)
    assert "dataset 'places'" in message and str(tmp_path / "nowhere") in message
    assert "val_256.tar" in message and "data.csail.mit.edu" in message
    assert not (tmp_path / "out" / "images.zarr").exists()


def test_undecodable_places365_image_names_the_file(tmp_path):
    import pytest

    from prh.data.build import build_dataset

    entries = places365_fixture(tmp_path / "places", n_images=4)
    (tmp_path / "places" / "val_256" / entries[2][0]).write_bytes(b"not a jpeg")
    spec = {"name": "places", "kind": "places365", "root": str(tmp_path / "places"), "split": "val", "small": True}
    with pytest.raises(RuntimeError, match=f"cannot decode .*{entries[2][0]}"):
        build_dataset(tmp_path / "out", spec | {"download": False, "size": 4, "seed": 0, "image_size": 32})
    assert not (tmp_path / "out" / "images.zarr").exists()
