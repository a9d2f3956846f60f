"""The dataset job: one configured dataset built into ``data/{name}``, whatever its kind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prh.data.hub import import_hf_dataset, import_places365
from prh.data.shapes import generate_shapes_world


def build_dataset(out_dir: str | Path, spec: dict) -> dict:
    """The dataset stage for one validated config entry: generate the shapes world or import a dataset."""
    if spec["kind"] == "shapes":
        return generate_shapes_world(out_dir, spec["size"], spec["seed"])
    if spec["kind"] == "places365":
        return import_places365(out_dir, spec)
    return import_hf_dataset(out_dir, spec)


DECLARED_KEYS = ("kind", "id", "revision", "split", "path", "size", "seed", "caption_index", "image_size")


def declare_dataset(out_dir: str | Path, spec: dict) -> dict:
    """The record of a dataset that no job reads the inputs of (every model precomputed): ``dataset.json``
    with its size and a fingerprint of its declaration (kind, hub id, revision, split, size, seed), marked
    ``"contents": "not downloaded"``. A later run that embeds a model downloads the dataset; its fingerprint
    is then the contents', and the stores made against the declaration are made again."""
    from prh.io.workflow import atomic_path

    declaration = {key: spec[key] for key in DECLARED_KEYS if key in spec}
    digest = hashlib.sha256(json.dumps(declaration, sort_keys=True).encode()).hexdigest()
    record = declaration | {"fingerprint": f"sha256:{digest}", "fingerprint_of": "declaration",
                            "contents": "not downloaded"}  # fmt: skip
    with atomic_path(Path(out_dir) / "dataset.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return record
