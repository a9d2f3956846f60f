"""The shapes world: deterministic, size-independent scenes, captions that describe the latent scene."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

from prh.datasets import (
    COLOURS,
    Scene,
    SceneObject,
    caption_scene,
    generate_shapes_world,
    open_images,
    read_captions,
    render_scene,
    sample_scene,
)


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
    table = pl.read_parquet(tmp_path / "large" / "captions.parquet")
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
