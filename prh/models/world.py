"""The world itself as a representation: each shapes-world sample's latent scene Z encoded as one vector,
so that every model's alignment to the true scene structure is measured like its alignment to another model
(the paper's Figure 1 made literal: X and Y are projections of Z).

The encoding is a concatenation of blocks, each scaled to unit length so that every aspect of the scene
weighs the same in cosine similarity:

* ``count``: one-hot of the number of objects (1–4);
* ``background``: one-hot of the background colour, and (a second block) of its texture;
* ``shapes``, ``colours``, ``sizes``: how many objects have each shape, colour and size;
* ``bindings``: how many objects have each (shape, colour) combination, which the separate counts cannot
  tell apart (a red circle and a blue square against a blue circle and a red square);
* ``positions``: how many object centres fall in each cell of a 4 × 4 grid over the image.

A block of zeros stays zero. The store is a features store with one layer, ``Z``, and modality ``world``;
its state skips the quantile clamp (Z is not an activation with outliers, and most of its entries are 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prh.data.shapes import BACKGROUND_COLOURS, COLOURS, IMAGE_SIZE, SHAPES, SIZES, TEXTURES, scene_from_row

GRID = 4
BLOCKS = {
    "count": 4,
    "background": len(BACKGROUND_COLOURS),
    "texture": len(TEXTURES),
    "shapes": len(SHAPES),
    "colours": len(COLOURS),
    "sizes": len(SIZES),
    "bindings": len(SHAPES) * len(COLOURS),
    "positions": GRID * GRID,
}


def encode_scene(scene) -> np.ndarray:
    """Z of one scene: the blocks of ``BLOCKS`` in order, each of unit length (float64)."""
    blocks = {name: np.zeros(size) for name, size in BLOCKS.items()}
    blocks["count"][len(scene.objects) - 1] = 1
    blocks["background"][list(BACKGROUND_COLOURS).index(scene.background)] = 1
    blocks["texture"][TEXTURES.index(scene.texture)] = 1
    colours = list(COLOURS)
    for obj in scene.objects:
        shape, colour = SHAPES.index(obj.shape), colours.index(obj.colour)
        blocks["shapes"][shape] += 1
        blocks["colours"][colour] += 1
        blocks["sizes"][list(SIZES).index(obj.size)] += 1
        blocks["bindings"][shape * len(colours) + colour] += 1
        col = min(int(obj.x * GRID / IMAGE_SIZE), GRID - 1)
        row = min(int(obj.y * GRID / IMAGE_SIZE), GRID - 1)
        blocks["positions"][row * GRID + col] += 1
    return np.concatenate([b / max(np.linalg.norm(b), 1e-300) for b in blocks.values()])


def write_world_features(dataset_dir: str | Path, out_path: str | Path, provenance: dict | None = None) -> Path:
    """The features store of the dataset's latent scenes (one layer ``Z``) at ``out_path``."""
    import polars as pl

    from prh.data.store import read_record
    from prh.io.features import FeatureWriter
    from prh.io.provenance import as_attrs, package_versions

    record = read_record(dataset_dir)
    if record.get("kind") != "shapes":
        raise ValueError(f"{dataset_dir}: only the shapes world knows its latent scenes (kind '{record['kind']}')")
    rows = pl.read_parquet(Path(dataset_dir) / "samples.parquet").to_dicts()
    z = np.stack([encode_scene(scene_from_row(row)) for row in rows]).astype(np.float32)
    attrs = {
        "model": "world",
        "modality": "world",
        "layer_names": ["Z"],
        "dataset_fingerprint": record["fingerprint"],
        "storage_dtype": "float32",
        "encoding": {name: size for name, size in BLOCKS.items()},
        "versions": package_versions(("numpy",)),
        **(provenance or {}),
    }
    with FeatureWriter(out_path, len(z), dtype="float32", chunk=max(len(z), 1), attrs=as_attrs(attrs)) as writer:
        writer.write([z])
    return Path(out_path)
